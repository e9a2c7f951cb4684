"""``vagus bench replay [PATH]``: import a 24 h Holter record, replay it from the store.

Steps, each timed (wall clock, ``time.perf_counter``):

1. **import**: parse the record (default: PhysioNet nsr2db nsr001,
   ``../shared/data/physionet_nsr2db/nsr001_rr_secs.txt``: seconds, the first line is the
   time of the first beat) with the ``physionet`` reader of :mod:`vagus.formats` and
   write it to a new SQLite store in a temporary directory with one ``append_many``.
2. **read**: iterate the session's input from a freshly opened store
   (:meth:`~vagus.store.sqlite.SqliteStore.iter_input`), no pipeline.
3. **pipeline**: replay the records already in memory
   (:func:`vagus.store.replay.replay_records`: the one replay, a
   :class:`~vagus.core.pipeline.Pipeline` per participant; what replay costs beyond
   reading).
4. **replay**: the whole replay at max speed, as ``vagus replay --speed max`` does it:
   read from the store, schedule (:func:`vagus.sources.replay.paced`), feed through the
   one replay (:func:`vagus.store.replay.replay_items`), drain the events after every
   record.

Prints beats per second of the replay, by the wall clock and per CPU second (target: at
least :data:`TARGET_BEATS_PER_S`, i.e. the 24 h record in under 3 s), the read and
pipeline times, and peak memory: the process's peak resident set size (``getrusage``)
and, with ``--trace-memory``, the Python heap peak of one more replay under
``tracemalloc`` (slower, so separate).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from vagus.bench import DEFAULT_RECORD, find_default_record
from vagus.exceptions import InvalidInput

__all__ = ["DEFAULT_RECORD", "TARGET_BEATS_PER_S", "add_arguments", "run"]

#: Replay speed target (issue 4, section 6): the 24 h record (~106k beats) in < 3 s.
TARGET_BEATS_PER_S = 40_000.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench replay`` arguments."""
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        default=None,
        help=(
            "PhysioNet RR text in seconds, first line the time of the first beat "
            "(default: ../shared/data/physionet_nsr2db/nsr001_rr_secs.txt)"
        ),
    )
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="also measure the Python heap peak of one replay with tracemalloc (slower)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")


def _peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MB; ru_maxrss is KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def _read_records(path: Path) -> list[Any]:
    """The record's input records, via the physionet reader (or a minimal fallback)."""
    try:
        from vagus.formats.registry import read_rr_file
    except ImportError:  # pragma: no cover - the formats package is part of vagus
        return _fallback_records(path)
    return list(read_rr_file(path, "physionet").records())


def _fallback_records(path: Path) -> list[Any]:
    import numpy as np

    from vagus.store.base import RRRecord

    values = np.loadtxt(path, dtype=float, ndmin=1)
    if values.size < 2:
        raise InvalidInput(f"{path}: needs the first beat's time and at least one RR")
    rr_ms = values[1:] * 1000.0
    t_s = values[0] + np.cumsum(values[1:])
    return [
        RRRecord(tuple(rr_ms[i : i + 1024].tolist()), tuple(t_s[i : i + 1024].tolist()))
        for i in range(0, rr_ms.size, 1024)
    ]


