"""Issue 12 §2/§3 in the reports: `vagus progress` shows each participant's resonance
rate over time; `vagus report` shows the RSA amplitude, the resonance scan's table and,
for a session that followed a plan, its phases side by side.

Sessions are simulated in closed loop at max speed (the strap's packets into a Session,
its pacer states back to the simulated subject), stored in a real SQLite store and read
back through the one replay.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from support.closed_loop import records_of_run
from vagus.bench.pacer import run_closed_loop
from vagus.cli import main
from vagus.core.events import ControlEvent, PacerChange, PacerState, Resonance
from vagus.core.plans import Plan, PlanPhase
from vagus.session import Session
from vagus.sources.base import LinkGap, Packet
from vagus.sources.simulator import SubjectConfig, VirtualStrap
from vagus.store.base import ControlRecord, GapRecord, InputRecord, PacketRecord
from vagus.store.open import open_store

PLAN = Plan(
    "short practice",
    (
        PlanPhase("baseline", 120.0),
        PlanPhase("practice", 240.0, "fixed", 5.0),
        PlanPhase("recovery", 120.0),
    ),
)


def _plan_records(who: str, truth: float, seed: int) -> list[InputRecord]:
    """A session following PLAN, in closed loop, as the records the runner stores."""
    strap = VirtualStrap(SubjectConfig(resonance_bpm=truth), seed=seed)
    session = Session((who,))
    controls: list[ControlEvent] = PLAN.controls(1.0)
    records: list[InputRecord] = []
    t, end = 0.0, PLAN.duration_s + 5.0
    while t < end:
        t += 1.0
        while controls and controls[0].t_s <= t:
            ev = controls.pop(0)
            session.receive_control(ev)
            records.append(ControlRecord(ev))
            if isinstance(ev, PacerChange):
                strap.subject.follow_pacer(ev)
        for item in strap.packets_until(t):
            if isinstance(item, Packet):
                records.append(PacketRecord(item.t_arrival_s, item.payload, who))
                with contextlib.suppress(ValueError):
                    session.receive_packet(who, item.t_arrival_s, item.payload)
            elif isinstance(item, LinkGap):
                records.append(GapRecord(item.t_s, item.reason, who))
                session.receive_gap(who, item.t_s, item.reason)
        for se in session.events_received():
            if isinstance(se.event, PacerState):
                strap.subject.follow_pacer(se.event)
    return records


def _scan_records(who: str, truth: float) -> tuple[list[InputRecord], Resonance]:
    run = run_closed_loop(
        PacerChange(0.0, 6.5, 0.4, "scan"), 660.0, subject=SubjectConfig(resonance_bpm=truth)
    )
    records = records_of_run(run, who)
    return records, next(r for r in run.resonance() if r.final)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    root = tmp_path_factory.mktemp("store")
    store = open_store(root)
    try:
        scan, found = _scan_records("eve", 5.0)
        first = store.import_session(
            scan, started_unix_s=1.70e9, ended_unix_s=1.70e9 + 700, participants=("eve",)
        )
        plan = store.import_session(
            _plan_records("eve", 5.0, seed=3),
            started_unix_s=1.71e9,
            ended_unix_s=1.71e9 + 500,
            participants=("eve",),
        )
    finally:
        store.close()
    return root, {"scan": first.id, "plan": plan.id, "found": found}


def test_progress_shows_the_resonance_rate_per_session(
    data_dir: tuple[Path, dict[str, object]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, ids = data_dir
    found = ids["found"]
    assert isinstance(found, Resonance) and found.rate_bpm is not None
    out = tmp_path / "p.html"
    argv = ["progress", "--data-dir", str(root), "-o", str(out), "--json", "-q", "--refresh"]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)["sessions"]
    assert [r["id"] for r in rows] == [ids["scan"], ids["plan"]]
    # The scan's result, replayed: the same decision as live; the fixed-rate session has none.
    assert rows[0]["resonance_rate_bpm"] == pytest.approx(found.rate_bpm)
    assert rows[0]["resonance_confidence"] == pytest.approx(found.confidence)
    assert rows[1]["resonance_rate_bpm"] is None
    assert all(r["rsa_mean_amplitude_bpm"] > 1.0 for r in rows)
    html = out.read_text(encoding="utf-8")
    assert f"{round(found.rate_bpm, 2):g} · {found.confidence:.2f}" in html
    assert "not yet assessed" in html
    # The cache (written by the first run) gives the same values.
    assert main(argv[:-1]) == 0
    cached = json.loads(capsys.readouterr().out)["sessions"]
    assert [r["resonance_rate_bpm"] for r in cached] == [r["resonance_rate_bpm"] for r in rows]


def test_report_compares_the_plan_phases_side_by_side(
    data_dir: tuple[Path, dict[str, object]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, ids = data_dir
    out = tmp_path / "r.html"
    argv = ["report", str(ids["plan"]), "--data-dir", str(root), "-o", str(out), "--json", "-q"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    phases = result["phases"]
    assert [p["name"] for p in phases] == ["baseline", "practice", "recovery"]
    assert [p["pacer"] for p in phases] == ["off", "fixed 5", "off"]
    assert [round(p["duration_s"]) for p in phases] == [120, 240, 120]
    base, practice, recovery = phases
    for p in phases:
        assert 40.0 < p["hr_bpm"] < 100.0 and p["rmssd_ms"] > 0 and p["rsa_bpm"] > 0
    # Slow paced breathing at the resonance rate swings heart rate most (SCIENCE.md).
    assert practice["rsa_bpm"] > 1.5 * base["rsa_bpm"]
    assert practice["rsa_bpm"] > 1.5 * recovery["rsa_bpm"]
    assert practice["rmssd_ms"] > base["rmssd_ms"]
    assert result["rsa_mean_amplitude_bpm"] > 0
    html = out.read_text(encoding="utf-8")
    assert "Plan phases side by side" in html and 'id="breathing"' in html
    assert "RSA amplitude per breath" in html  # the figure's alt text


def test_report_of_a_scan_shows_its_table(
    data_dir: tuple[Path, dict[str, object]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, ids = data_dir
    found = ids["found"]
    assert isinstance(found, Resonance)
    out = tmp_path / "s.html"
    argv = ["report", str(ids["scan"]), "--data-dir", str(root), "-o", str(out), "--json", "-q"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["resonance_rate_bpm"] == pytest.approx(found.rate_bpm)
    assert result["phases"] == []
    html = out.read_text(encoding="utf-8")
    assert "Resonance scan:" in html
    for rate in found.rates_bpm:
        assert f'<td class="num">{rate:g}</td>' in html
    assert "Plan phases side by side" not in html
