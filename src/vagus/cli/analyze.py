"""``vagus analyze FILE [--format F] [--unit ms|s] [--every S] [--json]``: summarise an RR file.

The file goes through the real :class:`~vagus.core.pipeline.Pipeline` (the same code as
live): artifacts are classified and corrected, then the whole-recording metrics are
computed from the corrected NN (:mod:`vagus.core.metrics`), and a table shows how HR,
RMSSD, coherence and the peak frequency went over time.

Input: by default a plain RR list (one value per line, ``#`` comments, ``--unit``, ms
unless stated); an error names the first bad line, and says which ``--format`` or
``--unit`` the file looks like it needs. ``--format F`` reads any import format
(:mod:`vagus.formats.registry`; ``auto`` detects it) exactly as ``vagus import`` would,
markers, gaps and beat times included.

The over-time table: one row per window of ``--every`` seconds of beat time (on the
file's own clock, windows at multiples of it); by default the shortest of 1, 2, 5, 10, 15,
30 min, 1, 2, 3, 6, 12, 24 h that gives at most :data:`MAX_ROWS` rows. ``--every`` is
5 s (the spectrum interval) to 7 days (:data:`EVERY_RANGE_S`) and gives exactly that
spacing, up to :data:`MAX_EVERY_ROWS` rows: a spacing that would give more is widened to
the smallest multiple of it that fits, and the table says so. Each row aggregates its
window (:func:`window_rows`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from vagus.core.events import Beat, Event, Gap, Spectrum
from vagus.core.metrics import MIN_SUMMARY_BEATS, Summary, summarize_events
from vagus.exceptions import FileFormatError, InvalidInput, VagusError
from vagus.formats.plain import read_rr_text

__all__ = [
    "EVERY_RANGE_S",
    "MAX_EVERY_ROWS",
    "MAX_ROWS",
    "analyze_file",
    "every_interval",
    "every_seconds",
    "register",
    "row_interval",
    "run",
    "window_rows",
]

#: The default over-time table has at most this many rows.
MAX_ROWS = 30
#: A table with ``--every`` has at most this many rows (24 h in 5 s rows is 17,280): a
#: spacing that would give more (a file spanning months, or with a gap of years) is
#: widened to the smallest multiple of it that gives at most this many.
MAX_EVERY_ROWS = 20_000
#: ``--every`` range (s): from the spectrum interval (a spectrum every 5 s of beat time;
#: a shorter row holds no spectrum, only one or two beats) to a week.
EVERY_RANGE_S = (5.0, 7 * 86400.0)
#: Row spacings (s) the default table chooses from.
ROW_STEPS_S: tuple[float, ...] = (
    60.0,
    120.0,
    300.0,
    600.0,
    900.0,
    1800.0,
    3600.0,
    7200.0,
    10800.0,
    21600.0,
    43200.0,
    86400.0,
)
#: What ``--format`` names mean, for the hints.
_FORMAT_NAMES = {
    "kubios": "Kubios RR text",
    "heartmath": "HeartMath / HRV Logger CSV",
    "vu_ams": "VU-AMS IBI export",
    "polar": "Polar Sensor Logger RR export",
    "elite_hrv": "Elite HRV export",
    "json": "vagus JSON export",
    "vagus_csv": "vagus CSV export",
    "edf": "EDF+ file",
}


#: The end of ``vagus analyze --help``: what the --format names are, and examples.
EPILOG = """\
formats (--format NAME; the names `vagus import --format` takes, plus auto):
  plain      one RR per line, '#' comments; --unit ms (the default) or s
  auto       detect the format from the content, as `vagus import` does
  csv        a named column of a CSV/TSV table: --column NAME (--unit if unnamed)
  kubios     Kubios RR text export
  heartmath  HeartMath / HRV Logger CSV (timestamp, rr, since_start)
  vu_ams     VU-AMS IBI export
  physionet  PhysioNet RR text: first line the first beat's time, then RR in s
  polar      Polar Sensor Logger ..._RR.txt
  elite_hrv  Elite HRV export: one RR (ms) per line, named by its start time
  json, vagus_csv, edf
             what `vagus export --format json|csv|edf` writes

