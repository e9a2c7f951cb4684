"""``vagus bench import``: analyze and import of a big plain RR file, speed and memory.

A seeded plain RR list of ``--beats`` beats (default 10 million, about 98 days of beat
time; 850 ms ± breathing and noise, one artifact in 500) is generated in a temporary
directory. ``vagus analyze FILE --json`` and ``vagus import FILE --format plain --unit ms``
(into a temporary data directory) then each run in their own process; the figures are
wall-clock seconds (and CPU seconds: other work on the machine inflates the wall clock),
beats per second and the process's peak resident memory
(``ru_maxrss`` of that child, from ``os.wait4``), with the load average.

Targets (issue 13 §5): analyze 10 million beats in under 60 s (>= 166,667 beats/s) and
under 500 MB; import under 500 MB. A missed target prints ``MISSED``.

``vagus analyze`` of a plain list runs the batch path (:mod:`vagus.core.batch`: the live
pipeline's beats and spectra computed with numpy over blocks, tested equal to them);
``vagus analyze FILE --engine pipeline`` runs the live pipeline, for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from vagus.exceptions import InvalidInput

__all__ = ["TARGET_ANALYZE_BEATS_PER_S", "TARGET_PEAK_MB", "add_arguments", "run", "write_rr"]

#: 10 million beats in 60 s.
TARGET_ANALYZE_BEATS_PER_S = 10_000_000 / 60.0
#: Peak resident memory of either command (MB).
TARGET_PEAK_MB = 500.0
_DEFAULT_BEATS = 10_000_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bench's options."""
    parser.add_argument(
        "--beats",
        type=int,
        default=_DEFAULT_BEATS,
        help=f"beats in the generated file (default {_DEFAULT_BEATS:,})",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated file")
    parser.add_argument(
        "--skip-import", action="store_true", help="time analyze only (import is the slow one)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")


def write_rr(path: Path, beats: int, seed: int = 0) -> None:
    """Write ``beats`` seeded RR values (ms, one per line) to ``path``, block by block."""
    rng = np.random.default_rng(seed)
    block = 1_000_000
    with path.open("wb") as f:
        for start in range(0, beats, block):
            i = np.arange(start, min(beats, start + block))
            rr = 850.0 + 60.0 * np.sin(2 * np.pi * i / 5.5) + rng.normal(0.0, 25.0, i.size)
            art = rng.random(i.size) < 0.002
            rr[art] *= rng.choice([0.5, 2.0], int(art.sum()))
            f.write(b"\n".join(b"%.1f" % v for v in rr.round(1).tolist()) + b"\n")


def _timed(argv: list[str]) -> tuple[float, float, float, int, str]:
    """Run ``argv``; (wall s, CPU s, peak resident MB of that process, exit code, stderr
    tail)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    with proc.stderr:
        err = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss is in KiB on Linux.
    cpu = usage.ru_utime + usage.ru_stime
    tail = err.decode(errors="replace")[-400:]
    return wall, cpu, usage.ru_maxrss / 1024.0, proc.returncode, tail


def run(args: argparse.Namespace) -> int:
    """Generate the file, time analyze and import, print the figures."""
    if args.beats < 1000:
        raise InvalidInput(f"--beats must be at least 1000, got {args.beats}")
    vagus = [sys.executable, "-m", "vagus"]
    figures: dict[str, Any] = {"beats": args.beats, "seed": args.seed}
    with tempfile.TemporaryDirectory(prefix="vagus-bench-import-") as tmp:
        path = Path(tmp) / "rr.txt"
        t0 = time.perf_counter()
        # In a child process: a child's peak resident memory (ru_maxrss) starts from
        # its parent's at the fork, so the parent stays small.
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path; from vagus.bench.importer import "
                "write_rr; write_rr(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))",
                str(path),
                str(args.beats),
                str(args.seed),
            ],
            check=True,
        )
        figures["generate_s"] = time.perf_counter() - t0
        figures["file_mb"] = path.stat().st_size / 1e6
        runs = [("analyze", [*vagus, "analyze", str(path), "--unit", "ms", "--json"])]
        if not args.skip_import:
            data = Path(tmp) / "data"
            runs.append(
                (
                    "import",
                    [*vagus, "import", str(path), "--format", "plain", "--unit", "ms", "--quiet",
                     "--data-dir", str(data)],
                )
            )  # fmt: skip
        for name, argv in runs:
            load_before = os.getloadavg()[0]
            wall, cpu, rss, code, err = _timed(argv)
            figures[name] = {
                "seconds": wall,
                "cpu_seconds": cpu,
                "beats_per_s": args.beats / wall,
                "beats_per_cpu_s": args.beats / cpu if cpu > 0 else None,
                "peak_rss_mb": rss,
                "exit_code": code,
                "load_average_before": load_before,
                "load_average_after": os.getloadavg()[0],
            }
            if code != 0:
                figures[name]["error"] = err
    figures["cpus"] = os.cpu_count()
    a = figures["analyze"]
    scale = args.beats / _DEFAULT_BEATS
    a["target_s"] = 60.0 * scale
    a["time_target_met"] = a["exit_code"] == 0 and a["beats_per_s"] >= TARGET_ANALYZE_BEATS_PER_S
    for name in ("analyze", "import"):
        if name in figures:
            figures[name]["memory_target_met"] = (
                figures[name]["exit_code"] == 0 and figures[name]["peak_rss_mb"] <= TARGET_PEAK_MB
            )
    if args.json:
        print(json.dumps(figures))
        return 0
    print(
        f"file      {args.beats:,} beats, {figures['file_mb']:.0f} MB (seed {args.seed}; "
        f"generated in {figures['generate_s']:.1f} s)"
    )
    for name in ("analyze", "import"):
        if name not in figures:
            continue
        r = figures[name]
        if r["exit_code"] != 0:
            print(f"{name:<9} FAILED (exit {r['exit_code']}): {r.get('error', '').strip()}")
            continue
        speed = (
            f"{r['seconds']:.1f} s, {r['beats_per_s']:,.0f} beats/s ({r['cpu_seconds']:.1f} s "
            f"CPU, {r['beats_per_cpu_s'] or 0:,.0f} beats per CPU second)"
        )
        if name == "analyze":
            ok = "met" if r["time_target_met"] else "MISSED"
            speed += f" (target < {r['target_s']:.3g} s: {ok})"
        mem = "met" if r["memory_target_met"] else "MISSED"
        print(
            f"{name:<9} {speed}; peak {r['peak_rss_mb']:.0f} MB resident (target <= "
            f"{TARGET_PEAK_MB:.0f} MB: {mem}); load average {r['load_average_before']:.2f} -> "
            f"{r['load_average_after']:.2f} on {figures['cpus']} CPUs"
        )
    return 0
