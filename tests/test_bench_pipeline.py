"""``vagus bench pipeline`` runs end to end on a small record (figures are not asserted:
speed targets live in the benchmark output, not in timed tests)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from vagus.cli import bench as bench_cli
from vagus.cli import main


def _record(tmp_path: Path, minutes: float = 6.0) -> Path:
    lines = ["225.796875"]  # time of the first beat (s), as in PhysioNet *_rr_secs.txt
    t = 0.0
    while t < minutes * 60:
        rr = round((0.8 + 0.05 * math.sin(2 * math.pi * 0.1 * t)) * 128) / 128
        lines.append(f"{rr:.8f}")
        t += rr
    path = tmp_path / "rr_secs.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bench_pipeline_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("neurokit2")
    path = _record(tmp_path)
    assert main(["bench", "pipeline", str(path), "--sample", "2", "--json"]) == 0
    captured = capsys.readouterr()
    fig = json.loads(captured.out)
    assert fig["beats"] == len(path.read_text().split()) - 1
    assert fig["us_per_beat_median"] > 0 and len(fig["us_per_beat_runs"]) == 3
    assert fig["peak_traced_memory_mib"] > 0
    assert fig["neurokit2_us_per_beat"] > 0 and fig["speedup"] > 0
    # Progress bars draw only on a terminal: a log gets no progress lines.
    assert "%" not in captured.err and len(captured.err.splitlines()) <= 2


def test_bench_pipeline_human_without_neurokit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "pipeline", str(_record(tmp_path, 2.0)), "--sample", "0"]) == 0
    out = capsys.readouterr().out
    assert "µs per beat" in out and "neurokit2" not in out


def test_bench_bad_record_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("225.8\n0.8\nxyz\n")
    assert main(["bench", "pipeline", str(bad), "--sample", "0"]) == 1
    assert "line 3" in capsys.readouterr().err


def test_missing_bench_module_gives_clear_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(bench_cli.BENCHES, "replay", ("vagus.bench.not_there", "x"))
    assert main(["bench", "replay"]) == 1
    assert "not available" in capsys.readouterr().err
