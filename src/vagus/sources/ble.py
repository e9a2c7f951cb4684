"""The strap reader: a Heart Rate Service client on bleak (the only module importing bleak).

What it does (Bluetooth SIG Heart Rate Service 1.0; ``../shared/BLE.md``):

- :func:`scan` lists straps by the advertised Heart Rate Service UUID (0x180D), never by
  name; the name only picks a device profile (:func:`vagus.devices.match_profile`,
  ``generic`` when none matches).
- :class:`BleSource` connects by address, by name, or to the only/strongest strap,
  subscribes to Heart Rate Measurement (0x2A37), reads Battery Level (0x2A19, also
  subscribed when it notifies) and Body Sensor Location (0x2A38), both optional, and yields
  :class:`~vagus.sources.base.Packet` (the exact payload bytes with a monotonic arrival
  time taken in the notification callback), :class:`~vagus.sources.base.LinkGap` and
  :class:`~vagus.sources.base.DeviceInfo`.
- Link loss is bleak's ``disconnected_callback``, or no notification for the profile's
  ``silent_timeout_s`` (BLE.md: a vanished device can leave ``is_connected`` True for
  seconds). Each loss yields one ``LinkGap`` (nothing is buffered across a disconnect, the
  beats are lost), then the reader reconnects with capped exponential backoff; packets in
  the first ``settle_s`` after each (re)connect are discarded (straps send nonsense RR
  right after connecting).
- Connecting and reconnecting share one budget (:class:`~vagus.sources.base.BleSpec`):
  ``max_retries + 1`` attempts in a row, each bounded by ``connect_timeout_s``. Any
  failure of an attempt (a timeout, the strap not found, a BlueZ error such as
  ``org.bluez.Error.Failed: Software caused connection abort``, common on real BlueZ)
  counts against it; only "no Bluetooth adapter" ends at once. When it is spent the first
  connection raises :class:`~vagus.exceptions.SourceError`, a reconnection
  :class:`~vagus.exceptions.ConnectionLost`, each with what to try.
  :attr:`BleSource.link_state` tells a status line where the reader stands meanwhile.
- Device profiles are read before anything else: a bad profile file is an error naming
  the file and the field (:class:`~vagus.exceptions.DeviceProfileError`), never a silent
  fallback to ``generic`` for every strap.
- Payloads are passed on raw: a malformed one is the pipeline's to reject, never a crash here.

Callbacks become an async iterator through a queue, and everything registered is
unregistered in ``finally`` (bleak's ``BleakScanner.advertisement_data()`` pattern).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.args.bluez import BlueZNotifyArgs
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakBluetoothNotAvailableError, BleakDBusError, BleakError

from vagus.core.hrm import (  # the one definition of the GATT UUIDs; re-exported here
    BATTERY_LEVEL_UUID,
    BODY_SENSOR_LOCATION_UUID,
    HEART_RATE_MEASUREMENT_UUID,
    HEART_RATE_SERVICE_UUID,
)
from vagus.devices import DeviceProfile, load_profiles, match_profile
from vagus.exceptions import ConnectionLost, DeviceNotFound, SourceError
from vagus.sources.base import (
    BleSpec,
    Capabilities,
    DeviceInfo,
    LinkGap,
    LinkState,
    Packet,
    SourceBase,
    SourceItem,
)

__all__ = [
    "BATTERY_LEVEL_UUID",
    "BODY_SENSOR_LOCATION_UUID",
    "HEART_RATE_MEASUREMENT_UUID",
    "HEART_RATE_SERVICE_UUID",
    "BleSource",
    "BleStats",
    "FoundStrap",
    "release_bluez",
    "scan",
]

logger = logging.getLogger(__name__)

#: What to try when a strap cannot be found or connected (BLE.md, quirks table).
CONNECT_HINTS = (
    "wear the strap and wet its electrodes (many straps only advertise while worn); "
    "make sure it is not connected to another device or app (a strap serves one host "
    "at a time: close the vendor app, switch off the watch or bike computer); on macOS, "
    "give your terminal the Bluetooth permission (System Settings > Privacy & Security "
    "> Bluetooth); run `vagus scan` to see which straps are in range"
)

_NO_BLUEZ_HINT = (
    "on Linux, check that the Bluetooth service runs (`systemctl status bluetooth`) and "
    "that an adapter is present and powered (`bluetoothctl show`)"
)

_NO_BLUEZ_ERRORS = (
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
)

_GENERIC_SETTLE_S = 2.0
_GENERIC_SILENT_TIMEOUT_S = 5.0
_BLEAK_TIMEOUT_SHARE = 0.9  # of connect_timeout_s, for bleak's own scan/connect timeouts
_STRONGEST_EXTRA_SCAN_S = 1.5  # after the first strap shows up, wait this long for others


@dataclass(frozen=True, slots=True)
class FoundStrap:
    """A strap seen advertising the Heart Rate Service.

    Attributes:
        name: the advertised name, or None when it sends none.
        address: Bluetooth address (a UUID on macOS).
        rssi_dbm: signal strength of the last advertisement (dBm).
        profile_id: the matching device profile (``generic`` when none matches).
        profile_name: that profile's display name.
    """

    name: str | None
    address: str
    rssi_dbm: int
    profile_id: str
    profile_name: str

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "strap",
            "name": self.name,
            "address": self.address,
            "rssi_dbm": self.rssi_dbm,
            "profile_id": self.profile_id,
            "profile_name": self.profile_name,
        }


def _profile_for(name: str | None) -> DeviceProfile:
    """The device profile for an advertised name (``generic`` if none matches).

    Raises:
        DeviceProfileError: a profile file is invalid (the message names the file and the
            field, as ``vagus devices`` says it), there is no profile folder, or nothing
            matches and there is no ``generic`` profile. Never swallowed: one bad file
            would otherwise make every strap "generic" without a word.
    """
    return match_profile(name, load_profiles())


@contextlib.contextmanager
def _bluetooth_errors(what: str) -> Iterator[None]:
    """Turn "no Bluetooth here" failures into a :class:`SourceError` that says what to do."""
    try:
        yield
    except BleakBluetoothNotAvailableError as exc:
        raise SourceError(f"{what}: Bluetooth is not available ({exc}); {_NO_BLUEZ_HINT}") from None
    except BleakDBusError as exc:
        if exc.dbus_error in _NO_BLUEZ_ERRORS:
            raise SourceError(
                f"{what}: BlueZ is not running (no org.bluez on the system bus); {_NO_BLUEZ_HINT}"
            ) from None
        raise SourceError(f"{what}: Bluetooth error {exc}") from None
    except (FileNotFoundError, ConnectionRefusedError, PermissionError) as exc:
        raise SourceError(
            f"{what}: cannot reach the D-Bus system bus ({exc}); {_NO_BLUEZ_HINT}"
        ) from None


async def scan(timeout_s: float = 5.0) -> list[FoundStrap]:
    """Scan for ``timeout_s`` seconds for straps advertising the Heart Rate Service.

    Returns:
        The straps found, strongest signal first.

    Raises:
        SourceError: no Bluetooth adapter, or BlueZ not reachable.
        DeviceProfileError: a device profile is invalid (checked before scanning).
    """
    load_profiles()  # a bad profile file is reported now, not after the scan
    with _bluetooth_errors("cannot scan"):
        found = await BleakScanner.discover(
            timeout_s, return_adv=True, service_uuids=[HEART_RATE_SERVICE_UUID]
        )
    out = []
    for device, adv in found.values():
        name = adv.local_name or device.name
        profile = _profile_for(name)
        out.append(FoundStrap(name, device.address, adv.rssi, profile.id, profile.display_name))
    out.sort(key=lambda s: -s.rssi_dbm)
    return out


@dataclass(slots=True)
class BleStats:
    """Counters of one :class:`BleSource` (for status lines and tests)."""

    packets: int = 0  #: packets yielded
    settle_discarded: int = 0  #: packets discarded in the settling time after a (re)connect
    gaps: int = 0  #: link losses (LinkGap yielded)
    connects: int = 0  #: successful connections, the first included
    failed_attempts: int = 0  #: connection attempts that failed (raised), first connection included


# queue item kinds
_HRM, _BATTERY, _LOST = 0, 1, 2


class BleSource(SourceBase):
    """A heart-rate strap over Bluetooth LE, as a :class:`~vagus.sources.base.Source`.

    ::

        async with BleSource(BleSpec(name="Polar")) as source:
            async for item in source:
                ...

    Entering connects (raising :class:`~vagus.exceptions.DeviceNotFound` or
    :class:`~vagus.exceptions.SourceError` with hints when it cannot); iterating yields
    a :class:`DeviceInfo` after every (re)connect and battery change, a :class:`Packet` per
    notification and a :class:`LinkGap` per link loss; leaving (or cancelling) stops
    notifications and disconnects.

    Timing: ``settle_s`` is ``max(spec.settle_s, profile.settle_s)`` and the silent timeout
    the profile's ``silent_timeout_s``, unless given here (tests and benchmarks run the
    straps faster than real time). The first connection and every reconnection may make
    ``spec.max_attempts`` attempts in a row (:class:`~vagus.sources.base.BleSpec` states
    the budget and how long it lasts); the k-th retry waits
    ``backoff_initial_s * 2**(k-1)`` seconds, at most ``backoff_max_s`` (the first attempt
    after a link loss is immediate).

    Args:
        spec: which strap and the connection parameters.
        settle_s: override of the settling time (s).
        silent_timeout_s: override of the silence that counts as link loss (s).
        backoff_initial_s: override of ``spec.backoff_initial_s`` (s).
        backoff_max_s: override of ``spec.backoff_max_s`` (s).

    Capabilities: it reports its link state (:attr:`link_state`); its times are
    ``time.monotonic()``; a strap does not follow a pacer.
    """

    capabilities = Capabilities(reports_link_state=True, clock="monotonic")
    link_state: LinkState

    def __init__(
        self,
        spec: BleSpec,
        *,
        settle_s: float | None = None,
        silent_timeout_s: float | None = None,
        backoff_initial_s: float | None = None,
        backoff_max_s: float | None = None,
    ) -> None:
        if backoff_initial_s is not None or backoff_max_s is not None:
            spec = dataclasses.replace(
                spec,
                backoff_initial_s=(
                    spec.backoff_initial_s if backoff_initial_s is None else backoff_initial_s
                ),
                backoff_max_s=spec.backoff_max_s if backoff_max_s is None else backoff_max_s,
            )
        self.spec = spec
        self.stats = BleStats()
        #: Where the reader stands (searching, connecting, reconnecting, attempt k of n),
        #: for status lines; updated in place.
        self.link_state = LinkState(max_attempts=spec.max_attempts)
        self._settle_override = settle_s
        self._silent_override = silent_timeout_s
        self._queue: asyncio.Queue[tuple[int, float, bytes, int]] = asyncio.Queue()
        self._client: BleakClient | None = None
        self._generation = 0  # bumped per connection; stale callbacks are ignored
        self._t_connected_s = 0.0
        self._last_hrm_s = 0.0
        self._got_hrm = False
        self._address = ""
        self._name: str | None = None
        self._profile: DeviceProfile | None = None  # known once the strap is found
        self._battery_pct: int | None = None
        self._body_location: int | None = None
        self._iterator: AsyncIterator[SourceItem] | None = None
        self._pending: list[SourceItem] = []

    # ----------------------------------------------------------------- properties

    @property
    def address(self) -> str:
        return self._address

    @property
    def name(self) -> str | None:
        return self._name

    @property
    def profile(self) -> DeviceProfile | None:
        """The strap's device profile (None until the strap is found)."""
        return self._profile

    @property
    def profile_id(self) -> str:
        return self._profile.id if self._profile is not None else "generic"

    @property
    def settle_s(self) -> float:
        if self._settle_override is not None:
            return self._settle_override
        profile_s = self._profile.settle_s if self._profile is not None else _GENERIC_SETTLE_S
        return max(self.spec.settle_s, profile_s)

    @property
    def silent_timeout_s(self) -> float:
        if self._silent_override is not None:
            return self._silent_override
        if self._profile is None:
            return _GENERIC_SILENT_TIMEOUT_S
        return self._profile.silent_timeout_s

    # ----------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> BleSource:
        load_profiles()  # a bad profile file is reported before any scanning
        self.link_state.phase = "searching"
        with _bluetooth_errors("cannot connect"):
            device = await self._find()
        self._address = device.address
        self._name = device.name
        self._profile = _profile_for(device.name)
        self.link_state.device = self._describe()
        await self._connect_within_budget(device, 0, reconnecting=False)
        self._pending.append(self._device_info())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop notifications and disconnect (also done by leaving ``async with``)."""
        iterator, self._iterator = self._iterator, None
        if iterator is not None:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()
        await self._drop_client()

    def __aiter__(self) -> AsyncIterator[SourceItem]:
        if self._iterator is None:
            self._iterator = self._items()
        return self._iterator

    # ----------------------------------------------------------------- finding

    def _describe(self) -> str:
        if self._name:
            return f"{self._name} ({self._address})"
        return self._address or "the strap"

    async def _find(self) -> BLEDevice:
        spec = self.spec
        timeout = spec.scan_timeout_s
        if spec.address:
            wanted = spec.address.lower()
            device = await BleakScanner.find_device_by_address(spec.address, timeout=timeout)
            if device is None or device.address.lower() != wanted:
                raise DeviceNotFound(
                    f"no strap with address {spec.address} found in {timeout:g} s. "
                    f"Try: {CONNECT_HINTS}"
                )
            return device
        if spec.name:
            needle = spec.name.lower()

            def by_name(d: BLEDevice, ad: AdvertisementData) -> bool:
                return needle in (ad.local_name or d.name or "").lower()

            device = await BleakScanner.find_device_by_filter(by_name, timeout=timeout)
            if device is None:
                raise DeviceNotFound(
                    f"no strap whose name contains {spec.name!r} found in {timeout:g} s. "
                    f"Try: {CONNECT_HINTS}"
                )
            return device
        return await self._find_strongest(timeout)

    async def _find_strongest(self, timeout_s: float) -> BLEDevice:
        """The strongest strap advertising 0x180D: scan until one shows, then a little more."""
        seen: dict[str, tuple[BLEDevice, int]] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        async with BleakScanner(service_uuids=[HEART_RATE_SERVICE_UUID]) as scanner:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline) as window:
                    async for device, adv in scanner.advertisement_data():
                        seen[device.address] = (device, adv.rssi)
                        # once the first strap shows up, give the others a short while
                        soon = loop.time() + _STRONGEST_EXTRA_SCAN_S
                        if soon < deadline:
                            deadline = soon
                            window.reschedule(deadline)
        if not seen:
            raise DeviceNotFound(
                f"no heart-rate strap found in {timeout_s:g} s (scanning for the Heart Rate "
                f"Service 0x180D). Try: {CONNECT_HINTS}"
            )
        device, _rssi = max(seen.values(), key=lambda dr: dr[1])
        return device

    # ----------------------------------------------------------------- connecting

    async def _connect_within_budget(
        self, device: BLEDevice | None, failures: int, *, reconnecting: bool
    ) -> int:
        """Connect, retrying with backoff within the spec's budget; returns ``failures``.

        The first connection and a reconnection behave alike (:class:`BleSpec`): every
        failed attempt (BleakError, a D-Bus error from BlueZ, a timeout, an OS error) is
        counted, waited for and retried; ``failures`` attempts of this (re)connection have
        failed already (a connection that dropped before delivering a packet).

        Raises:
            SourceError: Bluetooth is not available (at once), or the first connection
                spent its budget.
            ConnectionLost: a reconnection spent its budget.
        """
        spec = self.spec
        state = self.link_state
        state.phase = "reconnecting" if reconnecting else "connecting"
        state.max_attempts = spec.max_attempts
        t_start = state.t_lost_s if reconnecting and state.t_lost_s is not None else None
        t_start = time.monotonic() if t_start is None else t_start
        while failures < spec.max_attempts:
            state.attempt = failures + 1
            await asyncio.sleep(spec.backoff_s(failures))
            # the first attempt uses the device just scanned; retries find it by address
            first = device is not None and failures == 0
            target: BLEDevice | str = device if first and device is not None else self._address
            try:
                await self._connect(target)
            except (BleakError, TimeoutError, OSError, EOFError) as exc:
                if isinstance(exc, BleakBluetoothNotAvailableError):
                    state.phase = "gave_up"
                    raise SourceError(
                        f"cannot connect: Bluetooth is not available ({exc}); {_NO_BLUEZ_HINT}"
                    ) from None
                failures += 1
                self.stats.failed_attempts += 1
                state.last_error = _reason(exc)
                logger.info(
                    "%s to %s failed (attempt %d of %d): %s",
                    "reconnect" if reconnecting else "connect",
                    self._describe(),
                    failures,
                    spec.max_attempts,
                    state.last_error,
                )
                continue
            state.phase = "connected"
            state.t_lost_s = None
            return failures
        state.phase = "gave_up"
        took = f"{failures} attempts in {time.monotonic() - t_start:.0f} s"
        last = f"last: {state.last_error}" if state.last_error else "no packet arrived"
        if reconnecting:
            raise ConnectionLost(
                f"lost {self._describe()} and could not reconnect: {took} failed ({last}). "
                f"The strap may be out of range, off, or its battery flat. Try: {CONNECT_HINTS}"
            )
        raise SourceError(
            f"could not connect to {self._describe()} ({took}, {last}). Try: {CONNECT_HINTS}"
        )

    async def _connect(self, target: BLEDevice | str) -> None:
        """One connection attempt, bounded as a whole by ``spec.connect_timeout_s``:
        connect (finding the strap by address first when ``target`` is one), subscribe,
        read battery and body location."""
        self._generation += 1
        generation = self._generation
        queue = self._queue

        def on_disconnect(_client: BleakClient) -> None:
            queue.put_nowait((_LOST, time.monotonic(), b"", generation))

        def on_hrm(_char: BleakGATTCharacteristic, data: bytearray) -> None:
            # the arrival time is taken here, as close to the radio as bleak lets us
            queue.put_nowait((_HRM, time.monotonic(), bytes(data), generation))

        def on_battery(_char: BleakGATTCharacteristic, data: bytearray) -> None:
            queue.put_nowait((_BATTERY, time.monotonic(), bytes(data), generation))

        client = BleakClient(
            target,
            disconnected_callback=on_disconnect,
            # a little under the attempt's bound, so bleak gets to say why when it can
            # ("Device with address … was not found" rather than a bare timeout)
            timeout=_BLEAK_TIMEOUT_SHARE * self.spec.connect_timeout_s,
        )
        self._client = client
        try:
            async with asyncio.timeout(self.spec.connect_timeout_s):
                await client.connect()
                bluez: BlueZNotifyArgs = {"use_start_notify": self.spec.use_start_notify}
                await client.start_notify(HEART_RATE_MEASUREMENT_UUID, on_hrm, bluez=bluez)
                self._battery_pct = None
                self._body_location = None
                battery = _find_char(client, BATTERY_LEVEL_UUID)
                if battery is not None:
                    with contextlib.suppress(BleakError):
                        value = await client.read_gatt_char(battery)
                        self._battery_pct = value[0] if value else None
                    if "notify" in battery.properties:
                        with contextlib.suppress(BleakError):
                            await client.start_notify(battery, on_battery, bluez=bluez)
                location = _find_char(client, BODY_SENSOR_LOCATION_UUID)
                if location is not None:
                    with contextlib.suppress(BleakError):
                        value = await client.read_gatt_char(location)
                        self._body_location = value[0] if value else None
        except BaseException:
            self._generation += 1  # whatever this attempt still reports is stale
            self._client = None
            await _disconnect_quietly(client)
            raise
        self._t_connected_s = time.monotonic()
        self._last_hrm_s = self._t_connected_s
        self._got_hrm = False
        self.stats.connects += 1
        logger.info("connected to %s", self._describe())

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        self._generation += 1
        if client is not None:
            await _disconnect_quietly(client)

    def _device_info(self, connected: bool = True) -> DeviceInfo:
        return DeviceInfo(
            t_s=time.monotonic(),
            device_id=self._address,
            name=self._name or self._address,
            profile_id=self.profile_id,
            battery_pct=self._battery_pct,
            body_location=self._body_location,
            connected=connected,
        )

    # ----------------------------------------------------------------- streaming

    async def _items(self) -> AsyncIterator[SourceItem]:
        queue = self._queue
        failures = 0
        try:
            for item in self._pending:
                yield item
            self._pending.clear()
            while True:
                lost_reason: str | None = None
                t_lost = 0.0
                if self._client is None:
                    lost_reason, t_lost = "link_lost", time.monotonic()
                else:
                    remaining = self._last_hrm_s + self.silent_timeout_s - time.monotonic()
                    try:
                        async with asyncio.timeout(max(remaining, 0.0)):
                            kind, t_s, data, generation = await queue.get()
                    except TimeoutError:
                        lost_reason, t_lost = "silent", time.monotonic()
                    else:
                        if generation != self._generation:
                            continue  # from a connection already given up
                        if kind == _HRM:
                            self._last_hrm_s = t_s
                            if not self._got_hrm:
                                self._got_hrm = True
                                failures = 0  # the link works: the retry budget is full again
                            if t_s < self._t_connected_s + self.settle_s:
                                self.stats.settle_discarded += 1
                                continue
                            self.stats.packets += 1
                            yield Packet(t_s, data, self._address)
                            continue
                        if kind == _BATTERY:
                            if data and data[0] != self._battery_pct:
                                self._battery_pct = data[0]
                                yield self._device_info()
                            continue
                        lost_reason, t_lost = "link_lost", t_s
                # the link is gone (or presumed gone): mark the gap, then reconnect
                if not self._got_hrm:
                    failures += 1  # a connection that delivered nothing counts as failed
                await self._drop_client()
                self.stats.gaps += 1
                state = self.link_state
                state.phase, state.t_lost_s = "reconnecting", t_lost
                state.attempt, state.last_error = failures + 1, ""
                logger.info("link to %s lost (%s); reconnecting", self._describe(), lost_reason)
                yield LinkGap(t_lost, lost_reason, self._address)
                failures = await self._connect_within_budget(None, failures, reconnecting=True)
                yield self._device_info()
        finally:
            await self._drop_client()


def _find_char(client: BleakClient, uuid: str) -> BleakGATTCharacteristic | None:
    try:
        return client.services.get_characteristic(uuid)
    except BleakError:
        return None


def _reason(exc: BaseException) -> str:
    """Why one connection attempt failed, in a few words."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, BleakDBusError) and exc.dbus_error in _NO_BLUEZ_ERRORS:
        return f"BlueZ is not running (no org.bluez on the system bus; {_NO_BLUEZ_HINT})"
    return str(exc).rstrip(".") or type(exc).__name__  # it goes inside a sentence


