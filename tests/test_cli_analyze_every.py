"""``vagus analyze --every``: a sensible range and a bounded table; ``--help`` examples.

``--every`` is 5 s (the spectrum interval) to 7 days; anything else is a usage error
(exit status 2, no traceback). Within the range, no file makes the table longer than
``MAX_EVERY_ROWS`` rows (a gap of a year in 5 s rows would be 6 million): the spacing is
widened to a multiple of it, and the table says so. ``--help`` ends with examples and
what each ``--format`` name is.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from vagus.cli import main
from vagus.cli.analyze import (
    EVERY_RANGE_S,
    MAX_EVERY_ROWS,
    every_interval,
    row_interval,
    window_rows,
)
from vagus.core.events import Beat
from vagus.exceptions import InvalidInput
from vagus.formats.registry import FORMATS


def usage_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main(["analyze", *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage: vagus analyze" in err and "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("every", "says"),
    [
        ("1e-9", "shorter than the spectrum interval (5 s)"),
        ("4.9", "shorter than the spectrum interval (5 s)"),
        ("0", "must be a positive number"),
        ("-5", "must be a positive number"),
        ("nan", "must be a positive number"),
        ("inf", "must be a positive number"),
        ("soon", "must be a positive number"),
        ("604801", "longer than 7 days"),
        ("1e300", "longer than 7 days"),
    ],
)
def test_every_out_of_range_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], every: str, says: str
) -> None:
    f = tmp_path / "rr.txt"
    f.write_text("800\n810\n")
    err = usage_error(capsys, str(f), "--every", every)
    assert f"argument --every: '{every}'" in err
    assert says in err and "give 5 to 604800 s" in err


def test_every_out_of_range_from_a_shell_ends_quickly(tmp_path: Path) -> None:
    f = tmp_path / "rr.txt"
    f.write_text("800\n810\n" * 200)
    proc = subprocess.run(
        [sys.executable, "-m", "vagus", "analyze", str(f), "--every", "1e-9"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "shorter than the spectrum interval" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_every_at_the_bounds_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "rr.txt"
    f.write_text("800\n810\n790\n" * 100)  # 4 minutes
    lo, hi = EVERY_RANGE_S
    for every, rows in ((lo, range(48, 50)), (hi, range(1, 2))):
        assert main(["analyze", str(f), "--every", f"{every:g}", "--json"]) == 0
        obj = json.loads(capsys.readouterr().out)
        assert obj["every_s"] == every
        assert len(obj["rows"]) in rows


def span(*times: float) -> list[Beat]:
    return [Beat(t_s=t, rr_ms=800.0) for t in times]


def windows(lo: float, hi: float, every: float) -> int:
    """How many windows ``(k·every, (k+1)·every]`` from ``lo`` to ``hi``."""
    return math.ceil(hi / every) - math.ceil(lo / every) + 1


def test_every_interval_never_exceeds_the_cap() -> None:
    events = span(1.0, 3600.0)
    assert every_interval(events, 5.0) == 5.0  # 720 rows: kept as asked
    assert every_interval(events, 60.0) == 60.0
    year = 365 * 86400.0
    for every in (5.0, 7.0, 60.0):
        events = span(1.0, 2.0, year)
        got = every_interval(events, every)
        k = round(got / every)
        assert k > 1 and got == k * every  # a multiple of the spacing asked for ...
        assert windows(1.0, year, got) <= MAX_EVERY_ROWS  # ... that fits,
        assert windows(1.0, year, got - every) > MAX_EVERY_ROWS  # the smallest one
        rows = window_rows(events, every)
        assert len(rows) == windows(1.0, year, got)
        assert rows[1]["t_start_s"] - rows[0]["t_start_s"] == got
    assert every_interval([], 5.0) == 5.0
    with pytest.raises(InvalidInput, match="at least 5 s"):
        every_interval(events, 1e-9)
    with pytest.raises(InvalidInput, match="at least 5 s"):
        window_rows(events, 1e-9)
    # A computed spacing may pass the 7 days a user can ask for (a long record's default,
    # or a widened one): it is used, never rejected.
    assert every_interval(events, 13 * 86400.0) == 13 * 86400.0
    # The default table is unchanged: at most 30 rows.
    assert row_interval(span(1.0, year)) == 13 * 86400.0


def heartmath_with_a_silence(tmp_path: Path, days: float) -> Path:
    """A HeartMath CSV: 200 beats of 800 ms, the strap silent for ``days``, 200 beats."""
    f = tmp_path / "heartmath.csv"
    lines = ["timestamp, rr, since_start"]
    t_ms = 1_688_126_658_000
    for i in range(400):
        t_ms += 800 + (round(days * 86_400_000) if i == 200 else 0)
        lines.append(f"{t_ms},800,{800 * (i + 1)}")
    f.write_text("\n".join(lines) + "\n")
    return f


def test_file_with_a_year_long_gap_gives_a_bounded_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = heartmath_with_a_silence(tmp_path, days=365)
    assert main(["analyze", str(f), "--format", "heartmath", "--every", "5", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["gaps"] == 1
    rows = obj["rows"]
    assert len(rows) <= MAX_EVERY_ROWS
    assert obj["every_s"] % 5 == 0 and obj["every_s"] > 5
    assert sum(r["beats"] for r in rows) == 400
    assert main(["analyze", str(f), "--format", "heartmath", "--every", "5"]) == 0
    out = capsys.readouterr().out
    assert f"--every 5 would give more than {MAX_EVERY_ROWS} rows: widened to" in out


def test_default_table_of_a_record_spanning_most_of_a_year(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Without --every the spacing is whole days for a long record, beyond the 7 days a
    # user may give: analyze must use it, not reject its own choice.
    f = heartmath_with_a_silence(tmp_path, days=250)
    assert main(["analyze", str(f), "--format", "heartmath", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["every_s"] > 7 * 86400.0 and len(obj["rows"]) <= 30
    assert sum(r["beats"] for r in obj["rows"]) == 400


def test_help_ends_with_examples_and_format_names(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    examples = out[out.index("examples:") :]
    assert "vagus analyze rr.txt" in examples
    assert "--format physionet" in examples and "--format heartmath" in examples
    assert "--unit s" in examples
    formats = out[out.index("formats (--format") : out.index("examples:")]
    for name in (*FORMATS, "auto"):
        assert name in formats, name
    # The epilog keeps its own line breaks (RawDescriptionHelpFormatter).
    assert "\n    vagus analyze rr.txt\n" in examples
    assert "5 s (the spectrum interval)" in " ".join(out.split())
