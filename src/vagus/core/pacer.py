"""The breathing pacer: phase-continuous, sans-I/O (SCIENCE.md "Resonance frequency and the
adaptive pacer"; DESIGN.md "Concepts").

**The cycle.** One breath cycle lasts ``T = 60 / rate_bpm`` seconds and runs inhale →
hold (after the inhale, ``hold_in_s``) → exhale → hold (after the exhale, ``hold_out_s``).
The breathing time ``B = T − hold_in_s − hold_out_s`` is split by the inhale fraction:
inhale ``inhale_fraction · B``, exhale ``(1 − inhale_fraction) · B`` (with no holds the
inhale fraction is the inhale's share of the cycle).

**The phase** φ runs from 0 to 1 over the whole cycle, linearly in time, 0 = the start of
an inhale: ``φ(t) = (φ0 + (t − t0) · rate_bpm / 60) mod 1`` from the last state
``(t0, φ0)``. Internally the pacer counts cycles (``cycles_at``: φ plus the whole cycles
since the pacer was switched on), which the simulated subject follows.

**The breath shape** (:func:`breath_shape`, mirrored by ``web/static/js/pacer.js``): at
phase φ the stage is ``"inhale"``, ``"hold_in"``, ``"exhale"`` or ``"hold_out"`` (both
holds read "hold" to the user), and the lung volume (0 empty, 1 full) eases with a raised
cosine over each half: inhale ``v = (1 − cos πu) / 2``, exhale ``v = (1 + cos πu) / 2``,
``u`` the share of the stage done; 1 during the hold after the inhale, 0 after the exhale.
With an inhale fraction of ½ and no holds, ``2v − 1 = −cos 2πφ``: the sinusoid the
simulated subject breathes.

**Changes** (:class:`~vagus.core.events.PacerChange`, always the whole new setting):

- *switched on* (from off) at ``t``: an inhale starts at ``t`` (φ = 0) with the new shape;
- *switched off*: no phase (None) from ``t`` on;
- *anything else* (rate, inhale fraction, holds, mode): the phase at ``t`` is kept and only
  its speed changes at once (``rate_bpm``; SCIENCE.md "Phase-continuous rate change").
  The shape, i.e. where in φ the stages lie, cannot also change at ``t`` without the drawn
  lung volume jumping (a new inhale fraction can put φ from the exhale into the inhale),
  so the cycle under way finishes with its own stage shares (its holds scaled by the new
  period) and the new shape starts with the next inhale (φ = 0, where every shape has
  volume 0). A change at the start of an inhale, or one that leaves the shares as they
  are (a rate change without holds), takes effect whole at ``t``.

Both φ and the lung volume are therefore continuous at every change except the switch
on (tests/test_pacer.py checks this as a property). The pacer emits a
:class:`~vagus.core.events.PacerState` at every change of its actual state: at each
:class:`~vagus.core.events.PacerChange`, and at the inhale where a deferred shape starts
or a mode strategy changes the setting. A view draws the pacer from the latest state
alone. A change timed before the pacer's last state (a control stamped a moment before a
deferred shape started) replaces what the pacer had planned after its time.

**Modes.** ``off`` and ``fixed`` here; ``scan`` (stepped resonance assessment) and
``adaptive`` (closed loop) are strategies in :mod:`vagus.core.resonance`: a
:class:`PacerMode` is asked at the start of every inhale (:meth:`PacerMode.on_breath`)
whether to change the setting, may watch the session's computed events
(:meth:`PacerMode.observe`) and hand out events of its own (:meth:`PacerMode.take_events`,
collected by :meth:`Pacer.take_mode_events`). A strategy that answers with another mode
(a finished scan goes on as ``fixed`` at the rate found) is replaced by that mode's.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from vagus.core.events import ComputedEvent, PacerChange, PacerState, check_control
from vagus.exceptions import InvalidInput

__all__ = [
    "Breath",
    "CycleShape",
    "FixedMode",
    "Pacer",
    "PacerMode",
    "PacerSettings",
    "Stage",
    "breath_shape",
]

Stage = Literal["inhale", "hold_in", "exhale", "hold_out"]

#: A change this close (cycles) to the start of an inhale is at it (float round-off).
_AT_INHALE = 1e-9


class Breath(NamedTuple):
    """The breath at one phase: lung volume 0-1, the stage, and the share of it done (0-1)."""

    volume: float
    stage: Stage
    progress: float


class CycleShape(NamedTuple):
    """Where the stages of one cycle end, in phase units (0 ≤ ends ≤ 1).

    The inhale is ``[0, inhale_end)``, the hold after it ``[inhale_end, hold_in_end)``,
    the exhale ``[hold_in_end, exhale_end)`` and the hold after it ``[exhale_end, 1)``.
    """

    inhale_end: float
    hold_in_end: float
    exhale_end: float

    @classmethod
    def of(
        cls, rate_bpm: float, inhale_fraction: float, hold_in_s: float, hold_out_s: float
    ) -> CycleShape:
        """The shape of a cycle at ``rate_bpm`` (see the module docstring)."""
        period_s = 60.0 / rate_bpm
        hin = hold_in_s / period_s
        exhale_end = 1.0 - hold_out_s / period_s
        inhale = inhale_fraction * (exhale_end - hin)
        return cls(inhale, inhale + hin, exhale_end)

    @property
    def inhale_fraction(self) -> float:
        """The inhale's share of the breathing time."""
        return self.inhale_end / (self.inhale_end + self.exhale_end - self.hold_in_end)

    def holds_s(self, rate_bpm: float) -> tuple[float, float]:
        """The holds (s) of this shape at ``rate_bpm``."""
        period_s = 60.0 / rate_bpm
        return (
            max(0.0, (self.hold_in_end - self.inhale_end) * period_s),
            max(0.0, (1.0 - self.exhale_end) * period_s),
        )

    def breath(self, phase: float) -> Breath:
        """Lung volume, stage and progress at ``phase`` (wrapped into [0, 1))."""
        p = phase - math.floor(phase)
        a, b, c = self
        if p < a:
            u = p / a
            return Breath((1.0 - math.cos(math.pi * u)) * 0.5, "inhale", u)
        if p < b:
            return Breath(1.0, "hold_in", (p - a) / (b - a))
        if p < c:
            u = (p - b) / (c - b)
            return Breath((1.0 + math.cos(math.pi * u)) * 0.5, "exhale", u)
        return Breath(0.0, "hold_out", (p - c) / (1.0 - c) if c < 1.0 else 0.0)

    def volume(self, phase: float) -> float:
        """:meth:`breath`'s volume alone (the simulated subject's hot path)."""
        p = phase - math.floor(phase)
        a, b, c = self
        if p < a:
            return (1.0 - math.cos(math.pi * p / a)) * 0.5
        if p < b:
            return 1.0
        if p < c:
            return (1.0 + math.cos(math.pi * (p - b) / (c - b))) * 0.5
        return 0.0


