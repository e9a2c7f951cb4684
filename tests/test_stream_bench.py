"""``vagus bench import`` (issue 13 §5): figures for analyze and import of a generated file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vagus.bench.importer import write_rr
from vagus.cli import main


def test_generated_file_is_seeded_plain_rr(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    write_rr(a, 2500, seed=4)
    write_rr(b, 2500, seed=4)
    assert a.read_bytes() == b.read_bytes()
    rr = np.loadtxt(a)
    assert rr.size == 2500 and 700 < float(np.median(rr)) < 1000


@pytest.mark.timeout(600)
def test_bench_import_reports_speed_and_memory(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "import", "--beats", "3000", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["beats"] == 3000
    for name in ("analyze", "import"):
        run = figures[name]
        assert run["exit_code"] == 0, run.get("error")
        assert run["seconds"] > 0 and run["cpu_seconds"] > 0
        assert 10 < run["peak_rss_mb"] < 2000
        assert isinstance(run["memory_target_met"], bool)
        assert "load_average_before" in run
    assert isinstance(figures["analyze"]["time_target_met"], bool)


def test_bench_import_refuses_too_few_beats(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "import", "--beats", "10"]) != 0
    assert "at least 1000" in capsys.readouterr().err
