"""EDF+ round trip keeps sub-second times (issue 8 §4): the export writes EDF+'s
sub-second start ("+0.ffff") and starts on the pipeline's 5 s spectrum grid, so a
re-import has the same beat times (to EDF+'s 100 µs), the same markers and the same
coherence windows. Before, the start was cut to a whole second: every beat and marker
moved by the start's fraction, the 5 s spectrum grid fell elsewhere in the beat series,
and the mean coherence changed (6.18 to 6.26 in the issue)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vagus.cli import main
from vagus.core.events import Marker, Spectrum
from vagus.formats.export import SessionRun, edf_origin, run_session
from vagus.store.base import ControlRecord, GapRecord, InputRecord, PacketRecord
from vagus.store.open import open_store


def _records(offset_s: float) -> list[InputRecord]:
    """The simulated paced session of the report tests, its clock moved by ``offset_s``
    (a live capture's monotonic clock starts anywhere)."""
    from test_report import simulated_records

    out: list[InputRecord] = []
    for rec in simulated_records(420.0, dropouts=()):
        if isinstance(rec, PacketRecord):
            out.append(PacketRecord(rec.t_arrival_s + offset_s, rec.payload))
        elif isinstance(rec, GapRecord):
            out.append(GapRecord(rec.t_s + offset_s, rec.reason))
        elif isinstance(rec, ControlRecord) and isinstance(rec.event, Marker):
            out.append(ControlRecord(Marker(rec.event.t_s + offset_s, rec.event.text)))
        else:
            out.append(rec)
    return out


def _coherence(run: SessionRun) -> list[float]:
    return [
        e.coherence_ratio
        for e in run.events
        if isinstance(e, Spectrum) and e.coherence_ratio is not None
    ]


def _wall(run: SessionRun, t_s: float) -> float:
    return run.info.started_unix_s + t_s - edf_origin(run)


@pytest.mark.parametrize(
    ("offset_s", "started_unix_s"),
    [(0.0, 1_700_000_000.37), (12_347.6, 1_700_000_000.81)],
    ids=["times-from-zero", "live-clock"],
)
def test_edf_round_trip_keeps_times_markers_and_coherence(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    offset_s: float,
    started_unix_s: float,
) -> None:
    pytest.importorskip("pyedflib")
    store = open_store(tmp_path)
    info = store.create_session(title="paced", source="sim", started_unix_s=started_unix_s)
    store.append_many(info.id, _records(offset_s))
    store.end_session(info.id)
    store.close()
    out = tmp_path / "s.edf"
    assert (
        main(["export", info.id, "--format", "edf", "-o", str(out), "--data-dir", str(tmp_path)])
        == 0
    )
    capsys.readouterr()
    assert main(["import", str(out), "--data-dir", str(tmp_path), "--json", "-q"]) == 0
    again_id = json.loads(capsys.readouterr().out)["id"]
    store = open_store(tmp_path)
    try:
        original = run_session(store, info.id)
        again = run_session(store, again_id)
    finally:
        store.close()
    # The same coherence windows with the same values (beat times differ by <= 50 µs).
    c0, c1 = _coherence(original), _coherence(again)
    assert len(c0) == len(c1) > 40
    np.testing.assert_allclose(c1, c0, rtol=1e-4)
    assert np.mean(c1) == pytest.approx(np.mean(c0), rel=1e-5)
    # Markers at the same wall-clock time and the same time from the start, to 100 µs.
    m0 = [e for e in original.events if isinstance(e, Marker)]
    m1 = [e for e in again.events if isinstance(e, Marker)]
    assert [m.text for m in m1] == [m.text for m in m0] and m0
    for a, b in zip(m0, m1, strict=True):
        assert _wall(again, b.t_s) == pytest.approx(_wall(original, a.t_s), abs=2e-4)
        assert b.t_s % 5.0 == pytest.approx(a.t_s % 5.0, abs=2e-4)  # same spectrum grid
    # The start is kept below the second (to 100 µs), not cut to a whole second.
    if offset_s == 0.0:
        assert again.info.started_unix_s == pytest.approx(started_unix_s, abs=1e-4)


def test_edf_header_carries_the_sub_second_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pyedflib = pytest.importorskip("pyedflib")
    store = open_store(tmp_path)
    info = store.create_session(title="s", source="sim", started_unix_s=1_700_000_000.37)
    store.append_many(info.id, _records(0.0)[:200])
    store.end_session(info.id)
    store.close()
    out = tmp_path / "s.edf"
    assert (
        main(["export", info.id, "--format", "edf", "-o", str(out), "--data-dir", str(tmp_path)])
        == 0
    )
    capsys.readouterr()
    reader = pyedflib.EdfReader(str(out))
    try:
        assert reader.starttime_subsecond == 3_700_000  # 0.37 s in 100 ns units
        assert reader.getStartdatetime().second == 20  # 22:13:20.37 UTC
    finally:
        reader.close()


def test_export_help_says_where_the_file_goes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["export", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "vagus-ID.EXT in the current folder" in text
    assert "vagus-ID.txt for kubios" in text