#: Symmetric breathing without holds (inhale fraction ½): volume ``(1 − cos 2πφ) / 2``.
SYMMETRIC = CycleShape(0.5, 0.5, 1.0)


def breath_shape(phase: float, state: PacerState | PacerChange | PacerSettings) -> Breath | None:
    """The breath at ``phase`` drawn with the rate, inhale fraction and holds of ``state``
    (None when that pacer is off). The function ``web/static/js/pacer.js`` mirrors."""
    rate = state.rate_bpm
    if rate is None or state.mode == "off":
        return None
    shape = CycleShape.of(rate, state.inhale_fraction, state.hold_in_s, state.hold_out_s)
    return shape.breath(phase)


@dataclass(frozen=True, slots=True)
class PacerSettings:
    """What a :class:`~vagus.core.events.PacerChange` sets (without its time)."""

    mode: str = "off"
    rate_bpm: float | None = None
    inhale_fraction: float = 0.4
    hold_in_s: float = 0.0
    hold_out_s: float = 0.0

    @property
    def running(self) -> bool:
        """True unless the pacer is off (mode ``off`` or no rate)."""
        return self.mode != "off" and self.rate_bpm is not None

    @classmethod
    def of(cls, change: PacerChange) -> PacerSettings:
        """The settings of a (checked) pacer change."""
        return cls(
            change.mode,
            change.rate_bpm,
            change.inhale_fraction,
            change.hold_in_s,
            change.hold_out_s,
        )


