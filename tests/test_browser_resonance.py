"""Issue 12 in the views, in a real browser against a real ``vagus demo``.

- The breathing view fades the pacer to a subtle cue while ``pacer_state.guidance`` is
  "subtle" (coherence-adaptive guidance) and brings it back at once when it is not. The
  demo runs without guidance, so the test marks the server's own pacer_state frames
  "subtle" on their way to the page (Playwright's websocket routing), then lets them
  through untouched.
- A resonance scan started from the dashboard: the breathing view shows its gentle
  "finding your rate" state; the dashboard plots the RSA amplitude per pacer rate as the
  scan's breaths come in and shows the live amplitude and HR-pacer phase per breath.
"""

from __future__ import annotations

from typing import Any

import pytest

from support.browser import (
    READY,
    Pages,
    VagusServer,
    edit_pacer_states,
    server_fixture,
    wait_faded_but_moving,
)

pytestmark = pytest.mark.timeout(120)

demo = server_fixture("demo", "--rate", "20")


def test_subtle_guidance_fades_the_pacer_and_it_comes_back(demo: VagusServer, pages: Pages) -> None:
    subtle = {"on": True}

    def mark(st: dict[str, Any]) -> bool:
        if subtle["on"]:
            st["guidance"] = "subtle"
        return subtle["on"]

    breathe = pages.new(width=800, height=700)
    edit_pacer_states(breathe, mark)
    breathe.goto(demo.links["urls"]["participant"])
    breathe.wait_for_function(READY)
    dash = pages.open(demo.links["urls"]["practitioner"])
    # Faded to a faint cue, gradually (a few seconds), still moving with the pacer.
    wait_faded_but_moving(breathe)
    # Coherence dropped: the next pacer_state is full guidance again, and the shape is back.
    subtle["on"] = False
    dash.fill("#p-rate", "18")
    dash.click("#p-apply")
    breathe.wait_for_function("document.querySelector('#rate').textContent === '18'")
    assert breathe.evaluate("() => document.body.dataset.guidance") == "full"
    breathe.wait_for_function(
        "Number(document.querySelector('#pacer').dataset.alpha) === 1", timeout=5000
    )
    pages.console.assert_clean()


def test_scan_shows_finding_your_rate_and_the_amplitude_per_rate(
    demo: VagusServer, pages: Pages
) -> None:
    breathe, dash = pages.participant_and_practitioner(demo)
    assert breathe.evaluate("() => document.body.dataset.finding") == ""
    assert not breathe.is_visible("#finding")
    # Live RSA per breath from the fast fixed pacer already running.
    dash.wait_for_function(
        "document.querySelector('.num[data-metric=\"rsa_breath_bpm\"]').dataset.value !== ''",
        timeout=30000,
    )
    dash.wait_for_function(
        "document.querySelector('.num[data-metric=\"rsa_phase_deg\"]').dataset.value !== ''",
        timeout=30000,
    )
    phase = float(
        dash.evaluate(
            "() => document.querySelector('.num[data-metric=\"rsa_phase_deg\"]').dataset.value"
        )
    )
    assert -180.0 < phase <= 180.0
    dash.fill("#p-rate", "6.5")
    dash.select_option("#p-mode", "scan")
    dash.click("#p-apply")
    breathe.wait_for_function("document.body.dataset.finding === 'scan'")
    assert breathe.is_visible("#finding")
    assert "finding your rate" in breathe.inner_text("#finding")
    assert breathe.inner_text("#rate") == "6.5"
    # The scan's first rate gets its bar once a clean breath at 6.5/min has ended.
    dash.wait_for_function(
        "document.querySelector('#scan-plot').dataset.rates === '6.5'", timeout=60000
    )
    assert dash.is_visible("#scan-box")
    amps = dash.evaluate("() => document.querySelector('#scan-plot').dataset.amps")
    assert float(amps) > 0.5, amps
    assert "running" in dash.inner_text("#scan-title")
    pages.console.assert_clean()
