"""Session plans (issue 12 §2): presets, TOML plans, phases as control events, and the
command-line parsing of --plan and --pacer."""

from __future__ import annotations

from pathlib import Path

import pytest

from vagus.core.events import Marker, PacerChange, PacerState
from vagus.core.plans import PRESETS, Plan, PlanPhase, phase_of_marker, plan_from_toml, preset
from vagus.exceptions import InvalidInput
from vagus.plans import load_plan, pacer_change_from_option
from vagus.session import Session

TOML = """
name = "evening"
[[phase]]
name = "settle"
minutes = 1.5
[[phase]]
name = "practice"
minutes = 8
pacer = "fixed"
rate_bpm = 5.5
inhale_fraction = 0.45
[[phase]]
seconds = 45
pacer = "adaptive"
"""


def test_presets_run_as_markers_and_pacer_changes() -> None:
    plan = preset("10-minute practice")
    assert plan.duration_s == 840.0
    controls = plan.controls(100.0, default_rate_bpm=5.25)
    assert [type(c) for c in controls] == [Marker, PacerChange] * 3 + [Marker]
    assert [c.t_s for c in controls] == [100.0, 100.0, 220.0, 220.0, 820.0, 820.0, 940.0]
    changes = [c for c in controls if isinstance(c, PacerChange)]
    assert [(c.mode, c.rate_bpm) for c in changes] == [
        ("off", None),
        ("adaptive", 5.25),  # the participant's stored resonance rate
        ("off", None),
    ]
    markers = [c.text for c in controls if isinstance(c, Marker)]
    assert markers[1] == "phase 2/3: practice (10 min)" and markers[-1] == "plan end"
    assert phase_of_marker(markers[1]) == (2, 3, "practice", 10.0)
    assert phase_of_marker("eyes closed") is None
    scan = preset("Resonance_Assessment").controls(default_rate_bpm=5.0)
    assert [(c.mode, c.rate_bpm) for c in scan if isinstance(c, PacerChange)][1] == ("scan", 6.5)
    assert preset("baseline-only").controls()[1] == PacerChange(0.0, None, 0.4, "off")
    assert set(PRESETS) == {"resonance assessment", "10-minute practice", "baseline only"}


def test_phase_at_gives_the_phase_and_time_left() -> None:
    plan = preset("10-minute practice")
    assert plan.phase_at(-1.0) is None and plan.phase_at(840.0) is None
    i, ph, left = plan.phase_at(0.0) or (None, None, None)
    assert (i, left) == (0, 120.0) and ph is not None and ph.name == "baseline"
    i, ph, left = plan.phase_at(700.0) or (None, None, None)
    assert (i, left) == (1, 20.0) and ph is not None and ph.pacer == "adaptive"


def test_plan_from_toml_and_its_errors(tmp_path: Path) -> None:
    plan = plan_from_toml(TOML)
    assert plan.name == "evening"
    assert plan.phases == (
        PlanPhase("settle", 90.0),
        PlanPhase("practice", 480.0, "fixed", 5.5, 0.45),
        PlanPhase("phase 3", 45.0, "adaptive"),
    )
    f = tmp_path / "evening.toml"
    f.write_text(TOML, encoding="utf-8")
    assert load_plan(str(f)) == plan
    assert load_plan("baseline only") is PRESETS["baseline only"]
    bad = {
        "name = 1\n[[phase]]\nminutes = 1": "name",
        "[[phase]]\nminutes = 1\npacer = 'slow'": "pacer",
        "[[phase]]\nname = 'x'": "minutes",
        "[[phase]]\nminutes = 1\nspeed = 2": "unknown key",
        "[[phase]]\nminutes = 0.01": "duration",
        "[[phase]]\nminutes = 2\nrate_bpm = 80\npacer = 'fixed'": "rate_bpm",
        "[[phase]]\nminutes = 2\ninhale_fraction = 0.95": "inhale_fraction",
        "title = 'x'": "unknown plan key",
        "name = 'x'": "at least one",
        "[[phase": "TOML",
    }
    for text, word in bad.items():
        with pytest.raises(InvalidInput, match=word):
            plan_from_toml(text)
    with pytest.raises(InvalidInput, match="presets"):
        load_plan("morning")
    with pytest.raises(InvalidInput, match="cannot read"):
        load_plan(str(tmp_path / "missing.toml"))
    with pytest.raises(InvalidInput, match="no phases"):
        Plan("empty", ())


@pytest.mark.parametrize(
    ("text", "mode", "rate"),
    [
        ("off", "off", None),
        ("fixed", "fixed", 6.0),
        ("fixed:5.5", "fixed", 5.5),
        ("Scan", "scan", 6.5),
        ("adaptive", "adaptive", 6.0),
        ("adaptive:4.75", "adaptive", 4.75),
    ],
)
def test_pacer_option(text: str, mode: str, rate: float | None) -> None:
    change = pacer_change_from_option(text, 3.0)
    assert (change.t_s, change.mode, change.rate_bpm) == (3.0, mode, rate)


def test_pacer_option_errors_and_stored_default() -> None:
    assert pacer_change_from_option("adaptive", default_rate_bpm=5.0).rate_bpm == 5.0
    for text in ("slow", "fixed:fast", "fixed:90", "scan:5", "off:6", ""):
        with pytest.raises(InvalidInput, match="--pacer"):
            pacer_change_from_option(text)


def test_a_plan_in_a_session_is_stored_and_replayed_as_its_controls() -> None:
    plan = Plan(
        "short",
        (PlanPhase("baseline", 60.0), PlanPhase("practice", 120.0, "adaptive", 5.5),
         PlanPhase("recovery", 60.0)),
    )  # fmt: skip

    def run() -> list[object]:
        session = Session(("ann",))
        pending = plan.controls(0.0)
        out: list[object] = []
        t = 0.0
        while t < 250.0:
            t += 1.0
            while pending and pending[0].t_s <= t:
                session.receive_control(pending.pop(0))
            session.receive_rr("ann", 1000.0, t_s=t)
            out += [e.event for e in session.events_received()]
        return out

    events = run()
    states = [e for e in events if isinstance(e, PacerState)]
    assert [(s.t_s, s.mode, s.rate_bpm) for s in states] == [
        (0.0, "off", None),
        (60.0, "adaptive", 5.5),
        (180.0, "off", None),
    ]
    texts = [e.text for e in events if isinstance(e, Marker)]
    assert texts == [
        "phase 1/3: baseline (1 min)",
        "phase 2/3: practice (2 min)",
        "phase 3/3: recovery (1 min)",
        "plan end",
    ]
    assert run() == events
