"""The live runner: sources → :class:`~vagus.session.Session` → store writer → subscribers.

The one place where the asyncio loop meets the sans-I/O session (STYLE.md "One thin I/O
layer per concurrency model"): ``vagus record``, ``vagus monitor`` and the websocket
service are argparse (or a server) and a view over a :class:`Runner`.

A runner holds one live session: one pacer and its participants. Each participant is
fed either by a local source (:class:`~vagus.sources.base.SimSpec`,
:class:`~vagus.sources.base.BleSpec`, :class:`~vagus.sources.base.ReplaySpec`: opened
and read by the runner) or from outside (``source=None``: a relay pushes its packets
with :meth:`Runner.push_packet`). Every input goes, in arrival order, to the store (the
input, not the output: DESIGN.md; one :class:`~vagus.store.writer.SessionWriter`, the
SQLite work in the writer thread) and to the session, whose events go to the
subscribers.

**The session clock** (seconds; every time the runner stores, feeds or hands out is on
it). Each participant's source clock is mapped onto it when the participant's source
opens (or, for a pushed participant, at its first packet), by a constant offset:

- a source with its own clock (the simulator, a replay: ``capabilities.clock == "own"``,
  0 when opened) opened with the session: offset 0, so a simulated participant's times
  are its simulated seconds, the same as recorded alone; opened later: the session's
  now;
- a strap (``clock == "monotonic"``): minus ``time.monotonic()`` at the session start;
- a pushed participant: the session's now minus the first packet's time.

:meth:`Runner.now_s` is the session clock now: the loop's clock since the start (times
the simulators' speed when only simulators, all at one speed, were given at the start, so
a demo's clock runs smoothly with its simulated subjects'); with simulators at ``--speed
max`` or a replay, the latest input time (time is where the input is).

**Control** (markers, pacer changes) is session-wide: stored once, fed to the session
(every participant's pipeline gets it) and forwarded to every source that declares
``capabilities.follows_pacer`` (the simulated subject breathes with the pacer), at the
time on that source's clock. With ``markers`` (the default), a ``start`` marker is
written at the first input and ``stop: <reason>`` at the end.

**Duration**: with ``duration_s``, each participant's input stops once it spans more
than ``duration_s`` from that participant's first input (a strap's settling time and the
search before it do not count), so a participant of a group session stores exactly what
it would alone; the session ends when every local source has ended.

**Subscribers** (:meth:`Runner.subscribe`) get each batch of events as JSON dicts (the
events' JSON forms, each with its ``participant``; plus ``status`` dicts when a
participant connects, disconnects or its battery changes), synchronously on the loop: a
subscriber must only queue them (a slow consumer is the subscriber's business; STYLE.md
"Never let the slowest consumer set the pace"). A subscriber that raises is removed and
its error kept in :attr:`Runner.subscriber_errors`; it never stops the runner.

Store failures never stop the live session (:class:`~vagus.store.recorder.Recorder`):
:attr:`Runner.recording` says whether it is still recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vagus.core.events import Event, Marker, PacerChange
from vagus.exceptions import InvalidInput, MalformedPacket, SourceError
from vagus.sources.base import (
    BleSpec,
    ControlItem,
    DeviceInfo,
    LinkGap,
    LinkState,
    Packet,
    ReplaySpec,
    SimSpec,
    Source,
    SourceItem,
    SourceSpec,
)
from vagus.store.base import ControlRecord, GapRecord, InputRecord, PacketRecord
from vagus.store.recorder import SessionSummaries
from vagus.store.writer import SessionWriter, StoreWriter

__all__ = [
    "START_MARKER",
    "BatchCallback",
    "EventCallback",
    "JsonCallback",
    "Participant",
    "ParticipantState",
    "RunResult",
    "Runner",
]

#: The text of the marker written at the first input of a session.
START_MARKER = "start"

#: Subscriber of JSON batches: each event's JSON form (with its ``participant``).
JsonCallback = Callable[[list[dict[str, Any]]], None]
#: Subscriber of event batches as objects: ``(participant or None, event)`` pairs.
EventCallback = Callable[[list[tuple[str | None, Event]]], None]
#: Subscriber of batches as objects: the session's ``(participant, event)`` pairs (a
#: sequence of :class:`~vagus.session.SessionEvent`) and the ``status`` dicts.
BatchCallback = Callable[[Sequence[Any], list[dict[str, Any]]], None]

_MALFORMED_EXAMPLES = 3


@dataclass(frozen=True, slots=True)
class Participant:
    """One participant of a live session and where its input comes from.

    Attributes:
        name: the participant's label (stored with each of its records).
        source: a local source, or None for input pushed in from outside
            (:meth:`Runner.push_packet`: a relay).
    """

    name: str
    source: SourceSpec | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidInput(f"a participant needs a name (a non-empty label), got {self.name!r}")


def source_kind(spec: SourceSpec | None) -> str:
    """``sim``, ``ble``, ``replay`` or ``relay`` (pushed from outside)."""
    if spec is None:
        return "relay"
    if isinstance(spec, SimSpec):
        return "sim"
    if isinstance(spec, BleSpec):
        return "ble"
    return "replay"


@dataclass
class ParticipantState:
    """Where one participant stands (read by views; updated by the runner).

    Times are on the session clock (s).
    """

    name: str
    kind: str
    #: the local source's spec (None: pushed from outside)
    spec: SourceSpec | None = None
    device: str = ""
    device_id: str = ""
    profile_id: str | None = None
    battery_pct: int | None = None
    body_location: int | None = None
    #: True while input flows; False after a link loss until input comes again; None
    #: before anything connected
    connected: bool | None = None
    #: a strap's search and reconnection state (``capabilities.reports_link_state``)
    link_state: LinkState | None = None
    #: (re)connections of the strap so far (device info saying it is connected, after
    #: none or a link loss)
    connections: int = 0
    packets: int = 0
    malformed: int = 0
    gaps: int = 0
    malformed_examples: list[str] = field(default_factory=list)
    t_first_s: float | None = None
    t_last_s: float | None = None
    #: source clock + offset = session clock (None until mapped)
    offset_s: float | None = None
    #: the local source ended (its end, the duration, or a failure)
    done: bool = False
    #: the error that ended the local source (strap lost for good...), if any
    failure: BaseException | None = None
    follows_pacer: bool = False

    def status_json(self, t_s: float, recording: bool) -> dict[str, Any]:
        """The ``status`` dict subscribers get (docs/protocol.md ``status``)."""
        return {
            "type": "status",
            "t_s": t_s,
            "participant": self.name,
            "connected": bool(self.connected),
            "battery_pct": self.battery_pct,
            "device": self.device,
            "recording": recording,
            "ended": False,
        }


@dataclass
class RunResult:
    """How a session ended (:meth:`Runner.stop`).

    Attributes:
        reason: the stop marker's reason (``Ctrl-C``, ``duration reached``, ``strap
            lost``, ``end of input``...).
        t_end_s: the session-clock time of the stop marker (the last input or control);
            None if nothing was received.
        failures: the participants whose source failed, with the error.
        records: input records of the session (stored or not), control records included.
        summary: the session's summary (per participant; as cached in the store).
        recording: the store session, if one was recorded (its ``error``,
            ``session_deleted``, ``committed``... say how that went).
        saved: the whole session is in the store (recording never failed).
        discarded: nothing was received, so no session was kept.
    """

    reason: str
    t_end_s: float | None
    failures: dict[str, BaseException]
    records: int
    summary: dict[str, Any]
    recording: SessionWriter | None
    saved: bool
    discarded: bool


class _Local:
    """A participant's local source and the task reading it."""

    def __init__(self, spec: SourceSpec, source: Source) -> None:
        self.spec = spec
        self.source = source
        self.task: asyncio.Task[None] | None = None


