"""``vagus analyze``: real pipeline over pyhrv's files, and clear errors on bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vagus.cli import main

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"shared recordings not found at {DATA} (../shared/data)"
)


@needs_data
def test_analyze_pyhrv_long_human(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(DATA / "pyhrv" / "SampleNNISeriesLong.txt")]) == 0
    out = capsys.readouterr().out
    assert "4684 measured" in out
    assert "RMSSD" in out and "LF/HF" in out and "HF (0.15-0.40 Hz)" in out
    table = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert 25 <= len(table) <= 30  # at most 30 rows: 2-minute rows for a 60-minute series


@needs_data
def test_analyze_pyhrv_short_json(capsys: pytest.CaptureFixture[str]) -> None:
    path = DATA / "pyhrv" / "SampleNNISeriesShort.txt"
    assert main(["analyze", str(path), "--unit", "ms", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    assert obj["beats_measured"] == 337
    assert obj["welch_windows_5min"] == 1
    # Corrected NN: close to, not necessarily equal to, the raw series' 101.3 ms.
    assert obj["rmssd_ms"] == pytest.approx(101.3, rel=0.05)
    assert obj["nn_beats"] + obj["artifacts"].get("extra", 0) >= 337 - 5
    assert obj["rows"] and {"t_start_s", "hr_bpm", "coherence_median", "peak_hz_median"} <= set(
        obj["rows"][-1]
    )


def _run_bad(tmp_path: Path, text: str, *args: str) -> str:
    path = tmp_path / "rr.txt"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("text", "unit", "expect"),
    [
        ("800\n810\nabc\n790\n", "ms", "line 3: 'abc' is not a number"),
        ("800\n810 820\n", "ms", "line 2"),
        ("0.8\n0.81\n0.79\n", "ms", "--unit s"),
        ("800\n810\n790\n", "s", "--unit ms"),
        ("800\n-5\n", "ms", "line 2: '-5' is not a positive"),
        ("# only a comment\n\n", "ms", "no RR values"),
        ("800\nnan\n", "ms", "line 2"),
    ],
)
def test_analyze_bad_file_names_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, unit: str, expect: str
) -> None:
    path = _run_bad(tmp_path, text)
    assert main(["analyze", path, "--unit", unit]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vagus analyze: error:")
    assert expect in err


def test_analyze_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(tmp_path / "nope.txt")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_read_rr_text_comments_blank_lines_and_seconds(tmp_path: Path) -> None:
    from vagus.formats.plain import read_rr_text

    path = tmp_path / "rr.txt"
    path.write_text("# exported by x\n0.800\n\n 0.810 \n0.790\n")
    rr = read_rr_text(path, "s")
    assert rr.rr_ms == pytest.approx((800.0, 810.0, 790.0))
    assert rr.comments == ("exported by x",)
    path.write_text("225.8\n0.8\n0.9\n")
    rr = read_rr_text(path, "s", first_value_is_time=True)
    assert rr.first_beat_s == pytest.approx(225.8)
    assert rr.beat_times_s == pytest.approx((226.6, 227.5))
