"""`vagus demo|live --pacer MODE[:RATE]` and `--plan NAME|FILE` (issue 12 §3): the
session starts with that pacer (or follows the plan, phase by phase, as stored control
events); a rate left out is the participant's latest stored resonance rate.

A real `vagus demo` subprocess on a free port with a real store; its websocket read as
the practitioner.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from service_helpers import client, demo
from support.closed_loop import records_of_run
from vagus.bench.pacer import run_closed_loop
from vagus.cli import main
from vagus.core.events import Marker, PacerChange
from vagus.sources.simulator import SubjectConfig
from vagus.store.base import ControlRecord
from vagus.store.open import open_store


async def test_demo_pacer_scan_starts_a_scan(tmp_path: Path) -> None:
    async with (
        demo(tmp_path / "data", "--pacer", "scan") as links,
        client(links["ws"]["practitioner"]) as pr,
    ):
        hello = await pr.recv()
    pacer = hello["state"]["pacer"]
    assert pacer["type"] == "pacer_state"
    assert pacer["mode"] == "scan" and pacer["rate_bpm"] == 6.5


def _store_scan(data: Path, who: str) -> float:
    """A stored session in which a scan found `who`'s resonance rate; returns it."""
    run = run_closed_loop(
        PacerChange(0.0, 6.5, 0.4, "scan"), 660.0, subject=SubjectConfig(resonance_bpm=5.0)
    )
    records = records_of_run(run, who)
    with open_store(data) as store:
        store.import_session(
            records, started_unix_s=1.7e9, ended_unix_s=1.7e9 + 700, participants=(who,)
        )
    found = next(r for r in run.resonance() if r.final).rate_bpm
    assert found is not None
    return found


async def test_adaptive_without_a_rate_starts_at_the_stored_resonance_rate(
    tmp_path: Path,
) -> None:
    found = _store_scan(tmp_path / "data", "me")
    async with (
        demo(tmp_path / "data", "--pacer", "adaptive") as links,
        client(links["ws"]["practitioner"]) as pr,
    ):
        hello = await pr.recv()
    pacer = hello["state"]["pacer"]
    assert pacer["mode"] == "adaptive"
    assert pacer["rate_bpm"] == pytest.approx(found, abs=1e-9)
    assert found != 6.0


async def test_demo_follows_a_plan_file_phase_by_phase(tmp_path: Path) -> None:
    plan = tmp_path / "quick.toml"
    plan.write_text(
        'name = "quick"\n'
        '[[phase]]\nname = "rest"\nseconds = 10\n'
        '[[phase]]\nname = "paced"\nseconds = 10\npacer = "fixed"\nrate_bpm = 9\n',
        encoding="utf-8",
    )
    data = tmp_path / "data"
    async with demo(data, "--plan", str(plan)) as links, client(links["ws"]["practitioner"]) as pr:
        hello = await pr.recv()
        first = [m["text"] for m in hello["state"]["markers"]]
        second = await pr.until(lambda f: f["type"] == "pacer_state" and f["rate_bpm"] == 9)
        assert second["mode"] == "fixed"
        end = await pr.until(lambda f: f["type"] == "marker" and f["text"] == "plan end")
    assert "phase 1/2: rest (0.166667 min)" in first
    assert hello["state"]["pacer"] is None or hello["state"]["pacer"]["mode"] == "off"
    assert end["t_s"] - second["t_s"] == pytest.approx(10.0, abs=1.5)
    # Stored as control events: a replay sees the plan's phases.
    with open_store(data) as store:
        controls = [
            r.event for r in store.iter_input(links["session"]) if isinstance(r, ControlRecord)
        ]
    texts = [e.text for e in controls if isinstance(e, Marker)]
    assert "phase 2/2: paced (0.166667 min)" in texts and "plan end" in texts
    assert any(isinstance(e, PacerChange) and e.rate_bpm == 9 for e in controls)


def test_bad_pacer_and_plan_options_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["demo", "--no-browser", "--port", "0", "--data-dir", str(tmp_path)]
    assert main([*base, "--pacer", "warp"]) == 1
    assert "unknown pacer mode 'warp'" in capsys.readouterr().err
    assert main([*base, "--plan", "no such preset"]) == 1
    assert "10-minute practice" in capsys.readouterr().err
    assert main([*base, "--pacer", "scan", "--plan", "baseline only"]) == 1
    assert "not both" in capsys.readouterr().err
