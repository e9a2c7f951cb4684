"""The phase-continuous pacer (vagus.core.pacer).

Properties (hypothesis): at no change does the phase or the drawn lung volume jump
(except the switch on, which starts an inhale); whole cycles draw the holds and the
inhale:exhale ratio as set; every state the pacer emits is a valid protocol event.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vagus.core.events import PacerChange, PacerState, event_from_json
from vagus.core.pacer import (
    CycleShape,
    Pacer,
    PacerMode,
    PacerSettings,
    breath_shape,
)
from vagus.exceptions import InvalidInput


def _wrapped(d: float) -> float:
    return d - math.floor(d + 0.5)


def _left_limit(prev: PacerState, t_s: float) -> tuple[float, float] | None:
    """Phase and volume just before ``t_s`` as a view draws them from ``prev``."""
    if prev.rate_bpm is None or prev.phase is None:
        return None
    phase = prev.phase + (t_s - prev.t_s) * prev.rate_bpm / 60.0
    breath = breath_shape(phase, prev)
    assert breath is not None
    return phase, breath.volume


@st.composite
def _changes(draw: st.DrawFn) -> list[PacerChange]:
    out: list[PacerChange] = []
    t = draw(st.floats(0.0, 100.0))
    for _ in range(draw(st.integers(1, 8))):
        t += draw(st.floats(0.0, 40.0))
        if draw(st.integers(0, 9)) == 0:
            out.append(PacerChange(t, None))
            continue
        rate = draw(st.floats(1.0, 40.0))
        cycle = 60.0 / rate
        room = max(0.0, min(30.0, cycle - 1.0))
        hold_in = draw(st.floats(0.0, room)) if draw(st.booleans()) else 0.0
        hold_out = draw(st.floats(0.0, room - hold_in)) if draw(st.booleans()) else 0.0
        frac = draw(st.floats(0.1, 0.9))
        mode = draw(st.sampled_from(["fixed", "scan", "adaptive"]))
        out.append(PacerChange(t, rate, frac, mode, hold_in, hold_out))
    return out


@settings(max_examples=300, deadline=None)
@given(changes=_changes(), tail_s=st.floats(0.0, 200.0))
def test_no_phase_or_volume_jump_at_any_change(changes: list[PacerChange], tail_s: float) -> None:
    pacer = Pacer()
    states: list[PacerState] = []
    for change in changes:
        states += pacer.receive_change(change)
    states += pacer.advance_to(changes[-1].t_s + tail_s)
    for prev, state in itertools.pairwise(states):
        assert state.t_s >= prev.t_s
        left = _left_limit(prev, state.t_s)
        if state.phase is None:
            continue  # switched off
        if left is None:
            assert state.phase == 0.0  # switched on: an inhale starts
            continue
        phase, volume = left
        assert abs(_wrapped(state.phase - phase)) < 1e-9, (prev, state)
        breath = breath_shape(state.phase, state)
        assert breath is not None
        assert abs(breath.volume - volume) < 1e-6, (prev, state, volume, breath)
    for state in states:  # every state is a valid protocol event
        assert event_from_json(json.loads(json.dumps(state.to_json()))) == state


@settings(max_examples=200, deadline=None)
@given(changes=_changes(), offsets=st.lists(st.floats(0.0, 300.0), min_size=1, max_size=20))
def test_phase_functions_agree_with_the_latest_state(
    changes: list[PacerChange], offsets: list[float]
) -> None:
    pacer = Pacer()
    for change in changes:
        pacer.receive_change(change)
    t_end = changes[-1].t_s
    for dt in sorted(offsets):
        t = t_end + dt
        pacer.advance_to(t)
        state = pacer.state_at(t)
        assert state is not None
        phase = pacer.phase_at(t)
        if state.rate_bpm is None or state.mode == "off":
            assert phase is None and pacer.breath_at(t) is None
            continue
        assert phase is not None and 0.0 <= phase < 1.0
        assert state.phase == phase
        piece = pacer.linear_at(t)  # what a follower reads: the same cycles and shape
        assert piece is not None and piece[4] > t
        t0, c0, hz, shape, _ = piece
        assert c0 + (t - t0) * hz == pacer.cycles_at(t) and shape == pacer.shape_at(t)
        # The drawn breath from the state alone is the pacer's own.
        assert breath_shape(phase, state) == pytest.approx(pacer.breath_at(t))


def _stage_durations(pacer: Pacer, t0: float, cycle_s: float, n: int = 20_000) -> dict[str, float]:
    """Time (s) spent in each stage over [t0, t0 + cycle_s), by dense sampling."""
    ts = t0 + (np.arange(n) + 0.5) * cycle_s / n
    out = {"inhale": 0.0, "hold_in": 0.0, "exhale": 0.0, "hold_out": 0.0}
    for t in ts:
        breath = pacer.breath_at(float(t))
        assert breath is not None
        out[breath.stage] += cycle_s / n
    return out


@pytest.mark.parametrize(
    ("rate", "frac", "hold_in", "hold_out"),
    [
        (6.0, 0.4, 0.0, 0.0),
        (3.75, 0.5, 4.0, 4.0),
        (60 / 19, 4 / 12, 7.0, 0.0),
        (12.0, 0.3, 0.5, 1.0),
    ],
)
def test_whole_cycles_draw_the_holds_and_ratio_as_set(
    rate: float, frac: float, hold_in: float, hold_out: float
) -> None:
    pacer = Pacer()
    pacer.receive_change(PacerChange(10.0, rate, frac, "fixed", hold_in, hold_out))
    cycle_s = 60.0 / rate
    step = cycle_s / 20_000
    for k in (0, 7):  # the first cycle and a later one
        got = _stage_durations(pacer, 10.0 + k * cycle_s, cycle_s)
        breathing = cycle_s - hold_in - hold_out
        assert got["inhale"] == pytest.approx(frac * breathing, abs=2 * step)
        assert got["exhale"] == pytest.approx((1 - frac) * breathing, abs=2 * step)
        assert got["hold_in"] == pytest.approx(hold_in, abs=2 * step)
        assert got["hold_out"] == pytest.approx(hold_out, abs=2 * step)
        # An inhale starts at every whole cycle, with the lungs empty.
        start = pacer.breath_at(10.0 + k * cycle_s)
        assert start is not None and start.stage == "inhale" and start.volume == 0.0


def test_switched_on_an_inhale_starts_then_the_rate_changes_only_the_speed() -> None:
    pacer = Pacer()
    assert pacer.phase_at(5.0) is None
    (on,) = pacer.receive_change(PacerChange(5.0, 6.0))
    assert on == PacerState(5.0, "fixed", 6.0, 0.4, 0.0, 0.0, 0.0)
    assert pacer.phase_at(5.0) == 0.0
    assert pacer.phase_at(7.5) == pytest.approx(0.25)
    # 6 → 5 breaths/min at 32.5 s (2.75 cycles in): the phase stays, only the speed changes.
    (change,) = pacer.receive_change(PacerChange(32.5, 5.0))
    assert change.phase == pytest.approx(0.75)
    assert pacer.phase_at(32.5 + 2.0) == pytest.approx(0.75 + 2.0 * 5.0 / 60.0)
    assert pacer.cycles_at(32.5 + 3.0) == pytest.approx(2.75 + 0.25)
    (off,) = pacer.receive_change(PacerChange(40.0, 5.0, mode="off"))
    assert off.mode == "off" and off.phase is None and pacer.phase_at(41.0) is None
    (again,) = pacer.receive_change(PacerChange(50.0, 6.0))
    assert again.phase == 0.0 and pacer.cycles_at(60.0) == pytest.approx(1.0)


def test_a_new_shape_starts_with_the_next_inhale() -> None:
    pacer = Pacer()
    pacer.receive_change(PacerChange(0.0, 6.0, 0.4))  # 10 s cycles: 4 s in, 6 s out
    # At 4.5 s (exhaling) the ratio becomes 1:1 and a 2 s hold after the inhale is asked.
    (now,) = pacer.receive_change(PacerChange(4.5, 6.0, 0.5, "fixed", 2.0, 0.0))
    assert now.inhale_fraction == pytest.approx(0.4) and now.hold_in_s == 0.0
    breath = pacer.breath_at(4.5)
    assert breath is not None and breath.stage == "exhale"
    assert pacer.advance_to(9.99) == []
    (later,) = pacer.advance_to(10.0)
    assert later == PacerState(10.0, "fixed", 6.0, 0.5, 2.0, 0.0, 0.0)
    got = _stage_durations(pacer, 10.0, 10.0)
    assert got["inhale"] == pytest.approx(4.0, abs=0.01)
    assert got["hold_in"] == pytest.approx(2.0, abs=0.01)
    assert got["exhale"] == pytest.approx(4.0, abs=0.01)


def test_a_rate_change_with_holds_scales_the_cycle_under_way() -> None:
    pacer = Pacer()
    pacer.receive_change(PacerChange(0.0, 6.0, 0.5, "fixed", 2.0, 2.0))  # 3 in, 2, 3 out, 2
    (now,) = pacer.receive_change(PacerChange(1.0, 3.0, 0.5, "fixed", 2.0, 2.0))  # 20 s cycle
    # The rest of this cycle keeps its shares: its holds last 4 s at the new period.
    assert (now.hold_in_s, now.hold_out_s) == pytest.approx((4.0, 4.0))
    assert now.phase == pytest.approx(0.1)
    (nxt,) = pacer.advance_to(100.0)
    assert nxt.t_s == pytest.approx(1.0 + 0.9 * 20.0)
    assert (nxt.hold_in_s, nxt.hold_out_s, nxt.phase) == (2.0, 2.0, 0.0)


def test_symmetric_shape_is_the_sinusoid() -> None:
    state = PacerSettings("fixed", 6.0, 0.5)
    for phase in np.linspace(0.0, 0.999, 97):
        breath = breath_shape(float(phase), state)
        assert breath is not None
        assert 2 * breath.volume - 1 == pytest.approx(-math.cos(2 * math.pi * phase), abs=1e-12)
    assert breath_shape(0.3, PacerSettings()) is None  # off


def test_bad_changes_are_refused_and_change_nothing() -> None:
    pacer = Pacer()
    pacer.receive_change(PacerChange(10.0, 6.0))
    before = pacer.history()
    for bad in (
        PacerChange(11.0, 50.0),
        PacerChange(11.0, 6.0, 0.0),
        PacerChange(11.0, 6.0, mode="turbo"),
        PacerChange(11.0, 6.0, hold_in_s=9.5),  # leaves 0.5 s of a 10 s cycle to breathe
    ):
        with pytest.raises(InvalidInput):
            pacer.receive_change(bad)
    assert pacer.history() == before


def test_a_change_before_the_last_state_replaces_what_came_after() -> None:
    pacer = Pacer()
    pacer.receive_change(PacerChange(0.0, 6.0, 0.4))
    pacer.receive_change(PacerChange(4.5, 6.0, 0.5, "fixed", 2.0, 0.0))  # shape at 10 s
    assert [s.t_s for s in pacer.advance_to(12.0)] == [10.0]
    # A change stamped at 9 s (before the deferred shape started) arrives now.
    (state,) = pacer.receive_change(PacerChange(9.0, 5.0, 0.4))
    assert state.phase == pytest.approx(0.9)  # the phase at 9 s is kept
    assert [s.t_s for s in pacer.history()] == [0.0, 4.5, 9.0]
    assert pacer.phase_at(12.0) == pytest.approx(0.9 + 3.0 * 5.0 / 60.0 - 1.0)


@settings(max_examples=150, deadline=None)
@given(changes=_changes(), order=st.randoms(use_true_random=False))
def test_changes_in_any_order_leave_a_continuous_history(
    changes: list[PacerChange], order: Any
) -> None:
    pacer = Pacer()
    shuffled = list(changes)
    order.shuffle(shuffled)
    for change in shuffled:
        pacer.receive_change(change)
        pacer.advance_to(change.t_s + 30.0)
    history = pacer.history()
    assert [s.t_s for s in history] == sorted(s.t_s for s in history)
    # A pacer switched off and on again at one instant starts an inhale there (a new
    # pacer: the spec's "switched on at t_s starts an inhale at t_s"); the history keeps
    # only the last state of an instant, so that restart is not a jump.
    restarts = {c.t_s for c in changes if c.rate_bpm is None or c.mode == "off"}
    for prev, state in itertools.pairwise(history):
        left = _left_limit(prev, state.t_s)
        if state.phase is None or left is None:
            continue
        if state.t_s in restarts and state.phase == 0.0:
            continue
        assert abs(_wrapped(state.phase - left[0])) < 1e-9, (prev, state)


class _Stepper(PacerMode):
    """A strategy that slows the rate by 0.5/min at every inhale, down to 4.5."""

    wants_breaths = True

    def __init__(self) -> None:
        self.asked: list[float] = []

    def on_breath(self, t_s: float, settings: PacerSettings) -> PacerSettings | None:
        self.asked.append(t_s)
        assert settings.rate_bpm is not None
        if settings.rate_bpm <= 4.5:
            return None
        return PacerSettings(settings.mode, settings.rate_bpm - 0.5, settings.inhale_fraction)


def test_a_mode_strategy_is_asked_at_every_inhale_and_its_changes_are_states() -> None:
    stepper = _Stepper()
    pacer = Pacer(modes={"scan": lambda: stepper, "fixed": PacerMode})
    pacer.receive_change(PacerChange(0.0, 6.0, mode="scan"))
    states = pacer.advance_to(60.0)
    # 6 → 5.5 at 10 s, → 5 at 10 + 60/5.5 s, → 4.5 after 60/5 s more; then it keeps 4.5.
    t1 = 10.0
    t2 = t1 + 60.0 / 5.5
    t3 = t2 + 60.0 / 5.0
    assert [s.t_s for s in states] == pytest.approx([t1, t2, t3])
    assert [s.rate_bpm for s in states] == [5.5, 5.0, 4.5]
    assert all(s.phase == 0.0 and s.mode == "scan" for s in states)
    assert stepper.asked[:3] == pytest.approx([t1, t2, t3])
    assert stepper.asked[3] == pytest.approx(t3 + 60.0 / 4.5)
    # A fixed pacer is never asked.
    fixed = Pacer(modes={"fixed": _Stepper})
    fixed.receive_change(PacerChange(0.0, 6.0))
    assert fixed.advance_to(60.0) and fixed.mode is not None  # its own strategy ran
    plain = Pacer()
    plain.receive_change(PacerChange(0.0, 6.0))
    assert plain.advance_to(600.0) == []


def test_a_follower_takes_over_a_state() -> None:
    leader = Pacer()
    leader.receive_change(PacerChange(0.0, 6.0, 0.4, "fixed", 1.0, 0.0))
    (state,) = leader.receive_change(PacerChange(12.5, 5.0, 0.4, "fixed", 1.0, 0.0))
    follower = Pacer()
    follower.receive_state(state)
    for t in (12.5, 13.0, 20.0, 40.0):
        assert follower.phase_at(t) == pytest.approx(leader.phase_at(t))
        assert follower.breath_at(t) == pytest.approx(leader.breath_at(t)) or t >= 22.0


def test_cycle_shape_of_settings() -> None:
    shape = CycleShape.of(3.75, 0.5, 4.0, 4.0)  # box breathing 4-4-4-4
    assert shape == pytest.approx((0.25, 0.5, 0.75))
    assert shape.holds_s(3.75) == pytest.approx((4.0, 4.0))
    assert shape.inhale_fraction == pytest.approx(0.5)
