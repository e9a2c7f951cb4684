"""``vagus analyze``: the adaptive over-time table, ``--every``, ``--format``, and hints
that name the right fix for common mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vagus.cli import main
from vagus.cli.analyze import MAX_ROWS, row_interval, window_rows
from vagus.core.pipeline import Pipeline

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NSR = DATA / "physionet_nsr2db" / "nsr001_rr_secs.txt"
LONG = DATA / "pyhrv" / "SampleNNISeriesLong.txt"
VU = DATA / "wearablehrv" / "test_vu.txt"
HEARTMATH = DATA / "wearablehrv" / "test_heartmath.csv"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared recordings are not next to the project)")
    return path


def analyze_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["analyze", *args, "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    obj: dict[str, object] = json.loads(out[0])
    return obj


def analyze_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["analyze", *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vagus analyze: error: ")
    return err


def table_rows(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if ln.strip()[:1].isdigit()]


# ------------------------------------------------------------- over-time table


@pytest.mark.slow
def test_24_hours_give_a_short_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(need(NSR)), "--format", "physionet"]) == 0
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert 20 <= len(rows) <= MAX_ROWS
    assert "every 1 h" in out
    assert rows[0].split()[:2] == ["0:00", "1:00"]  # the record's clock: first beat at 225.8 s
    # Every row aggregates an hour of beats (~4000-6000 at 60-100 bpm), not one sample.
    beats = [int(r.split()[2]) for r in rows[:-1]]
    assert min(beats) > 3000
    assert sum(int(r.split()[2]) for r in rows) == 106456  # all measured beats, once each


@pytest.mark.slow
def test_every_sets_the_row_spacing(capsys: pytest.CaptureFixture[str]) -> None:
    obj = analyze_json(capsys, str(need(NSR)), "--format", "physionet", "--every", "600")
    rows = obj["rows"]
    assert isinstance(rows, list)
    assert obj["every_s"] == 600.0
    assert len(rows) == 136  # 0:00 .. 22:40 in 10-min windows
    assert all(r["t_end_s"] - r["t_start_s"] == 600.0 for r in rows)
    assert [r["t_start_s"] for r in rows] == [600.0 * k for k in range(136)]
    assert sum(r["beats"] for r in rows) == obj["beats_measured"]


def test_one_hour_file_default_and_every(capsys: pytest.CaptureFixture[str]) -> None:
    obj = analyze_json(capsys, str(need(LONG)))
    assert obj["every_s"] == 120.0  # 60 one-minute rows would be too many
    rows = obj["rows"]
    assert isinstance(rows, list) and len(rows) <= MAX_ROWS
    obj = analyze_json(capsys, str(LONG), "--every", "60")
    assert isinstance(obj["rows"], list) and len(obj["rows"]) >= 55


def test_every_must_be_positive(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    f = tmp_path / "rr.txt"
    f.write_text("800\n810\n")
    with pytest.raises(SystemExit) as exc:
        main(["analyze", str(f), "--every", "-5"])
    assert exc.value.code == 2
    assert "must be a positive number" in capsys.readouterr().err


def test_window_rows_aggregate_their_window() -> None:
    # 1000 ms beats for 5 min, alternating ±20 ms after 2.5 min; a 20 s gap at 5 min;
    # then 750 ms beats.
    p = Pipeline()
    rr1 = [1000.0] * 150 + [980.0, 1020.0] * 75
    p.receive_rr(rr1, t_s=None)
    p.receive_gap(float(np.sum(rr1)) / 1000.0)
    t = float(np.sum(rr1)) / 1000.0 + 20.0
    for _ in range(200):
        t += 0.75
        p.receive_rr(750.0, t_s=t)
    p.close()
    events = p.events_received()
    rows = window_rows(events, 60.0)
    assert rows[0]["t_start_s"] == 0.0 and rows[0]["t_end_s"] == 60.0
    assert rows[0]["hr_bpm"] == pytest.approx(60.0)
    assert rows[0]["rmssd_ms"] == pytest.approx(0.0)
    assert rows[3]["rmssd_ms"] == pytest.approx(40.0)  # |ΔNN| = 40 ms throughout
    assert rows[6]["hr_bpm"] == pytest.approx(80.0)  # 750 ms beats
    assert sum(r["beats"] for r in rows) == 300 + 200
    # No ΔNN across the gap: the window holding it has the RMSSD of each side only.
    gap_row = rows[5]
    assert gap_row["beats"] > 0 and gap_row["rmssd_ms"] is not None
    assert gap_row["rmssd_ms"] < 40.0
    assert row_interval(events) == 60.0  # 9 minutes: one-minute rows


def test_row_interval_choices() -> None:
    from vagus.core.events import Beat

    def span(seconds: float) -> list[Beat]:
        return [Beat(t_s=1.0, rr_ms=1000.0), Beat(t_s=seconds, rr_ms=1000.0)]

    assert row_interval(span(29 * 60)) == 60.0
    assert row_interval(span(31 * 60)) == 120.0
    assert row_interval(span(24 * 3600)) == 3600.0
    assert row_interval(span(7 * 86400)) == 21600.0
    assert row_interval(span(40 * 86400)) == 2 * 86400.0
    assert row_interval([]) == 60.0


# --------------------------------------------------------------------- hints


def test_physionet_file_read_as_plain_names_format_physionet(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = analyze_error(capsys, str(need(NSR)), "--format", "plain")  # plain, ms
    assert "--format physionet" in err
    assert "--unit s" not in err  # --unit s alone would fail on line 1
    assert " = " not in err  # no "median 0.7 ms = 0.7 ms"
    err = analyze_error(capsys, str(NSR), "--format", "plain", "--unit", "s")
    assert "line 1" in err and "--format physionet" in err
    assert "--unit ms" not in err


def test_median_message_reads_sensibly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "secs.txt"
    f.write_text("0.8\n0.81\n0.79\n")
    err = analyze_error(capsys, str(f))
    assert "(median RR 0.8 ms, expected 250-2500 ms); if the file is in s, pass --unit s" in err
    g = tmp_path / "ms.txt"
    g.write_text("# rr\n" + "0.1\n" * 5)
    err = analyze_error(capsys, str(g), "--unit", "s")
    assert "(median RR 0.1 s, expected 0.25-2.5 s); if the file is in ms, pass --unit ms" in err


@pytest.mark.parametrize(
    ("path", "fmt"),
    [(VU, "vu_ams"), (HEARTMATH, "heartmath"), (NSR, "physionet")],
)
def test_analyze_reads_the_format_it_detects(
    capsys: pytest.CaptureFixture[str], path: Path, fmt: str
) -> None:
    # Issue 8 §4: analyze named the detected format and then refused it; it detects by
    # default, as import does, with the same numbers as --format.
    obj = analyze_json(capsys, str(need(path)))
    assert obj["format"] == fmt
    assert obj == analyze_json(capsys, str(path), "--format", fmt)
    # --format plain still overrides detection: the first bad line, and the hint.
    err = analyze_error(capsys, str(path), "--format", "plain")
    if fmt != "physionet":
        assert "line 1: " in err and "is not a number" in err
    assert f"pass --format {fmt}" in err


def test_tables_and_kubios_get_their_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "t.csv"
    table.write_text("time,ibi\n0.8,800\n1.6,810\n")
    err = analyze_error(capsys, str(table))
    assert "line 1: 'time,ibi' is not a number" in err
    assert "--format csv --column NAME" in err
    kubios = tmp_path / "k.txt"
    kubios.write_text("# SIGNAL/SERIES EXPORT - KUBIOS\n# Columns: time [s]\tRR [ms]\n0.8\t800\n")
    err = analyze_error(capsys, str(kubios), "--format", "plain")
    assert "line 3" in err and "pass --format kubios" in err


# ------------------------------------------------------------------- formats


def test_format_reads_what_import_reads(capsys: pytest.CaptureFixture[str]) -> None:
    obj = analyze_json(capsys, str(need(VU)), "--format", "vu_ams")
    assert obj["format"] == "vu_ams" and obj["beats_measured"] == 3040
    auto = analyze_json(capsys, str(VU), "--format", "auto")
    assert auto["format"] == "vu_ams" and auto["rmssd_ms"] == obj["rmssd_ms"]
    assert main(["analyze", str(VU), "--format", "vu_ams"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith("(vu_ams)")


def test_format_options_that_do_not_fit(capsys: pytest.CaptureFixture[str]) -> None:
    err = analyze_error(capsys, str(need(VU)), "--format", "vu_ams", "--first-value-is-time")
    assert "--format physionet" in err
    err = analyze_error(capsys, str(VU), "--format", "physionet")
    assert "line 1" in err


def test_analyze_an_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "store"
    assert main(["import", str(need(VU)), "--data-dir", str(data), "--json", "-q"]) == 0
    sid = json.loads(capsys.readouterr().out)["id"]
    out = tmp_path / "s.json"
    assert main(["export", sid, "--format", "json", "-o", str(out), "--data-dir", str(data)]) == 0
    capsys.readouterr()
    direct = analyze_json(capsys, str(VU), "--format", "vu_ams")
    exported = analyze_json(capsys, str(out), "--format", "json")
    assert exported["beats_measured"] == direct["beats_measured"]
    assert exported["rmssd_ms"] == direct["rmssd_ms"]
    assert exported["rows"] == direct["rows"]
