"""``vagus import`` / ``vagus export`` against a real SQLite store in ``tmp_path``.

Round trips: export kubios -> import kubios gives the same RR (and the same pipeline
events); EDF+ read back with pyedflib gives the same RR and markers; the JSON export
parses back into the same events. Nothing is half-imported after an error.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from vagus.cli import main
from vagus.core.events import Marker, PacerChange, event_from_json
from vagus.core.pipeline import Pipeline
from vagus.formats.export import read_edf_annotations, run_session
from vagus.formats.registry import read_rr_file
from vagus.store.base import ControlRecord, GapRecord, RRRecord, feed
from vagus.store.open import open_store

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VU = DATA / "wearablehrv" / "test_vu.txt"
HEARTMATH = DATA / "wearablehrv" / "test_heartmath.csv"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared recordings are not next to the project)")
    return path


def cli_import(
    capsys: pytest.CaptureFixture[str], data_dir: Path, path: Path, *extra: str
) -> dict[str, object]:
    code = main(["import", str(path), "--data-dir", str(data_dir), "--json", "-q", *extra])
    out = capsys.readouterr().out
    assert code == 0, out
    result: dict[str, object] = json.loads(out)
    return result


def cli_export(
    capsys: pytest.CaptureFixture[str], data_dir: Path, sid: str, fmt: str, out: Path
) -> None:
    code = main(["export", sid, "--format", fmt, "-o", str(out), "--data-dir", str(data_dir), "-q"])
    capsys.readouterr()
    assert code == 0
    assert out.exists()


def test_imported_session_replays_like_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = cli_import(capsys, tmp_path, need(HEARTMATH))
    assert result["format"] == "heartmath" and result["beats"] == 3042
    imported = read_rr_file(HEARTMATH)
    # The events of the stored session are those of the file's records fed directly.
    p = Pipeline()
    for r in imported.records():
        feed(p, r)
    p.close()
    direct = p.events_received()
    store = open_store(tmp_path)
    try:
        info = store.get_session(str(result["id"]))
        assert info.source == "import:heartmath"
        assert info.ended_unix_s is not None
        assert info.summary["beats"] == 3042
        assert info.summary["gaps"] == len(imported.breaks) > 0
        run = run_session(store, info.id)
    finally:
        store.close()
    assert run.events == direct


def test_kubios_round_trip_same_rr_same_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "store"
    first = cli_import(capsys, data, need(VU))
    out = tmp_path / "vu_kubios.txt"
    cli_export(capsys, data, str(first["id"]), "kubios", out)
    again = cli_import(capsys, data, out)
    assert again["format"] == "kubios"
    original = read_rr_file(VU)
    back = read_rr_file(out)
    assert back.rr_ms == original.rr_ms
    assert back.t_s is not None and original.t_s is not None
    assert np.allclose(back.t_s, original.t_s, atol=1e-6)
    store = open_store(data)
    try:
        a = run_session(store, str(first["id"])).events
        b = run_session(store, str(again["id"])).events
    finally:
        store.close()
    assert a == b


def test_kubios_round_trip_keeps_gaps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "store"
    first = cli_import(capsys, data, need(HEARTMATH))
    out = tmp_path / "hm_kubios.txt"
    cli_export(capsys, data, str(first["id"]), "kubios", out)
    back = read_rr_file(out)
    original = read_rr_file(HEARTMATH)
    assert back.rr_ms == original.rr_ms
    assert [i for i, _ in back.breaks] == [i for i, _ in original.breaks]


def session_with_markers(data: Path) -> str:
    """A session holding RR, a link gap, markers and pacer changes (written directly)."""
    rng = np.random.default_rng(11)
    rr = [float(v) for v in rng.normal(850, 45, 900)]
    t = list(np.cumsum(rr) / 1000.0)
    t2 = [v + 12.0 for v in t[450:]]
    store = open_store(data)
    try:
        info = store.create_session(title="markers", source="import:test", started_unix_s=1.7e9)
        store.append_many(
            info.id,
            [
                ControlRecord(PacerChange(t_s=0.5, rate_bpm=6.0, inhale_fraction=0.4)),
                RRRecord(rr_ms=tuple(rr[:300]), t_s=tuple(t[:300])),
                ControlRecord(Marker(t_s=t[299] + 0.1, text="start breathing, 6/min")),
                RRRecord(rr_ms=tuple(rr[300:450]), t_s=tuple(t[300:450])),
                GapRecord(t_s=t[449], reason="link_lost"),
                RRRecord(rr_ms=tuple(rr[450:]), t_s=tuple(t2)),
                ControlRecord(Marker(t_s=t2[-1] + 0.2, text="end; ünïcode ok")),
            ],
        )
        store.end_session(info.id)
        return info.id
    finally:
        store.close()


def test_edf_round_trip_rr_and_markers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pyedflib = pytest.importorskip("pyedflib")
    data = tmp_path / "store"
    sid = session_with_markers(data)
    out = tmp_path / "s.edf"
    cli_export(capsys, data, sid, "edf", out)
    store = open_store(data)
    try:
        run = run_session(store, sid)
    finally:
        store.close()
    t_rr, rr = run.measured_rr()
    notes = read_edf_annotations(out)
    rr_notes = [(on, text) for on, _, text in notes if text.startswith("RR=")]
    assert [float(text.split()[0][3:]) for _, text in rr_notes] == pytest.approx(rr, abs=1e-4)
    assert [on for on, _ in rr_notes] == pytest.approx(t_rr, abs=1e-3)
    markers = [text for _, _, text in notes if text.startswith("Marker: ")]
    assert markers == ["Marker: start breathing, 6/min", "Marker: end; ünïcode ok"]
    gaps = [(d, text) for _, d, text in notes if text.startswith("Gap: ")]
    assert len(gaps) == 1 and gaps[0][1] == "Gap: link_lost" and gaps[0][0] > 10
    assert any(text.startswith("Pacer: 6/min") for _, _, text in notes)
    reader = pyedflib.EdfReader(str(out))
    try:
        assert reader.getSignalLabels() == ["RR", "NN"]
        sig = reader.readSignal(0)
        assert sig.size == reader.getNSamples()[0] > 0
        assert np.median(sig) == pytest.approx(np.median(rr), rel=0.05)
    finally:
        reader.close()


def test_json_export_parses_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "store"
    sid = session_with_markers(data)
    out = tmp_path / "s.json"
    cli_export(capsys, data, sid, "json", out)
    doc = json.loads(out.read_text())
    assert doc["format"] == "vagus-session"
    assert doc["session"]["id"] == sid and doc["session"]["title"] == "markers"
    store = open_store(data)
    try:
        run = run_session(store, sid)
    finally:
        store.close()
    assert [event_from_json(e) for e in doc["events"]] == run.events
    assert doc["summary"]["markers"] == 2 and doc["summary"]["gaps"] == 1


def test_csv_export_one_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "store"
    sid = session_with_markers(data)
    out = tmp_path / "s.csv"
    cli_export(capsys, data, sid, "csv", out)
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    store = open_store(data)
    try:
        run = run_session(store, sid)
    finally:
        store.close()
    beats = [r for r in rows if r["type"] == "beat"]
    assert len(beats) == len(run.beats())
    _, rr = run.measured_rr()
    assert [float(r["rr_ms"]) for r in beats if r["inserted"] == "false"] == rr
    assert any(r["rmssd_60s_ms"] for r in beats), "metrics sit on the beat rows"
    assert {r["text"] for r in rows if r["type"] == "marker"} == {
        "start breathing, 6/min",
        "end; ünïcode ok",
    }
    spectra = [r for r in rows if r["type"] == "spectrum"]
    assert spectra and any(r["coherence_ratio"] for r in spectra)
    assert [r["reason"] for r in rows if r["type"] == "gap"] == ["link_lost"]
    assert rows[0]["time_utc"].startswith("2023-11-14T22:13:")


def test_corrupt_import_leaves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "store"
    lines = need(VU).read_text().splitlines()
    lines[2000] = lines[2000].replace("\t", " ", 2)
    bad = tmp_path / "vu_bad.txt"
    bad.write_text("\n".join(lines) + "\n")
    code = main(["import", str(bad), "--data-dir", str(data), "-q"])
    err = capsys.readouterr().err
    assert code == 1
    assert "line 2001" in err
    store = open_store(data)
    try:
        assert store.list_sessions() == []
    finally:
        store.close()


def test_export_unknown_session(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    session_with_markers(tmp_path)
    code = main(["export", "zzzz", "--format", "csv", "--data-dir", str(tmp_path), "-q"])
    assert code == 1
    assert "zzzz" in capsys.readouterr().err
