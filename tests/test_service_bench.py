"""`vagus bench serve` runs end to end on a tiny load and prints its figures (the figures
themselves are the benchmark's business, not a test's)."""

from __future__ import annotations

import math
import subprocess
import sys


def test_bench_serve_runs_and_reports() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vagus",
            "bench",
            "serve",
            "--steps",
            "3,6",
            "--seconds",
            "2",
            "--warmup",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("vagus bench serve: recording")
    assert lines[1].split()[:3] == ["N", "p50", "ms"]
    rows = [line.split() for line in lines[2:4]]
    assert [r[0] for r in rows] == ["3", "6"]
    for r in rows:
        assert float(r[4]) > 0  # packets per second were sent and measured
        assert math.isfinite(float(r[1])) and math.isfinite(float(r[2]))  # latencies too
        assert float(r[5]) >= float(r[6]) > 0  # frames and messages reached the viewers
    assert any(line.startswith("largest N with p99 < 100 ms") for line in lines)
    assert "Traceback" not in done.stderr
