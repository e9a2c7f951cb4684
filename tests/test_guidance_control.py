"""Coherence-adaptive guidance as a control input (issue 12 §1), and a plan's phase as the
small ``plan`` state the views are sent (issue 12 §2).

Guidance is turned on, off or to another level by a ``PacerChange`` with ``guidance``
(stored and replayed like any pacer change); every ``pacer_state`` after it carries the
level (``guidance_level``) and the cue (``guidance``: "subtle" while coherence has stayed
high). The subject is a heart whose rate follows a 6/min breath (coherent), then an
irregular rhythm (coherence drops).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from vagus.core.events import (
    GUIDANCE_LEVEL_NAMES,
    Marker,
    PacerChange,
    PacerState,
    check_control,
    event_from_json,
)
from vagus.core.plans import Plan, PlanPhase, plan_from_toml, plan_state_of_marker
from vagus.core.resonance import GUIDANCE_LEVELS
from vagus.exceptions import InvalidInput, ProtocolError
from vagus.plans import guidance_from_option
from vagus.session import Session

# ---------------------------------------------------------------------- the event


def test_pacer_change_guidance_round_trips_and_old_forms_read_as_keep() -> None:
    change = PacerChange(12.5, 6.0, 0.4, "adaptive", guidance="medium")
    obj = change.to_json()
    assert obj["guidance"] == "medium"
    assert event_from_json(obj) == change
    off = PacerChange(20.0, 6.0, guidance="off")
    assert event_from_json(off.to_json()) == off
    # Left out of the JSON form when None (keep): older stored forms stay as they were,
    # and a form without it reads as None.
    plain = PacerChange(3.0, 5.5, 0.4)
    assert "guidance" not in plain.to_json()
    old = {"type": "pacer", "t_s": 3.0, "rate_bpm": 5.5, "inhale_fraction": 0.4}
    assert event_from_json(old) == plain and plain.guidance is None


@pytest.mark.parametrize("bad", ["extreme", "", "MEDIUM", 2, True, ["medium"], {"a": 1}])
def test_pacer_change_with_a_bad_guidance_is_refused_naming_the_field(bad: Any) -> None:
    obj = {"type": "pacer", "t_s": 1.0, "rate_bpm": 6.0, "inhale_fraction": 0.4}
    with pytest.raises(ProtocolError) as info:
        event_from_json({**obj, "guidance": bad})
    assert info.value.field == "guidance"
    assert "gentle" in str(info.value)
    with pytest.raises(ProtocolError):
        check_control(PacerChange(1.0, 6.0, guidance=bad))


def test_pacer_state_carries_the_level_and_round_trips() -> None:
    st = PacerState(5.0, "fixed", 6.0, 0.4, 0.0, 0.0, 0.25, "subtle", "gentle")
    obj = st.to_json()
    assert obj["guidance"] == "subtle" and obj["guidance_level"] == "gentle"
    assert event_from_json(obj) == st
    off = replace(st, guidance="full", guidance_level=None)
    assert "guidance_level" not in off.to_json() and "guidance" not in off.to_json()
    with pytest.raises(ProtocolError) as info:
        event_from_json({**obj, "guidance_level": "off"})
    assert info.value.field == "guidance_level"


def test_the_level_names_are_the_thresholds_keys() -> None:
    assert tuple(GUIDANCE_LEVELS) == GUIDANCE_LEVEL_NAMES


def test_guidance_option() -> None:
    assert guidance_from_option(" Medium ") == "medium"
    assert guidance_from_option("off") is None
    with pytest.raises(InvalidInput, match="gentle, medium, challenging or off"):
        guidance_from_option("hard")


# ---------------------------------------------------------------------- the session


def _coherent_then_irregular(
    coherent_s: float, until_s: float, seed: int = 5
) -> list[tuple[float, float]]:
    """(beat time, RR ms): heart rate 60·(1 − 0.1·cos 2π·0.1·t) up to ``coherent_s``,
    then RR drawn uniformly from 600-1300 ms (no breathing peak) up to ``until_s``."""
    beats: list[tuple[float, float]] = []
    t, acc, dt = 0.0, 0.0, 1e-3
    last = 0.0
    while t < coherent_s:
        acc += (1.0 - 0.1 * math.cos(2 * math.pi * 0.1 * t)) * dt
        t += dt
        if acc >= 1.0:
            acc -= 1.0
            beats.append((t, (t - last) * 1000.0))
            last = t
    rng = np.random.default_rng(seed)
    t = beats[-1][0]
    while t < until_s:
        rr = float(rng.uniform(600.0, 1300.0))
        t += rr / 1000.0
        beats.append((t, rr))
    return beats


Input = tuple[str, float, Any]


def _run(inputs: list[Input]) -> list[PacerState]:
    """Feed ``inputs`` (("control", t, change) or ("rr", t, rr_ms)) to a new session; its
    pacer states."""
    session = Session(("ann",))
    for kind, t, value in inputs:
        if kind == "control":
            session.receive_control(value)
        else:
            session.receive_rr("ann", value, t_s=t)
    session.close()
    return [e.event for e in session.events_received() if isinstance(e.event, PacerState)]


def _inputs(controls: list[PacerChange], beats: list[tuple[float, float]]) -> list[Input]:
    items: list[Input] = [("control", c.t_s, c) for c in controls]
    items += [("rr", t, rr) for t, rr in beats]
    return sorted(items, key=lambda i: (i[1], i[0] == "rr"))


def test_a_pacer_change_turns_guidance_on_and_the_pacer_fades_and_comes_back() -> None:
    beats = _coherent_then_irregular(200.0, 400.0)
    states = _run(_inputs([PacerChange(0.0, 6.0, 0.5, guidance="medium")], beats))
    cues = [(s.guidance, s.guidance_level) for s in states]
    assert cues == [("full", "medium"), ("subtle", "medium"), ("full", "medium")], cues
    assert 60.0 <= states[1].t_s <= 200.0 < states[2].t_s < 300.0
    # Without the control's guidance, the same input never fades.
    plain = _run(_inputs([PacerChange(0.0, 6.0, 0.5)], beats))
    assert [(s.guidance, s.guidance_level) for s in plain] == [("full", None)]


def test_guidance_off_a_new_level_and_keep() -> None:
    beats = _coherent_then_irregular(400.0, 400.5)
    controls = [
        PacerChange(0.0, 6.0, 0.5, guidance="gentle"),
        # A rate change without guidance keeps it (and the cue) as it is.
        PacerChange(100.0, 6.0, 0.5),
        # Off while subtle: the pacer is back in full at once and never fades again.
        PacerChange(200.0, 6.0, 0.5, guidance="off"),
        PacerChange(250.0, 6.0, 0.5, guidance="challenging"),
    ]
    states = _run(_inputs(controls, beats))
    at = {round(s.t_s): (s.guidance, s.guidance_level) for s in states}
    assert at[0] == ("full", "gentle")
    subtle = [s for s in states if s.guidance == "subtle"]
    assert subtle and subtle[0].guidance_level == "gentle" and subtle[0].t_s < 200.0
    assert at[200] == ("full", None)
    assert all(s.guidance == "full" for s in states if 200.0 <= s.t_s < 250.0)
    assert at[250] == ("full", "challenging")
    # A new level starts its watch afresh: no fade within its hold (60 s) of the change.
    assert all(s.guidance == "full" for s in states if 250.0 <= s.t_s < 310.0)
    # The change at 100 s left guidance out: kept, level and cue.
    assert at[100][1] == "gentle"


def test_replay_of_the_stored_input_gives_the_same_pacer_states() -> None:
    beats = _coherent_then_irregular(220.0, 330.0)
    controls = [
        PacerChange(0.0, 6.0, 0.5, guidance="gentle"),
        PacerChange(150.0, 5.5, 0.4),
        PacerChange(300.0, 6.0, 0.4, guidance="off"),
    ]
    live = _run(_inputs(controls, beats))
    at = {s.t_s: (s.guidance, s.guidance_level) for s in live}
    # The rate change at 150 s leaves guidance out: the faded pacer stays faded.
    assert at[150.0] == ("subtle", "gentle") and at[300.0] == ("full", None)
    # The stored form of every control is its JSON; a replay rebuilds it.
    stored = [event_from_json(c.to_json()) for c in controls]
    assert stored == controls
    again = _run(_inputs(stored, beats))  # type: ignore[arg-type]
    assert [s.to_json() for s in again] == [s.to_json() for s in live]


# ---------------------------------------------------------------------- plans


def test_a_plan_phase_may_set_guidance_from_toml() -> None:
    plan = plan_from_toml(
        """
        name = "evening"
        [[phase]]
        name = "baseline"
        minutes = 1
        [[phase]]
        name = "practice"
        minutes = 5
        pacer = "fixed"
        rate_bpm = 6
        guidance = "medium"
        [[phase]]
        name = "recovery"
        minutes = 1
        guidance = "off"
        """
    )
    changes = [c for c in plan.controls(10.0) if isinstance(c, PacerChange)]
    assert [c.guidance for c in changes] == [None, "medium", "off"]
    assert changes[1].t_s == 70.0 and changes[1].rate_bpm == 6.0
    with pytest.raises(InvalidInput, match="guidance"):
        plan_from_toml('[[phase]]\nminutes = 1\nguidance = "hard"')
    with pytest.raises(InvalidInput, match="guidance"):
        plan_from_toml("[[phase]]\nminutes = 1\nguidance = 2")


def test_plan_state_of_each_phase_marker_and_the_end() -> None:
    plan = Plan("p", (PlanPhase("baseline", 30.0), PlanPhase("practice", 90.0, "fixed")))
    markers = [c for c in plan.controls(5.0) if isinstance(c, Marker)]
    states = [plan_state_of_marker(m.to_json()) for m in markers]
    assert states == [
        {
            "type": "plan",
            "t_s": 5.0,
            "participant": None,
            "phase": "baseline",
            "number": 1,
            "of": 2,
            "ends_s": 35.0,
        },
        {
            "type": "plan",
            "t_s": 35.0,
            "participant": None,
            "phase": "practice",
            "number": 2,
            "of": 2,
            "ends_s": 125.0,
        },
        {
            "type": "plan",
            "t_s": 125.0,
            "participant": None,
            "phase": None,
            "number": None,
            "of": None,
            "ends_s": None,
        },
    ]
    assert plan_state_of_marker(Marker(3.0, "eyes closed").to_json()) is None
    assert plan_state_of_marker({"type": "marker", "t_s": None, "text": "plan end"}) is None


def test_demo_and_live_refuse_an_unknown_guidance_level_before_starting(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from vagus.cli import main

    for command in ("demo", "live"):
        base = [command, "--no-browser", "--port", "0", "--data-dir", str(tmp_path)]
        assert main([*base, "--guidance", "hard"]) == 1
        err = capsys.readouterr().err
        assert "--guidance 'hard'" in err and "gentle, medium, challenging or off" in err
        assert "Traceback" not in err
