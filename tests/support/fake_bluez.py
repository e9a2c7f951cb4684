"""A simulated BlueZ on a private D-Bus, so the real bleak code runs without a radio.

Two parts (see ``../shared/BLE.md``, "Testing the real bleak code without a radio"):

- :class:`BusEnvironment` starts a private ``dbus-daemon`` with a system-bus style
  configuration that lets any user own ``org.bluez``, and writes a ``bluetoothctl`` shim
  (bleak runs ``bluetoothctl --version`` and needs BlueZ >= 5.55). Its :meth:`~BusEnvironment.env`
  gives the variables a process needs (``DBUS_SYSTEM_BUS_ADDRESS``, ``PATH``).
- :class:`FakeBlueZ` is a ``dbus-fast`` service owning ``org.bluez`` on that bus. It
  implements what bleak's BlueZ backend uses: ``ObjectManager`` on ``/``, ``Properties``
  on every object, ``org.bluez.Adapter1`` at ``/org/bluez/hci0`` (discovery with a UUID
  filter, ``RemoveDevice``), ``org.bluez.Device1`` (``Connect``/``Disconnect``) and the GATT
  objects of the Heart Rate Service (0x180D: 0x2A37 notify, 0x2A38 read, 0x2902) and the
  Battery Service (0x180F: 0x2A19 read/notify). Notifications go out both ways BlueZ
  offers: ``StartNotify`` + ``PropertiesChanged(Value)`` and ``AcquireNotify`` (a
  ``SOCK_SEQPACKET`` socket passed as a file descriptor).

Each :class:`FakeStrap` is driven by a packet generator (anything with
``packets_until(t_s)``, e.g. the simulator's ``VirtualStrap``; :class:`ScriptedStrap`
is a small built-in one) on a strap clock that may run faster than real time
(``time_scale``), so a 5-minute session takes seconds. Faults are scripted through the
Python API (:meth:`FakeBlueZ.drop_link`, :meth:`~FakeBlueZ.power_off`,
:meth:`~FakeBlueZ.disappear`, :meth:`~FakeBlueZ.set_silent`,
:meth:`~FakeBlueZ.fail_next_connects`, ...) or, when the fake runs
as a separate process (``python tests/support/fake_bluez.py``), through the D-Bus
interface ``org.vagus.FakeBlueZ1`` at ``/org/vagus/FakeBlueZ`` (:class:`ControlClient`).

Every notification sent is logged with its send time (``time.monotonic()`` taken just
before emitting; the clock is system-wide, so it compares across processes) and the
connection it belongs to, so tests can check that each beat was delivered exactly once.
Each strap also keeps everything its generator produced, on air or not
(:attr:`FakeStrap.air`: the packets due while the link was down are there, marked lost),
and when each connection came up and went down (:attr:`FakeStrap.links`), on both
clocks, so tests can tell which beats a reader could have received.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import importlib
import json
import math
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.errors import DBusError

from vagus.core.hrm import (  # the GATT UUIDs have one definition, in vagus.core.hrm
    BATTERY_LEVEL_UUID,
    BATTERY_SERVICE_UUID,
    BODY_SENSOR_LOCATION_UUID,
    CCCD_UUID,
    HEART_RATE_MEASUREMENT_UUID,
    HEART_RATE_SERVICE_UUID,
    encode_heart_rate_measurement,
    uuid16,
)

__all__ = [
    "ADAPTER_PATH",
    "AirPacket",
    "BusEnvironment",
    "ControlClient",
    "FakeBlueZ",
    "FakeStrap",
    "LinkPeriod",
    "PacketGenerator",
    "ScriptedStrap",
    "SentPacket",
    "make_generator",
    "strap_address",
    "uuid16",
]

BLUEZ = "org.bluez"
ADAPTER_PATH = "/org/bluez/hci0"
CONTROL_PATH = "/org/vagus/FakeBlueZ"
CONTROL_IFACE = "org.vagus.FakeBlueZ1"

_OM = "org.freedesktop.DBus.ObjectManager"
_PROPS = "org.freedesktop.DBus.Properties"
_ADAPTER = "org.bluez.Adapter1"
_DEVICE = "org.bluez.Device1"
_SERVICE = "org.bluez.GattService1"
_CHAR = "org.bluez.GattCharacteristic1"
_DESC = "org.bluez.GattDescriptor1"

_ERR_FAILED = "org.bluez.Error.Failed"
_ERR_NOT_PERMITTED = "org.bluez.Error.NotPermitted"
_ERR_DOES_NOT_EXIST = "org.bluez.Error.DoesNotExist"
_ERR_UNKNOWN_METHOD = "org.freedesktop.DBus.Error.UnknownMethod"
_ERR_UNKNOWN_OBJECT = "org.freedesktop.DBus.Error.UnknownObject"


# --------------------------------------------------------------------------- generators


class PacketGenerator(Protocol):
    """Produces the notifications a strap sends, on the strap's own clock.

    ``packets_until(t_s)`` returns every item due up to strap time ``t_s`` (seconds since
    the strap started) not returned before. Items with a ``payload`` attribute (bytes of
    a 0x2A37 notification) are sent; anything else (e.g. the simulator's ``LinkGap``) is
    ignored: link faults are scripted through the fake's control API instead.
    """

    def packets_until(self, t_s: float) -> Sequence[object]: ...


@dataclass(frozen=True, slots=True)
class _Payload:
    t_s: float
    payload: bytes


class ScriptedStrap:
    """A small deterministic strap: every payload shape a real strap sends, seeded.

    Beats follow a heart rate that swings between ``hr_low_bpm`` and ``hr_high_bpm``
    (period 40 s) with seeded jitter; one notification per ``1/rate_hz`` s carries the RR
    intervals (1/1024 s ticks) of the beats since the previous one, so packets hold 0 to
    several RR. Every 10th packet has the energy field, every 7th sends the heart rate
    as uint16, every 23rd is late (holds twice the beats), and packets 40-44 of every
    100 report lost skin contact. Same seed, same bytes. The beat chain starts at strap
    time 0: beat ``k`` falls at the sum of the first ``k`` RR, and its RR goes out in the
    first notification at or after it (never before the beat ends it). The strap knows
    nothing of the link: the fake decides which packets go on air.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        rate_hz: float = 1.0,
        hr_low_bpm: float = 55.0,
        hr_high_bpm: float = 150.0,
        contact_supported: bool = True,
    ) -> None:
        self._rng = random.Random(seed)
        self._period_s = 1.0 / rate_hz
        self._low = hr_low_bpm
        self._high = hr_high_bpm
        self._contact_supported = contact_supported
        self._next_packet_s = self._period_s
        self._last_beat_s = 0.0
        self._next_rr_s: float | None = None  # from the last beat to the next one
        self._pending_ticks: list[int] = []
        self._index = 0
        self._energy_kj = 0

    @property
    def next_item_time_s(self) -> float:
        """Strap time of the next packet (for the fake's scheduler)."""
        return self._next_packet_s

    def _hr_at(self, t_s: float) -> float:
        mid = (self._low + self._high) / 2
        amp = (self._high - self._low) / 2
        return mid + amp * math.sin(2 * math.pi * t_s / 40.0)

    def packets_until(self, t_s: float) -> list[_Payload]:
        out: list[_Payload] = []
        while self._next_packet_s <= t_s:
            t_packet = self._next_packet_s
            while True:  # the beats up to this notification
                if self._next_rr_s is None:
                    hr = self._hr_at(self._last_beat_s)
                    self._next_rr_s = 60.0 / hr * self._rng.uniform(0.95, 1.05)
                if self._last_beat_s + self._next_rr_s > t_packet:
                    break
                self._pending_ticks.append(round(self._next_rr_s * 1024))
                self._last_beat_s += self._next_rr_s
                self._next_rr_s = None
            self._index += 1
            if self._index % 23 == 0:  # a late packet: its beats go out with the next one
                self._next_packet_s += self._period_s
                continue
            ticks, self._pending_ticks = self._pending_ticks[:7], self._pending_ticks[7:]
            hr = round(self._hr_at(t_packet))
            energy = None
            if self._index % 10 == 0:
                self._energy_kj += 1
                energy = self._energy_kj
            contact = None
            if self._contact_supported:
                contact = not (40 <= self._index % 100 <= 44)
            payload = encode_heart_rate_measurement(
                hr,
                ticks,
                contact=contact,
                energy_kj=energy,
                hr_uint16=self._index % 7 == 0,
            )
            out.append(_Payload(t_packet, payload))
            self._next_packet_s += self._period_s
        return out


