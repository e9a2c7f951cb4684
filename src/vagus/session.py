"""A live session as a library object: one pacer, N participants, one session clock (sans-I/O).

DESIGN.md "Concepts": a session is one pacer and one or more participants, each with one
source. :class:`Session` holds no socket, loop, clock or file, like
:class:`~vagus.core.pipeline.Pipeline`, which it runs once per participant (participants
never mix: each has its own beat chain, windows and spectrum). Time arrives with the
input; the events are collected with :meth:`Session.events_received`.

Calling contract::

    session = Session(participants=("ann", "bob"))
    session.receive_packet("ann", t_s, payload)      # or receive_rr / receive_gap
    session.receive_beats("bob", rr_ms, t_s)         # many beats with their times (replay)
    session.receive_control(PacerChange(t_s, 6.0))   # markers and pacer: session-wide
    for event in session.events_received():          # call after any receive method
        event.participant, event.event, event.to_json()
    session.close()                                  # end of input
    events = session.events_received()

**Events** are :class:`SessionEvent` pairs ``(participant, event)``: a participant's
beats, metrics, spectra, gaps and contact changes carry its name; session-wide events
(markers, pacer changes, :class:`~vagus.core.events.PacerState`) carry None. The JSON
form is the event's own with ``"participant"`` added. A participant's events are
exactly those of a :class:`~vagus.core.pipeline.Pipeline` fed the same input alone
(with the same clock offset), plus its breaths (:class:`~vagus.core.events.Rsa`, which
depend on its input and the pacer only): same input, same output, however many
participants.

**The session clock** is seconds; every time the session takes and hands out is on it.
Each participant's input times go through a constant offset, fixed at that
participant's first timed input (session time = source time + offset):

- by default the offset is 0: the caller gives session times (a runner that maps its
  sources' clocks itself, a replay of stored input, offline input);
- ``clock_offsets={name: offset_s}`` (or :meth:`Session.set_clock_offset` before the
  first input) gives it: a replay passes the offsets a live session used;
- with ``map_clocks=True`` a participant without a given offset is mapped at its first
  timed input onto the session's time now (:attr:`Session.t_s`, the latest session time
  seen, 0 before any input): for sources each with a clock of their own (a relay's
  monotonic clock).

When the session maps a clock itself (``map_clocks``), it emits a
:class:`~vagus.core.events.ParticipantClock` event (tagged with the participant) at that
participant's first timed input, for the recorder to store; :attr:`Session.clock_offsets`
has every offset fixed so far. Given offsets emit nothing (the caller knows them), so a
replay with the stored offsets hands out exactly the live session's events. RR intervals
given without times (``receive_rr(..., t_s=None)``) are cumulative from session time 0,
as a pipeline's are.

**The pacer** (:class:`~vagus.core.pacer.Pacer`) follows the control input and the
session's time (the latest input time): a :class:`~vagus.core.events.PacerState` is
emitted at every change of its actual state, including one that starts with a later
inhale (a new breath shape) once the session's time passes that inhale.
:meth:`Session.pacer_phase` gives its phase at any time.

**Breaths and resonance**: every participant's breaths come out as
:class:`~vagus.core.events.Rsa` events (:mod:`vagus.core.rsa`: amplitude per pacer
cycle, or per spontaneous breath while the pacer is off). The pacer's ``scan`` and
``adaptive`` strategies (:mod:`vagus.core.resonance`) follow one participant: the first
by default, or the one a :class:`~vagus.core.events.PacerChange` names in ``follow``
(:attr:`Session.followed`); their :class:`~vagus.core.events.Resonance` events carry
that participant. The pacer is advanced to an input's time before the input's events
are handed to the strategies, so a decision at an inhale uses only input that came
before it: a replay of the same input makes the same decisions.
"""

from __future__ import annotations

import functools
import math
import numbers
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any, NamedTuple

from vagus.core.events import (
    MAX_ABS_TIME_S,
    ControlEvent,
    Event,
    Marker,
    PacerChange,
    PacerState,
    ParticipantClock,
    Spectrum,
    check_control,
    event_from_json,
)
from vagus.core.pacer import Pacer, PacerMode
from vagus.core.pipeline import Pipeline
from vagus.core.resonance import Guidance
from vagus.core.rsa import RsaTracker
from vagus.exceptions import InvalidInput, MalformedPacket, ProtocolError

__all__ = [
    "MAX_PARTICIPANT_CHARS",
    "Session",
    "SessionEvent",
    "check_participant_name",
    "session_event_from_json",
]