examples:
  an RR list in ms (one value per line); one in seconds, a table row per minute:
    vagus analyze rr.txt
    vagus analyze rr_secs.txt --unit s --every 60
  a PhysioNet RR file; a HeartMath CSV, as one JSON object:
    vagus analyze nsr001_rr_secs.txt --format physionet
    vagus analyze test_heartmath.csv --format heartmath --json
  a file in any format vagus can tell from its content:
    vagus analyze recording.txt --format auto
"""


def every_seconds(text: str) -> float:
    """argparse type for ``--every``: seconds within :data:`EVERY_RANGE_S`."""
    lo, hi = EVERY_RANGE_S
    span = f"give {lo:g} to {hi:g} s (7 days), e.g. 60 for a row per minute"
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds: {span}")
    if value < lo:
        raise argparse.ArgumentTypeError(
            f"{text!r} s is shorter than the spectrum interval ({lo:g} s): {span}"
        )
    if value > hi:
        raise argparse.ArgumentTypeError(f"{text!r} s is longer than 7 days: {span}")
    return value


def register(subparsers: Any) -> None:
    """Add the ``analyze`` command."""
    from vagus.formats.registry import FORMATS

    parser = subparsers.add_parser(
        "analyze",
        help="summarise an RR-interval file",
        # Raw text (the epilog's columns stay put), so the description is wrapped here.
        description=textwrap.fill(
            "Summarise an RR-interval file: beats, duration, artifacts found, time-domain "
            "metrics of the corrected NN, LF/HF (Welch over 5-min windows), and HR, RMSSD, "
            "coherence and peak frequency over time. By default the file is a plain RR list "
            "(one value per line, '#' comment lines, unit stated with --unit, ms unless "
            "given; never guessed); --format reads any format `vagus import` reads.",
            width=78,
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", type=Path, help="the RR file")
    parser.add_argument(
        "--format",
        choices=("auto", *FORMATS),
        default="plain",
        help="the file's format (default: plain RR list; auto: detect it as vagus import does)",
    )
    parser.add_argument(
        "--unit",
        choices=("ms", "s"),
        default=None,
        help="unit of the values (plain: default ms; other formats state their own)",
    )
    parser.add_argument("--column", default=None, metavar="NAME", help="RR column (--format csv)")
    parser.add_argument(
        "--first-value-is-time",
        action="store_true",
        help="plain: the first value is the time of the first beat (as --format physionet)",
    )
    lo, hi = EVERY_RANGE_S
    parser.add_argument(
        "--every",
        type=every_seconds,
        default=None,
        metavar="SECONDS",
        help=(
            f"row spacing of the over-time table, {lo:g} s (the spectrum interval) to "
            f"{hi:g} s (7 days); one that would give over {MAX_EVERY_ROWS} rows is widened "
            f"to a multiple of it (default: whole minutes or hours, at most {MAX_ROWS} rows)"
        ),
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


# ------------------------------------------------------------------ reading


def _hint(path: Path, unit: str | None) -> str:
    """What the file looks like, when it is not a plain RR list ("" if nothing better)."""
    from vagus.formats.registry import detect_format

    try:
        fmt = detect_format(path, unit=unit)
    except VagusError as exc:
        if "--column" in str(exc):
            return "it looks like a table: pass --format csv --column NAME (and --unit)"
        return ""
    if fmt in _FORMAT_NAMES:
        return f"it looks like a {_FORMAT_NAMES[fmt]}: pass --format {fmt}"
    return ""  # plain or physionet: read_rr_text's own hints say it


def _plain_events(path: Path, unit: str | None, first_value_is_time: bool) -> list[Event]:
    from vagus.core.pipeline import Pipeline

    try:
        rr = read_rr_text(
            path, "s" if unit == "s" else "ms", first_value_is_time=first_value_is_time
        )
    except FileFormatError as exc:
        hint = _hint(path, unit) if path.is_file() else ""
        if hint:
            raise FileFormatError(f"{exc}; {hint}") from None
        raise
    pipeline = Pipeline()
    if rr.first_beat_s is not None:
        pipeline.receive_rr(rr.rr_ms[0], t_s=rr.first_beat_s + rr.rr_ms[0] / 1000.0)
        pipeline.receive_rr(rr.rr_ms[1:])
    else:
        pipeline.receive_rr(rr.rr_ms)
    pipeline.close()
    return pipeline.events_received()


def _format_events(
    path: Path, fmt: str | None, unit: str | None, column: str | None
) -> tuple[str, list[Event]]:
    from vagus.core.pipeline import Pipeline
    from vagus.formats.registry import read_rr_file
    from vagus.store.recorder import feed_counting

    imported = read_rr_file(path, fmt, unit=unit, column=column)
    pipeline = Pipeline()
    events: list[Event] = []
    for record in imported.records():
        feed_counting(pipeline, record)  # malformed packets: skipped, as live and on import
        events.extend(pipeline.events_received())
    pipeline.close()
    events.extend(pipeline.events_received())
    return imported.format, events


def analyze_events(
    path: Path,
    fmt: str = "plain",
    unit: str | None = None,
    *,
    column: str | None = None,
    first_value_is_time: bool = False,
) -> tuple[str, list[Event]]:
    """Read ``path`` in ``fmt`` (``"auto"``: detect) and run it through the pipeline.

    Returns the format read and every event.

    Raises:
        FileFormatError: the file is not in the format (names the line and reason, and
            for a plain list what the file looks like instead).
        InvalidInput: options that do not fit together.
    """
    if fmt == "plain":
        if column is not None:
            raise InvalidInput("--column is for --format csv")
        return "plain", _plain_events(path, unit, first_value_is_time)
    if first_value_is_time:
        raise InvalidInput(
            "--first-value-is-time is for plain RR lists; --format physionet reads "
            "PhysioNet RR text"
        )
    return _format_events(path, None if fmt == "auto" else fmt, unit, column)


def analyze_file(
    path: Path,
    unit: str | None = "ms",
    *,
    first_value_is_time: bool = False,
    fmt: str = "plain",
    column: str | None = None,
    every_s: float | None = None,
) -> tuple[Summary, list[dict[str, float | None]]]:
    """Run the pipeline over an RR file; return the summary and the over-time rows.

    Raises:
        FileFormatError: the file is not in the format (names the first bad line).
    """
    _, events = analyze_events(
        path, fmt, unit, column=column, first_value_is_time=first_value_is_time
    )
    return summarize_events(events), window_rows(events, every_s)


# ------------------------------------------------------------------- table


def row_interval(events: list[Event], max_rows: int = MAX_ROWS) -> float:
    """The shortest of :data:`ROW_STEPS_S` that gives at most ``max_rows`` windows
    (whole days beyond that)."""
    times = [e.t_s for e in events if isinstance(e, Beat | Spectrum)]
    if not times:
        return ROW_STEPS_S[0]
    lo, hi = min(times), max(times)
    for step in ROW_STEPS_S:
        if _window(hi, step) - _window(lo, step) + 1 <= max_rows:
            return step
    day = ROW_STEPS_S[-1]
    return day * math.ceil((hi - lo) / day / (max_rows - 1))


def every_interval(events: list[Event], every_s: float, max_rows: int = MAX_EVERY_ROWS) -> float:
    """The row spacing (s) for ``--every every_s``: ``every_s``, or the smallest multiple
    of it that gives at most ``max_rows`` windows (no spacing makes a table too long to
    compute or read: 5 s rows over a file with a gap of a year would be 6 million).

    The user's ``--every`` is checked against :data:`EVERY_RANGE_S` when parsed; here
    only the lower end is enforced, since a computed spacing (whole days for a long
    record, or a widened one) may pass the upper end.

    Raises:
        InvalidInput: ``every_s`` below the lower end of :data:`EVERY_RANGE_S`.
    """
    lo_s = EVERY_RANGE_S[0]
    if not (math.isfinite(every_s) and every_s >= lo_s):
        raise InvalidInput(f"the row spacing must be at least {lo_s:g} s, got {every_s:g} s")
    times = [e.t_s for e in events if isinstance(e, Beat | Spectrum)]
    if not times:
        return every_s
    lo, hi = min(times), max(times)
    # At least the span over (max_rows - 1) windows; a step more where the edges fall.
    k = max(1, math.ceil((hi - lo) / every_s / (max_rows - 1)))
    while _window(hi, k * every_s) - _window(lo, k * every_s) + 1 > max_rows:
        k += 1
    return k * every_s


def _window(t: float, every: float) -> int:
    """Index of the window (``(k·every, (k+1)·every]``) that holds time ``t``."""
    return math.ceil(t / every) - 1


def window_rows(events: list[Event], every_s: float | None = None) -> list[dict[str, Any]]:
    """One row per window of ``every_s`` seconds of beat time (:func:`every_interval`:
    widened beyond :data:`MAX_EVERY_ROWS` rows; default: :func:`row_interval`).

    A window is ``(k·every, (k+1)·every]``; windows with no beats between the first and
    the last are kept (a gap shows as a row of n/a). Each row aggregates its window:

    - ``beats``: measured beats; ``artifact_pct``: % of them classified as artifacts;
    - ``hr_bpm`` = 60000 / mean(NN) and ``rmssd_ms`` = sqrt(mean(ΔNN²)) of the corrected
      NN in the window, ΔNN only between adjacent NN of the window and of one segment
      (never across a gap); None from fewer than 5 NN;
    - ``coherence_median`` and ``peak_hz_median``: medians over the 5-s spectra whose
      time falls in the window (64 s coherence windows, as live); ``peak_breaths_per_min``
      = 60 · ``peak_hz_median``.
    """
    every = row_interval(events) if every_s is None else every_interval(events, every_s)
    wins: dict[int, dict[str, Any]] = {}

    def win(t: float) -> dict[str, Any]:
        k = _window(t, every)
        w = wins.get(k)
        if w is None:
            w = wins[k] = {"beats": 0, "art": 0, "nn": [], "d2": [], "coh": [], "peak": []}
        return w

    segment = 0
    last: tuple[int, int, float] | None = None  # (window, segment, NN) of the last NN beat
    for ev in events:
        if isinstance(ev, Gap):
            segment += 1
        elif isinstance(ev, Beat):
            w = win(ev.t_s)
            if not ev.inserted:
                w["beats"] += 1
                w["art"] += ev.artifact is not None
            if ev.nn_ms is None:
                continue
            k = _window(ev.t_s, every)
            w["nn"].append(ev.nn_ms)
            if last is not None and last[0] == k and last[1] == segment:
                w["d2"].append((ev.nn_ms - last[2]) ** 2)
            last = (k, segment, ev.nn_ms)
        elif isinstance(ev, Spectrum):
            w = win(ev.t_s)
            if ev.coherence_ratio is not None:
                w["coh"].append(ev.coherence_ratio)
            if ev.peak_hz is not None:
                w["peak"].append(ev.peak_hz)
    rows: list[dict[str, Any]] = []
    if not wins:
        return rows
    for k in range(min(wins), max(wins) + 1):
        w = wins.get(k, {"beats": 0, "art": 0, "nn": [], "d2": [], "coh": [], "peak": []})
        enough = len(w["nn"]) >= MIN_SUMMARY_BEATS
        peak = float(np.median(w["peak"])) if w["peak"] else None
        rows.append(
            {
                "t_start_s": k * every,
                "t_end_s": (k + 1) * every,
                "beats": w["beats"],
                "artifact_pct": 100.0 * w["art"] / w["beats"] if w["beats"] else None,
                "hr_bpm": 60000.0 / float(np.mean(w["nn"])) if enough else None,
                "rmssd_ms": float(np.sqrt(np.mean(w["d2"]))) if enough and w["d2"] else None,
                "coherence_median": float(np.median(w["coh"])) if w["coh"] else None,
                "peak_hz_median": peak,
                "peak_breaths_per_min": peak * 60.0 if peak is not None else None,
            }
        )
    return rows


# ------------------------------------------------------------------ output


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


def _clock(t_s: float, seconds: bool) -> str:
    """``h:mm`` (or ``h:mm:ss``) of a beat time in seconds."""
    sign = "-" if t_s < 0 else ""
    total = round(abs(t_s))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h}:{m:02d}:{s:02d}" if seconds else f"{sign}{h}:{m:02d}"


def _spacing(every: float) -> str:
    if every % 3600 == 0:
        return f"{every / 3600:g} h"
    if every % 60 == 0:
        return f"{every / 60:g} min"
    return f"{every:g} s"


def run(args: argparse.Namespace) -> int:
    """Print the summary of ``args.file`` (human text, or one JSON object with --json)."""
    from vagus.formats.registry import FIXED_UNITS

    fmt, events = analyze_events(
        args.file,
        args.format,
        args.unit,
        column=args.column,
        first_value_is_time=args.first_value_is_time,
    )
    summary = summarize_events(events)
    every = row_interval(events) if args.every is None else every_interval(events, args.every)
    rows = window_rows(events, every)
    widened = args.every is not None and every != args.every
    unit = FIXED_UNITS.get(fmt) or args.unit or "ms"
    if args.json:
        obj = {"file": str(args.file), "format": fmt, "unit": unit, **summary_to_json(summary)}
        obj["every_s"] = every
        obj["rows"] = rows
        print(json.dumps(obj, allow_nan=False))
        return 0
    out = sys.stdout
    s = summary
    f = s.frequency
    n_art = sum(s.artifacts.values())
    measured = s.beats_measured or 0
    minutes, seconds = divmod(s.duration_s, 60.0)
    print(f"{args.file}" + (f" ({fmt})" if fmt != "plain" else ""), file=out)
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
    if not rows:
        return 0
    secs = every % 60 != 0
    width = 8 if secs else 5
    print("", file=out)
    print(
        f"  over time, every {_spacing(every)} of the file's beat time (h:mm; --every "
        "SECONDS to change): HR and RMSSD of the window's NN, medians of its 5-s spectra",
        file=out,
    )
    if widened:
        print(
            f"  (--every {args.every:g} would give more than {MAX_EVERY_ROWS} rows: widened "
            f"to {every:g} s, the smallest multiple of it that gives at most {MAX_EVERY_ROWS})",
            file=out,
        )
    print(
        f"  {'from':>{width}}  {'to':>{width}}  {'beats':>6}  {'art %':>5}  {'HR bpm':>6}  "
        f"{'RMSSD ms':>8}  {'coherence':>9}  {'peak Hz':>7}  {'peak /min':>9}",
        file=out,
    )
    for r in rows:
        print(
            f"  {_clock(r['t_start_s'], secs):>{width}}  {_clock(r['t_end_s'], secs):>{width}}  "
            f"{r['beats']:>6d}  {_fmt(r['artifact_pct'], '5.1f'):>5}  "
            f"{_fmt(r['hr_bpm'], '6.1f'):>6}  {_fmt(r['rmssd_ms'], '8.1f'):>8}  "
            f"{_fmt(r['coherence_median'], '9.2f'):>9}  {_fmt(r['peak_hz_median'], '7.4f'):>7}  "
            f"{_fmt(r['peak_breaths_per_min'], '9.2f'):>9}",
            file=out,
        )
    return 0