def make_generator(seed: int, *, prefer_simulator: bool = True) -> PacketGenerator:
    """The simulator's ``VirtualStrap`` when it is available, else :class:`ScriptedStrap`."""
    if prefer_simulator:
        try:
            simulator = importlib.import_module("vagus.sources.simulator")
        except ImportError:
            simulator = None
        virtual_strap = getattr(simulator, "VirtualStrap", None)
        if virtual_strap is not None:
            try:
                strap: PacketGenerator = virtual_strap(seed=seed)
            except TypeError:
                pass
            else:
                return strap
    return ScriptedStrap(seed)


# --------------------------------------------------------------------------- straps


@dataclass(frozen=True, slots=True)
class SentPacket:
    """One notification the fake emitted: when (monotonic s), what, and on which connection."""

    t_sent_s: float
    payload: bytes
    connection: int


@dataclass(frozen=True, slots=True)
class AirPacket:
    """One notification the strap's generator produced, whether or not anyone got it.

    Attributes:
        t_s: when the fake handled it (``time.monotonic()``).
        t_strap_s: the strap clock then (see :meth:`FakeBlueZ.strap_time_s`).
        payload: the 0x2A37 bytes.
        connection: the connection it was due on (1 = the first), 0 while the link was down.
        delivered: a subscriber got it (False while down, silent or not yet subscribed).
    """

    t_s: float
    t_strap_s: float
    payload: bytes
    connection: int
    delivered: bool


@dataclass(slots=True)
class LinkPeriod:
    """One connection of a strap: when the link came up and went down, on both clocks.

    Up is when the fake set ``Connected`` true (before services resolve and before the
    client subscribes); down is when it set it false (link loss or a disconnect), or
    None while the connection lasts.
    """

    connection: int
    t_up_s: float
    t_up_strap_s: float
    t_down_s: float | None = None
    t_down_strap_s: float | None = None


@dataclass
class FakeStrap:
    """One simulated strap and its state in the fake BlueZ.

    Attributes:
        address: Bluetooth address, ``XX:XX:XX:XX:XX:XX``.
        name: advertised local name (picks the device profile).
        generator: the packet source (see :class:`PacketGenerator`).
        rssi_dbm: nominal signal strength; jittered by +-2 dB while advertising.
        battery_pct: Battery Level (0x2A19), or None for a strap without Battery Service.
        body_location: Body Sensor Location (0x2A38; 1 = chest), or None if absent.
        advertise_uuids: the service UUIDs in its advertisements.
        connect_faults: what the next ``Connect`` calls do instead of connecting, one
            entry each, oldest first (see :meth:`FakeBlueZ.fail_next_connects`).
    """

    address: str
    name: str
    generator: PacketGenerator
    rssi_dbm: int = -60
    battery_pct: int | None = 87
    body_location: int | None = 1
    advertise_uuids: tuple[str, ...] = (HEART_RATE_SERVICE_UUID, BATTERY_SERVICE_UUID)
    # state
    powered: bool = True
    advertising: bool = True
    silent: bool = False
    exported: bool = False
    connected: bool = False
    connection: int = 0
    sent: list[SentPacket] = field(default_factory=list)
    air: list[AirPacket] = field(default_factory=list)
    links: list[LinkPeriod] = field(default_factory=list)
    connections: int = 0
    connect_faults: list[str] = field(default_factory=list)
    failed_connects: int = 0  #: Connect calls answered by a scripted fault

    @property
    def path(self) -> str:
        return f"{ADAPTER_PATH}/dev_{self.address.upper().replace(':', '_')}"

    def sent_in(self, connection: int) -> list[SentPacket]:
        """The notifications sent during one connection (1 = the first)."""
        return [p for p in self.sent if p.connection == connection]

    def link(self, connection: int) -> LinkPeriod:
        """When connection ``connection`` (1 = the first) came up and went down."""
        return self.links[connection - 1]