class PacerMode:
    """A pacer mode's strategy: the seam ``scan`` and ``adaptive`` plug into.

    The pacer calls :meth:`on_breath` at the start of every inhale while it runs in this
    mode (only if :attr:`wants_breaths`), and a session hands it its computed events
    through :meth:`observe` (only if :attr:`observes`). This base class is the ``fixed``
    mode: it never changes the setting.
    """

    #: The pacer calls :meth:`on_breath` at every inhale only when this is True.
    wants_breaths: bool = False
    #: A session passes its computed events to :meth:`observe` only when this is True.
    observes: bool = False

    def on_breath(self, t_s: float, settings: PacerSettings) -> PacerSettings | None:
        """An inhale starts at ``t_s``: the settings from there, or None to keep them."""
        return None

    def observe(self, participant: str | None, event: ComputedEvent) -> None:
        """A computed event of the session (a participant's beat, metrics, spectrum ...)."""

    def take_events(self) -> list[ComputedEvent]:
        """Events the strategy made since the last call (e.g. a resonance estimate)."""
        return []


class FixedMode(PacerMode):
    """``fixed``: the rate, ratio and holds stay as set."""


#: The strategy of each mode without the resonance strategies (``scan`` and ``adaptive``
#: run as ``fixed``); :class:`Pacer` by default uses ``vagus.core.resonance.MODES``.
DEFAULT_MODES: Mapping[str, Callable[[], PacerMode]] = {
    "fixed": FixedMode,
    "scan": FixedMode,
    "adaptive": FixedMode,
}


class _Segment(NamedTuple):
    """The pacer from ``t0_s`` on: cycles at t0, cycles per second (0 when off), shape."""

    t0_s: float
    cycles0: float
    hz: float
    shape: CycleShape | None
    state: PacerState


