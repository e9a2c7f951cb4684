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

Sources declare what they can do in :attr:`Source.capabilities` (:class:`Capabilities`;
STYLE.md "Declare capabilities, do not probe for them"): a source that follows a pacer
(the simulated subject breathes with it) implements :meth:`Source.follow_pacer`; one that
reports where it stands in finding and reconnecting its strap keeps :attr:`Source.link_state`
up to date. The others inherit :class:`SourceBase`, whose ``follow_pacer`` raises a clear
:class:`~vagus.exceptions.SourceError` and whose ``link_state`` is None.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

from vagus.exceptions import InvalidInput, SourceError

if TYPE_CHECKING:
    from vagus.core.events import Marker, PacerChange

__all__ = [
    "BleSpec",
    "Capabilities",
    "ControlItem",
    "DeviceInfo",
    "LinkGap",
    "LinkState",
    "Packet",
    "ReplaySpec",
    "SimSpec",
    "Source",
    "SourceBase",
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
    #: whose input it is, where the source knows (a replay of a session with several
    #: participants); "" for a live strap (the runner knows whose strap it is)
    participant: str = ""


@dataclass(frozen=True, slots=True)
class LinkGap:
    """The link to the strap was lost at ``t_s`` (arrival clock); beats until reconnect are lost."""

    t_s: float
    reason: str = "link_lost"
    device_id: str = ""
    #: whose link it was, where the source knows (see :attr:`Packet.participant`)
    participant: str = ""


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


@dataclass(frozen=True, slots=True)
class ControlItem:
    """A recorded control event (marker or pacer change) handed out again by a replay
    (:class:`~vagus.sources.replay.ReplaySource`), at its time on the recording clock.
    Live sources never yield one: live control comes from the user."""

    event: Marker | PacerChange

    @property
    def t_s(self) -> float:
        """The event's time (s, the recording clock)."""
        return self.event.t_s


SourceItem = Packet | LinkGap | DeviceInfo | ControlItem


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a source can do, declared (never probed with ``getattr``).

    Attributes:
        follows_pacer: :meth:`Source.follow_pacer` steers the input (the simulated
            subject breathes with the pacer it is given).
        reports_link_state: :attr:`Source.link_state` says where the source stands in
            finding and (re)connecting its strap (searching, attempt k of n).
        clock: the clock of the source's item times: ``"monotonic"`` is
            ``time.monotonic()`` (a strap's arrival times, comparable across sources
            of the process), ``"own"`` a clock of the source's own that starts at 0
            when it is opened (the simulator's simulated seconds; a replay's recording
            clock).
        yields_control: the source hands out recorded control events
            (:class:`ControlItem`).
    """

    follows_pacer: bool = False
    reports_link_state: bool = False
    clock: Literal["monotonic", "own"] = "own"
    yields_control: bool = False


@runtime_checkable
class Source(Protocol):
    """An async context manager yielding :data:`SourceItem` as an async iterator, with
    its :class:`Capabilities`."""

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def link_state(self) -> LinkState | None: ...

    def follow_pacer(self, change: PacerChange) -> None: ...

    async def __aenter__(self) -> Source: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    def __aiter__(self) -> AsyncIterator[SourceItem]: ...


class SourceBase:
    """Defaults for a source that neither follows a pacer nor reports link state."""

    capabilities: ClassVar[Capabilities] = Capabilities()
    #: None: this source has no link to report (see :class:`Capabilities`)
    link_state: LinkState | None = None

    def follow_pacer(self, change: PacerChange) -> None:
        """Refused: this source's input does not follow a pacer.

        Raises:
            SourceError: always (check ``capabilities.follows_pacer`` first).
        """
        raise SourceError(
            f"{type(self).__name__} does not follow a pacer (its capabilities say "
            "follows_pacer=False); check source.capabilities.follows_pacer before calling"
        )


@dataclass(frozen=True, slots=True)
class BleSpec:
    """A real strap over Bluetooth LE.

    Connecting, and reconnecting after a link loss, share one budget: up to
    :attr:`max_attempts` (``1 + max_retries``) connection attempts in a row, each bounded
    as a whole by ``connect_timeout_s`` (finding the strap by address, connecting,
    resolving its services and subscribing), with a wait of ``backoff_initial_s``,
    doubling, at most ``backoff_max_s``, before each retry. A connection that drops
    before it delivered a packet counts as a failed attempt; one packet received makes
    the budget full again. When the budget is spent the source gives up with an error
    that says what to try. With the defaults that is 6 attempts and at most about
    :attr:`give_up_after_s` = 6 x 15 s + (0.5 + 1 + 2 + 4 + 8) s = 105.5 s (under two
    minutes) of trying after a link loss; the first connection may take ``scan_timeout_s``
    more, to find the strap, and a connection that comes up but stays silent counts as an
    attempt that lasted the profile's ``silent_timeout_s`` (5 s) longer.

    Attributes:
        address: connect to this address (or platform id) if given.
        name: else the strap whose advertised name contains this (case-insensitive).
        scan_timeout_s: how long to scan for a matching strap before the first connection (s).
        connect_timeout_s: how long one connection attempt may take as a whole (s).
        max_retries: failed connection attempts retried before giving up, for the first
            connection and after each link loss alike (so ``max_retries + 1`` attempts).
        settle_s: packets in this time after each (re)connect are discarded (BLE.md quirks).
        use_start_notify: BlueZ only: StartNotify (True) or AcquireNotify (False).
        backoff_initial_s: wait before the first retry (s); the first attempt after a link
            loss is immediate.
        backoff_max_s: longest wait between two attempts (s).

    Raises:
        InvalidInput: a time that is not a positive finite number (``settle_s`` and the
            backoff times may be 0) or a negative ``max_retries``.
    """

    address: str | None = None
    name: str | None = None
    scan_timeout_s: float = 10.0
    connect_timeout_s: float = 15.0
    max_retries: int = 5
    settle_s: float = 2.0
    use_start_notify: bool = True
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 15.0

    def __post_init__(self) -> None:
        for name in ("scan_timeout_s", "connect_timeout_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value < math.inf):
                raise InvalidInput(
                    f"BleSpec.{name} must be a positive number of seconds, got {value!r}"
                )
        for name in ("settle_s", "backoff_initial_s", "backoff_max_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 <= value < math.inf):
                raise InvalidInput(
                    f"BleSpec.{name} must be a number of seconds >= 0, got {value!r}"
                )
        if isinstance(self.max_retries, bool) or not (
            isinstance(self.max_retries, int) and self.max_retries >= 0
        ):
            raise InvalidInput(
                f"BleSpec.max_retries must be an integer >= 0, got {self.max_retries!r}"
            )

    @property
    def max_attempts(self) -> int:
        """Connection attempts in a row before giving up: ``max_retries + 1``."""
        return self.max_retries + 1

    def backoff_s(self, failures: int) -> float:
        """The wait before retry number ``failures`` (1 = the first retry), in seconds:
        ``backoff_initial_s * 2**(failures - 1)``, at most ``backoff_max_s``; 0 for 0."""
        if failures <= 0:
            return 0.0
        # 2**k overflows a float past k = 1023; the cap is reached long before that.
        return float(
            min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** min(failures - 1, 512))
        )

    @property
    def give_up_after_s(self) -> float:
        """The longest a (re)connection keeps trying before it gives up (s): every attempt
        taking its whole ``connect_timeout_s``, plus the waits between them. Disconnect
        clean-up after a failed attempt, usually milliseconds, comes on top."""
        waits = sum(self.backoff_s(k) for k in range(1, self.max_attempts))
        return self.max_attempts * self.connect_timeout_s + waits


@dataclass(slots=True)
class LinkState:
    """Where a live source stands in finding and (re)connecting its strap.

    :class:`~vagus.sources.ble.BleSource` keeps one up to date (``source.link_state``) so
    a status line can show what is going on while no packet arrives; other sources have
    none.

    Attributes:
        phase: ``searching`` (scanning for the strap), ``connecting`` (the first
            connection), ``connected``, ``reconnecting`` (after a link loss) or
            ``gave_up`` (the retry budget is spent).
        attempt: the connection attempt under way, or waited for (1 = the first), in the
            current (re)connection; 0 while searching.
        max_attempts: attempts allowed in a row (:attr:`BleSpec.max_attempts`).
        t_lost_s: when the link was lost (``time.monotonic()``), while reconnecting.
        last_error: why the previous attempt failed ("" if none did).
        device: the strap being connected, once found (its name and address).
    """

    phase: str = "searching"
    attempt: int = 0
    max_attempts: int = 0
    t_lost_s: float | None = None
    last_error: str = ""
    device: str = ""


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
        participant: replay only this participant's input (and the session's control
            events), by the name its records carry; None: every participant's.
    """

    session_id: str
    data_dir: Path | None = None
    speed: float | None = 1.0
    from_s: float = 0.0
    participant: str | None = None


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
