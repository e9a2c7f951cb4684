"""Clear errors from detection and reading: the real bad line, empty files, µs values.

- An Elite HRV export (named by its start time) with a bad line is still an Elite HRV
  export: auto-detection names that line and its reason, as ``--format elite_hrv`` does,
  not "line 1: not a recognised RR file".
- Any list of one number per line with a bad line names that line.
- An empty file says it is empty, nothing about exporting again.
- Values in microseconds (851527 = 851.5 ms) read as ms or s say they look like µs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from vagus.cli import main
from vagus.exceptions import FileFormatError
from vagus.formats.registry import detect_format, read_rr_file

ELITE_NAME = "2017-06-29 13-11-53.txt"


def analyze_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["analyze", *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vagus analyze: error: ")
    assert "Traceback" not in err
    return err


# ------------------------------------------------------------------ Elite HRV


@pytest.mark.parametrize("fmt", [None, "elite_hrv"])
def test_elite_hrv_bad_line_is_named_with_and_without_format(
    tmp_path: Path, fmt: str | None
) -> None:
    f = tmp_path / ELITE_NAME
    f.write_text("812\n830\n8x0\n845\n")
    with pytest.raises(FileFormatError, match=r"line 3: '8x0' is not a number") as exc:
        read_rr_file(f, fmt)
    assert "not a recognised" not in str(exc.value)


@pytest.mark.parametrize("fmt", ["auto", "elite_hrv"])
def test_analyze_elite_hrv_bad_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    f = tmp_path / ELITE_NAME
    f.write_text("812\n830\n8x0\n")
    err = analyze_error(capsys, str(f), "--format", fmt)
    assert "line 3: '8x0' is not a number" in err


def test_elite_hrv_detection_stays_unambiguous(tmp_path: Path) -> None:
    f = tmp_path / ELITE_NAME
    f.write_text("812\n830\n845\n")
    assert detect_format(f) == "elite_hrv"
    got = read_rr_file(f)
    assert got.rr_ms == (812.0, 830.0, 845.0)
    assert got.started_unix_s == dt.datetime(2017, 6, 29, 13, 11, 53).timestamp()
    # Decimals are no Elite HRV export (it writes whole ms): the unit is asked for.
    f.write_text("812\n830.5\n845\n")
    with pytest.raises(FileFormatError, match="--unit"):
        detect_format(f)
    # Seconds, or PhysioNet RR text, under an Elite HRV name are not Elite HRV either.
    f.write_text("0.812\n0.830\n0.845\n")
    with pytest.raises(FileFormatError, match="--unit"):
        detect_format(f)
    f.write_text("225.8\n0.81\n0.83\n0.79\n")
    assert detect_format(f) == "physionet"
    # A first line that is not a number: no Elite HRV export, whatever the name.
    f.write_text("Dear diary\n812\n")
    with pytest.raises(FileFormatError, match="line 1: not a recognised RR file"):
        detect_format(f)


def test_number_list_with_a_bad_line_names_that_line(tmp_path: Path) -> None:
    f = tmp_path / "rr.txt"
    f.write_text("# RR in ms\n800\n\n810\nabc\n790\n")
    with pytest.raises(FileFormatError, match=r"rr.txt: line 5: 'abc' is not a number") as exc:
        read_rr_file(f)
    assert "--format plain --unit ms" in str(exc.value)


# ---------------------------------------------------------------- empty files


@pytest.mark.parametrize("text", ["", "\n  \n"])
def test_empty_file_says_it_is_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    f = tmp_path / "rr.txt"
    f.write_text(text)
    with pytest.raises(FileFormatError, match=r"rr.txt: line 1: the file is empty \(no values\)"):
        read_rr_file(f)
    err = analyze_error(capsys, str(f), "--format", "auto")
    assert "the file is empty (no values)" in err
    assert "export" not in err


# -------------------------------------------------------------- microseconds


US = [851527, 843000, 860250, 849990]


@pytest.mark.parametrize("args", [["--unit", "ms"], ["--unit", "s"], ["--format", "elite_hrv"]])
def test_microseconds_read_as_ms_or_s_get_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    f = tmp_path / ELITE_NAME
    f.write_text("".join(f"{v}\n" for v in US))
    err = analyze_error(capsys, str(f), *args)
    assert "line 1: '851527'" in err and "over 60 s" in err
    assert "look like microseconds (851527 µs = 851.527 ms)" in err
    assert "--unit" in err


def test_microseconds_hint_on_auto_detect_and_fixed_unit_formats(tmp_path: Path) -> None:
    f = tmp_path / "rr.txt"
    f.write_text("".join(f"{v}\n" for v in US))
    with pytest.raises(FileFormatError, match="look like microseconds") as exc:
        read_rr_file(f)
    assert "--format plain --unit ms" in str(exc.value)
    polar = tmp_path / "x_RR.txt"
    polar.write_text(
        "Phone timestamp;RR-interval [ms]\n"
        + "".join(f"2024-03-01T09:30:0{i}.000;{v}\n" for i, v in enumerate(US))
    )
    with pytest.raises(FileFormatError, match=r"line 2: the median RR .*look like microseconds"):
        read_rr_file(polar)


def test_other_unit_hints_are_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "rr.txt"
    f.write_text("0.8\n0.81\n0.79\n")
    err = analyze_error(capsys, str(f))
    assert "if the file is in s, pass --unit s" in err and "microseconds" not in err
    f.write_text("800\n810\n790\n")
    err = analyze_error(capsys, str(f), "--unit", "s")
    assert "if the file is in ms, pass --unit ms" in err and "microseconds" not in err
    # 60-250 s read as ms: no physiological µs either, so no µs hint.
    f.write_text("80000\n81000\n")
    err = analyze_error(capsys, str(f))
    assert "over 60 s" in err and "microseconds" not in err
