"""Issue 12 in the views, in a real browser against a real ``vagus demo --plan FILE
--guidance gentle``: the session plan's phase and the time left on the breathing view
(participants get no markers: the server's ``plan`` frames), and coherence-adaptive
guidance set from the dashboard.

- The breathing view, opened after the plan started (its state from ``hello``), shows the
  phase's name and the time left counting down, and the next phase when it comes; the
  dashboard shows the same phase.
- The dashboard's guidance control shows the level the session runs at (``--guidance``,
  then the plan phase's own) and changes it through the pacer command; the breathing view
  fades to a faint cue while the pacer is "subtle" and comes back when guidance is turned
  off. Real coherence takes minutes to stay high, so the breathing view's websocket
  marks the server's pacer states "subtle" while (and only while) they carry a guidance
  level: turning guidance off on the dashboard is what brings the shape back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.browser import (
    READY,
    Pages,
    VagusServer,
    edit_pacer_states,
    screenshot,
    wait_faded_but_moving,
)

pytestmark = pytest.mark.timeout(120)

PLAN = """
name = "short"
[[phase]]
name = "arrive"
seconds = 25
pacer = "fixed"
rate_bpm = 20
[[phase]]
name = "practice"
minutes = 10
pacer = "fixed"
rate_bpm = 15
guidance = "medium"
"""

LEFT = "() => Number(document.querySelector('#plan').dataset.leftS)"
PHASE = "() => document.querySelector('#plan').dataset.phase"


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VagusServer]:
    folder = tmp_path_factory.mktemp("plan")
    plan = folder / "short.toml"
    plan.write_text(PLAN, encoding="utf-8")
    args = ["demo", "--plan", str(plan), "--guidance", "gentle"]
    with VagusServer(args, folder / "data") as server:
        yield server


def test_breathing_view_shows_the_plan_phase_and_the_time_left(
    planned: VagusServer, pages: Pages, tmp_path: Path
) -> None:
    breathe, dash = pages.participant_and_practitioner(planned)
    breathe.wait_for_function("document.querySelector('#plan').dataset.phase !== ''")
    assert breathe.is_visible("#plan")
    assert breathe.evaluate(PHASE) == "arrive"
    # What is shown and the test hook, read at one instant.
    left, text = breathe.evaluate(
        "() => { const el = document.querySelector('#plan');"
        " return [Number(el.dataset.leftS), el.textContent]; }"
    )
    assert 0 < left <= 25, left
    assert re.fullmatch(r"arrive · 0:\d\d left", text), text
    assert int(text.split(":")[1][:2]) == left
    # It counts down with the session clock.
    breathe.wait_for_function(f"Number(document.querySelector('#plan').dataset.leftS) < {left}")
    # The dashboard shows the same phase, and the guidance the session started with.
    dash.wait_for_function("!document.querySelector('#plan-chip').classList.contains('hidden')")
    assert dash.inner_text("#plan-chip").startswith("arrive (1/2)")
    assert dash.input_value("#p-guidance") == "gentle"
    assert "guidance gentle" in dash.inner_text("#pacer-now")
    screenshot(breathe, "breathe-plan", tmp_path)
    # The next phase: its name and its 10 minutes; its own guidance level.
    breathe.wait_for_function(
        "document.querySelector('#plan').dataset.phase === 'practice'", timeout=40000
    )
    assert 590 <= breathe.evaluate(LEFT) <= 600
    assert re.fullmatch(r"practice · (10:00|9:\d\d) left", breathe.inner_text("#plan"))
    assert breathe.inner_text("#rate") == "15"
    dash.wait_for_function("document.querySelector('#p-guidance').value === 'medium'")
    assert dash.inner_text("#plan-chip").startswith("practice (2/2)")
    pages.console.assert_clean()


def test_guidance_from_the_dashboard_fades_the_breathing_view_and_off_brings_it_back(
    planned: VagusServer, pages: Pages
) -> None:
    def mark(st: dict[str, Any]) -> bool:
        # What the server sends once coherence has stayed high: "subtle", while guidance
        # is on (the states carry its level).
        if st.get("guidance_level"):
            st["guidance"] = "subtle"
            return True
        return False

    breathe = pages.new(width=800, height=700)
    edit_pacer_states(breathe, mark)
    breathe.goto(planned.links["urls"]["participant"])
    breathe.wait_for_function(READY)
    dash = pages.open(planned.links["urls"]["practitioner"])
    dash.wait_for_function("document.querySelector('#p-guidance').value !== 'off'")
    wait_faded_but_moving(breathe, 8)
    # The practitioner turns guidance off: the next pacer state has no level, the shape
    # comes back in full.
    dash.select_option("#p-guidance", "off")
    dash.click("#p-apply")
    dash.wait_for_function("document.querySelector('#pacer-now').dataset.guidanceLevel === 'off'")
    assert "guidance" not in dash.inner_text("#pacer-now")
    breathe.wait_for_function("document.body.dataset.guidance === 'full'")
    breathe.wait_for_function(
        "Number(document.querySelector('#pacer').dataset.alpha) === 1", timeout=5000
    )
    # And on again at another level.
    dash.select_option("#p-guidance", "challenging")
    dash.click("#p-apply")
    dash.wait_for_function(
        "document.querySelector('#pacer-now').dataset.guidanceLevel === 'challenging'"
    )
    assert dash.input_value("#p-guidance") == "challenging"
    breathe.wait_for_function("document.body.dataset.guidance === 'subtle'")
    pages.console.assert_clean()


def test_solo_participant_sets_guidance_from_the_breathing_view(
    planned: VagusServer, pages: Pages
) -> None:
    breathe, dash = pages.participant_and_practitioner(planned)
    breathe.click("#open-controls")
    assert breathe.is_visible("#c-guidance")
    breathe.wait_for_function("document.querySelector('#c-guidance').value !== ''")
    level = "medium" if breathe.input_value("#c-guidance") != "medium" else "gentle"
    breathe.select_option("#c-guidance", level)
    breathe.click("#c-apply")
    breathe.wait_for_function("document.querySelector('#c-sent').textContent === 'applied'")
    dash.wait_for_function(
        f"document.querySelector('#pacer-now').dataset.guidanceLevel === '{level}'"
    )
    assert breathe.input_value("#c-guidance") == level
    pages.console.assert_clean()