#: The longest participant name (characters).
MAX_PARTICIPANT_CHARS = 64


class SessionEvent(NamedTuple):
    """One event of a session and whose it is (None: session-wide).

    A pair, so ``participant, event = session_event`` works; :meth:`to_json` is the
    event's JSON form with ``"participant"`` added.
    """

    participant: str | None
    event: Event

    @property
    def type(self) -> str:
        """The event's JSON ``type``."""
        return self.event.type

    @property
    def t_s(self) -> float:
        """The event's time (s, session clock)."""
        return self.event.t_s

    def to_json(self) -> dict[str, Any]:
        """The event's JSON form plus ``"participant"`` (a name, or None)."""
        out = self.event.to_json()
        out["participant"] = self.participant
        return out


#: ``_tag((participant, event))`` is ``SessionEvent(participant, event)``, made in C (the
#: tuple's own constructor: a session tags every event it hands out).
_tag: Callable[[tuple[str | None, Event]], SessionEvent] = functools.partial(
    tuple.__new__, SessionEvent
)


def session_event_from_json(obj: Any) -> SessionEvent:
    """Rebuild a :class:`SessionEvent` from :meth:`SessionEvent.to_json`'s form.

    Raises:
        ProtocolError: ``participant`` missing or not a name or null, or the event's
            fields as :func:`~vagus.core.events.event_from_json` checks them.
    """
    if not isinstance(obj, dict):
        raise ProtocolError(f"an event must be a JSON object, got {type(obj).__name__}")
    if "participant" not in obj:
        raise ProtocolError(
            "a session event needs 'participant' (a name, or null for a session-wide event)",
            field="participant",
        )
    rest = dict(obj)
    name = rest.pop("participant")
    if name is not None:
        try:
            name = check_participant_name(name)
        except InvalidInput as exc:
            raise ProtocolError(str(exc), field="participant") from None
    return SessionEvent(name, event_from_json(rest))


def check_participant_name(name: object) -> str:
    """``name`` if it can name a participant: a string of 1 to
    :data:`MAX_PARTICIPANT_CHARS` printable characters (letters, digits, spaces,
    punctuation; no control characters).

    Raises:
        InvalidInput: anything else, saying why.
    """
    if not isinstance(name, str):
        raise InvalidInput(f"a participant name is a string, got {type(name).__name__}")
    if not name or not name.strip():
        raise InvalidInput("a participant name must not be empty; give each participant a name")
    if len(name) > MAX_PARTICIPANT_CHARS:
        raise InvalidInput(
            f"a participant name has at most {MAX_PARTICIPANT_CHARS} characters, "
            f"not {len(name)} ({name[:12]!r}...)"
        )
    if not name.isprintable():
        raise InvalidInput(
            f"a participant name has printable characters only, got {name!r:.60} "
            "(no control characters, line breaks or lone surrogates)"
        )
    return name


def _source_time(value: object, name: str) -> float:
    """A time (s) as a float within ±MAX_ABS_TIME_S, else InvalidInput."""
    if type(value) is float and -MAX_ABS_TIME_S <= value <= MAX_ABS_TIME_S:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInput(f"{name} must be a time in seconds (a number), got {value!r:.60}")
    try:
        v = float(value)
    except OverflowError:
        v = math.inf
    if not -MAX_ABS_TIME_S <= v <= MAX_ABS_TIME_S:
        raise InvalidInput(f"{name} must be a time within ±{MAX_ABS_TIME_S:.0e} s, got {v}")
    return v


def _offset(value: object, name: str) -> float:
    return _source_time(value, f"the clock offset of participant {name!r}")


