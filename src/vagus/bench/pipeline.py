"""``vagus bench pipeline [PATH] [--sample N]``: speed and memory of the full pipeline.

Runs a 24 h Holter RR record (default: PhysioNet nsr2db record nsr001,
``../shared/data/physionet_nsr2db/nsr001_rr_secs.txt``; seconds, the first line is the
time of the first beat) through the full :class:`~vagus.core.pipeline.Pipeline` as a live
strap would feed it: the RR values packed into real 0x2A37 notifications, one per second
of beat time, each parsed, put on the beat timeline, classified and corrected, with
metrics on every beat and spectrum/coherence every 5 s; events drained after every packet.
Prints microseconds per beat (wall clock, median of 3 runs; also the process CPU time and
the load average, since other work on the machine inflates the wall-clock figure) and the
peak memory of one run (tracemalloc, a separate run since tracing slows Python down).

In the same run it times what a user would otherwise write: neurokit2 ``hrv_time`` +
``hrv_frequency`` over the last 64 s of beats, recomputed at every beat, on a sample of
``--sample`` beats spread over the record, and prints how many times faster the pipeline
is. The sample is split in three parts, one per pipeline run, and each part's windows are
timed one at a time in between the run's chunks of packets, spread evenly over the run:
the speed of a shared machine drifts by tens of percent within a minute, and this times
both approaches under the same conditions. The speedup is the median of the three runs'
ratios. neurokit2 is called once before timing (its first call pays for lazy imports).
Targets (issue 2, this 2-core machine): <= 20 µs per beat, >= 500 × faster.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
import tracemalloc
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from vagus.bench import DEFAULT_RECORD, find_default_record
from vagus.cli._common import ProgressBar
from vagus.exceptions import InvalidInput

__all__ = ["DEFAULT_RECORD", "add_arguments", "run"]

TARGET_US_PER_BEAT = 20.0
TARGET_SPEEDUP = 500.0
RUNS = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench pipeline`` arguments."""
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        default=None,
        help=(
            "RR file in seconds whose first line is the time of the first beat "
            "(default: ../shared/data/physionet_nsr2db/nsr001_rr_secs.txt)"
        ),
    )
    parser.add_argument(
        "--sample",
        type=int,
        default=200,
        help="beats on which to time the neurokit2 approach (default: 200; 0 to skip)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")


def _packets(rr_s: list[float], first_beat_s: float) -> list[tuple[float, bytes]]:
    """Pack the RR values into 0x2A37 notifications, one per second of beat time."""
    out: list[tuple[float, bytes]] = []
    pending: list[int] = []
    t = first_beat_s
    next_notify = t + 1.0
    for rr in rr_s:
        t += rr
        while t > next_notify:
            out += _notifications(next_notify, pending)
            pending = []
            next_notify += 1.0
        pending.append(min(round(rr * 1024), 0xFFFF))
    out += _notifications(next_notify, pending)
    return out


def _notifications(t_s: float, ticks: list[int]) -> list[tuple[float, bytes]]:
    """One notification, or several when more than 9 RR values wait (a 23-byte packet
    holds at most 9; never at 1 Hz with a real heart, but a record may have short RR)."""
    from vagus.core.hrm import encode_heart_rate_measurement

    if not ticks:
        return [(t_s, encode_heart_rate_measurement(70))]
    return [
        (t_s, encode_heart_rate_measurement(70, ticks[i : i + 9])) for i in range(0, len(ticks), 9)
    ]


