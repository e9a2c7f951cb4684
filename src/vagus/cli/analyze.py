"""``vagus analyze FILE [--format F] [--unit ms|s] [--every S] [--json]``: summarise an RR file.

Artifacts are classified and corrected as live, then the whole-recording metrics are
computed from the corrected NN (:mod:`vagus.core.metrics`), and a table shows how HR,
RMSSD, coherence and the peak frequency went over time. A plain RR list goes through
:class:`~vagus.core.batch.BatchPipeline`: the beats and spectra of the live
:class:`~vagus.core.pipeline.Pipeline`, value for value, computed with numpy over blocks
(about 10x faster; ``tests/test_batch_equivalence.py``); the hidden option ``--engine
pipeline`` feeds the live pipeline instead (the same output). Other formats are fed to
the live pipeline packet by packet.

Input: the format is detected from the content as ``vagus import`` does
(:mod:`vagus.formats.registry`), a list of one number per line being a plain RR list
(``#`` comments, ``--unit``, ms unless stated); ``--format F`` overrides it (``auto``:
detect, and fail when nothing fits). A file no format fits is read as a plain list,
whose error names the first bad line and says which ``--format`` or ``--unit`` the file
looks like it needs.

Big files: a plain RR list is read block by block (its values spooled to a temporary
file on the first pass, read back on the second) and the beats and spectra are folded
into running aggregates as they come (:class:`_Fold`), so memory does not grow with the
file. Recordings of over 24 h of beat time get a spectrum every
:func:`spectrum_interval` s instead of every 5 s (:data:`FULL_SPECTRA_SPAN_S`).

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
from array import array
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from vagus.core.events import Beat, Event, Gap, Spectrum
from vagus.core.metrics import MIN_SUMMARY_BEATS, Summary
from vagus.exceptions import FileFormatError, InvalidInput, VagusError

if TYPE_CHECKING:
    from collections.abc import Callable

    from vagus.core.batch import BatchResults
    from vagus.core.pipeline import Pipeline

    _Sink = Callable[[list[Event]], None]
from vagus.formats.plain import RRScan, scan_rr_text

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
  (none)     detect the format from the content, as `vagus import` does; one
             number per line is a plain RR list (--unit, ms unless given)
  auto       detect, and fail when no format fits
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
  a file in any format vagus can tell from its content (the default):
    vagus analyze recording.txt
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
            "coherence and peak frequency over time. The format is detected as `vagus import` "
            "does (one value per line: a plain RR list, unit stated with --unit, ms unless "
            "given; never guessed); --format overrides it.",
            width=78,
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", type=Path, help="the RR file")
    parser.add_argument(
        "--format",
        choices=("auto", *FORMATS),
        default=None,
        help=(
            "the file's format (default: detected as vagus import does, one number per "
            "line being a plain RR list; auto: detect, and fail if nothing fits)"
        ),
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
    # Hidden: "pipeline" runs a plain list through the live Pipeline instead of the batch
    # path (the same results, several times slower; for comparisons and tests).
    parser.add_argument(
        "--engine", choices=("batch", "pipeline"), default="batch", help=argparse.SUPPRESS
    )
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


#: RR values fed to the pipeline at a time (their events are folded before the next).
_FEED_BATCH = 4096


def _scan_plain(
    path: Path, unit: str | None, first_value_is_time: bool, spool: BinaryIO | None = None
) -> RRScan:
    """Check a plain RR list from end to end (errors say what the file looks like); the
    values go to ``spool`` if given (read back by ``chunks()`` instead of parsed again)."""
    try:
        return scan_rr_text(
            path,
            "s" if unit == "s" else "ms",
            first_value_is_time=first_value_is_time,
            spool=spool,
        )
    except FileFormatError as exc:
        hint = _hint(path, unit) if path.is_file() else ""
        if hint:
            raise FileFormatError(f"{exc}; {hint}") from None
        raise


def _run_plain(scan: RRScan, pipeline: Pipeline, max_rr_ms: float, sink: _Sink) -> None:
    """Feed a scanned plain RR list block by block, handing the events to ``sink``."""
    first = True
    for chunk in scan.chunks():
        if first and scan.first_beat_s is not None:
            rr0 = float(chunk[0])
            pipeline.receive_rr(rr0, t_s=scan.first_beat_s + rr0 / 1000.0)
            chunk = chunk[1:]
        first = False
        long_idx = np.flatnonzero(chunk > max_rr_ms)
        start = 0
        for i in [*long_idx.tolist(), chunk.size]:
            for a in range(start, i, _FEED_BATCH):
                pipeline.receive_rr(chunk[a : min(i, a + _FEED_BATCH)].tolist())
                sink(pipeline.events_received())
            if i < chunk.size:
                pipeline.receive_rr([float(chunk[i])])  # alone: a gap of its own
            start = i + 1
    pipeline.close()
    sink(pipeline.events_received())


def _run_plain_batch(scan: RRScan, step: float, fold: _Fold) -> bool:
    """Run a scanned plain RR list through :class:`~vagus.core.batch.BatchPipeline` (the
    pipeline's beats and spectra, in blocks) into ``fold``.

    Returns False, having fed nothing, for the one input the batch path does not take:
    a first-beat time (``--first-value-is-time``) whose first RR is outside the
    physiological range or whose beat time is beyond the pipeline's time range; the
    caller then runs the pipeline, which treats it its own way.
    """
    from vagus.core.batch import BatchPipeline
    from vagus.core.pipeline import MAX_ABS_TIME_S

    batch = BatchPipeline(spectrum_interval_s=step)
    first = True
    for chunk in scan.chunks():
        if first and scan.first_beat_s is not None:
            rr0 = float(chunk[0])
            t_s = scan.first_beat_s + rr0 / 1000.0
            if not (rr0 <= batch.max_rr_ms and -MAX_ABS_TIME_S <= t_s <= MAX_ABS_TIME_S):
                return False
            batch.receive_rr(chunk[:1], t_s=t_s)
            chunk = chunk[1:]
        first = False
        batch.receive_rr(chunk)
        fold.add_batch(batch.results_received())
    batch.close()
    fold.add_batch(batch.results_received())
    return True


def _run_format(path: Path, fmt: str | None, unit: str | None, column: str | None) -> Any:
    from vagus.formats.registry import read_rr_file

    return read_rr_file(path, fmt, unit=unit, column=column)


def resolve_format(path: Path, fmt: str | None, unit: str | None, column: str | None) -> str:
    """The format ``vagus analyze`` reads ``path`` as.

    ``None`` (the default): detected as ``vagus import`` does, one number per line
    being a plain RR list (in ``unit``, ms unless given); content no format fits is
    read as a plain list, whose reader names the first bad line, and so is a file whose
    detected format holds RR in another unit than ``unit`` states. ``"auto"``: detected,
    and an error when detection fails. Anything else: as given.
    """
    from vagus.formats.registry import FIXED_UNITS, detect_format

    if fmt is not None and fmt != "auto":
        return fmt
    try:
        name = detect_format(path, unit=unit or "ms", column=column)
    except FileFormatError:
        if fmt == "auto":
            raise
        return "plain"
    if fmt is None and unit is not None and FIXED_UNITS.get(name, unit) != unit:
        return "plain"  # a unit stated for the values: a plain list, as before detection
    return name


@dataclass(frozen=True, slots=True)
class Analysis:
    """What ``vagus analyze`` found in a file.

    Attributes:
        format: the format read.
        summary: the whole-recording summary.
        rows: the over-time table (:func:`window_rows`' definitions).
        every_s: the table's row spacing (s).
        spectrum_interval_s: spectra (coherence, peak) were computed every this many s
            of beat time (:func:`spectrum_interval`).
    """

    format: str
    summary: Summary
    rows: list[dict[str, Any]]
    every_s: float
    spectrum_interval_s: float


def analyze_path(
    path: Path,
    fmt: str | None = None,
    unit: str | None = None,
    *,
    column: str | None = None,
    first_value_is_time: bool = False,
    every_s: float | None = None,
    engine: str = "batch",
) -> Analysis:
    """Read ``path`` and run it through the pipeline, folding the events as they come.

    Memory is bounded by the pipeline's windows and the summary, not by the file: a
    plain RR list is read block by block (:class:`~vagus.formats.plain.RRScan`) and
    the events are folded into running aggregates (:class:`_Fold`) instead of kept.
    ``engine``: ``"batch"`` (the default) computes a plain list's beats and spectra with
    :class:`~vagus.core.batch.BatchPipeline` (the same values as the pipeline, in numpy
    blocks); ``"pipeline"`` feeds the live :class:`~vagus.core.pipeline.Pipeline`
    (other formats always do).
    Definitions: those of :func:`vagus.core.metrics.summarize` (time domain, 5-min
    Welch windows) and :func:`window_rows`; the coherence medians are over the pipeline's
    spectra, every :func:`spectrum_interval` s (5 s up to 24 h of beat time).

    Raises:
        FileFormatError: the file is not in the format (names the line and reason, and
            for a plain list what the file looks like instead).
        InvalidInput: options that do not fit together.
    """
    from vagus.core.artifacts import Lipponen2019
    from vagus.core.pipeline import Pipeline
    from vagus.store.recorder import feed_counting

    if first_value_is_time and fmt not in (None, "plain"):
        raise InvalidInput(
            "--first-value-is-time is for plain RR lists; --format physionet reads "
            "PhysioNet RR text"
        )
    if fmt == "plain" and column is not None:
        raise InvalidInput("--column is for --format csv")
    if engine not in ("batch", "pipeline"):
        raise InvalidInput(f"engine must be 'batch' or 'pipeline', got {engine!r}")
    name = "plain" if first_value_is_time else resolve_format(path, fmt, unit, column)
    import tempfile

    fold = _Fold()
    values = tempfile.TemporaryFile(prefix="vagus-analyze-rr-")  # noqa: SIM115 (closed below)
    try:
        corrector = Lipponen2019()
        if name == "plain":
            scan = _scan_plain(path, unit, first_value_is_time, values)
            step = spectrum_interval(scan.sum_ms / 1000.0, every_s)
            if engine != "batch" or not _run_plain_batch(scan, step, fold):
                pipeline = Pipeline(spectrum_interval_s=step, corrector=corrector)
                _run_plain(scan, pipeline, corrector.max_rr_ms, fold.add)
        else:
            imported = _run_format(path, name, unit, column)
            name = imported.format
            step = spectrum_interval(imported.duration_s, every_s)
            pipeline = Pipeline(spectrum_interval_s=step, corrector=corrector)
            for record in imported.records():
                feed_counting(pipeline, record)  # malformed packets: skipped, as on import
                fold.add(pipeline.events_received())
            pipeline.close()
            fold.add(pipeline.events_received())
        span = fold.span()
        if span is None:
            every = ROW_STEPS_S[0] if every_s is None else every_s
        elif every_s is None:
            every = _row_interval_span(*span)
        else:
            every = _every_interval_span(*span, every_s)
        summary, rows = fold.finish(every)
    finally:
        fold.close()
        values.close()
    return Analysis(name, summary, rows, every, step)


def _plain_events(path: Path, unit: str | None, first_value_is_time: bool) -> list[Event]:
    from vagus.core.artifacts import Lipponen2019
    from vagus.core.pipeline import Pipeline

    scan = _scan_plain(path, unit, first_value_is_time)
    corrector = Lipponen2019()
    events: list[Event] = []
    _run_plain(scan, Pipeline(corrector=corrector), corrector.max_rr_ms, events.extend)
    return events


def _format_events(
    path: Path, fmt: str | None, unit: str | None, column: str | None
) -> tuple[str, list[Event]]:
    from vagus.core.pipeline import Pipeline
    from vagus.store.recorder import feed_counting

    imported = _run_format(path, fmt, unit, column)
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
    fmt: str | None = "plain",
    unit: str | None = None,
    *,
    column: str | None = None,
    first_value_is_time: bool = False,
) -> tuple[str, list[Event]]:
    """Every event of ``path`` through a :class:`Pipeline` with 5-s spectra, kept in a
    list (small files and tests; :func:`analyze_path` folds them instead).

    Raises:
        FileFormatError, InvalidInput: as :func:`analyze_path`.
    """
    if fmt == "plain" or first_value_is_time:
        if first_value_is_time and fmt not in (None, "plain"):
            raise InvalidInput("--first-value-is-time is for plain RR lists")
        if column is not None:
            raise InvalidInput("--column is for --format csv")
        return "plain", _plain_events(path, unit, first_value_is_time)
    name = resolve_format(path, fmt, unit, column)
    if name == "plain":
        return "plain", _plain_events(path, unit, first_value_is_time)
    return _format_events(path, name, unit, column)


def analyze_file(
    path: Path,
    unit: str | None = "ms",
    *,
    first_value_is_time: bool = False,
    fmt: str | None = None,
    column: str | None = None,
    every_s: float | None = None,
) -> tuple[Summary, list[dict[str, float | None]]]:
    """The summary and the over-time rows of an RR file (:func:`analyze_path`).

    Raises:
        FileFormatError: the file is not in the format (names the first bad line).
    """
    result = analyze_path(
        path, fmt, unit, column=column, first_value_is_time=first_value_is_time, every_s=every_s
    )
    return result.summary, result.rows


# ------------------------------------------------------------------ streaming


#: Recordings up to this much beat time (s) get a spectrum every 5 s, as live. Longer ones
#: get one every :func:`spectrum_interval` s, so that no file needs more spectra than a
#: 24 h one (the spectra would otherwise cost most of the time of a months-long file).
FULL_SPECTRA_SPAN_S = 86400.0
#: Spectrum intervals (s) a long recording chooses from: multiples of 5 s, so their
#: spectra are a subset of the 5-s series (the same windows, ending at multiples of 5 s).
SPECTRUM_STEPS_S: tuple[float, ...] = (
    5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
)  # fmt: skip
#: Spool records read back per block by :meth:`_Fold.finish` (~6.5 MB).
_SPOOL_BLOCK = 1 << 18
#: Beats folded per batch (numpy work per batch, not per beat).
_FOLD_BATCH = 1 << 16
#: The spool's record of one beat: time, NN (NaN: none), segment, flags.
_SPOOL_DTYPE = np.dtype([("t", "<f8"), ("nn", "<f8"), ("seg", "<i8"), ("flags", "u1")])
_MEASURED = 1
_ARTIFACT = 2


def spectrum_interval(span_s: float, every_s: float | None = None) -> float:
    """The spectrum interval (s) ``vagus analyze`` uses for a recording of ``span_s``.

    5 s (as live) up to :data:`FULL_SPECTRA_SPAN_S`; beyond, the smallest of
    :data:`SPECTRUM_STEPS_S` that gives at most as many spectra as a 24 h recording
    (17,280), but never more than the row spacing asked for with ``--every`` (widened as
    :func:`every_interval` would widen it), so every row keeps spectra.
    """
    if not math.isfinite(span_s) or span_s <= FULL_SPECTRA_SPAN_S:
        return 5.0
    budget = FULL_SPECTRA_SPAN_S / 5.0
    step = next((s for s in SPECTRUM_STEPS_S if span_s / s <= budget), SPECTRUM_STEPS_S[-1])
    if every_s is not None:
        row = max(every_s, span_s / (MAX_EVERY_ROWS - 1))
        fits = [s for s in SPECTRUM_STEPS_S if s <= row]
        step = min(step, fits[-1] if fits else 5.0)
    return step


def _chan(acc: tuple[int, float, float], x: np.ndarray) -> tuple[int, float, float]:
    """Fold ``x`` into ``(n, mean, M2)`` (Chan et al. 1979 pairwise update: numerically
    stable, unlike a running sum of squares; ``M2 / (n - 1)`` is the sample variance)."""
    n_b = int(x.size)
    if n_b == 0:
        return acc
    mean_b = float(x.mean())
    m2_b = float(np.sum((x - mean_b) ** 2))
    n_a, mean_a, m2_a = acc
    n = n_a + n_b
    delta = mean_b - mean_a
    return n, mean_a + delta * n_b / n, m2_a + m2_b + delta * delta * n_a * n_b / n


class _Fold:
    """Folds pipeline events into what ``vagus analyze`` prints, file size aside.

    Memory holds one batch of beats, the spectra's coherence and peak values (two
    floats per spectrum) and one small record per segment. The beats go to a temporary
    spool file (25 bytes each) that :meth:`finish` reads back block by block for the
    whole-recording metrics, the 5-min Welch windows and the table's rows.
    """

    def __init__(self) -> None:
        import tempfile

        self._spool = tempfile.TemporaryFile(prefix="vagus-analyze-")  # noqa: SIM115 (closed by close())
        self._t: list[float] = []
        self._nn: list[float] = []
        self._seg: list[int] = []
        self._flags: list[int] = []
        self.segment = 0
        self.measured = 0
        self.artifacts: dict[str, int] = {}
        self.t_lo = math.inf
        self.t_hi = -math.inf
        # (segment, first and last NN beat time) of every segment with NN beats.
        self.segments: list[list[float]] = []
        self.spec_t: array[float] = array("d")
        self.spec_coh: array[float] = array("d")
        self.spec_peak: array[float] = array("d")

    def add(self, events: list[Event]) -> None:
        """Fold a batch of events in (in order)."""
        ts, nns, segs, flags = self._t, self._nn, self._seg, self._flags
        arts = self.artifacts
        nan = math.nan
        for ev in events:
            if type(ev) is Beat:
                t = ev.t_s
                nn = ev.nn_ms
                f = 0
                if not ev.inserted:
                    f = _MEASURED
                    self.measured += 1
                    a = ev.artifact
                    if a is not None:
                        f |= _ARTIFACT
                        arts[a] = arts.get(a, 0) + 1
                ts.append(t)
                nns.append(nan if nn is None else nn)
                segs.append(self.segment)
                flags.append(f)
                if nn is not None:
                    segments = self.segments
                    if segments and segments[-1][0] == self.segment:
                        segments[-1][2] = t
                    else:
                        segments.append([self.segment, t, t])
            elif type(ev) is Gap:
                self.segment += 1
            elif type(ev) is Spectrum:
                self.spec_t.append(ev.t_s)
                self.spec_coh.append(nan if ev.coherence_ratio is None else ev.coherence_ratio)
                self.spec_peak.append(nan if ev.peak_hz is None else ev.peak_hz)
        if len(ts) >= _FOLD_BATCH:
            self._flush()

    def add_batch(self, results: BatchResults) -> None:
        """Fold in the beats and spectra of a :class:`~vagus.core.batch.BatchPipeline`
        (the same records :meth:`add` makes of the pipeline's events, as arrays)."""
        from vagus.core.batch import ARTIFACT_CODES

        self._flush()
        b = results.beats
        if len(b):
            measured = ~b.inserted
            self.measured += int(np.count_nonzero(measured))
            counts = np.bincount(b.artifact[measured], minlength=len(ARTIFACT_CODES))
            for code in np.flatnonzero(counts[1:]).tolist():
                name = ARTIFACT_CODES[code + 1]
                assert name is not None
                self.artifacts[name] = self.artifacts.get(name, 0) + int(counts[code + 1])
            rec = np.empty(len(b), dtype=_SPOOL_DTYPE)
            rec["t"] = b.t_s
            rec["nn"] = b.nn_ms
            rec["seg"] = b.segment
            rec["flags"] = np.where(measured, _MEASURED, 0) | np.where(
                measured & (b.artifact != 0), _ARTIFACT, 0
            )
            self.t_lo = min(self.t_lo, float(b.t_s.min()))
            self.t_hi = max(self.t_hi, float(b.t_s.max()))
            rec.tofile(self._spool)
            has = ~np.isnan(b.nn_ms)
            t_nn = b.t_s[has]
            seg_nn = b.segment[has]
            if t_nn.size:
                # First and last NN beat of each segment in this block.
                cut = np.flatnonzero(np.diff(seg_nn)) + 1
                firsts = np.r_[0, cut]
                lasts = np.r_[cut - 1, seg_nn.size - 1]
                segments = self.segments
                for s, i, j in zip(
                    seg_nn[firsts].tolist(), firsts.tolist(), lasts.tolist(), strict=True
                ):
                    if segments and segments[-1][0] == s:
                        segments[-1][2] = float(t_nn[j])
                    else:
                        segments.append([s, float(t_nn[i]), float(t_nn[j])])
            self.segment = int(b.segment[-1])
        sp = results.spectra
        if sp.t_s.size:
            self.spec_t.frombytes(sp.t_s.astype(np.float64).tobytes())
            self.spec_coh.frombytes(sp.coherence_ratio.astype(np.float64).tobytes())
            self.spec_peak.frombytes(sp.peak_hz.astype(np.float64).tobytes())

    def _flush(self) -> None:
        if not self._t:
            return
        rec = np.empty(len(self._t), dtype=_SPOOL_DTYPE)
        rec["t"] = self._t
        rec["nn"] = self._nn
        rec["seg"] = self._seg
        rec["flags"] = self._flags
        self.t_lo = min(self.t_lo, float(rec["t"].min()))
        self.t_hi = max(self.t_hi, float(rec["t"].max()))
        rec.tofile(self._spool)
        self._t, self._nn, self._seg, self._flags = [], [], [], []

    def _blocks(self) -> Iterator[np.ndarray]:
        self._spool.flush()
        self._spool.seek(0)
        while True:
            block = np.fromfile(self._spool, dtype=_SPOOL_DTYPE, count=_SPOOL_BLOCK)
            if not block.size:
                return
            yield block

    def span(self) -> tuple[float, float] | None:
        """(first, last) time of any beat or spectrum; None without either."""
        self._flush()
        lo, hi = self.t_lo, self.t_hi
        if self.spec_t:
            st = np.frombuffer(self.spec_t, dtype=np.float64)
            lo, hi = min(lo, float(st.min())), max(hi, float(st.max()))
        return (lo, hi) if lo <= hi else None

    def finish(self, every: float) -> tuple[Summary, list[dict[str, Any]]]:
        """The summary and the table's rows (windows of ``every`` s), from the spool."""
        from vagus.core.metrics import REPORT_WELCH_WINDOW_S, FrequencySummary
        from vagus.core.spectrum import welch_lf_hf

        span = self.span()
        k0 = _window(span[0], every) if span else 0
        nk = _window(span[1], every) - k0 + 1 if span else 0
        r_beats = np.zeros(nk)
        r_art = np.zeros(nk)
        r_nn_n = np.zeros(nk)
        r_nn_sum = np.zeros(nk)
        r_d_n = np.zeros(nk)
        r_d2 = np.zeros(nk)
        nn_acc: tuple[int, float, float] = (0, 0.0, 0.0)
        d_acc: tuple[int, float, float] = (0, 0.0, 0.0)
        nn_sums: list[float] = []
        d2_sums: list[float] = []
        over50 = 0
        gaps = 0
        prev: tuple[float, float, int, int] | None = None  # t, nn, seg, window of last NN
        # Welch: 300-s windows back to back, ending at each segment's last NN beat.
        win_s = REPORT_WELCH_WINDOW_S
        plans: dict[int, deque[float]] = {}
        for seg, t_first, t_last in self.segments:
            n_win = math.floor((t_last - t_first + 2.5) / win_s)
            plans[int(seg)] = deque(t_last - (n_win - 1 - j) * win_s for j in range(n_win))
        bands: list[tuple[float, float, float]] = []
        buf_seg = -1
        buf_t = np.empty(0)
        buf_nn = np.empty(0)

        def welch(final: bool) -> None:
            nonlocal buf_t, buf_nn
            ends = plans.get(buf_seg, deque())
            while ends and (final or (buf_t.size and buf_t[-1] > ends[0])):
                t_end = ends.popleft()
                lo = int(np.searchsorted(buf_t, t_end - win_s - 5.0))
                hi = int(np.searchsorted(buf_t, t_end, side="right")) + 1
                res = welch_lf_hf(buf_t[lo:hi], buf_nn[lo:hi], t_end, window_s=win_s)
                if res is not None:
                    bands.append((res.vlf_ms2, res.lf_ms2, res.hf_ms2))
            keep = int(np.searchsorted(buf_t, ends[0] - win_s - 5.0)) if ends else buf_t.size
            buf_t, buf_nn = buf_t[keep:], buf_nn[keep:]

        for block in self._blocks():
            k = np.ceil(block["t"] / every).astype(np.int64) - 1 - k0
            flags = block["flags"]
            measured = (flags & _MEASURED) != 0
            r_beats += np.bincount(k[measured], minlength=nk)
            r_art += np.bincount(k[measured & ((flags & _ARTIFACT) != 0)], minlength=nk)
            has = ~np.isnan(block["nn"])
            t = block["t"][has]
            nn = block["nn"][has]
            seg = block["seg"][has]
            k = k[has]
            if not nn.size:
                continue
            r_nn_n += np.bincount(k, minlength=nk)
            r_nn_sum += np.bincount(k, weights=nn, minlength=nk)
            nn_acc = _chan(nn_acc, nn)
            nn_sums.append(float(nn.sum()))
            # ΔNN between adjacent NN beats of one segment (with the last of the block before).
            if prev is not None:
                p_nn = np.r_[prev[1], nn]
                p_seg = np.r_[prev[2], seg]
                p_k = np.r_[prev[3], k]
            else:
                p_nn, p_seg, p_k = nn, seg, k
            same = np.diff(p_seg) == 0
            gaps += int(np.count_nonzero(~same))
            d = np.diff(p_nn)[same]
            d_acc = _chan(d_acc, d)
            d2 = d * d
            d2_sums.append(float(d2.sum()))
            over50 += int(np.count_nonzero(np.abs(d) > 50.0))
            in_row = same & (np.diff(p_k) == 0)
            k_d = p_k[1:][in_row]
            dd = np.diff(p_nn)[in_row]
            r_d_n += np.bincount(k_d, minlength=nk)
            r_d2 += np.bincount(k_d, weights=dd * dd, minlength=nk)
            prev = (float(t[-1]), float(nn[-1]), int(seg[-1]), int(k[-1]))
            # Welch windows of each segment in this block.
            for s in np.unique(seg):
                s = int(s)
                part = seg == s
                if s != buf_seg:
                    if buf_seg >= 0:
                        welch(final=True)
                    buf_seg, buf_t, buf_nn = s, np.empty(0), np.empty(0)
                buf_t = np.concatenate([buf_t, t[part]])
                buf_nn = np.concatenate([buf_nn, nn[part]])
                welch(final=False)
        if buf_seg >= 0:
            welch(final=True)
        self._spool.close()

        n = nn_acc[0]
        n_d = d_acc[0]
        enough = n >= MIN_SUMMARY_BEATS
        mean_nn = math.fsum(nn_sums) / n if enough else None
        if bands:
            vlf, lf, hf = (float(np.mean([b[i] for b in bands])) for i in range(3))
            freq = FrequencySummary(vlf, lf, hf, lf / hf if hf > 0 else None, len(bands))
        else:
            freq = FrequencySummary(None, None, None, None, 0)
        coh = np.frombuffer(self.spec_coh, dtype=np.float64)
        peak = np.frombuffer(self.spec_peak, dtype=np.float64)
        ok = ~np.isnan(coh)
        summary = Summary(
            beats=n,
            duration_s=math.fsum(nn_sums) / 1000.0,
            mean_nn_ms=mean_nn,
            hr_bpm=60000.0 / mean_nn if mean_nn else None,
            sdnn_ms=math.sqrt(nn_acc[2] / (n - 1)) if enough else None,
            rmssd_ms=math.sqrt(math.fsum(d2_sums) / n_d) if enough and n_d else None,
            pnn50_pct=100.0 * over50 / n_d if enough and n_d else None,
            sdsd_ms=math.sqrt(d_acc[2] / (n_d - 1)) if enough and n_d >= 2 else None,
            frequency=freq,
            beats_measured=self.measured,
            artifacts=dict(self.artifacts),
            gaps=gaps,
            peak_hz_median=float(np.median(peak[ok])) if ok.any() else None,
            coherence_median=float(np.median(coh[ok])) if ok.any() else None,
        )
        # Spectra per row: medians of the non-null values whose time falls in the row.
        st = np.frombuffer(self.spec_t, dtype=np.float64)
        sk = np.ceil(st / every).astype(np.int64) - 1 - k0 if nk else np.empty(0, np.int64)
        rows: list[dict[str, Any]] = []
        order = np.argsort(sk, kind="stable")
        bounds = np.searchsorted(sk[order], np.arange(nk + 1))
        for i in range(nk):
            idx = order[bounds[i] : bounds[i + 1]]
            c = coh[idx]
            c = c[~np.isnan(c)]
            pk = peak[idx]
            pk = pk[~np.isnan(pk)]
            nn_n = int(r_nn_n[i])
            enough_row = nn_n >= MIN_SUMMARY_BEATS
            beats = int(r_beats[i])
            p_med = float(np.median(pk)) if pk.size else None
            rows.append(
                {
                    "t_start_s": (k0 + i) * every,
                    "t_end_s": (k0 + i + 1) * every,
                    "beats": beats,
                    "artifact_pct": 100.0 * r_art[i] / beats if beats else None,
                    "hr_bpm": 60000.0 / (r_nn_sum[i] / nn_n) if enough_row else None,
                    "rmssd_ms": (
                        math.sqrt(r_d2[i] / r_d_n[i]) if enough_row and r_d_n[i] else None
                    ),
                    "coherence_median": float(np.median(c)) if c.size else None,
                    "peak_hz_median": p_med,
                    "peak_breaths_per_min": p_med * 60.0 if p_med is not None else None,
                }
            )
        return summary, rows

    def close(self) -> None:
        """Remove the spool (also done by :meth:`finish`)."""
        self._spool.close()


# ------------------------------------------------------------------- table


def row_interval(events: list[Event], max_rows: int = MAX_ROWS) -> float:
    """The shortest of :data:`ROW_STEPS_S` that gives at most ``max_rows`` windows
    (whole days beyond that)."""
    times = [e.t_s for e in events if isinstance(e, Beat | Spectrum)]
    if not times:
        return ROW_STEPS_S[0]
    return _row_interval_span(min(times), max(times), max_rows)


def _row_interval_span(lo: float, hi: float, max_rows: int = MAX_ROWS) -> float:
    """:func:`row_interval` of beats and spectra from ``lo`` to ``hi`` (s)."""
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
    return _every_interval_span(min(times), max(times), every_s, max_rows)


def _every_interval_span(
    lo: float, hi: float, every_s: float, max_rows: int = MAX_EVERY_ROWS
) -> float:
    """:func:`every_interval` of beats and spectra from ``lo`` to ``hi`` (s)."""
    lo_s = EVERY_RANGE_S[0]
    if not (math.isfinite(every_s) and every_s >= lo_s):
        raise InvalidInput(f"the row spacing must be at least {lo_s:g} s, got {every_s:g} s")
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

    result = analyze_path(
        args.file,
        args.format,
        args.unit,
        column=args.column,
        first_value_is_time=args.first_value_is_time,
        every_s=args.every,
        engine=getattr(args, "engine", "batch"),
    )
    fmt, summary, rows, every = result.format, result.summary, result.rows, result.every_s
    widened = args.every is not None and every != args.every
    unit = FIXED_UNITS.get(fmt) or args.unit or "ms"
    if args.json:
        obj = {"file": str(args.file), "format": fmt, "unit": unit, **summary_to_json(summary)}
        obj["every_s"] = every
        obj["spectrum_interval_s"] = result.spectrum_interval_s
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
        f"  (64 s windows every {result.spectrum_interval_s:g} s; our implementation of the "
        "published HeartMath formula)",
        file=out,
    )
    if result.spectrum_interval_s > 5.0:
        print(
            f"  (over {FULL_SPECTRA_SPAN_S / 3600:g} h of beat time: spectra every "
            f"{result.spectrum_interval_s:g} s instead of every 5 s, a subset of the same windows)",
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