class Session:
    """One pacer and N participants, each with its own pipeline, on one session clock.

    See the module docstring for the calling contract, the clock and the events.

    Args:
        participants: the participants' names at the start (more with
            :meth:`add_participant`, also later: a late joiner).
        clock_offsets: known clock offsets by participant (s; session = source + offset),
            e.g. those a live session used, for an exact replay.
        map_clocks: map each participant without a known offset onto the session's time
            now at its first timed input (else its offset is 0).
        pipeline_factory: makes each participant's pipeline (default ``Pipeline()``).
        pacer_modes: the pacer's mode strategies (:class:`~vagus.core.pacer.Pacer`).
        guidance: the challenge level of the coherence-adaptive guidance
            (:class:`~vagus.core.resonance.Guidance`: the pacer fades to a subtle cue,
            ``pacer_state.guidance``, while the followed participant's coherence stays
            high), e.g. ``"medium"``; None (the default) for no guidance. A
            :class:`~vagus.core.events.PacerChange` with ``guidance`` turns it on, off or
            to another level (a live session does it that way: stored and replayed).

    Raises:
        InvalidInput: a bad or repeated participant name, or a bad offset.
    """

    def __init__(
        self,
        participants: Iterable[str] = (),
        *,
        clock_offsets: Mapping[str, float] | None = None,
        map_clocks: bool = False,
        pipeline_factory: Callable[[], Pipeline] | None = None,
        pacer_modes: Mapping[str, Callable[[], PacerMode]] | None = None,
        guidance: str | None = None,
    ) -> None:
        if isinstance(participants, str):
            raise InvalidInput(
                f"participants is a sequence of names, got the string {participants!r:.40}: "
                f"write participants=({participants!r:.40},)"
            )
        self._factory: Callable[[], Pipeline] = (
            pipeline_factory if pipeline_factory is not None else Pipeline
        )
        self._pipelines: dict[str, Pipeline] = {}
        self._rsa: dict[str, RsaTracker] = {}
        self._follow: str | None = None
        self._given: dict[str, float] = {}
        self._offsets: dict[str, float] = {}  # fixed at each participant's first timed input
        self.map_clocks = bool(map_clocks)
        self._events: list[SessionEvent] = []
        self._t_s = 0.0
        self._seen_input = False
        self._closed = False
        self.pacer = Pacer(pacer_modes)
        self._guidance = Guidance(guidance) if guidance is not None else None
        self.pacer.set_guidance_level(guidance)
        for name in participants:
            self.add_participant(name)
        for name, offset in (clock_offsets or {}).items():
            self.set_clock_offset(name, offset)

    # ---------------------------------------------------------------- participants

    @property
    def participants(self) -> tuple[str, ...]:
        """The participants' names, in the order they were added."""
        return tuple(self._pipelines)

    def add_participant(self, name: str) -> None:
        """Add a participant (with a pipeline of its own).

        Raises:
            InvalidInput: not a valid name (:func:`check_participant_name`), a name
                already in the session, or a closed session.
        """
        self._check_open()
        name = check_participant_name(name)
        if name in self._pipelines:
            raise InvalidInput(
                f"participant {name!r} is already in the session; give each participant "
                "a name of its own"
            )
        self._pipelines[name] = self._factory()
        self._rsa[name] = RsaTracker(self.pacer)

    @property
    def followed(self) -> str | None:
        """The participant the pacer's strategies follow: the one the last pacer change
        named (``follow``), else the first participant (None without participants)."""
        if self._follow is not None:
            return self._follow
        return next(iter(self._pipelines), None)

    def pipeline(self, participant: str) -> Pipeline:
        """The participant's pipeline (read its counters; feed it only through the session).

        Raises:
            InvalidInput: an unknown participant.
        """
        return self._pipeline(participant)

    # ---------------------------------------------------------------- clock

    @property
    def t_s(self) -> float:
        """The session's time now (s): the latest session time of any input or control
        (the first one's, even if negative), 0 before any."""
        return self._t_s

    @property
    def clock_offsets(self) -> dict[str, float]:
        """Each participant's clock offset fixed so far (session time = source time +
        offset; s). Store it with the session; ``Session(clock_offsets=...)`` replays it."""
        return dict(self._offsets)

    def set_clock_offset(self, participant: str, offset_s: float) -> None:
        """Give a participant's clock offset before its first timed input.

        Raises:
            InvalidInput: an unknown participant, a bad number, or an offset already
                fixed to another value (by the participant's first input).
        """
        self._pipeline(participant)
        offset = _offset(offset_s, participant)
        fixed = self._offsets.get(participant)
        if fixed is not None and fixed != offset:
            raise InvalidInput(
                f"the clock of participant {participant!r} was mapped at its first input "
                f"(offset {fixed:g} s); it cannot change to {offset:g} s"
            )
        self._given[participant] = offset

    # ---------------------------------------------------------------- input

    def receive_packet(self, participant: str, t_s: float, payload: bytes) -> None:
        """Feed one Heart Rate Measurement (0x2A37) payload of ``participant`` with its
        arrival time ``t_s`` (its source clock; see the module docstring).

        Raises:
            InvalidInput: an unknown participant, a bad time or payload type (the
                message names the participant); nothing changes.
            MalformedPacket: the payload is malformed; the participant's pipeline is
                unchanged (the packet's time still counts as input).
        """
        pipeline = self._pipeline(participant)
        t, offset, new = self._map(participant, t_s, "t_s")
        try:
            pipeline.receive_packet(t, payload)
        except MalformedPacket as exc:
            self._input_done(participant, offset, new, t)
            raise MalformedPacket(f"participant {participant!r}: {exc}") from None
        except InvalidInput as exc:
            raise InvalidInput(f"participant {participant!r}: {exc}") from None
        self._input_done(participant, offset, new, t)
        head = getattr(pipeline, "_t_last_s", None)  # the chain's newest beat (see rsa.py)
        if isinstance(head, float):
            self._rsa[participant].note_lag(t, t - head)

    def receive_rr(
        self, participant: str, rr_ms: float | Iterable[float], t_s: float | None = None
    ) -> None:
        """Feed RR intervals (ms) of ``participant``; ``t_s`` the time of the beat ending
        the last one (its source clock), or None for cumulative beat times (from 0).

        Raises:
            InvalidInput: an unknown participant, a bad value or time (named); nothing
                changes.
        """
        pipeline = self._pipeline(participant)
        if t_s is None:
            try:
                pipeline.receive_rr(rr_ms)
            except InvalidInput as exc:
                raise InvalidInput(f"participant {participant!r}: {exc}") from None
            self._input_done(participant, 0.0, False, None)
            return
        t, offset, new = self._map(participant, t_s, "t_s")
        try:
            pipeline.receive_rr(rr_ms, t)
        except InvalidInput as exc:
            raise InvalidInput(f"participant {participant!r}: {exc}") from None
        self._input_done(participant, offset, new, t)

    def receive_beats(self, participant: str, rr_ms: Sequence[float], t_s: Sequence[float]) -> None:
        """Feed beats of ``participant``: RR intervals (ms), each with the time of the beat
        ending it (its source clock). Exactly ``receive_rr(participant, rr, t)`` for each
        pair in turn (the same events in the same order, the same state afterwards), at
        a lower cost per beat: how a replay feeds a stored or imported RR record.

        How: while the pacer plans no change (before :attr:`Pacer.next_change_s
        <vagus.core.pacer.Pacer.next_change_s>`, so advancing it emits nothing) the beats
        go to the participant's pipeline one by one and its events are collected, tagged
        and handed to the breath tracker once for the run, which is what one beat at a
        time does too, minus the per-beat bookkeeping. A beat at or past a planned
        change, the participant's first timed input (it fixes the clock offset), a time
        that is not a float, and every beat of the participant that the guidance or an
        observing pacer mode follows (they interleave with each beat's events) go
        through :meth:`receive_rr`. ``tests/test_session_beats.py`` pins the equivalence.

        Raises:
            InvalidInput: an unknown participant, not one time per RR interval, or a bad
                value or time (named, as :meth:`receive_rr` names it): the beats before
                it were fed, as one by one; it and those after it were not.
        """
        pipeline = self._pipeline(participant)
        n = len(rr_ms)
        if len(t_s) != n:
            raise InvalidInput(
                f"participant {participant!r}: give one beat time per RR interval, got "
                f"{n} RR intervals and {len(t_s)} times"
            )
        i = 0
        while i < n:
            if participant in self._offsets and not self._observed(participant):
                i = self._beat_run(participant, pipeline, rr_ms, t_s, i)
                if i >= n:
                    return
            self.receive_rr(participant, rr_ms[i], t_s[i])
            i += 1

    def receive_gap(self, participant: str, t_s: float, reason: str = "link_lost") -> None:
        """Declare a break in ``participant``'s beat chain at ``t_s`` (its source clock),
        e.g. its strap's link was lost.

        Raises:
            InvalidInput: an unknown participant, a bad time or reason; nothing changes.
        """
        pipeline = self._pipeline(participant)
        t, offset, new = self._map(participant, t_s, "t_s")
        try:
            pipeline.receive_gap(t, reason)
        except InvalidInput as exc:
            raise InvalidInput(f"participant {participant!r}: {exc}") from None
        self._input_done(participant, offset, new, t)

    def receive_control(self, event: ControlEvent) -> None:
        """Feed a session-wide control event: a :class:`~vagus.core.events.Marker` or a
        :class:`~vagus.core.events.PacerChange` (time on the session clock).

        The event is handed out (participant None); a pacer change is followed by the
        :class:`~vagus.core.events.PacerState` it causes.

        Raises:
            ProtocolError: (an InvalidInput) not a marker or pacer change, or a field of
                the wrong type or out of range (named); nothing changes.
        """
        self._check_open()
        checked = check_control(event)
        if isinstance(checked, PacerChange):
            if checked.follow is not None:
                if checked.follow not in self._pipelines:
                    known = ", ".join(map(repr, self._pipelines)) or "none yet"
                    raise ProtocolError(
                        f"'pacer' event: 'follow' names {checked.follow!r:.70}, who is not "
                        f"in the session; its participants: {known}",
                        field="follow",
                    )
                self._follow = checked.follow
            if checked.guidance is not None:
                # Guidance on, off or at another level (a control: stored, replayed); the
                # change's own state below carries it.
                level = None if checked.guidance == "off" else checked.guidance
                if level != self.pacer.guidance_level:
                    self._guidance = Guidance(level) if level is not None else None
                    self.pacer.set_guidance_level(level)
            states = self.pacer.receive_change(checked)
            events = self._events
            # States the time before the change caused (a deferred shape), then the change.
            for st in states[:-1]:
                events.append(SessionEvent(None, st))
            events.append(SessionEvent(None, checked))
            events.append(SessionEvent(None, states[-1]))
        else:
            assert isinstance(checked, Marker)
            self._events.append(SessionEvent(None, checked))
        self._note_time(checked.t_s)

    def pacer_phase(self, t_s: float) -> float | None:
        """The pacer's phase at ``t_s`` (session clock): 0 ≤ φ < 1 over the whole cycle
        (inhale, hold, exhale, hold), 0 = the start of an inhale; None while it is off.
        (:mod:`vagus.core.pacer`; the lung volume and stage: ``session.pacer.breath_at``.)

        Raises:
            InvalidInput: ``t_s`` is not a time.
        """
        return self.pacer.phase_at(_source_time(t_s, "t_s"))

    @property
    def pacer_state(self) -> PacerState | None:
        """The pacer's latest state (None before the first pacer change)."""
        return self.pacer.state

    def close(self) -> None:
        """End of input: every pipeline decides its pending beats (and open gaps)."""
        if self._closed:
            return
        for name, pipeline in self._pipelines.items():
            pipeline.close()
            self._drain(name, pipeline)
        self._closed = True

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def events_received(self) -> list[SessionEvent]:
        """The events produced since the last call, in order (call after any receive)."""
        events, self._events = self._events, []
        return events

    # ---------------------------------------------------------------- internals

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidInput("the session is closed; create a new Session for new input")

    def _pipeline(self, participant: str) -> Pipeline:
        try:
            pipeline = self._pipelines.get(participant)
        except TypeError:  # unhashable: not a name
            pipeline = None
        if pipeline is None:
            if not isinstance(participant, str):
                raise InvalidInput(
                    f"participant must be a participant's name (str), got "
                    f"{type(participant).__name__} {participant!r:.40}"
                )
            known = ", ".join(map(repr, self._pipelines)) or "none yet"
            raise InvalidInput(
                f"unknown participant {participant!r:.70}; the session's participants: "
                f"{known} (add one with add_participant)"
            )
        if self._closed:
            self._check_open()
        return pipeline

    def _map(self, participant: str, t_s: object, name: str) -> tuple[float, float, bool]:
        """``t_s`` on the session clock, the participant's offset, and whether the
        offset is new (fixed by this input if it goes through)."""
        offset = self._offsets.get(participant)
        if offset is not None:
            if offset == 0.0:
                return t_s, 0.0, False  # type: ignore[return-value]  # the pipeline checks it
            t = _source_time(t_s, f"participant {participant!r}: {name}")
            return _source_time(t + offset, f"participant {participant!r}: {name}"), offset, False
        t = _source_time(t_s, f"participant {participant!r}: {name}")
        given = self._given.get(participant)
        if given is not None:
            offset = given
        elif self.map_clocks:
            offset = self._t_s - t
        else:
            offset = 0.0
        mapped = t + offset if offset != 0.0 else t
        return _source_time(mapped, f"participant {participant!r}: {name}"), offset, True

    def _input_done(self, participant: str, offset: float, new: bool, t: float | None) -> None:
        if new:
            self._offsets[participant] = offset
            if participant not in self._given and self.map_clocks:
                assert t is not None
                self._events.append(SessionEvent(participant, ParticipantClock(t, offset)))
        pipeline = self._pipelines[participant]
        if t is not None:
            # The pacer first: its decisions at inhales up to t use only earlier input.
            self._note_time(float(t))
        t_last = self._drain(participant, pipeline)
        if t is None and t_last is not None:
            self._note_time(float(t_last))

    def _note_time(self, t: float) -> None:
        """The session's time is the latest time seen (the first input's, at first)."""
        if not self._seen_input:
            self._seen_input = True
            self._t_s = t
        elif t > self._t_s:
            self._t_s = t
        else:
            return
        pacer = self.pacer
        for st in pacer.advance_to(t):
            self._events.append(SessionEvent(None, st))
        if pacer.has_mode_events:
            who = self.followed
            self._events.extend([SessionEvent(who, e) for e in pacer.take_mode_events()])

    def _observed(self, participant: str) -> bool:
        """True if the guidance or the pacer's running mode reads ``participant``'s events."""
        if self._guidance is None:
            mode = self.pacer.mode
            if mode is None or not mode.observes:
                return False
        return participant == self.followed

    def _beat_run(
        self,
        participant: str,
        pipeline: Pipeline,
        rr_ms: Sequence[float],
        t_s: Sequence[float],
        start: int,
    ) -> int:
        """Feed beats from ``start`` on while the pacer plans nothing (see
        :meth:`receive_beats`), then take their events at once; returns the index of the
        first beat not fed (``len(rr_ms)`` after the last)."""
        offset = self._offsets[participant]
        t_stop = self.pacer.next_change_s
        receive = pipeline.receive_rr
        t_max = self._t_s
        n = len(rr_ms)
        k = start
        error: InvalidInput | None = None
        if offset == 0.0 and t_stop == math.inf:
            # Nothing planned, times as given: each beat straight to the pipeline, which
            # checks it as receive_rr would have it checked.
            rr_left = iter(rr_ms[start:])
            times = t_s[start:]
            try:
                for rr, t in zip(rr_left, times, strict=False):
                    receive(rr, t)
                k = n
            except InvalidInput as exc:
                error = exc
                k = n - operator.length_hint(rr_left) - 1  # the beat refused
            if k > start:
                t_max = float(max(times[: k - start]))
                if t_max > self._t_s:
                    self._note_time(t_max)
                self._drain(participant, pipeline)
            if error is not None:
                raise InvalidInput(f"participant {participant!r}: {error}") from None
            return k
        try:
            while k < n:
                t = t_s[k]
                if type(t) is not float:
                    break  # receive_rr checks and names it
                if offset != 0.0:
                    if not -MAX_ABS_TIME_S <= t <= MAX_ABS_TIME_S:
                        break  # receive_rr names it
                    t = t + offset
                    if not -MAX_ABS_TIME_S <= t <= MAX_ABS_TIME_S:
                        break
                if t >= t_stop:
                    break  # the pacer changes: receive_rr advances it at this beat
                receive(rr_ms[k], t)
                if t > t_max:
                    t_max = t
                k += 1
        except InvalidInput as exc:
            error = exc
        if k > start:
            if t_max > self._t_s:
                self._note_time(t_max)  # nothing planned before t_stop: no state
            self._drain(participant, pipeline)
        if error is not None:
            raise InvalidInput(f"participant {participant!r}: {error}") from None
        return k

    def _drain(self, participant: str, pipeline: Pipeline) -> float | None:
        """Tag the pipeline's new events (each breath the participant's tracker ends
        right after the event that ended it); return the time of the last, if any."""
        out = pipeline.events_received()
        if not out:
            return None
        t_last = out[-1].t_s
        ended = self._rsa[participant].feed_all(out)
        events = self._events
        breaths: list[Event] = []
        if ended:
            merged: list[Event] = []
            done = 0
            for k, rsa in ended:
                merged += out[done : k + 1]
                merged += rsa
                breaths += rsa
                done = k + 1
            merged += out[done:]
            events.extend(map(_tag, zip(repeat(participant), merged)))
        else:
            events.extend(map(_tag, zip(repeat(participant), out)))
        guidance = self._guidance
        if breaths and (guidance is not None or self.pacer.mode is not None):
            out = out + breaths  # what the guidance and the pacer's mode observe
        if guidance is not None and participant == self.followed:
            for e in out:
                if isinstance(e, Spectrum) and (cue := guidance.observe(e)) is not None:
                    state = self.pacer.set_guidance(e.t_s, cue)
                    if state is not None:
                        events.append(SessionEvent(None, state))
        mode = self.pacer.mode
        if mode is not None and mode.observes and participant == self.followed:
            for e in out:
                mode.observe(participant, e)  # type: ignore[arg-type]
        return t_last