def _run_once(
    packets: list[tuple[float, bytes]],
    progress: ProgressBar,
    nk: Any = None,
    windows: Sequence[list[float]] = (),
) -> tuple[float, float, float]:
    """One full run: (pipeline wall-clock s, pipeline CPU s, neurokit2 s).

    The packets go through in chunks (at least 100); the neurokit2 ``windows`` are timed
    one at a time between chunks, spread evenly over the run, so both approaches are
    timed under the same machine conditions (a shared machine's speed drifts by tens of
    percent within a minute). Only the chunks count towards the pipeline's time.
    """
    from vagus.core.pipeline import Pipeline

    pipeline = Pipeline()
    n = len(packets)
    n_chunks = max(len(windows), 100)
    chunks = [packets[n * c // n_chunks : n * (c + 1) // n_chunks] for c in range(n_chunks)]
    window_after = {n_chunks * j // len(windows): w for j, w in enumerate(windows)}
    wall = cpu = nk_s = 0.0
    done = 0
    gc.collect()
    for c, chunk in enumerate(chunks):
        t0 = time.perf_counter()
        c0 = time.process_time()
        for t, payload in chunk:
            pipeline.receive_packet(t, payload)
            pipeline.events_received()
        if c == n_chunks - 1:
            pipeline.close()
            pipeline.events_received()
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
        window = window_after.get(c)
        if window is not None:
            nk_s += _time_neurokit_window(nk, window)
        done += len(chunk)
        progress.update(done)
    return wall, cpu, nk_s


def _peak_memory_bytes(packets: list[tuple[float, bytes]]) -> int:
    from vagus.core.pipeline import Pipeline

    tracemalloc.start()
    try:
        pipeline = Pipeline()
        for t, payload in packets:
            pipeline.receive_packet(t, payload)
            pipeline.events_received()
        pipeline.close()
        pipeline.events_received()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _neurokit_windows(rr_s: list[float], first_beat_s: float, sample: int) -> Iterator[list[float]]:
    """Peak times (ms) of the last 64 s before each of ``sample`` beats spread over the record."""
    times: list[float] = []
    t = first_beat_s
    for rr in rr_s:
        t += rr
        times.append(t * 1000.0)
    n = len(times)
    lo = next(i for i, v in enumerate(times) if v - times[0] >= 64_000.0)
    idx = [lo + (n - 1 - lo) * k // max(sample - 1, 1) for k in range(sample)]
    j = 0
    for i in idx:
        while times[i] - times[j] > 64_000.0:
            j += 1
        while j > 0 and times[i] - times[j - 1] <= 64_000.0:
            j -= 1
        yield times[j : i + 1]


def _import_neurokit() -> Any:
    try:
        import neurokit2 as nk
    except ImportError as exc:
        raise InvalidInput(
            "neurokit2 is needed for the comparison: pip install 'vagus[report]' "
            "(or pass --sample 0)"
        ) from exc
    return nk


def _time_neurokit_window(nk: Any, window_ms: list[float]) -> float:
    """Seconds neurokit2 ``hrv_time`` + ``hrv_frequency`` take on one 64 s window of peaks."""
    import numpy as np

    peaks = np.asarray(window_ms) - window_ms[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        nk.hrv_time(peaks, sampling_rate=1000)
        nk.hrv_frequency(peaks, sampling_rate=1000)
        return time.perf_counter() - t0


def _load(path: Path) -> tuple[float, list[float]]:
    from vagus.formats.plain import read_rr_text

    rr = read_rr_text(path, "s", first_value_is_time=True)
    return rr.first_beat_s or 0.0, [v / 1000.0 for v in rr.rr_ms]


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print the figures; returns 0 (targets are reported, not enforced)."""
    import json
    import resource

    path: Path = args.path if args.path is not None else find_default_record("pipeline")
    if args.sample < 0:
        raise InvalidInput(f"--sample must be >= 0, got {args.sample}")
    first_beat_s, rr_s = _load(path)
    packets = _packets(rr_s, first_beat_s)
    n_beats = len(rr_s)
    # The neurokit2 sample is split in RUNS parts, each timed window by window in between
    # the chunks of one pipeline run (see _run_once); each run gives one ratio.
    nk = _import_neurokit() if args.sample else None
    windows = list(_neurokit_windows(rr_s, first_beat_s, args.sample)) if args.sample else []
    if nk is not None:
        _time_neurokit_window(nk, windows[0])  # first call: lazy imports, caches
    seconds: list[float] = []
    cpu_seconds: list[float] = []
    nk_seconds: list[float] = []
    ratios: list[float] = []
    for k in range(RUNS):
        part = windows[k::RUNS]
        label = f"run {k + 1}/{RUNS}" + (" (pipeline + neurokit2 sample)" if part else "")
        progress = ProgressBar(label, total=len(packets))
        wall, cpu, nk_s = _run_once(packets, progress, nk, part)
        progress.finish()
        seconds.append(wall)
        cpu_seconds.append(cpu)
        if part:
            nk_seconds.append(nk_s)
            ratios.append((nk_s / len(part)) / (wall / n_beats))
    us_per_beat = statistics.median(seconds) / n_beats * 1e6
    cpu_us_per_beat = statistics.median(cpu_seconds) / n_beats * 1e6
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    sys.stderr.write("peak memory (tracemalloc run)...\n")
    peak_bytes = _peak_memory_bytes(packets)
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    nk_us = sum(nk_seconds) / len(windows) * 1e6 if windows else None
    speedup = statistics.median(ratios) if ratios else None
    figures = {
        "record": str(path),
        "beats": n_beats,
        "packets": len(packets),
        "hours": sum(rr_s) / 3600.0,
        "us_per_beat_median": us_per_beat,
        "us_per_beat_runs": [s / n_beats * 1e6 for s in seconds],
        "cpu_us_per_beat_median": cpu_us_per_beat,
        "load_average_1min": load,
        "cpu_count": os.cpu_count(),
        "peak_traced_memory_mib": peak_bytes / 2**20,
        "max_rss_mib": rss_kib / 1024.0,
        "neurokit2_us_per_beat": nk_us,
        "neurokit2_sample_beats": args.sample,
        "speedup": speedup,
        "speedup_per_run": ratios,
        "target_us_per_beat": TARGET_US_PER_BEAT,
        "target_speedup": TARGET_SPEEDUP,
    }
    if args.json:
        print(json.dumps(figures))
        return 0
    ok_speed = "ok" if us_per_beat <= TARGET_US_PER_BEAT else "MISSED"
    hours = sum(rr_s) / 3600.0
    print(f"record        {path} ({n_beats} beats, {hours:.1f} h, {len(packets)} packets)")
    runs = ", ".join(f"{s / n_beats * 1e6:.1f}" for s in seconds)
    print(
        f"pipeline      {us_per_beat:.1f} µs per beat (median of {RUNS}: {runs}); "
        f"target <= {TARGET_US_PER_BEAT:.0f}: {ok_speed}"
    )
    load_text = f"{load:.1f}" if load is not None else "n/a"
    print(
        f"              {cpu_us_per_beat:.1f} µs CPU time per beat; load average {load_text} "
        f"on {os.cpu_count()} CPUs (a busy machine inflates the wall-clock figure)"
    )
    print(
        f"memory        peak {peak_bytes / 2**20:.1f} MiB traced by the pipeline run; "
        f"process max RSS {rss_kib / 1024:.0f} MiB"
    )
    if nk_us is not None and speedup is not None:
        ok_ratio = "ok" if speedup >= TARGET_SPEEDUP else "MISSED"
        print(
            f"neurokit2     {nk_us / 1000:.2f} ms per beat (hrv_time + hrv_frequency over the "
            f"last 64 s, {args.sample} beats)"
        )
        each = ", ".join(f"{r:.0f}" for r in ratios)
        print(
            f"speedup       {speedup:.0f} x (median of {len(ratios)} runs, each timing its part "
            f"of the neurokit2 sample in between its chunks of packets: {each}); "
            f"target >= {TARGET_SPEEDUP:.0f}: {ok_ratio}"
        )
    return 0