async def _disconnect_quietly(client: BleakClient) -> None:
    """Stop notifications and disconnect, never raising: teardown paths (and Ctrl-C)."""
    if client.is_connected:
        for uuid in (HEART_RATE_MEASUREMENT_UUID, BATTERY_LEVEL_UUID):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await client.stop_notify(uuid)
    with contextlib.suppress(Exception):
        async with asyncio.timeout(5.0):
            await client.disconnect()


async def release_bluez() -> None:
    """Close bleak's shared BlueZ D-Bus connection of the running event loop.

    bleak keeps one connection per event loop for the life of the program. A program
    that starts and stops loops (the test suite) calls this before its loop ends, so no
    socket outlives the loop. Linux only; elsewhere it does nothing.
    """
    if sys.platform != "linux":
        return
    # bleak has no public API for this; its manager registry is per loop (manager.py).
    from bleak.backends.bluezdbus import manager as bluez_manager

    instance = bluez_manager._global_instances.pop(asyncio.get_running_loop(), None)
    bus = getattr(instance, "_bus", None)
    watcher = getattr(instance, "_bus_watcher_task", None)
    if isinstance(watcher, asyncio.Task):
        watcher.cancel()  # we close the bus on purpose: nothing to report to watchers
        with contextlib.suppress(BaseException):
            await watcher
    if bus is not None:
        bus.disconnect()  # closes the socket at once
        await asyncio.sleep(0)
