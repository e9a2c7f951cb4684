"""The one source interface and the factory that picks a source from a spec.

A source is an async context manager and an async iterator of :data:`SourceItem`::

    async with open_source(SimSpec(seed=1)) as source:
        async for item in source:
            if isinstance(item, Packet):
                pipeline.receive_packet(item.t_arrival_s, item.payload)
            elif isinstance(item, LinkGap):
                pipeline.receive_gap(item.t_s, reason=item.reason)

Times are seconds on the source's monotonic arrival clock. Specs are typed
dataclasses, never strings; the factory chooses the backend in one place
(like bleak's ``bleak/backends``) and imports bleak only for :class:`BleSpec`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "BleSpec",
    "DeviceInfo",
    "LinkGap",
    "Packet",
    "ReplaySpec",
    "SimSpec",
    "Source",
    "SourceItem",
    "SourceSpec",
    "open_source",
]


@dataclass(frozen=True, slots=True)
class Packet:
    """One Heart Rate Measurement notification: the exact 0x2A37 bytes and when they arrived."""

    t_arrival_s: float
    payload: bytes
    device_id: str = ""


@dataclass(frozen=True, slots=True)
class LinkGap:
    """The link to the strap was lost at ``t_s`` (arrival clock); beats until reconnect are lost."""

    t_s: float
    reason: str = "link_lost"
    device_id: str = ""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What the source knows about the strap, sent on (re)connect and when it changes."""

    t_s: float
    device_id: str
    name: str
    profile_id: str
    battery_pct: int | None = None
    body_location: int | None = None
    connected: bool = True


SourceItem = Packet | LinkGap | DeviceInfo


@runtime_checkable
class Source(Protocol):
    """An async context manager yielding :data:`SourceItem` as an async iterator."""

    async def __aenter__(self) -> Source: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    def __aiter__(self) -> AsyncIterator[SourceItem]: ...


@dataclass(frozen=True, slots=True)
class BleSpec:
    """A real strap over Bluetooth LE.

    Attributes:
        address: connect to this address (or platform id) if given.
        name: else the strap whose advertised name contains this (case-insensitive).
        scan_timeout_s: how long to scan for a matching strap.
        connect_timeout_s: timeout of one connection attempt.
        max_retries: reconnection attempts after a link loss before giving up.
        settle_s: packets in this time after each (re)connect are discarded (BLE.md quirks).
        use_start_notify: BlueZ only: StartNotify (True) or AcquireNotify (False).
    """

    address: str | None = None
    name: str | None = None
    scan_timeout_s: float = 10.0
    connect_timeout_s: float = 20.0
    max_retries: int = 8
    settle_s: float = 2.0
    use_start_notify: bool = True


@dataclass(frozen=True, slots=True)
class SimSpec:
    """The simulated subject and strap (:mod:`vagus.sources.simulator`).

    Attributes:
        seed: the same seed gives the same bytes.
        speed: 1.0 is real time; ``None`` runs as fast as the consumer reads.
        duration_s: stop after this much simulated time (None: run until closed).
        options: keyword overrides for the subject and strap configuration.
    """

    seed: int = 0
    speed: float | None = 1.0
    duration_s: float | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReplaySpec:
    """A recorded session replayed from the store (:mod:`vagus.sources.replay`).

    Attributes:
        session_id: the session's id or a unique prefix of it.
        data_dir: the store's data directory (None: ``$VAGUS_DATA_DIR`` or the default).
        speed: 1.0 is real time, 4.0 four times faster; ``None`` as fast as possible.
        from_s: start pacing this many seconds after the first record (earlier records
            are handed out at once so the pipeline is warm).
    """

    session_id: str
    data_dir: Path | None = None
    speed: float | None = 1.0
    from_s: float = 0.0


SourceSpec = BleSpec | SimSpec | ReplaySpec


def open_source(spec: SourceSpec) -> Source:
    """Create the source for ``spec`` (enter it with ``async with``)."""
    if isinstance(spec, SimSpec):
        from vagus.sources.simulator import SimulatorSource

        return SimulatorSource(spec)
    if isinstance(spec, BleSpec):
        from vagus.sources.ble import BleSource  # the only place bleak is imported

        return BleSource(spec)
    if isinstance(spec, ReplaySpec):
        from vagus.sources.replay import ReplaySource

        return ReplaySource(spec)
    raise TypeError(f"unknown source spec {spec!r}; expected BleSpec, SimSpec or ReplaySpec")