def _replay(store: Any, session_id: str) -> tuple[int, int]:
    """Replay at max speed as ``vagus replay`` does; returns (records, events)."""
    from vagus.sources.replay import Scheduled, paced
    from vagus.store.replay import replay_items, session_participants

    def record_of(item: Scheduled) -> Any:
        return item.record

    names = session_participants(store, store.get_session(session_id))
    n_rec = n_ev = 0
    items = paced(store.iter_input(session_id), speed=None)
    for step in replay_items(items, names, record_of):
        n_ev += len(step.events)
        n_rec += step.record is not None
        # Done with the step: a loop variable would keep its events alive through the
        # next record's replay, which only makes the garbage collector's work bigger.
        del step
    return n_rec, n_ev


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its figures."""
    from vagus.store.base import RRRecord
    from vagus.store.open import open_store
    from vagus.store.replay import replay_records

    path: Path = args.path if args.path is not None else find_default_record("replay")
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    figures: dict[str, Any] = {"record": str(path)}
    with tempfile.TemporaryDirectory(prefix="vagus-bench-replay-") as tmp:
        # 1. import: parse + one transaction.
        t0 = time.perf_counter()
        records = _read_records(path)
        t1 = time.perf_counter()
        store = open_store(Path(tmp))
        info = store.create_session(title=path.name, source="import:physionet")
        store.append_many(info.id, records)
        store.end_session(info.id)
        store.close()
        t2 = time.perf_counter()
        beats = sum(len(r.rr_ms) for r in records if isinstance(r, RRRecord))
        db_bytes = sum(p.stat().st_size for p in Path(tmp).iterdir())
        figures.update(
            beats=beats,
            stored_records=len(records),
            store_bytes=db_bytes,
            parse_s=t1 - t0,
            store_write_s=t2 - t1,
        )
        del records
        gc.collect()

        store = open_store(Path(tmp), create=False)
        try:
            # 2. read only.
            t0 = time.perf_counter()
            in_memory = list(store.iter_input(info.id))
            figures["read_s"] = time.perf_counter() - t0
            # 3. pipeline only, on records in memory (the one replay, no store).
            t0 = time.perf_counter()
            for _step in replay_records(in_memory, {"me": "me"}):
                pass
            figures["pipeline_s"] = time.perf_counter() - t0
            del in_memory
            gc.collect()
            # 4. the whole replay, from the store (best of 3: the machine is shared).
            rss_before = _peak_rss_mb()
            times = []
            cpu_times = []
            events = 0
            for _ in range(3):
                t0, c0 = time.perf_counter(), time.process_time()
                _n, events = _replay(store, info.id)
                times.append(time.perf_counter() - t0)
                cpu_times.append(time.process_time() - c0)
            replay_s = min(times)
            figures.update(
                replay_s=replay_s,
                replay_runs_s=times,
                replay_cpu_s=min(cpu_times),
                beats_per_cpu_s=beats / min(cpu_times),
                load_average=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
                cpus=os.cpu_count(),
                events=events,
                beats_per_s=beats / replay_s,
                target_beats_per_s=TARGET_BEATS_PER_S,
                peak_rss_mb=_peak_rss_mb(),
                peak_rss_before_replay_mb=rss_before,
            )
            if args.trace_memory:
                gc.collect()
                tracemalloc.start()
                _replay(store, info.id)
                _cur, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                figures["replay_heap_peak_mb"] = peak / 1e6
        finally:
            store.close()
    figures["target_met"] = figures["beats_per_s"] >= TARGET_BEATS_PER_S
    if args.json:
        print(json.dumps(figures))
        return 0
    b = figures
    lines = [
        f"record            {path} ({b['beats']:,} beats)",
        f"import            parse {b['parse_s']:.2f} s + store {b['store_write_s']:.3f} s "
        f"({b['stored_records']} records, {b['store_bytes'] / 1e6:.1f} MB on disk)",
        f"read the store    {b['read_s']:.3f} s ({b['beats'] / b['read_s']:,.0f} beats/s)",
        f"pipeline only     {b['pipeline_s']:.2f} s ({b['beats'] / b['pipeline_s']:,.0f} beats/s)",
        f"replay (max)      {b['replay_s']:.2f} s -> {b['beats_per_s']:,.0f} beats/s "
        f"(target >= {TARGET_BEATS_PER_S:,.0f}: {'met' if b['target_met'] else 'NOT met'}); "
        f"{b['events']:,} events; runs " + ", ".join(f"{t:.2f}" for t in b["replay_runs_s"]) + " s",
        f"                  {b['replay_cpu_s']:.2f} s CPU -> {b['beats_per_cpu_s']:,.0f} beats per "
        f"CPU second (load average {b['load_average'] or 0:.1f} on {b['cpus']} CPUs; a busy "
        "machine inflates the wall-clock figure)",
        f"peak memory       {b['peak_rss_mb']:.0f} MB resident (process peak; "
        f"{b['peak_rss_before_replay_mb']:.0f} MB before the replays)",
    ]
    if "replay_heap_peak_mb" in b:
        lines.append(f"replay heap peak  {b['replay_heap_peak_mb']:.1f} MB (tracemalloc)")
    print("\n".join(lines))
    return 0
