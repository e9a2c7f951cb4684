"""``vagus analyze FILE [--unit ms|s] [--json]``: summarise an RR-interval file.

The file goes through the real :class:`~vagus.core.pipeline.Pipeline` (the same code as
live): artifacts are classified and corrected, then the whole-recording metrics are
computed from the corrected NN (:mod:`vagus.core.metrics`), and a per-minute table shows
HR, RMSSD (60 s), coherence and the peak frequency as the live view would have shown them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vagus.core.events import Event, Metrics, Spectrum
from vagus.core.metrics import Summary, summarize_events
from vagus.formats.plain import read_rr_text

__all__ = ["analyze_file", "register", "run"]

#: Rows of the over-time table, one per this many seconds of beat time.
ROW_INTERVAL_S = 60.0


def register(subparsers: Any) -> None:
    """Add the ``analyze`` command."""
    parser = subparsers.add_parser(
        "analyze",
        help="summarise an RR-interval file",
        description=(
            "Summarise an RR-interval file (one value per line, '#' comment lines, unit "
            "stated with --unit; never guessed): beats, duration, artifacts found, "
            "time-domain metrics of the corrected NN, LF/HF (Welch over 5-min windows), "
            "and HR, RMSSD, coherence and peak frequency per minute."
        ),
    )
    parser.add_argument("file", type=Path, help="RR text file, one interval per line")
    parser.add_argument(
        "--unit", choices=("ms", "s"), default="ms", help="unit of the values (default: ms)"
    )
    parser.add_argument(
        "--first-value-is-time",
        action="store_true",
        help="the first value is the time of the first beat (PhysioNet *_rr_secs.txt)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def analyze_file(
    path: Path, unit: str, *, first_value_is_time: bool = False
) -> tuple[Summary, list[dict[str, float | None]]]:
    """Run the pipeline over an RR file; return the summary and the per-minute rows.

    Raises:
        FileFormatError: the file is not an RR list (names the first bad line).
    """
    from vagus.core.pipeline import Pipeline

    rr = read_rr_text(
        path,
        "s" if unit == "s" else "ms",
        first_value_is_time=first_value_is_time,
    )
    pipeline = Pipeline()
    if rr.first_beat_s is not None:
        pipeline.receive_rr(rr.rr_ms[0], t_s=rr.first_beat_s + rr.rr_ms[0] / 1000.0)
        pipeline.receive_rr(rr.rr_ms[1:])
    else:
        pipeline.receive_rr(rr.rr_ms)
    pipeline.close()
    events = pipeline.events_received()
    return summarize_events(events), _rows(events)


def _rows(events: list[Event]) -> list[dict[str, float | None]]:
    """One row per minute of beat time: the last metrics and spectrum before its end."""
    rows: list[dict[str, float | None]] = []
    last_m: Metrics | None = None
    last_s: Spectrum | None = None
    boundary: float | None = None

    def emit(t: float) -> None:
        peak = last_s.peak_hz if last_s is not None else None
        rows.append(
            {
                "t_s": t,
                "hr_bpm": last_m.hr_bpm if last_m else None,
                "rmssd_60s_ms": last_m.rmssd_60s_ms if last_m else None,
                "coherence_ratio": last_s.coherence_ratio if last_s else None,
                "peak_hz": peak,
                "peak_breaths_per_min": peak * 60.0 if peak is not None else None,
            }
        )

    for ev in events:
        if not isinstance(ev, Metrics | Spectrum):
            continue
        if boundary is None:
            boundary = (ev.t_s // ROW_INTERVAL_S + 1) * ROW_INTERVAL_S
        while ev.t_s > boundary:
            emit(boundary)
            boundary += ROW_INTERVAL_S
        if isinstance(ev, Metrics):
            last_m = ev
        else:
            last_s = ev
    return rows


def summary_to_json(summary: Summary) -> dict[str, Any]:
    """The JSON form of a :class:`~vagus.core.metrics.Summary` (coherence as a list)."""
    f = summary.frequency
    return {
        "beats_measured": summary.beats_measured,
        "nn_beats": summary.beats,
        "duration_s": summary.duration_s,
        "gaps": summary.gaps,
        "artifacts": dict(sorted(summary.artifacts.items())),
        "mean_nn_ms": summary.mean_nn_ms,
        "hr_bpm": summary.hr_bpm,
        "sdnn_ms": summary.sdnn_ms,
        "rmssd_ms": summary.rmssd_ms,
        "pnn50_pct": summary.pnn50_pct,
        "sdsd_ms": summary.sdsd_ms,
        "vlf_ms2": f.vlf_ms2,
        "lf_ms2": f.lf_ms2,
        "hf_ms2": f.hf_ms2,
        "lf_hf": f.lf_hf,
        "welch_windows_5min": f.welch_windows,
        "coherence_median": summary.coherence_median,
        "peak_hz_median": summary.peak_hz_median,
    }


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def run(args: argparse.Namespace) -> int:
    """Print the summary of ``args.file`` (human text, or one JSON object with --json)."""
    summary, rows = analyze_file(args.file, args.unit, first_value_is_time=args.first_value_is_time)
    if args.json:
        obj = {"file": str(args.file), "unit": args.unit, **summary_to_json(summary)}
        obj["minutes"] = rows
        print(json.dumps(obj, allow_nan=False))
        return 0
    out = sys.stdout
    s = summary
    f = s.frequency
    n_art = sum(s.artifacts.values())
    measured = s.beats_measured or 0
    minutes, seconds = divmod(s.duration_s, 60.0)
    print(f"{args.file}", file=out)
    print(
        f"  beats          {measured} measured, {s.beats} NN after correction"
        f" ({int(minutes)} min {seconds:04.1f} s of NN, {s.gaps} gaps)",
        file=out,
    )
    pct = 100.0 * n_art / measured if measured else 0.0
    classes = ", ".join(f"{k} {v}" for k, v in sorted(s.artifacts.items())) or "none"
    print(f"  artifacts      {n_art} ({pct:.2f} %): {classes}", file=out)
    print(
        f"  time domain    mean NN {_fmt(s.mean_nn_ms, '.1f', ' ms')}, "
        f"HR {_fmt(s.hr_bpm, '.1f', ' bpm')}, SDNN {_fmt(s.sdnn_ms, '.1f', ' ms')}, "
        f"RMSSD {_fmt(s.rmssd_ms, '.1f', ' ms')}, pNN50 {_fmt(s.pnn50_pct, '.1f', ' %')}, "
        f"SDSD {_fmt(s.sdsd_ms, '.1f', ' ms')}",
        file=out,
    )
    print(
        f"  frequency      VLF {_fmt(f.vlf_ms2, '.0f', ' ms²')}, "
        f"LF {_fmt(f.lf_ms2, '.0f', ' ms²')}, HF (0.15-0.40 Hz) {_fmt(f.hf_ms2, '.0f', ' ms²')},"
        f" LF/HF {_fmt(f.lf_hf, '.2f')}  (Welch, {f.welch_windows} × 5-min windows)",
        file=out,
    )
    peak = s.peak_hz_median
    print(
        f"  coherence      median ratio {_fmt(s.coherence_median, '.2f')}, median peak "
        f"{_fmt(peak, '.4f', ' Hz')} ({_fmt(peak * 60 if peak else None, '.1f', '/min')})"
        "  (64 s windows every 5 s; our implementation of the published HeartMath formula)",
        file=out,
    )
    if rows:
        print("", file=out)
        print(
            f"  {'t (min)':>7}  {'HR bpm':>6}  {'RMSSD60 ms':>10}  {'coherence':>9}  "
            f"{'peak Hz':>7}  {'peak /min':>9}",
            file=out,
        )
        for r in rows:
            t_min = (r["t_s"] or 0.0) / 60.0
            print(
                f"  {t_min:>7.0f}  {_fmt(r['hr_bpm'], '6.1f'):>6}  "
                f"{_fmt(r['rmssd_60s_ms'], '10.1f'):>10}  "
                f"{_fmt(r['coherence_ratio'], '9.2f'):>9}  {_fmt(r['peak_hz'], '7.4f'):>7}  "
                f"{_fmt(r['peak_breaths_per_min'], '9.2f'):>9}",
                file=out,
            )
    return 0