class Pacer:
    """The pacer of one session (sans-I/O: time arrives with each call).

    Calling contract::

        pacer = Pacer()
        states = pacer.receive_change(change)   # a PacerChange (times in order)
        states += pacer.advance_to(t_s)         # the session's time moved on
        pacer.phase_at(t_s), pacer.breath_at(t_s), pacer.cycles_at(t_s)

    Each call returns the :class:`~vagus.core.events.PacerState` events it caused, in
    time order (a change earlier than the last state replaces the states after it). The
    phase functions answer for any time: before the first change and
    while off they give None; past the last state they extrapolate it (a deferred shape
    included), which is exact unless another change comes.

    Args:
        modes: the strategy of each running mode (default
            :data:`vagus.core.resonance.MODES`: ``scan`` and ``adaptive`` with their
            default configurations).
    """

    def __init__(self, modes: Mapping[str, Callable[[], PacerMode]] | None = None) -> None:
        if modes is None:
            from vagus.core.resonance import MODES  # the strategies build on this module

            modes = MODES
        self._modes = dict(modes)
        self._mode_events: list[ComputedEvent] = []
        self._guidance = "full"
        self._guidance_level: str | None = None
        self._segments: list[_Segment] = []
        self._starts: list[float] = []  # segment start times, for bisect
        self._pending: tuple[float, PacerSettings] | None = None  # (t, settings) deferred
        self._settings = PacerSettings()
        self._mode: PacerMode | None = None
        self._next_inhale_s = math.inf  # the next inhale the mode is asked at
        self._t_s = -math.inf  # the time the pacer has been advanced to

    # ------------------------------------------------------------------ public

    @property
    def settings(self) -> PacerSettings:
        """The setting last asked for (by a change or the mode's strategy)."""
        return self._settings

    @property
    def state(self) -> PacerState | None:
        """The latest state emitted (None before the first change)."""
        return self._segments[-1].state if self._segments else None

    @property
    def mode(self) -> PacerMode | None:
        """The running mode's strategy (None while off)."""
        return self._mode

    @property
    def off_since_s(self) -> float | None:
        """The time from which the pacer is off (``-inf`` if it never ran), or None
        while it runs (a cheap test for followers of every beat)."""
        segs = self._segments
        if not segs:
            return -math.inf
        last = segs[-1]
        return last.t0_s if last.shape is None else None

    @property
    def has_mode_events(self) -> bool:
        """True when :meth:`take_mode_events` has something."""
        return bool(self._mode_events)

    @property
    def next_change_s(self) -> float:
        """The earliest time :meth:`advance_to` can change anything at (a deferred shape
        starts, or the mode is asked at an inhale); ``inf`` when nothing is planned.
        Advancing to an earlier time emits nothing (a session feeds beats in bulk up to it)."""
        pending = self._pending
        if pending is not None and pending[0] < self._next_inhale_s:
            return pending[0]
        return self._next_inhale_s

    @property
    def guidance(self) -> str:
        """The current guidance cue: ``"full"`` or ``"subtle"`` (see :meth:`set_guidance`)."""
        return self._guidance

    @property
    def guidance_level(self) -> str | None:
        """The coherence-adaptive guidance's level (None: off), carried by every state."""
        return self._guidance_level

    def set_guidance_level(self, level: str | None) -> None:
        """Guidance was turned on at ``level`` or off (None), or its level changed: note
        it and show the pacer in full again. Emits nothing: call it just before the
        :meth:`receive_change` that set it, whose state carries both (a state the pacer
        emits is always the whole picture)."""
        self._guidance_level = level
        self._guidance = "full"

    def set_guidance(self, t_s: float, cue: str) -> PacerState | None:
        """Show the pacer as ``cue`` (``"full"`` or ``"subtle"``) from ``t_s`` (or from the
        pacer's latest state, if later). Returns the new state (phase and speed kept), or
        None if nothing changed or the pacer is off or about to start a deferred shape
        (every later state carries the cue)."""
        if cue not in ("full", "subtle"):
            raise InvalidInput(f"guidance must be 'full' or 'subtle', got {cue!r}")
        if cue == self._guidance:
            return None
        self._guidance = cue
        if not self._segments or self._pending is not None:
            return None
        last = self._segments[-1]
        if last.shape is None:
            return None
        t = max(t_s, last.t0_s)
        cycles = last.cycles0 + (t - last.t0_s) * last.hz
        phase = cycles - math.floor(cycles)
        state = dataclasses.replace(last.state, t_s=t, phase=phase if phase < 1.0 else 0.0)
        return self._push(_Segment(t, cycles, last.hz, last.shape, state))

    def take_mode_events(self) -> list[ComputedEvent]:
        """Events the mode strategies made since the last call (in order)."""
        events, self._mode_events = self._mode_events, []
        return events

    def receive_change(
        self, change: PacerChange, *, cycles: float | None = None
    ) -> list[PacerState]:
        """Apply a pacer change at its ``t_s`` (see the module docstring for the rules).

        Args:
            change: the whole new setting.
            cycles: set the pacer's cycle count at ``change.t_s`` to this (and the new
                shape at once) instead of keeping the phase: for joining a pacer already
                running elsewhere at a known phase (the simulated subject). Rarely needed.

        A change earlier than the pacer's last state (a control stamped a moment before a
        deferred shape started) replaces everything the pacer had planned after its time:
        the states after it are dropped from :meth:`history` and the phase at its time is
        kept as always.

        Raises:
            ProtocolError: a field out of range (as :func:`~vagus.core.events.check_control`).
                The pacer is unchanged.
        """
        checked = check_control(change)
        assert isinstance(checked, PacerChange)
        t = checked.t_s
        if cycles is not None and not (isinstance(cycles, int | float) and math.isfinite(cycles)):
            raise InvalidInput(f"cycles must be a finite number, got {cycles!r}")
        self._rewind(t)
        out = self.advance_to(t)
        settings = PacerSettings.of(checked)
        self._settings = settings
        self._pending = None
        if not settings.running:
            self._mode = None
            self._next_inhale_s = math.inf
            state = PacerState(
                t,
                "off",
                None,
                settings.inhale_fraction,
                settings.hold_in_s,
                settings.hold_out_s,
                None,
            )
            out.append(self._push(_Segment(t, 0.0, 0.0, None, state)))
            return out
        assert settings.rate_bpm is not None
        hz = settings.rate_bpm / 60.0
        new_shape = CycleShape.of(
            settings.rate_bpm, settings.inhale_fraction, settings.hold_in_s, settings.hold_out_s
        )
        now = self._segments[-1] if self._segments else None
        if cycles is not None:
            c0 = float(cycles)
            shape = new_shape
        elif now is None or now.shape is None:
            c0 = 0.0  # switched on: an inhale starts now
            shape = new_shape
        else:
            c0 = now.cycles0 + (t - now.t0_s) * now.hz
            at_inhale = c0 - math.floor(c0) < _AT_INHALE or math.ceil(c0) - c0 < _AT_INHALE
            if at_inhale:
                c0 = float(round(c0))
            shape = now.shape  # the cycle under way keeps its shares ...
            if at_inhale or _same(shape, new_shape):
                shape = new_shape
            else:  # ... and the new shape starts with the next inhale.
                self._pending = (t + (math.ceil(c0) - c0) / hz, settings)
        self._mode = self._modes.get(settings.mode, FixedMode)()
        out.append(self._push(_Segment(t, c0, hz, shape, self._state(t, c0, settings, shape))))
        self._schedule_breaths()
        return out

    def receive_state(self, state: PacerState) -> None:
        """Take over an actual state (e.g. one a session emitted): from ``state.t_s`` the
        pacer runs exactly as that state says (its phase and shape at once). For a
        follower, such as a simulated subject breathing with a session's pacer.

        A state earlier than the pacer's last replaces what came after its time (as
        :meth:`receive_change`).
        """
        self._rewind(state.t_s)
        self._guidance = state.guidance
        self._guidance_level = state.guidance_level
        self._pending = None
        self._mode = None
        self._next_inhale_s = math.inf
        self._settings = PacerSettings(
            state.mode, state.rate_bpm, state.inhale_fraction, state.hold_in_s, state.hold_out_s
        )
        if state.rate_bpm is None or state.mode == "off" or state.phase is None:
            self._push(_Segment(state.t_s, 0.0, 0.0, None, state))
            return
        shape = CycleShape.of(
            state.rate_bpm, state.inhale_fraction, state.hold_in_s, state.hold_out_s
        )
        self._push(_Segment(state.t_s, state.phase, state.rate_bpm / 60.0, shape, state))

    def advance_to(self, t_s: float) -> list[PacerState]:
        """The session's time reached ``t_s``: start the deferred shape and ask the mode
        at every inhale up to ``t_s``; returns the states that caused (in time order)."""
        out: list[PacerState] = []
        if t_s <= self._t_s:
            return out
        self._t_s = t_s
        while True:
            pending = self._pending
            t_pending = pending[0] if pending is not None else math.inf
            t_next = min(t_pending, self._next_inhale_s)
            if t_next > t_s:
                return out
            now = self._segments[-1]
            c0 = float(round(now.cycles0 + (t_next - now.t0_s) * now.hz))
            settings = self._settings
            if pending is not None and t_pending <= t_next:
                self._pending = None
            else:
                mode = self._mode
                assert mode is not None
                asked = mode.on_breath(t_next, settings)
                self._mode_events.extend(mode.take_events())
                if asked is None or asked == settings:
                    self._next_inhale_s = t_next + 1.0 / now.hz
                    continue
                try:
                    asked = _checked_settings(asked, t_next)
                except InvalidInput:  # a strategy's bad answer changes nothing
                    self._next_inhale_s = t_next + 1.0 / now.hz
                    continue
                if asked.mode != settings.mode and asked.running:
                    self._mode = self._modes.get(asked.mode, FixedMode)()
                self._settings = settings = asked
                if not asked.running:
                    off = PacerState(
                        t_next, "off", None, asked.inhale_fraction, asked.hold_in_s,
                        asked.hold_out_s, None,
                    )  # fmt: skip
                    out.append(self._push(_Segment(t_next, 0.0, 0.0, None, off)))
                    self._mode = None
                    self._next_inhale_s = math.inf
                    continue
            assert settings.rate_bpm is not None
            shape = CycleShape.of(
                settings.rate_bpm,
                settings.inhale_fraction,
                settings.hold_in_s,
                settings.hold_out_s,
            )
            hz = settings.rate_bpm / 60.0
            state = self._state(t_next, c0, settings, shape)
            out.append(self._push(_Segment(t_next, c0, hz, shape, state)))
            self._schedule_breaths()

    def position_at(self, t_s: float) -> tuple[float, float, CycleShape] | None:
        """``(cycles, cycles per second, shape)`` at ``t_s`` in one look-up (None while
        off): what the simulated subject reads on every step."""
        seg = self._segment_at(t_s)
        if seg is None or seg.shape is None:
            return None
        shape = seg.shape
        pending = self._pending
        if pending is not None and t_s >= pending[0] and seg is self._segments[-1]:
            shape = self.shape_at(t_s) or shape
        return seg.cycles0 + (t_s - seg.t0_s) * seg.hz, seg.hz, shape

    def linear_at(self, t_s: float) -> tuple[float, float, float, CycleShape, float] | None:
        """The piece of the pacer in force at ``t_s``: ``(t0_s, cycles0, hz, shape,
        t_end_s)``, meaning ``cycles(t) = cycles0 + (t − t0_s) · hz`` with ``shape`` for
        ``t_s ≤ t < t_end_s`` (unless a change comes); None while off. For a follower that
        reads the pacer on every step (the simulated subject)."""
        seg = self._segment_at(t_s)
        if seg is None or seg.shape is None:
            return None
        shape = seg.shape
        if seg is not self._segments[-1]:
            k = bisect.bisect_right(self._starts, t_s)
            return seg.t0_s, seg.cycles0, seg.hz, shape, self._starts[k]
        t_end = self._next_inhale_s
        pending = self._pending
        if pending is not None:
            if t_s < pending[0]:
                t_end = min(t_end, pending[0])
            else:
                shape = self.shape_at(t_s) or shape
        return seg.t0_s, seg.cycles0, seg.hz, shape, t_end

    def cycles_at(self, t_s: float) -> float | None:
        """Cycles since the pacer was (last) switched on, at ``t_s``; None while off."""
        seg = self._segment_at(t_s)
        if seg is None or seg.shape is None:
            return None
        return seg.cycles0 + (t_s - seg.t0_s) * seg.hz

    def phase_at(self, t_s: float) -> float | None:
        """The phase at ``t_s`` (0 ≤ φ < 1, 0 = the start of an inhale); None while off."""
        cycles = self.cycles_at(t_s)
        if cycles is None:
            return None
        phase = cycles - math.floor(cycles)
        return phase if phase < 1.0 else 0.0

    def rate_hz_at(self, t_s: float) -> float | None:
        """Cycles per second at ``t_s`` (``rate_bpm / 60``); None while off."""
        seg = self._segment_at(t_s)
        return None if seg is None or seg.shape is None else seg.hz

    def shape_at(self, t_s: float) -> CycleShape | None:
        """The shape of the cycle running at ``t_s`` (a deferred one from its inhale on)."""
        seg = self._segment_at(t_s)
        if seg is None or seg.shape is None:
            return None
        pending = self._pending
        if pending is not None and t_s >= pending[0] and seg is self._segments[-1]:
            s = pending[1]
            assert s.rate_bpm is not None
            return CycleShape.of(s.rate_bpm, s.inhale_fraction, s.hold_in_s, s.hold_out_s)
        return seg.shape

    def breath_at(self, t_s: float) -> Breath | None:
        """Lung volume, stage and progress at ``t_s`` (:meth:`CycleShape.breath`)."""
        cycles = self.cycles_at(t_s)
        shape = self.shape_at(t_s)
        if cycles is None or shape is None:
            return None
        return shape.breath(cycles)

    def state_at(self, t_s: float) -> PacerState | None:
        """The state in force at ``t_s`` with its phase advanced to ``t_s``."""
        seg = self._segment_at(t_s)
        if seg is None:
            return None
        st = seg.state
        pending = self._pending
        if pending is not None and t_s >= pending[0] and seg is self._segments[-1]:
            s = pending[1]
            return PacerState(
                t_s, s.mode, s.rate_bpm, s.inhale_fraction, s.hold_in_s, s.hold_out_s,
                self.phase_at(t_s), st.guidance, st.guidance_level,
            )  # fmt: skip
        return PacerState(
            t_s, st.mode, st.rate_bpm, st.inhale_fraction, st.hold_in_s, st.hold_out_s,
            self.phase_at(t_s), st.guidance, st.guidance_level,
        )  # fmt: skip

    def history(self) -> list[PacerState]:
        """The pacer's states in time order: every state emitted, less those a later
        change at an earlier time replaced."""
        return [seg.state for seg in self._segments]

    # --------------------------------------------------------------- internals

    def _rewind(self, t_s: float) -> None:
        """Drop what the pacer planned after ``t_s`` (a change or state at ``t_s`` comes)."""
        segs = self._segments
        if not segs or segs[-1].t0_s <= t_s:
            return
        while segs and segs[-1].t0_s > t_s:
            segs.pop()
            self._starts.pop()
        self._pending = None  # it belonged to a dropped state; the change sets its own
        self._t_s = min(self._t_s, t_s)

    def _push(self, seg: _Segment) -> PacerState:
        st = seg.state
        if st.guidance != self._guidance or st.guidance_level != self._guidance_level:
            st = dataclasses.replace(
                st, guidance=self._guidance, guidance_level=self._guidance_level
            )
            seg = seg._replace(state=st)
        segs = self._segments
        # Two states at the same time: the later replaces the earlier (a view would too).
        while segs and segs[-1].t0_s >= seg.t0_s:
            segs.pop()
            self._starts.pop()
        segs.append(seg)
        self._starts.append(seg.t0_s)
        return seg.state

    def _segment_at(self, t_s: float) -> _Segment | None:
        segs = self._segments
        if not segs:
            return None
        last = segs[-1]
        if t_s >= last.t0_s:
            return last
        k = bisect.bisect_right(self._starts, t_s) - 1
        return segs[k] if k >= 0 else None

    def _schedule_breaths(self) -> None:
        """Ask the mode at the next inhale (if it wants to be asked)."""
        seg = self._segments[-1]
        if self._mode is None or not self._mode.wants_breaths or seg.shape is None:
            self._next_inhale_s = math.inf
            return
        c0 = seg.cycles0
        # The next inhale after the segment's start (one at its start came with the change).
        self._next_inhale_s = seg.t0_s + (math.floor(c0) + 1.0 - c0) / seg.hz

    @staticmethod
    def _state(t_s: float, cycles: float, settings: PacerSettings, shape: CycleShape) -> PacerState:
        rate = settings.rate_bpm
        assert rate is not None
        hold_in, hold_out = shape.holds_s(rate)
        phase = cycles - math.floor(cycles)
        if phase >= 1.0:
            phase = 0.0
        exact = _same(
            shape,
            CycleShape.of(rate, settings.inhale_fraction, settings.hold_in_s, settings.hold_out_s),
        )
        if exact:  # the setting as given (not its shares rounded back to seconds)
            frac, hold_in, hold_out = (
                settings.inhale_fraction,
                settings.hold_in_s,
                settings.hold_out_s,
            )
        else:
            frac = shape.inhale_fraction
        return PacerState(t_s, settings.mode, rate, frac, hold_in, hold_out, phase)


def _same(a: CycleShape, b: CycleShape) -> bool:
    return all(abs(x - y) <= 1e-12 for x, y in zip(a, b, strict=True))


def _checked_settings(settings: Any, t_s: float) -> PacerSettings:
    """A mode strategy's answer, checked as a change at ``t_s`` would be."""
    if not isinstance(settings, PacerSettings):
        raise InvalidInput(f"a pacer mode must return PacerSettings or None, got {settings!r:.60}")
    change = check_control(
        PacerChange(
            t_s,
            settings.rate_bpm,
            settings.inhale_fraction,
            settings.mode,
            settings.hold_in_s,
            settings.hold_out_s,
        )
    )
    assert isinstance(change, PacerChange)
    return PacerSettings.of(change)