class Runner:
    """One live session on the asyncio loop (see the module docstring).

    Args:
        participants: the participants known at the start (more with
            :meth:`add_participant`).
        writer: the store writer to record to (started); None records nothing.
        title: the stored session's title.
        tags: the stored session's tags.
        duration_s: stop each participant's input after this long (s) from its first
            input; None: until stopped.
        markers: write the ``start`` and ``stop: <reason>`` markers.
        record: create the stored session at :meth:`start` (else
            :meth:`start_recording` does, later).

    Use::

        runner = Runner([Participant("ann", SimSpec(seed=1))], writer=writer)
        runner.subscribe(print)
        await runner.start()
        await runner.wait()           # or: runner.control(...), runner.push_packet(...)
        result = await runner.stop()  # the stop marker, close, summary, saved
    """

    def __init__(
        self,
        participants: Sequence[Participant] = (),
        *,
        writer: StoreWriter | None = None,
        title: str = "",
        tags: Sequence[str] = (),
        duration_s: float | None = None,
        markers: bool = True,
        record: bool = True,
    ) -> None:
        from vagus.session import Session

        if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
            raise InvalidInput(f"the duration must be a positive number of s, got {duration_s!r}")
        names = [p.name for p in participants]
        if len(set(names)) != len(names):
            raise InvalidInput(
                f"participant names must differ, got {names}; give each a name of its own"
            )
        self.writer = writer
        self.title = title
        self.tags = tuple(tags)
        self.duration_s = duration_s
        self.markers = markers
        self._record_at_start = record and writer is not None
        self.session = Session(participants=tuple(names))
        self.participants: dict[str, ParticipantState] = {}
        self._specs: dict[str, SourceSpec | None] = {}
        self._locals: dict[str, _Local] = {}
        for p in participants:
            self._add_state(p)
        # Own-clock sources only (simulator, replay): the session clock is theirs.
        self.simulated_clock = bool(participants) and all(
            isinstance(p.source, SimSpec | ReplaySpec) for p in participants
        )
        speeds = {p.source.speed for p in participants if isinstance(p.source, SimSpec)}
        #: simulators all paced at this speed (times real time): the session clock runs
        #: with the loop's clock at that speed; None: it is the latest input's time
        self.clock_speed: float | None = None
        if len(speeds) == 1 and all(isinstance(p.source, SimSpec) for p in participants):
            self.clock_speed = speeds.pop()
        self._json_subscribers: list[JsonCallback] = []
        self._event_subscribers: list[EventCallback] = []
        self._batch_subscribers: list[BatchCallback] = []
        #: errors of subscribers that raised (each was removed)
        self.subscriber_errors: list[BaseException] = []
        self._recording: SessionWriter | None = None
        self._summaries = _summaries(names or ["me"])
        self._records = 0
        self._t_start_s: float | None = None  # the first input's time
        self._t_control_s = -math.inf
        self._t_last_input_s = -math.inf
        self._t0_mono = 0.0
        self._t0_loop = 0.0
        self._elapsed_s = 0.0
        self._records_before_recording = 0
        self._started = False
        self._stopped = False
        self._done = asyncio.Event()
        self._stop_reason: str | None = None
        self._pacer: PacerChange | None = None

    # ----------------------------------------------------------------- set-up

    def _add_state(self, p: Participant) -> ParticipantState:
        state = ParticipantState(p.name, source_kind(p.source), p.source)
        self.participants[p.name] = state
        self._specs[p.name] = p.source
        return state

    def add_participant(self, participant: Participant) -> ParticipantState:
        """Add a participant (before or after :meth:`start`; its local source, if any,
        opens at once when the runner is running).

        Raises:
            InvalidInput: the name is taken.
        """
        if participant.name in self.participants:
            raise InvalidInput(
                f"participant {participant.name!r} is already in the session; "
                "give the new one another name"
            )
        self.session.add_participant(participant.name)
        state = self._add_state(participant)
        self._summaries = _summaries(list(self.participants), self._summaries)
        if self._started and participant.source is not None:
            self._open_local(participant.name, participant.source, at_start=False)
        return state

    def resume(
        self,
        recording: SessionWriter,
        *,
        elapsed_s: float,
        clock_offsets: Mapping[str, float] | None = None,
    ) -> None:
        """Before :meth:`start`: continue a stored session left open by
        ``stop(end_recording=False)`` (a server restart). The input is appended to
        ``recording``; the session clock goes on from ``elapsed_s``; no new ``start``
        marker; each participant's clock maps as ``clock_offsets`` says (as it did
        before: a relay resending packets lands at the same session times), an own-clock
        source (a simulator) continues at ``elapsed_s``.

        Raises:
            InvalidInput: the runner has started, or ``elapsed_s`` is not a time >= 0.
        """
        if self._started:
            raise InvalidInput("resume() comes before start(): the session has started")
        if not (isinstance(elapsed_s, int | float) and math.isfinite(elapsed_s) and elapsed_s >= 0):
            raise InvalidInput(f"elapsed_s must be a number of s >= 0, got {elapsed_s!r}")
        self._recording = recording
        self._records_before_recording = 1  # the stored session holds earlier input too
        self._record_at_start = False
        self.markers = False
        self._elapsed_s = float(elapsed_s)
        for name, offset in (clock_offsets or {}).items():
            if name in self.participants:
                self.participants[name].offset_s = float(offset)

    async def start(self) -> None:
        """Start: create the stored session (with a writer) and open the local sources."""
        if self._started:
            return
        loop = asyncio.get_running_loop()
        if self._record_at_start:
            await self.start_recording()
        # The session clock's zero: as the sources open (a simulator's clock starts then);
        # a resumed session's clock goes on from where it was.
        self._t0_mono = time.monotonic() - self._elapsed_s
        self._t0_loop = loop.time() - self._elapsed_s
        self._started = True
        for name, spec in self._specs.items():
            if spec is not None:
                self._open_local(name, spec, at_start=True)
        self._check_done()

    def _open_local(self, name: str, spec: SourceSpec, *, at_start: bool) -> None:
        state = self.participants[name]
        from vagus.sources import base as sources_base  # looked up now: tests wrap it

        source = sources_base.open_source(spec)
        caps = source.capabilities
        state.follows_pacer = caps.follows_pacer
        state.link_state = source.link_state if caps.reports_link_state else None
        if state.offset_s is not None:
            pass  # given by resume(): the clock maps as it did before
        elif caps.clock == "monotonic":
            state.offset_s = -self._t0_mono
        else:
            state.offset_s = self._elapsed_s if at_start else self.now_s()
        local = _Local(spec, source)
        self._locals[name] = local
        local.task = asyncio.ensure_future(self._consume(name, local))
        if self._pacer is not None and self._pacer.rate_bpm is not None and caps.follows_pacer:
            self._forward_pacer(state, source, self._pacer)

    # ----------------------------------------------------------------- clock

    def now_s(self) -> float:
        """The session clock now (s; see the module docstring)."""
        if self.simulated_clock and (self.clock_speed is None or not self._started):
            t = self._t_last_input_s
            return max(t if t > -math.inf else 0.0, self._t_control_s)
        if not self._started:
            return 0.0
        wall_s = asyncio.get_running_loop().time() - self._t0_loop
        if self.simulated_clock and self.clock_speed is not None:
            # paced simulators: their clock runs with the loop's, at their speed (never
            # behind a control event already stamped)
            return max(wall_s * self.clock_speed, self._t_control_s)
        return wall_s

    @property
    def t_start_s(self) -> float | None:
        """The session-clock time of the first input (None before it)."""
        return self._t_start_s

    @property
    def t_control_s(self) -> float:
        """The time of the latest control event (-inf before any)."""
        return self._t_control_s

    @property
    def pacer(self) -> PacerChange | None:
        """The latest pacer change (None before any)."""
        return self._pacer

    # ----------------------------------------------------------------- recording

    @property
    def recording(self) -> SessionWriter | None:
        """The stored session (None when not recording, or not yet)."""
        return self._recording

    async def start_recording(
        self, *, title: str | None = None, tags: Sequence[str] | None = None
    ) -> SessionWriter:
        """Create the stored session and record from now on (the current pacer is
        written first, so a replay of the recording knows it). Idempotent while
        recording.

        Raises:
            SourceError: no store writer was given.
        """
        if self._recording is not None and not self._recording.finished:
            return self._recording
        if self.writer is None:
            raise SourceError("this session has no store to record to (no writer given)")
        kinds = {st.kind for st in self.participants.values()}
        future = self.writer.create_session(
            title=self.title if title is None else title,
            participants=tuple(self.participants) or ("me",),
            source=kinds.pop() if len(kinds) == 1 else "mixed",
            tags=self.tags if tags is None else tuple(tags),
        )
        self._recording = await asyncio.wrap_future(future)
        self._records_before_recording = self._records
        if self._pacer is not None and self._t_start_s is not None:
            self._recording.write(ControlRecord(dataclasses.replace(self._pacer, t_s=self.now_s())))
        return self._recording

    async def stop_recording(self) -> SessionWriter | None:
        """End the stored session (summary and end time written); the live session goes
        on. Returns it (None if none was recorded)."""
        rec = self._recording
        if rec is None or rec.finished:
            return rec
        await asyncio.wrap_future(rec.finish(self._stored_summary(), self._ended_unix_s()))
        return rec

    def _write(
        self, record: InputRecord, participant: str | None, *, malformed: bool = False
    ) -> None:
        self._records += 1
        self._summaries.add_record(participant, record, malformed=malformed)
        rec = self._recording
        if rec is not None and not rec.finished:
            rec.write(record)

    # ----------------------------------------------------------------- subscribers

    def subscribe(self, callback: JsonCallback) -> Callable[[], None]:
        """Call ``callback`` with each batch of event JSON dicts; returns the
        unsubscribe function. The callback runs on the loop and must only queue."""
        self._json_subscribers.append(callback)
        return lambda: _remove(self._json_subscribers, callback)

    def subscribe_events(self, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback`` with each batch of ``(participant, event)`` pairs (the
        events as objects, for views in this process; an empty batch when only a
        participant's status changed: read :attr:`participants`); returns the
        unsubscribe function."""
        self._event_subscribers.append(callback)
        return lambda: _remove(self._event_subscribers, callback)

    def subscribe_batches(self, callback: BatchCallback) -> Callable[[], None]:
        """Call ``callback(events, statuses)`` with each batch: the session's events as
        ``(participant, event)`` pairs (objects) and the ``status`` dicts of the
        participants whose link changed (what :meth:`subscribe` gets, less the JSON
        conversion: the service serialises the events itself); returns the unsubscribe
        function. The callback runs on the loop and must only queue."""
        self._batch_subscribers.append(callback)
        return lambda: _remove(self._batch_subscribers, callback)

    def _publish(self, extra: Sequence[dict[str, Any]] = ()) -> None:
        events = self.session.events_received()
        if not events and not extra:
            return
        # Summaries: one call per run of one participant's events (a packet's batch is
        # one participant's beat, metrics and sometimes a spectrum), not one per event.
        summaries = self._summaries
        start = 0
        for i in range(1, len(events) + 1):
            if i == len(events) or events[i][0] != events[start][0]:
                summaries.add_events(events[start][0], [ev[1] for ev in events[start:i]])
                start = i
        for event_cb in list(self._event_subscribers):  # no event: a participant's status
            pairs: list[tuple[str | None, Event]] = [(ev[0], ev[1]) for ev in events]
            self._call(event_cb, pairs, self._event_subscribers)
        if self._batch_subscribers:
            statuses = list(extra)
            for batch_cb in list(self._batch_subscribers):
                self._call_batch(batch_cb, events, statuses)
        if self._json_subscribers:
            # JSON forms only for JSON subscribers (record and monitor read the objects)
            batch = [ev.to_json() for ev in events]
            batch.extend(extra)
            for json_cb in list(self._json_subscribers):
                self._call(json_cb, batch, self._json_subscribers)

    def _call_batch(
        self, cb: BatchCallback, events: Sequence[Any], statuses: list[dict[str, Any]]
    ) -> None:
        try:
            cb(events, statuses)
        except Exception as exc:  # a subscriber's bug never stops the session
            self.subscriber_errors.append(exc)
            _remove(self._batch_subscribers, cb)

    def _call(self, cb: Any, batch: Any, where: list[Any]) -> None:
        try:
            cb(batch)
        except Exception as exc:  # a subscriber's bug never stops the session
            self.subscriber_errors.append(exc)
            _remove(where, cb)

    # ----------------------------------------------------------------- input

    def _first_input(self, state: ParticipantState, t_s: float) -> None:
        if state.t_first_s is None:
            state.t_first_s = t_s
        if self._t_start_s is None:
            self._t_start_s = t_s
            if self.markers:
                self._control(Marker(t_s, START_MARKER))

    def _over(self, state: ParticipantState, t_s: float) -> bool:
        """True if ``t_s`` is past this participant's ``duration_s``."""
        return (
            self.duration_s is not None
            and state.t_first_s is not None
            and t_s - state.t_first_s > self.duration_s
        )

    def _note_time(self, state: ParticipantState, t_s: float) -> None:
        state.t_last_s = t_s
        if t_s > self._t_last_input_s:
            self._t_last_input_s = t_s

    def _packet(self, state: ParticipantState, t_s: float, payload: bytes) -> bool:
        """Store and feed one packet (session clock); False if it was malformed."""
        self._first_input(state, t_s)
        self._note_time(state, t_s)
        was_connected = state.connected
        state.connected = True
        ok = True
        try:
            self.session.receive_packet(state.name, t_s, payload)
        except MalformedPacket as exc:
            ok = False
            state.malformed += 1
            if len(state.malformed_examples) < _MALFORMED_EXAMPLES:
                state.malformed_examples.append(f"{payload.hex()}: {exc}")
        else:
            state.packets += 1
        self._write(PacketRecord(t_s, payload, state.name), state.name, malformed=not ok)
        extra = [] if was_connected else [self._status(state)]
        self._publish(extra)
        return ok

    def _gap(self, state: ParticipantState, t_s: float, reason: str) -> None:
        self._first_input(state, t_s)
        self._note_time(state, t_s)
        state.connected = False
        state.gaps += 1
        self.session.receive_gap(state.name, t_s, reason=reason)
        self._write(GapRecord(t_s, reason, state.name), state.name)
        self._publish([self._status(state)])

    def _status(self, state: ParticipantState) -> dict[str, Any]:
        return state.status_json(self.now_s(), self.recording_ok)

    @property
    def recording_ok(self) -> bool:
        """True while the session is being recorded without a store failure."""
        rec = self._recording
        return rec is not None and not rec.finished and rec.recording

    def push_packet(self, participant: str, t_s: float, payload: bytes) -> bool:
        """A packet of ``participant`` pushed in from outside (a relay), ``t_s`` on the
        sender's clock (mapped onto the session clock at its first packet). Returns
        False for a malformed packet (counted and stored, as live: a replay skips it the
        same way).

        Raises:
            InvalidInput: no such participant, one fed by a local source, a time that is
                not a finite number, or a runner that has stopped.
        """
        state = self._pushed(participant, t_s)
        return self._packet(state, t_s + self._offset(state, t_s), bytes(payload))

    def push_gap(self, participant: str, t_s: float, reason: str = "link_lost") -> None:
        """The sender of ``participant`` lost its strap at ``t_s`` (its clock)."""
        state = self._pushed(participant, t_s)
        self._gap(state, t_s + self._offset(state, t_s), reason)

    def push_status(
        self, participant: str, *, connected: bool | None = None, battery_pct: int | None = None
    ) -> None:
        """The sender of ``participant`` reports its strap's link or battery."""
        state = self._pushed(participant, None)
        changed = False
        if connected is not None and connected != state.connected:
            state.connected, changed = connected, True
        if battery_pct is not None and battery_pct != state.battery_pct:
            state.battery_pct, changed = battery_pct, True
        if changed:
            self._publish([self._status(state)])

    def _pushed(self, participant: str, t_s: float | None) -> ParticipantState:
        if self._stopped:
            raise InvalidInput("the session has ended; nothing more can be added to it")
        state = self.participants.get(participant)
        if state is None:
            raise InvalidInput(
                f"no participant {participant!r} in this session "
                f"(participants: {', '.join(self.participants) or 'none'})"
            )
        if self._specs.get(participant) is not None:
            raise InvalidInput(
                f"participant {participant!r} is fed by a local {state.kind} source; "
                "packets cannot be pushed for it"
            )
        if t_s is not None and not (isinstance(t_s, int | float) and math.isfinite(t_s)):
            raise InvalidInput(f"a packet time must be a finite number of s, got {t_s!r}")
        return state

    def _offset(self, state: ParticipantState, t_s: float) -> float:
        if state.offset_s is None:
            state.offset_s = self.now_s() - t_s
        return state.offset_s

    # ----------------------------------------------------------------- control

    def control(self, event: Marker | PacerChange) -> None:
        """A session-wide control event (session clock): stored once, fed to the
        session, a pacer change forwarded to the sources that follow the pacer.

        Raises:
            InvalidInput: not a marker or pacer change, a field out of range (the
                session refuses it; nothing changes), or a runner that has stopped.
        """
        if self._stopped:
            raise InvalidInput("the session has ended; no control event can be added")
        if not isinstance(event, Marker | PacerChange):
            raise InvalidInput(
                f"a control event is a Marker or a PacerChange, got {type(event).__name__}"
            )
        self._control(event)

    def _control(self, event: Marker | PacerChange) -> None:
        self.session.receive_control(event)  # validates first: a bad event changes nothing
        self._t_control_s = max(self._t_control_s, event.t_s)
        self._write(ControlRecord(event), None)
        if isinstance(event, PacerChange):
            self._pacer = event
            for name, local in self._locals.items():
                state = self.participants[name]
                if state.follows_pacer and not state.done:
                    self._forward_pacer(state, local.source, event)
        self._publish()

    @staticmethod
    def _forward_pacer(state: ParticipantState, source: Source, event: PacerChange) -> None:
        offset = state.offset_s or 0.0
        source.follow_pacer(dataclasses.replace(event, t_s=event.t_s - offset))

    # ----------------------------------------------------------------- local sources

    async def _consume(self, name: str, local: _Local) -> None:
        state = self.participants[name]
        try:
            async with local.source as source:
                async for item in source:
                    if self._item(state, item):
                        break
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a strap lost for good, a bad replay...: this one ends
            state.failure = exc
            state.connected = False
        finally:
            state.done = True
            self._check_done()

    def _item(self, state: ParticipantState, item: SourceItem) -> bool:
        """Handle one source item; True when this participant's input is over."""
        offset = state.offset_s or 0.0
        if isinstance(item, DeviceInfo):
            changed = (
                state.device != item.name
                or state.battery_pct != item.battery_pct
                or state.connected != item.connected
            )
            state.device, state.device_id = item.name, item.device_id
            state.battery_pct, state.body_location = item.battery_pct, item.body_location
            if item.connected and state.connected is not True:
                state.connections += 1
                changed = True
            state.connected = item.connected
            if item.profile_id != state.profile_id:
                state.profile_id = item.profile_id
                rec = self._recording
                if rec is not None and not rec.finished and name_is_first(self, state.name):
                    rec.set_device_profile(item.profile_id)
            if changed:
                self._publish([self._status(state)])
            return False
        if isinstance(item, ControlItem):
            self._control(dataclasses.replace(item.event, t_s=item.t_s + offset))
            return False
        t_s = (item.t_arrival_s if isinstance(item, Packet) else item.t_s) + offset
        if self._over(state, t_s):
            return True
        if isinstance(item, Packet):
            self._packet(state, t_s, item.payload)
        elif isinstance(item, LinkGap):
            self._gap(state, t_s, item.reason)
        return False

    def _check_done(self) -> None:
        """Done when every local source has ended and no participant is pushed."""
        if not self._started:
            return
        if any(self._specs[n] is None for n in self.participants):
            return
        if all(self.participants[n].done for n in self._locals) and len(self._locals) == len(
            self.participants
        ):
            self._done.set()

    async def wait(self) -> None:
        """Until every local source has ended (never, with pushed participants: then
        until :meth:`stop`)."""
        await self._done.wait()

    # ----------------------------------------------------------------- the end

    async def stop(self, reason: str | None = None, *, end_recording: bool = True) -> RunResult:
        """End the session: close the local sources, write the stop marker
        (``stop: <reason>``; by default ``strap lost`` if every local source failed,
        ``duration reached`` with a duration, else ``end of input``), close the session
        (its pending beats decided), end the stored session with its summary, or
        discard it when nothing was received.

        ``end_recording=False`` (a server stopping for a restart): no stop marker, and
        the stored session is left open, everything written committed, to be continued
        by :meth:`resume` in the next process."""
        if self._stopped:
            raise InvalidInput("the session has already been stopped")
        self._stopped = True
        tasks = [local.task for local in self._locals.values() if local.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        failures = {n: st.failure for n, st in self.participants.items() if st.failure is not None}
        if reason is None:
            if self._locals and len(failures) == len(self._locals):
                reason = "strap lost"
            elif self.duration_s is not None:
                reason = "duration reached"
            else:
                reason = "end of input"
        self._stop_reason = reason
        t_end: float | None = None
        if self._t_start_s is not None:
            t_end = max(self._t_last_input_s, self._t_control_s)
            if self.markers and end_recording:
                self._control(Marker(t_end, f"stop: {reason}"))
        self.session.close()
        self._publish()
        rec = self._recording
        discarded = False
        summary = self._summary()
        if rec is not None and not rec.finished and not end_recording:
            if self.writer is not None:
                await asyncio.wrap_future(self.writer.commit())  # durable, left open
        elif rec is not None and not rec.finished:
            if self._records == 0:
                await asyncio.wrap_future(rec.discard())
                discarded = True
            else:
                stored = self._stored_summary()
                await asyncio.wrap_future(rec.finish(stored, self._ended_unix_s(t_end)))
        saved = rec is not None and not discarded and rec.recording and rec.error is None
        self._done.set()
        return RunResult(
            reason=reason,
            t_end_s=t_end,
            failures=failures,
            records=self._records,
            summary=summary,
            recording=rec,
            saved=saved,
            discarded=discarded,
        )

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopped

    def _summary(self) -> dict[str, Any]:
        return self._summaries.as_dict(self._records)

    def _stored_summary(self) -> dict[str, Any] | None:
        """The summary to cache with the stored session: None (computed by replay when
        first read) when the recording started after input had come, since the live
        summary also counts what was not stored."""
        return self._summary() if self._records_before_recording == 0 else None

    def _ended_unix_s(self, t_end_s: float | None = None) -> float | None:
        """The stored session's end (Unix s): None (now) on the wall clock; on a
        simulated clock, its start plus the simulated seconds, so a session recorded at
        ``--speed max`` spans its duration."""
        rec = self._recording
        t = self.now_s() if t_end_s is None else t_end_s
        if not self.simulated_clock or rec is None or rec.started_unix_s is None:
            return None
        return rec.started_unix_s + max(0.0, t)


def name_is_first(runner: Runner, name: str) -> bool:
    """True for the session's first participant (whose strap names the stored
    session's device profile)."""
    return next(iter(runner.participants), None) == name


def _remove(items: list[Any], item: Any) -> None:
    with contextlib.suppress(ValueError):
        items.remove(item)


def _summaries(names: Sequence[str], old: SessionSummaries | None = None) -> SessionSummaries:
    """Per-participant running summaries, carrying over what ``old`` had."""
    new = SessionSummaries(names)
    if old is not None:
        new.by_participant.update(old.by_participant)
    return new