# handles; object paths end in them (bleak parses handles from the last 4 hex digits)
_H_HRS, _H_HRM, _H_HRM_CCCD, _H_BSL = 0x000C, 0x000D, 0x000F, 0x0010
_H_BAS, _H_BATT, _H_BATT_CCCD = 0x0012, 0x0013, 0x0015


@dataclass
class _AcquiredNotify:
    sender: str
    sock: socket.socket


@dataclass
class _Char:
    path: str
    uuid: str
    flags: list[str]
    read: Callable[[], bytes] | None
    start_notify_senders: set[str] = field(default_factory=set)
    acquired: list[_AcquiredNotify] = field(default_factory=list)


# --------------------------------------------------------------------------- the service


class _PatientSocket:
    """The bus socket as dbus-fast's writer sees it, tolerating a full send buffer.

    dbus-fast (5.x) writes a message at once when its queue is empty and treats the
    ``EAGAIN`` of a full socket as a dead connection. A fake strap bursts (20 straps
    disconnecting at once while dbus-daemon is descheduled on a busy machine), so here a
    full buffer means "wrote 0 bytes, wait until writable", which the writer handles.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def send(self, data: bytes | memoryview) -> int:
        try:
            return self._sock.send(data)
        except BlockingIOError:
            return 0

    def sendmsg(self, buffers: list[memoryview], ancdata: list[Any]) -> int:
        # file descriptors must go out with the first byte: wait for room instead
        for _ in range(50):
            try:
                return self._sock.sendmsg(buffers, ancdata)
            except BlockingIOError:
                select.select([], [self._sock], [], 0.1)
        raise BlockingIOError("D-Bus socket stayed full for 5 s")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _tolerate_full_socket(bus: MessageBus) -> None:
    writer = getattr(bus, "_writer", None)
    sock = getattr(writer, "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
        writer.sock = _PatientSocket(sock)  # type: ignore[union-attr]


class FakeBlueZ:
    """The simulated ``org.bluez`` service (see the module docstring).

    Use as ``async with FakeBlueZ(bus_address) as bluez:`` in the asyncio loop of the
    test, after :class:`BusEnvironment` has started the bus.

    Args:
        bus_address: D-Bus address of the private system bus.
        time_scale: strap seconds per real second (1 = real time).
        tick_s: how often (real seconds) due packets are emitted.
        connect_fail_s: how long a ``Connect`` to an unreachable strap takes to fail.
        seed: seeds the RSSI jitter.
    """

    def __init__(
        self,
        bus_address: str,
        *,
        time_scale: float = 1.0,
        tick_s: float = 0.02,
        connect_fail_s: float = 0.3,
        seed: int = 0,
    ) -> None:
        self._address = bus_address
        self.time_scale = time_scale
        self._tick_s = tick_s
        self._connect_fail_s = connect_fail_s
        self._rng = random.Random(seed)
        self._bus: MessageBus | None = None
        self._objects: dict[str, dict[str, dict[str, Variant]]] = {}
        self._chars: dict[str, _Char] = {}
        self.straps: dict[str, FakeStrap] = {}
        self._discovery: dict[str, list[str]] = {}  # sender -> UUID filter
        self._filters: dict[str, list[str]] = {}
        self._discovery_count: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._t0 = 0.0

    # ----------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> FakeBlueZ:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Connect to the bus, own ``org.bluez``, export the adapter, start the clocks."""
        bus = MessageBus(bus_address=self._address, bus_type=BusType.SYSTEM, negotiate_unix_fd=True)
        await bus.connect()
        _tolerate_full_socket(bus)
        self._bus = bus
        bus.add_message_handler(self._on_message)
        await self._call_bus(
            "AddMatch",
            "s",
            [
                "type='signal',sender='org.freedesktop.DBus',"
                "interface='org.freedesktop.DBus',member='NameOwnerChanged'"
            ],
        )
        reply = await self._call_bus("RequestName", "su", [BLUEZ, 4])  # DO_NOT_QUEUE
        if reply.body[0] != 1:
            raise RuntimeError(f"could not own {BLUEZ} on {self._address}: reply {reply.body}")
        self._add_object(
            ADAPTER_PATH,
            {
                _ADAPTER: {
                    "Address": Variant("s", "00:1A:7D:DA:71:13"),
                    "AddressType": Variant("s", "public"),
                    "Name": Variant("s", "vagus-fake"),
                    "Alias": Variant("s", "vagus-fake"),
                    "Class": Variant("u", 0),
                    "Powered": Variant("b", True),
                    "Discoverable": Variant("b", False),
                    "Pairable": Variant("b", True),
                    "Discovering": Variant("b", False),
                    "UUIDs": Variant("as", []),
                    "Modalias": Variant("s", "usb:v1D6Bp0246d0542"),
                    "Roles": Variant("as", ["central", "peripheral"]),
                }
            },
        )
        self._t0 = time.monotonic()
        for strap in self.straps.values():
            self._export_device(strap)
        self._tasks = [
            asyncio.create_task(self._packet_loop()),
            asyncio.create_task(self._advertising_loop()),
        ]

    async def stop(self) -> None:
        """Stop the clocks, end notify sessions and leave the bus."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for char in self._chars.values():
            for acq in char.acquired:
                self._close_acquired(acq)
            char.acquired.clear()
        if self._bus is not None:
            self._bus.disconnect()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._bus.wait_for_disconnect(), 2.0)  # type: ignore[no-untyped-call]
            self._bus = None

    def set_time_scale(self, time_scale: float) -> None:
        """Change how fast the straps' clock runs, keeping it continuous."""
        now = time.monotonic()
        t_strap = self.strap_time_s()
        self.time_scale = time_scale
        self._t0 = now - t_strap / time_scale

    def strap_time_s(self) -> float:
        """Seconds on the straps' clock (real time since start times ``time_scale``)."""
        return self.strap_time_at(time.monotonic())

    def strap_time_at(self, t_s: float) -> float:
        """The straps' clock at ``time.monotonic()`` value ``t_s`` (e.g. a packet's
        arrival time), for times since the last :meth:`set_time_scale`."""
        return (t_s - self._t0) * self.time_scale

    # ----------------------------------------------------------------- control API

    def add_strap(self, strap: FakeStrap) -> FakeStrap:
        """Add a strap (powered and advertising); it appears on the bus at once."""
        self.straps[strap.address.upper()] = strap
        if self._bus is not None:
            self._export_device(strap)
        return strap

    def strap(self, address: str) -> FakeStrap:
        try:
            return self.straps[address.upper()]
        except KeyError:
            raise KeyError(f"no fake strap with address {address}") from None

    def drop_link(self, address: str) -> None:
        """Link loss (supervision timeout): notify sessions end, Connected goes false."""
        strap = self.strap(address)
        if strap.connected:
            self._disconnect(strap)

    def power_off(self, address: str) -> None:
        """The strap switches off (taken off): link lost, no more advertising."""
        strap = self.strap(address)
        strap.powered = False
        self.drop_link(address)

    def power_on(self, address: str) -> None:
        """The strap switches on again and advertises (re-appearing on the bus if removed)."""
        strap = self.strap(address)
        strap.powered = True
        strap.advertising = True
        if not strap.exported:
            self._export_device(strap)

    def disappear(self, address: str) -> None:
        """The strap goes away for good: link lost, off, and its device object removed."""
        strap = self.strap(address)
        self.power_off(address)
        self._remove_device(strap)

    def set_advertising(self, address: str, advertising: bool) -> None:
        """Start or stop advertising (a strap not worn stops advertising)."""
        self.strap(address).advertising = advertising

    def set_silent(self, address: str, silent: bool) -> None:
        """A silent strap stays connected but sends nothing (BLE.md: reader must notice)."""
        self.strap(address).silent = silent

    def fail_next_connects(self, address: str, count: int, *, hang: bool = False) -> None:
        """The next ``count`` ``Connect`` calls to the strap fail, then connecting works.

        By default each fails as it often does on real BlueZ: after ``connect_fail_s``,
        the error ``org.bluez.Error.Failed: Software caused connection abort``. With
        ``hang`` each is never answered (a stack stuck at "connecting", as Windows 11 is
        reported to be): only the client's own timeout ends it.
        """
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        self.strap(address).connect_faults.extend(["hang" if hang else "fail"] * count)

    # ----------------------------------------------------------------- object tree

    def _emit(
        self, path: str, interface: str, member: str, signature: str, body: list[Any]
    ) -> None:
        if self._bus is None or not self._bus.connected:
            return
        self._bus.send(Message.new_signal(path, interface, member, signature, body))

    def _add_object(self, path: str, interfaces: dict[str, dict[str, Variant]]) -> None:
        self._objects[path] = interfaces
        self._emit("/", _OM, "InterfacesAdded", "oa{sa{sv}}", [path, interfaces])

    def _remove_object(self, path: str) -> None:
        interfaces = self._objects.pop(path, None)
        if interfaces is not None:
            self._emit("/", _OM, "InterfacesRemoved", "oas", [path, list(interfaces)])

    def _set(self, path: str, interface: str, **changes: Variant) -> None:
        props = self._objects.get(path, {}).get(interface)
        if props is None:
            return
        props.update(changes)
        self._emit(path, _PROPS, "PropertiesChanged", "sa{sv}as", [interface, changes, []])

    def _export_device(self, strap: FakeStrap) -> None:
        strap.exported = True
        self._add_object(
            strap.path,
            {
                _DEVICE: {
                    "Address": Variant("s", strap.address.upper()),
                    "AddressType": Variant("s", "random"),
                    "Name": Variant("s", strap.name),
                    "Alias": Variant("s", strap.name),
                    "Appearance": Variant("q", 0x0341),  # Heart Rate Sensor: Belt
                    "Adapter": Variant("o", ADAPTER_PATH),
                    "Paired": Variant("b", False),
                    "Bonded": Variant("b", False),
                    "Trusted": Variant("b", False),
                    "Blocked": Variant("b", False),
                    "LegacyPairing": Variant("b", False),
                    "Connected": Variant("b", False),
                    "ServicesResolved": Variant("b", False),
                    "UUIDs": Variant("as", list(strap.advertise_uuids)),
                    "RSSI": Variant("n", strap.rssi_dbm),
                    "TxPower": Variant("n", 0),
                    "ManufacturerData": Variant("a{qv}", {}),
                    "ServiceData": Variant("a{sv}", {}),
                }
            },
        )

    def _remove_device(self, strap: FakeStrap) -> None:
        if strap.connected:
            self._disconnect(strap)
        strap.exported = False
        self._remove_object(strap.path)

    def _gatt_layout(self, strap: FakeStrap) -> Iterator[tuple[str, dict[str, dict[str, Variant]]]]:
        """The GATT objects of one strap, parents before children."""
        dev = strap.path
        hrs = f"{dev}/service{_H_HRS:04x}"
        yield hrs, {_SERVICE: self._service_props(dev, HEART_RATE_SERVICE_UUID, _H_HRS)}
        hrm = f"{hrs}/char{_H_HRM:04x}"
        yield hrm, {_CHAR: self._char_props(hrs, HEART_RATE_MEASUREMENT_UUID, _H_HRM, ["notify"])}
        yield f"{hrm}/desc{_H_HRM_CCCD:04x}", {_DESC: self._desc_props(hrm, _H_HRM_CCCD)}
        if strap.body_location is not None:
            bsl = f"{hrs}/char{_H_BSL:04x}"
            yield bsl, {_CHAR: self._char_props(hrs, BODY_SENSOR_LOCATION_UUID, _H_BSL, ["read"])}
        if strap.battery_pct is not None:
            bas = f"{dev}/service{_H_BAS:04x}"
            yield bas, {_SERVICE: self._service_props(dev, BATTERY_SERVICE_UUID, _H_BAS)}
            batt = f"{bas}/char{_H_BATT:04x}"
            yield (
                batt,
                {_CHAR: self._char_props(bas, BATTERY_LEVEL_UUID, _H_BATT, ["read", "notify"])},
            )
            yield f"{batt}/desc{_H_BATT_CCCD:04x}", {_DESC: self._desc_props(batt, _H_BATT_CCCD)}

    @staticmethod
    def _service_props(dev: str, uuid: str, handle: int) -> dict[str, Variant]:
        return {
            "UUID": Variant("s", uuid),
            "Primary": Variant("b", True),
            "Device": Variant("o", dev),
            "Includes": Variant("ao", []),
            "Handle": Variant("q", handle),
        }

    @staticmethod
    def _char_props(service: str, uuid: str, handle: int, flags: list[str]) -> dict[str, Variant]:
        props = {
            "UUID": Variant("s", uuid),
            "Service": Variant("o", service),
            "Value": Variant("ay", b""),
            "Flags": Variant("as", flags),
            "MTU": Variant("q", 23),
            "Handle": Variant("q", handle),
        }
        if "notify" in flags:
            props["Notifying"] = Variant("b", False)
            props["NotifyAcquired"] = Variant("b", False)
        return props

    @staticmethod
    def _desc_props(char: str, handle: int) -> dict[str, Variant]:
        return {
            "UUID": Variant("s", CCCD_UUID),
            "Characteristic": Variant("o", char),
            "Value": Variant("ay", b""),
            "Flags": Variant("as", ["read", "write"]),
            "Handle": Variant("q", handle),
        }

    # ----------------------------------------------------------------- connections

    def _connect(self, strap: FakeStrap) -> None:
        strap.connections += 1
        strap.connection = strap.connections
        strap.connected = True
        strap.links.append(LinkPeriod(strap.connection, time.monotonic(), self.strap_time_s()))
        self._set(strap.path, _DEVICE, Connected=Variant("b", True))
        for path, interfaces in self._gatt_layout(strap):
            self._add_object(path, interfaces)
            if _CHAR in interfaces:
                props = interfaces[_CHAR]
                uuid = str(props["UUID"].value)
                read: Callable[[], bytes] | None = None
                if uuid == BODY_SENSOR_LOCATION_UUID:
                    read = lambda s=strap: bytes([s.body_location or 0])  # noqa: E731
                elif uuid == BATTERY_LEVEL_UUID:
                    read = lambda s=strap: bytes([s.battery_pct or 0])  # noqa: E731
                self._chars[path] = _Char(path, uuid, list(props["Flags"].value), read)

    def _resolve_services(self, strap: FakeStrap) -> None:
        if strap.connected:
            self._set(strap.path, _DEVICE, ServicesResolved=Variant("b", True))

    def _disconnect(self, strap: FakeStrap) -> None:
        """Link gone: notify sessions end, ServicesResolved/Connected false, GATT removed."""
        if strap.connected and strap.links:
            strap.links[-1].t_down_s = time.monotonic()
            strap.links[-1].t_down_strap_s = self.strap_time_s()
        strap.connected = False
        strap.connection = 0
        prefix = strap.path + "/"
        for path in [p for p in self._chars if p.startswith(prefix)]:
            char = self._chars.pop(path)
            for acq in char.acquired:
                self._close_acquired(acq)
        self._set(strap.path, _DEVICE, ServicesResolved=Variant("b", False))
        self._set(strap.path, _DEVICE, Connected=Variant("b", False))
        gatt = sorted((p for p in self._objects if p.startswith(prefix)), key=len, reverse=True)
        for path in gatt:  # children before parents
            self._remove_object(path)

    def _strap_at(self, path: str) -> FakeStrap | None:
        for strap in self.straps.values():
            if strap.path == path and strap.exported:
                return strap
        return None

    async def _connect_later(self, msg: Message, strap: FakeStrap) -> None:
        if strap.connect_faults and not strap.connected:
            fault = strap.connect_faults.pop(0)
            strap.failed_connects += 1
            if fault == "hang":
                return  # never answered: the client times out (and calls Disconnect)
            await asyncio.sleep(self._connect_fail_s)
            self._reply(Message.new_error(msg, _ERR_FAILED, "Software caused connection abort"))
            return
        if not (strap.powered and strap.advertising):
            # an unreachable peripheral: the LE connection attempt ends in failure
            await asyncio.sleep(self._connect_fail_s)
            self._reply(Message.new_error(msg, _ERR_FAILED, "Software caused connection abort"))
            return
        if not strap.connected:
            self._connect(strap)
        self._reply(Message.new_method_return(msg))
        await asyncio.sleep(0.005)  # ServicesResolved follows the Connect reply, as in BlueZ
        self._resolve_services(strap)

    def _reply(self, message: Message) -> None:
        if self._bus is not None and self._bus.connected:
            self._bus.send(message)

    # ----------------------------------------------------------------- notifications

    def _close_acquired(self, acq: _AcquiredNotify) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):
            loop.remove_reader(acq.sock.fileno())
        acq.sock.close()

    def _acquire_notify(self, msg: Message, char: _Char) -> None:
        sender = msg.sender or ""
        local, remote = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        local.setblocking(False)
        acq = _AcquiredNotify(sender, local)
        char.acquired.append(acq)
        loop = asyncio.get_running_loop()

        def on_readable() -> None:  # the client closed its end (EOF) or sent junk
            try:
                data = local.recv(1024)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._end_acquired(char, acq)

        loop.add_reader(local.fileno(), on_readable)
        reply = Message(
            message_type=MessageType.METHOD_RETURN,
            reply_serial=msg.serial,
            destination=msg.sender,
            signature="hq",
            body=[0, 23],
            unix_fds=[remote.fileno()],
        )
        assert self._bus is not None
        fut = self._bus.send(reply)
        # our copy of the client's end may only close once sendmsg has passed it on
        if isinstance(fut, asyncio.Future):
            fut.add_done_callback(lambda _f: remote.close())
        else:  # pragma: no cover - dbus-fast aio always returns a future
            remote.close()
        self._set(char.path, _CHAR, NotifyAcquired=Variant("b", True))

    def _end_acquired(self, char: _Char, acq: _AcquiredNotify) -> None:
        if acq in char.acquired:
            char.acquired.remove(acq)
            self._close_acquired(acq)
            if not char.acquired:
                self._set(char.path, _CHAR, NotifyAcquired=Variant("b", False))

    def _notify(self, strap: FakeStrap, uuid: str, payload: bytes) -> bool:
        """Send one notification on ``uuid``; True if any subscriber got it."""
        prefix = strap.path + "/"
        sent = False
        for char in self._chars.values():
            if char.uuid != uuid or not char.path.startswith(prefix):
                continue
            t_sent_s = time.monotonic()
            for acq in list(char.acquired):
                try:
                    acq.sock.send(payload)
                    sent = True
                except BlockingIOError:
                    pass  # the client does not keep up: the notification is lost, as on air
                except OSError:
                    self._end_acquired(char, acq)
            if char.start_notify_senders:
                self._set(char.path, _CHAR, Value=Variant("ay", payload))
                sent = True
            if sent and uuid == HEART_RATE_MEASUREMENT_UUID:
                strap.sent.append(SentPacket(t_sent_s, payload, strap.connection))
        return sent

    def set_battery(self, address: str, battery_pct: int) -> None:
        """Change the battery level (notified to subscribers of 0x2A19)."""
        strap = self.strap(address)
        strap.battery_pct = battery_pct
        if strap.connected:
            self._notify(strap, BATTERY_LEVEL_UUID, bytes([battery_pct]))

    async def _packet_loop(self) -> None:
        """Emit each packet when it is due on the strap clock.

        Generators that tell their next due time (``next_item_time_s``, as the
        simulator's ``VirtualStrap`` and :class:`ScriptedStrap` do) are woken exactly
        then, so straps send independently as on air; others are polled every ``tick_s``.
        """
        while True:
            t_s = self.strap_time_s()
            for strap in list(self.straps.values()):
                items = strap.generator.packets_until(t_s)
                on_air = strap.connected and strap.powered and not strap.silent
                connection = strap.connection if strap.connected else 0
                for item in items:
                    payload = getattr(item, "payload", None)
                    if not isinstance(payload, bytes | bytearray):
                        continue
                    # not on air: generated but lost, as a real strap's beats are
                    delivered = on_air and self._notify(
                        strap, HEART_RATE_MEASUREMENT_UUID, bytes(payload)
                    )
                    strap.air.append(
                        AirPacket(time.monotonic(), t_s, bytes(payload), connection, delivered)
                    )
            delay_s = self._tick_s
            for strap in self.straps.values():
                t_next = getattr(strap.generator, "next_item_time_s", None)
                if isinstance(t_next, float | int):
                    delay_s = min(delay_s, (float(t_next) - t_s) / self.time_scale)
            await asyncio.sleep(max(delay_s, 0.0005))

    async def _advertising_loop(self) -> None:
        # bleak only "discovers" devices from signals that arrive during a scan (BLE.md)
        while True:
            if self._discovery:
                wanted = [set(u.lower() for u in f) for f in self._discovery.values()]
                for strap in self.straps.values():
                    if not (strap.exported and strap.powered and strap.advertising):
                        continue
                    if strap.connected:
                        continue  # a connected strap stops advertising
                    uuids = {u.lower() for u in strap.advertise_uuids}
                    if not any(not w or w & uuids for w in wanted):
                        continue
                    rssi = strap.rssi_dbm + self._rng.randint(-2, 2)
                    self._set(strap.path, _DEVICE, RSSI=Variant("n", rssi))
            await asyncio.sleep(0.1)

    # ----------------------------------------------------------------- D-Bus dispatch

    async def _call_bus(self, member: str, signature: str, body: list[Any]) -> Message:
        assert self._bus is not None
        reply = await self._bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member=member,
                signature=signature,
                body=body,
            )
        )
        assert reply is not None
        if reply.message_type == MessageType.ERROR:
            raise RuntimeError(f"{member} failed: {reply.error_name} {reply.body}")
        return reply

    def _client_left(self, name: str) -> None:
        """A client's bus connection closed: end its discovery and notify sessions."""
        self._discovery.pop(name, None)
        self._discovery_count.pop(name, None)
        self._filters.pop(name, None)
        if not self._discovery:
            self._set(ADAPTER_PATH, _ADAPTER, Discovering=Variant("b", False))
        for char in self._chars.values():
            if name in char.start_notify_senders:
                char.start_notify_senders.discard(name)
                if not char.start_notify_senders:
                    self._set(char.path, _CHAR, Notifying=Variant("b", False))
            for acq in [a for a in char.acquired if a.sender == name]:
                self._end_acquired(char, acq)

    def _on_message(self, msg: Message) -> Message | bool | None:
        if msg.message_type == MessageType.SIGNAL:
            if msg.member == "NameOwnerChanged" and msg.sender == "org.freedesktop.DBus":
                name, _old, new = msg.body
                if not new and name.startswith(":"):
                    self._client_left(name)
            return None
        if msg.message_type != MessageType.METHOD_CALL:
            return None
        try:
            return self._dispatch(msg)
        except DBusError as exc:
            return Message.new_error(msg, exc.type, exc.text)

    def _dispatch(self, msg: Message) -> Message | bool:
        path, iface, member = msg.path or "", msg.interface or "", msg.member or ""
        if iface == _OM and member == "GetManagedObjects":
            objects = {
                p: i for p, i in self._objects.items() if p.startswith(path.rstrip("/") + "/")
            }
            return Message.new_method_return(msg, "a{oa{sa{sv}}}", [objects])
        if iface == _PROPS:
            return self._properties(msg)
        if iface == "org.freedesktop.DBus.Introspectable":
            return Message.new_method_return(msg, "s", ["<node/>"])
        if path == CONTROL_PATH and iface == CONTROL_IFACE:
            return self._control(msg)
        if path not in self._objects:
            raise DBusError(_ERR_UNKNOWN_OBJECT, f"no object at {path}")
        if iface == _ADAPTER:
            return self._adapter_call(msg)
        if iface == _DEVICE:
            strap = self._strap_at(path)
            if strap is None:
                raise DBusError(_ERR_UNKNOWN_OBJECT, f"no device at {path}")
            if member == "Connect":
                task = asyncio.get_running_loop().create_task(self._connect_later(msg, strap))
                self._tasks.append(task)
                task.add_done_callback(
                    lambda t: self._tasks.remove(t) if t in self._tasks else None
                )
                return True
            if member == "Disconnect":
                if strap.connected:
                    self._disconnect(strap)
                return Message.new_method_return(msg)
            if member == "Pair":
                self._set(path, _DEVICE, Paired=Variant("b", True), Bonded=Variant("b", True))
                return Message.new_method_return(msg)
        if iface == _CHAR and path in self._chars:
            return self._char_call(msg, self._chars[path])
        if iface == _DESC:
            if member == "ReadValue":
                return Message.new_method_return(msg, "ay", [b"\x00\x00"])
            if member == "WriteValue":
                return Message.new_method_return(msg)
        raise DBusError(_ERR_UNKNOWN_METHOD, f"{iface}.{member} is not implemented at {path}")

    def _properties(self, msg: Message) -> Message:
        path = msg.path or ""
        interfaces = self._objects.get(path)
        if interfaces is None:
            raise DBusError(_ERR_UNKNOWN_OBJECT, f"no object at {path}")
        iface = msg.body[0]
        props = interfaces.get(iface)
        if props is None:
            raise DBusError("org.freedesktop.DBus.Error.UnknownInterface", f"no {iface} at {path}")
        if msg.member == "GetAll":
            return Message.new_method_return(msg, "a{sv}", [props])
        name = msg.body[1]
        if msg.member == "Get":
            if name not in props:
                raise DBusError("org.freedesktop.DBus.Error.UnknownProperty", name)
            return Message.new_method_return(msg, "v", [props[name]])
        if msg.member == "Set":
            self._set(path, iface, **{name: msg.body[2]})
            return Message.new_method_return(msg)
        raise DBusError(_ERR_UNKNOWN_METHOD, f"Properties.{msg.member}")

    def _adapter_call(self, msg: Message) -> Message:
        sender = msg.sender or ""
        member = msg.member
        if member == "SetDiscoveryFilter":
            uuids = msg.body[0].get("UUIDs")
            self._filters[sender] = list(uuids.value) if uuids is not None else []
            return Message.new_method_return(msg)
        if member == "StartDiscovery":
            self._discovery[sender] = self._filters.get(sender, [])
            self._discovery_count[sender] = self._discovery_count.get(sender, 0) + 1
            self._set(ADAPTER_PATH, _ADAPTER, Discovering=Variant("b", True))
            return Message.new_method_return(msg)
        if member == "StopDiscovery":
            count = self._discovery_count.get(sender, 0)
            if count == 0:
                raise DBusError("org.bluez.Error.NotReady", "no discovery started by this client")
            if count > 1:  # several scanners of one client (bleak shares one connection)
                self._discovery_count[sender] = count - 1
                return Message.new_method_return(msg)
            self._discovery_count.pop(sender, None)
            self._discovery.pop(sender, None)
            if not self._discovery:
                self._set(ADAPTER_PATH, _ADAPTER, Discovering=Variant("b", False))
            return Message.new_method_return(msg)
        if member == "RemoveDevice":
            strap = self._strap_at(msg.body[0])
            if strap is None:
                raise DBusError(_ERR_DOES_NOT_EXIST, "Does Not Exist")
            self._remove_device(strap)
            return Message.new_method_return(msg)
        if member == "GetDiscoveryFilters":
            return Message.new_method_return(msg, "as", [["UUIDs", "RSSI", "Transport"]])
        raise DBusError(_ERR_UNKNOWN_METHOD, f"Adapter1.{member}")

    def _char_call(self, msg: Message, char: _Char) -> Message | bool:
        member = msg.member
        sender = msg.sender or ""
        if member == "ReadValue":
            if char.read is None:
                raise DBusError(_ERR_NOT_PERMITTED, "Read not permitted")
            return Message.new_method_return(msg, "ay", [char.read()])
        if member == "WriteValue":
            raise DBusError(_ERR_NOT_PERMITTED, "Write not permitted")
        if "notify" not in char.flags:
            raise DBusError("org.bluez.Error.NotSupported", "Operation is not supported")
        if member == "StartNotify":
            char.start_notify_senders.add(sender)
            self._set(char.path, _CHAR, Notifying=Variant("b", True))
            return Message.new_method_return(msg)
        if member == "StopNotify":
            char.start_notify_senders.discard(sender)
            if not char.start_notify_senders:
                self._set(char.path, _CHAR, Notifying=Variant("b", False))
            return Message.new_method_return(msg)
        if member == "AcquireNotify":
            self._acquire_notify(msg, char)
            return True
        raise DBusError(_ERR_UNKNOWN_METHOD, f"GattCharacteristic1.{member}")

    def _control(self, msg: Message) -> Message:
        """``org.vagus.FakeBlueZ1``: the fault controls for a fake in another process."""
        member = msg.member
        actions: dict[str, Callable[[str], None]] = {
            "DropLink": self.drop_link,
            "PowerOff": self.power_off,
            "PowerOn": self.power_on,
            "Disappear": self.disappear,
        }
        try:
            if member in actions:
                actions[member](msg.body[0])
                return Message.new_method_return(msg)
            if member == "SetSilent":
                self.set_silent(msg.body[0], bool(msg.body[1]))
                return Message.new_method_return(msg)
            if member == "SetAdvertising":
                self.set_advertising(msg.body[0], bool(msg.body[1]))
                return Message.new_method_return(msg)
            if member == "FailConnects":  # (s address, u count, b hang)
                self.fail_next_connects(msg.body[0], int(msg.body[1]), hang=bool(msg.body[2]))
                return Message.new_method_return(msg)
            if member == "ListStraps":
                return Message.new_method_return(msg, "as", [list(self.straps)])
            if member == "SentLog":
                strap = self.strap(msg.body[0])
                log = [[p.connection, p.t_sent_s, p.payload] for p in strap.sent]
                return Message.new_method_return(msg, "a(uday)", [log])
        except KeyError as exc:
            raise DBusError(_ERR_DOES_NOT_EXIST, str(exc)) from None
        raise DBusError(_ERR_UNKNOWN_METHOD, f"{CONTROL_IFACE}.{member}")


