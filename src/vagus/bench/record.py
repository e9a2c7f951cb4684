"""``vagus bench record``: N simulated participants recorded in real time through the live
runner; how late the event loop runs while it records.

What runs is what ``vagus record --participant p1=sim:seed=1 ... --participant
pN=sim:seed=N`` runs: N simulated straps (:class:`~vagus.sources.simulator.SimulatorSource`,
each its own seed, real time: one packet about every second each), one
:class:`~vagus.runner.Runner` (a :class:`~vagus.session.Session` with N pipelines) and the
store writer thread writing a real SQLite store (``synchronous=FULL``, a commit at least
every second), plus one subscriber that counts the events (as a view would). A probe task
asks the loop to wake it every ``--probe-ms`` (5 ms) and records how late it woke: the
**event-loop lag**, what every source, subscriber and client of the process waits on top
of its own work (STYLE.md "Blocking work never on the event loop").

Prints, over the measured window (after ``--warmup`` s, while every participant streams):
the loop lag p50/p99/max (ms), packets stored per second (handed to the store by the
writer thread; all of them committed at the end), events per second, the process's CPU
(user + system, all threads, as % of one core) and the load average before and after.
Target (issue 9 §7): p99 lag under :data:`TARGET_P99_LAG_MS` at N = 200 on a 2-core
machine. The simulated subjects are part of the load (each integrates its heart model in
real time on the same loop), as they are in ``vagus record``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from vagus.exceptions import InvalidInput

__all__ = ["TARGET_P99_LAG_MS", "add_arguments", "measure", "run"]

#: The loop-lag target at 200 participants (ms, 99th percentile).
TARGET_P99_LAG_MS = 10.0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number >= 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive number")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench record`` arguments."""
    parser.add_argument(
        "-n",
        "--participants",
        type=_positive_int,
        default=200,
        metavar="N",
        help="simulated participants, one packet a second each (default 200)",
    )
    parser.add_argument(
        "--duration",
        type=_positive_float,
        default=60.0,
        metavar="S",
        help="seconds measured, after the warm-up (default 60)",
    )
    parser.add_argument(
        "--warmup",
        type=_positive_float,
        default=5.0,
        metavar="S",
        help="seconds before measuring: the straps connect and settle (default 5)",
    )
    parser.add_argument(
        "--probe-ms",
        type=_positive_float,
        default=5.0,
        metavar="MS",
        help="how often the probe asks the loop to wake it (default 5 ms)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="record into this data directory (default: a temporary one, deleted after)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")


def _percentile(sorted_values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of sorted values, linear between ranks (numpy's default)."""
    if not sorted_values:
        return math.nan
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _load() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


async def measure(
    n: int, *, duration_s: float, warmup_s: float, probe_s: float, data_dir: Path
) -> dict[str, Any]:
    """Record ``n`` simulated participants for ``warmup_s + duration_s`` seconds; the
    figures of the measured window."""
    from vagus.runner import Participant, Runner
    from vagus.sources.base import SimSpec
    from vagus.store.writer import StoreWriter

    writer = StoreWriter.for_data_dir(data_dir)
    error = writer.start()
    if error is not None:
        raise error
    participants = [Participant(f"p{i}", SimSpec(seed=i, speed=1.0)) for i in range(1, n + 1)]
    runner = Runner(participants, writer=writer, title=f"bench record {n}")
    events = [0]

    def count(batch: list[dict[str, Any]]) -> None:
        events[0] += len(batch)

    runner.subscribe(count)
    loop = asyncio.get_running_loop()
    lags_ms: list[float] = []
    measuring = [False]

    async def probe() -> None:
        while True:
            due = loop.time() + probe_s
            await asyncio.sleep(probe_s)
            if measuring[0]:
                lags_ms.append(max(0.0, loop.time() - due) * 1000.0)

    load_before = _load()
    await runner.start()
    probe_task = asyncio.ensure_future(probe())
    try:
        await asyncio.sleep(warmup_s)
        rec = runner.recording
        assert rec is not None
        written0, events0, cpu0 = rec.written, events[0], _cpu_s()
        t0 = time.perf_counter()
        measuring[0] = True
        await asyncio.sleep(duration_s)
        measuring[0] = False
        wall_s = time.perf_counter() - t0
        written1, events1, cpu1 = rec.written, events[0], _cpu_s()
        packets_in = sum(st.packets + st.malformed for st in runner.participants.values())
    finally:
        probe_task.cancel()
        await asyncio.gather(probe_task, return_exceptions=True)
        result = await runner.stop("bench done")
        await asyncio.wrap_future(writer.close())
        writer.join()
    lags_ms.sort()
    return {
        "participants": n,
        "duration_s": wall_s,
        "loop_lag_p50_ms": _percentile(lags_ms, 0.50),
        "loop_lag_p99_ms": _percentile(lags_ms, 0.99),
        "loop_lag_max_ms": lags_ms[-1] if lags_ms else math.nan,
        "probes": len(lags_ms),
        "records_stored_per_s": (written1 - written0) / wall_s,
        "events_per_s": (events1 - events0) / wall_s,
        "cpu_pct": 100.0 * (cpu1 - cpu0) / wall_s,
        "packets_received": packets_in,
        "records_committed": result.recording.committed if result.recording else 0,
        "saved": result.saved,
        "store_failures": len(writer.failures),
        "load_average_before": load_before,
        "load_average_after": _load(),
        "target_p99_lag_ms": TARGET_P99_LAG_MS,
    }


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its figures; 0 if it ran."""
    if args.warmup < 3.0:
        raise InvalidInput(
            f"--warmup {args.warmup:g}: give at least 3 s (the simulated straps discard "
            "their first 2 s of packets, as straps settle)"
        )
    probe_s = args.probe_ms / 1000.0
    with tempfile.TemporaryDirectory(prefix="vagus-bench-record-") as tmp:
        data_dir = args.data_dir if args.data_dir is not None else Path(tmp)
        figures = asyncio.run(
            measure(
                args.participants,
                duration_s=args.duration,
                warmup_s=args.warmup,
                probe_s=probe_s,
                data_dir=data_dir,
            )
        )
    if args.json:
        print(json.dumps(figures))
        return 0
    met = figures["loop_lag_p99_ms"] < TARGET_P99_LAG_MS
    load_b, load_a = figures["load_average_before"], figures["load_average_after"]
    load = "n/a" if load_b is None else f"{load_b:.2f} before, {load_a:.2f} after"
    print(
        "\n".join(
            [
                f"vagus bench record: {figures['participants']} simulated participants, "
                f"real time, {figures['duration_s']:.1f} s measured",
                f"  event-loop lag    p50 {figures['loop_lag_p50_ms']:.2f} ms, "
                f"p99 {figures['loop_lag_p99_ms']:.2f} ms, "
                f"max {figures['loop_lag_max_ms']:.2f} ms "
                f"({figures['probes']} probes every {args.probe_ms:g} ms)",
                f"  stored            {figures['records_stored_per_s']:.1f} records/s "
                f"({figures['records_committed']} committed in all, saved: "
                f"{'yes' if figures['saved'] else 'NO'})",
                f"  events            {figures['events_per_s']:.0f} per s to the subscriber",
                f"  CPU               {figures['cpu_pct']:.0f} % of one core (all threads)",
                f"  load average      {load}",
                f"  target            p99 lag < {TARGET_P99_LAG_MS:g} ms at 200 participants: "
                + ("met" if met else "MISSED"),
            ]
        )
    )
    return 0