class ControlClient:
    """Drive a :class:`FakeBlueZ` running in another process over ``org.vagus.FakeBlueZ1``."""

    def __init__(self, bus_address: str) -> None:
        self._address = bus_address
        self._bus: MessageBus | None = None

    async def __aenter__(self) -> ControlClient:
        self._bus = await MessageBus(bus_address=self._address, bus_type=BusType.SYSTEM).connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._bus is not None:
            self._bus.disconnect()
            self._bus = None

    async def call(
        self, member: str, signature: str = "", body: list[Any] | None = None
    ) -> list[Any]:
        """Call one control method; returns the reply body."""
        assert self._bus is not None
        reply = await self._bus.call(
            Message(
                destination=BLUEZ,
                path=CONTROL_PATH,
                interface=CONTROL_IFACE,
                member=member,
                signature=signature,
                body=body or [],
            )
        )
        assert reply is not None
        if reply.message_type == MessageType.ERROR:
            raise RuntimeError(f"{member}: {reply.error_name} {reply.body}")
        return list(reply.body)

    async def fail_next_connects(self, address: str, count: int, *, hang: bool = False) -> None:
        """:meth:`FakeBlueZ.fail_next_connects` in the fake's process."""
        await self.call("FailConnects", "sub", [address, count, hang])

    async def sent_log(self, address: str) -> list[SentPacket]:
        """Every 0x2A37 notification the fake sent to ``address``'s subscribers."""
        (log,) = await self.call("SentLog", "s", [address])
        return [SentPacket(float(t), bytes(p), int(c)) for c, t, p in log]


# --------------------------------------------------------------------------- the bus


_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
  <limit name="max_incoming_unix_fds">1024</limit>
  <limit name="max_outgoing_unix_fds">1024</limit>
</busconfig>
"""

_BLUETOOTHCTL_SHIM = """#!/bin/sh
# vagus fake BlueZ: bleak runs `bluetoothctl --version` and needs BlueZ >= 5.55
echo "bluetoothctl: 5.66"
"""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    # Linux: the daemon gets SIGTERM if the process that started it dies, so a crashed
    # or killed test run leaks no dbus-daemon.
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


_TMP_PREFIX = "vagus-bluez-"


def _remove_stale_dirs(min_age_s: float = 600.0) -> None:
    """Remove temp dirs left by runs that were killed (their bus no longer answers)."""
    for path in Path(tempfile.gettempdir()).glob(_TMP_PREFIX + "*"):
        try:
            if time.time() - path.stat().st_mtime < min_age_s:
                continue
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(0.5)
                probe.connect(str(path / "system_bus_socket"))
        except FileNotFoundError:
            shutil.rmtree(path, ignore_errors=True)
        except ConnectionRefusedError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


class BusEnvironment:
    """A private ``dbus-daemon`` (system-bus style) plus a ``bluetoothctl`` shim.

    Use as a context manager; the daemon and temp dir are removed on exit, also when the
    body raises. :meth:`env` gives the variables to export for bleak (in this process via
    :meth:`apply`, or for a subprocess).
    """

    def __init__(self) -> None:
        self.tmpdir: Path | None = None
        self.address = ""
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> BusEnvironment:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        daemon = shutil.which("dbus-daemon")
        if daemon is None:
            raise FileNotFoundError(
                "dbus-daemon not found: install the Debian package `dbus` (apt-get install dbus)"
            )
        _remove_stale_dirs()
        self.tmpdir = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX))
        sock = self.tmpdir / "system_bus_socket"
        config = self.tmpdir / "system.conf"
        config.write_text(_BUS_CONFIG.format(socket=sock))
        bindir = self.tmpdir / "bin"
        bindir.mkdir()
        shim = bindir / "bluetoothctl"
        shim.write_text(_BLUETOOTHCTL_SHIM)
        shim.chmod(0o755)
        try:
            self._proc = subprocess.Popen(
                [daemon, f"--config-file={config}", "--nofork", "--nopidfile", "--print-address=1"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            assert self._proc.stdout is not None
            line = self._proc.stdout.readline().decode().strip()
            if not line:
                raise RuntimeError(f"dbus-daemon did not start (exit code {self._proc.poll()})")
            self.address = line
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(3)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(3)
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    @property
    def bin_dir(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "bin"

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """A copy of ``base`` (default ``os.environ``) pointing bleak at this bus."""
        env = dict(os.environ if base is None else base)
        env["DBUS_SYSTEM_BUS_ADDRESS"] = self.address
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        return env

    def apply(self) -> Callable[[], None]:
        """Export :meth:`env` into this process; returns a function that restores it."""
        saved = {k: os.environ.get(k) for k in ("DBUS_SYSTEM_BUS_ADDRESS", "PATH")}
        os.environ.update({k: v for k, v in self.env().items() if k in saved})

        def restore() -> None:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

        return restore


def strap_address(index: int) -> str:
    """A deterministic random-static address for the ``index``-th fake strap."""
    return f"C0:FE:00:00:{index // 256:02X}:{index % 256:02X}"


# --------------------------------------------------------------------------- standalone


_DEFAULT_NAMES = ("Polar H10 A1B2C3D4", "HRM-Pro:123456", "TICKR 1A2B", "HRM Strap")


async def _serve(args: argparse.Namespace) -> None:
    with BusEnvironment() as env:
        fake = FakeBlueZ(env.address, time_scale=args.time_scale, tick_s=args.tick)
        for i in range(args.straps):
            name = _DEFAULT_NAMES[i % len(_DEFAULT_NAMES)]
            if args.straps > len(_DEFAULT_NAMES):
                name = f"{name} #{i}"
            fake.add_strap(
                FakeStrap(
                    strap_address(i),
                    name,
                    make_generator(args.seed + i, prefer_simulator=not args.scripted),
                    rssi_dbm=-50 - 3 * i,
                )
            )
        async with fake:
            info = {
                "DBUS_SYSTEM_BUS_ADDRESS": env.address,
                "PATH_PREFIX": str(env.bin_dir),
                "addresses": list(fake.straps),
            }
            print(json.dumps(info), flush=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Run a fake BlueZ with N straps until SIGTERM/Ctrl-C; print its environment as JSON."""
    parser = argparse.ArgumentParser(
        prog="python tests/support/fake_bluez.py",
        description="A simulated BlueZ with heart-rate straps on a private D-Bus. Prints one "
        "JSON line: export DBUS_SYSTEM_BUS_ADDRESS and put PATH_PREFIX first on PATH, then "
        "run `vagus scan` or `vagus monitor` in that environment.",
    )
    parser.add_argument("--straps", type=int, default=3)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--tick", type=float, default=0.02, help="emit period (real s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--scripted", action="store_true", help="use the built-in ScriptedStrap generator"
    )
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
