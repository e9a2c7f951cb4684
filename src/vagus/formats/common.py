"""What every import format shares: the parsed result, text reading, errors, beat times.

Every reader turns a file into an :class:`ImportedRR`: RR intervals in ms, the beat time of
each interval's end where the file has it (``t_s``, seconds on the file's own clock: 0 at
the start of the first interval for apps that stamp arrivals and for VU-AMS, the record's
start for PhysioNet, the exported session's clock for Kubios), the places where the file
itself breaks the beat chain (``breaks``), markers and pacer changes, and the wall-clock time
of ``t_s == 0`` where the file states one.

Wall-clock times: a file that states naive local times (VU-AMS R-peak times, Polar and
HRV Logger phone stamps, an Elite HRV file name, a foreign Kubios or EDF+ header) is read in
the time zone the caller names (``vagus import --tz``; :func:`parse_time_zone`), by default
this machine's; :func:`wall_clock` turns such a time into Unix time (UTC), which is what the
store keeps. A file of many local stamps turns *each* stamp into UTC before any two are
subtracted, so a daylight-saving change inside the file moves no beat: the hour that does
not exist in spring is no gap, and the hour that repeats in autumn (the same local times
twice) is read as the later reading when the stamp before it says so
(:func:`wall_clock`'s ``near``).

:meth:`ImportedRR.records` turns that into the store's input records: one
:class:`~vagus.store.base.RRRecord` per stretch of up to :data:`RECORD_BEATS` beats, a
:class:`~vagus.store.base.GapRecord` at each break (so a gap in the file is a gap in the
pipeline, whatever the pipeline's own tolerance) and a
:class:`~vagus.store.base.ControlRecord` per marker or pacer change, in time order. A file
that holds a session's raw input (the vagus JSON export) sets ``input`` instead, and
:meth:`ImportedRR.records` returns those records as they were, so the imported session
replays to exactly the events of the exported one.

Validation: every :class:`ImportedRR` checks itself when it is made
(:func:`validate_imported`, called by ``__post_init__``), so no reader can hand the store
a value outside what a recording can hold: each RR finite, > 0 and at most
:data:`MAX_RR_MS` (values between the physiological 250-2500 ms and that cap are kept for
the artifact corrector's ``range`` class, as the plain reader does); beat times finite,
increasing and within :data:`MAX_SPAN_S` of the file's clock origin; wall-clock dates
(start, end, every stamp a reader checks with :func:`check_date`) between
:data:`EARLIEST_DATE` and this machine's clock plus :data:`FUTURE_SLACK_S`; markers and
pacer changes as a live recording accepts them (:data:`PACER_RANGE_BPM`); tags non-empty
strings. The error names the file and the line of the value where the reader recorded it
(``rr_lines``).

Errors: a reader raises :class:`~vagus.exceptions.FileFormatError` whose message starts with
``<file>: line <n>:`` and says what was wrong and what to do (:func:`format_error`); files
without meaningful lines name the place instead (an EDF+ annotation's number and onset, a
JSON record's path such as ``input[12]``). A reader
parses the whole file before returning, so a bad line anywhere means nothing is imported.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import time
import zoneinfo
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vagus.core.events import ControlEvent, Marker, PacerChange
from vagus.exceptions import FileFormatError, InvalidInput
from vagus.formats.plain import microseconds_hint, microseconds_like
from vagus.store.base import ControlRecord, GapRecord, InputRecord, PacketRecord, RRRecord

__all__ = [
    "EARLIEST_DATE",
    "FUTURE_SLACK_S",
    "GAP_TOLERANCE_S",
    "MAX_RR_MS",
    "MAX_SPAN_S",
    "PACER_RANGE_BPM",
    "RECORD_BEATS",
    "ImportedRR",
    "beat_times_from_arrivals",
    "breaks_from_beat_times",
    "check_date",
    "check_rr",
    "control_problem",
    "date_range_text",
    "format_error",
    "local_stamp",
    "parse_number",
    "parse_time_zone",
    "plausible_date",
    "read_text_lines",
    "utc_time",
    "validate_imported",
    "wall_clock",
    "zero_rr_note",
    "zone_label",
]

#: Beats per stored RRRecord (a replay can pace and report progress per record).
RECORD_BEATS = 1024
#: A beat time that disagrees with the RR chain by more than this breaks the chain
#: (the pipeline's default ``gap_tolerance_s``, SCIENCE.md "Beats and time").
GAP_TOLERANCE_S = 2.0
#: How far the arrival-lag floor looks (s), as the live pipeline's lag history.
LAG_WINDOW_S = 30.0
#: A file whose median RR is outside this range (ms) almost surely has the wrong unit.
PLAUSIBLE_MEDIAN_RR_MS = (200.0, 3000.0)

#: The earliest wall-clock date a file may state (UTC): before any RR recording app or
#: chest strap that exports RR, so an earlier date is a wrong clock or a wrong unit.
EARLIEST_DATE = dt.datetime(1990, 1, 1, tzinfo=dt.UTC)
#: How far past this machine's clock a file's dates may lie (s): one day (a wrong ``--tz``
#: or a phone clock a little ahead).
FUTURE_SLACK_S = 86_400.0
#: The longest RR interval a file may hold (ms): nothing longer is an RR interval in any
#: unit (the plain reader's cap). Values beyond the physiological 250-2500 ms up to this
#: are kept: the artifact corrector marks them (``range``, SCIENCE.md "Artifacts").
MAX_RR_MS = 60_000.0
#: The longest span (s) a file's beat times may cover, and how far from the file's clock
#: origin they may lie: 400 days. A Holter record is 1-7 days, but a phone app's export
#: (HeartMath, HRV Logger) can hold a year of sessions with the pauses between them, and a
#: plain list of 10 million beats is about 100 days; beyond a year and a month a time stamp
#: or a unit is wrong.
MAX_SPAN_S = 400 * 86_400.0
#: Pacer rates (breaths/min) a file may set, as ``pacer N`` during a recording.
PACER_RANGE_BPM = (1.0, 40.0)
#: The longest tag (characters).
_MAX_TAG_CHARS = 200

_BINARY_PROBE_BYTES = 8192
#: Beats of a segment before a falling lag floor may declare a "clock" break.
_MIN_FLOOR_BEATS = 10


def format_error(path: Path | str, line: int, reason: str) -> FileFormatError:
    """A :class:`FileFormatError` naming the file, the 1-based line and the reason."""
    return FileFormatError(f"{Path(path).name}: line {line}: {reason}")


@dataclass(frozen=True, slots=True)
class ImportedRR:
    """One parsed RR file, before it is stored.

    Attributes:
        format: the format name (``"heartmath"``, ``"vu_ams"``, …).
        rr_ms: the RR intervals (ms), in file order.
        t_s: the time (s) of the beat that ends each interval, on the file's own clock
            (see the module doc); None when the file has no times (cumulative RR).
        breaks: indexes ``i`` where the file breaks the chain before beat ``i`` (a gap),
            with the reason (``"dropout"``, ``"clock"``, ``"file_gap"``).
        started_unix_s: wall-clock time of ``t_s == 0`` when the file states it (for a
            vagus JSON export: the exported session's start, on its own terms).
        participant: a participant id named in the file, if any.
        markers: control events found in the file (markers, pacer changes; at file time
            ``t_s``).
        notes: what the reader assumed (time zone, clock offsets), for the session notes.
        input: the session's raw input records when the file holds them (vagus JSON
            export); then :meth:`records` returns them unchanged and ``rr_ms``, ``t_s``,
            ``breaks`` and ``markers`` only describe what they replay to.
        title: the session title the file names, if any.
        device_profile: the device profile the file names, if any.
        ended_unix_s: the wall-clock end the file states, if any.
        tags: the session tags the file names (a vagus JSON export).
        source: the file name, for the errors of :func:`validate_imported`.
        rr_lines: the file line of each RR value (same length as ``rr_ms``), so that a
            validation error names it; None where the reader has no lines.

    Raises:
        FileFormatError: a value outside what a recording can hold
            (:func:`validate_imported`).
    """

    format: str
    rr_ms: tuple[float, ...]
    t_s: tuple[float, ...] | None = None
    breaks: tuple[tuple[int, str], ...] = ()
    started_unix_s: float | None = None
    participant: str | None = None
    markers: tuple[ControlEvent, ...] = field(default=())
    notes: str = ""
    input: tuple[InputRecord, ...] | None = None
    title: str | None = None
    device_profile: str | None = None
    ended_unix_s: float | None = None
    tags: tuple[str, ...] = ()
    source: str = ""
    rr_lines: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.t_s is not None and len(self.t_s) != len(self.rr_ms):
            raise ValueError("t_s and rr_ms must have the same length")
        if self.rr_lines is not None and len(self.rr_lines) != len(self.rr_ms):
            raise ValueError("rr_lines and rr_ms must have the same length")
        validate_imported(self)

    @property
    def beats(self) -> int:
        """Number of RR intervals."""
        return len(self.rr_ms)

    @property
    def duration_s(self) -> float:
        """From the start of the first interval to the last beat (s)."""
        if not self.rr_ms:
            return 0.0
        if self.t_s is not None:
            return self.t_s[-1] - (self.t_s[0] - self.rr_ms[0] / 1000.0)
        return math.fsum(self.rr_ms) / 1000.0

    def records(self, participant: str = "me") -> list[InputRecord]:
        """The store's input records for this file, in time order (see the module doc).

        With ``input`` (a file that holds raw input), those records as they are, except
        that the file's own participant (``self.participant``) is renamed ``participant``.
        """
        if self.input is not None:
            return [_renamed(r, self.participant, participant) for r in self.input]
        n = len(self.rr_ms)
        if self.t_s is not None:
            times = np.asarray(self.t_s, dtype=float)
        else:
            times = np.cumsum(np.asarray(self.rr_ms, dtype=float)) / 1000.0
        breaks = {i: r for i, r in self.breaks if 0 < i < n}
        markers = sorted(self.markers, key=lambda m: m.t_s)
        # A marker goes before the first beat after it.
        pos = [int(np.searchsorted(times, m.t_s, side="right")) for m in markers]
        cuts = set(breaks) | {p for p in pos if 0 < p < n}
        out: list[InputRecord] = []
        k = 0
        a = 0
        while a < n:
            b = min(n, a + RECORD_BEATS)
            nxt = min((c for c in cuts if a < c < b), default=b)
            if a in breaks:
                out.append(
                    GapRecord(t_s=float(times[a - 1]), reason=breaks[a], participant=participant)
                )
            while k < len(markers) and pos[k] <= a:
                out.append(ControlRecord(markers[k]))
                k += 1
            ts = tuple(float(v) for v in times[a:nxt]) if self.t_s is not None else None
            out.append(RRRecord(rr_ms=tuple(self.rr_ms[a:nxt]), t_s=ts, participant=participant))
            a = nxt
        out.extend(ControlRecord(m) for m in markers[k:])
        return out


def date_range_text(now_unix_s: float | None = None) -> str:
    """The plausible dates as the errors state them (``1990-01-01 .. 2026-12-03``)."""
    hi = _date_range(now_unix_s)[1]
    latest = dt.datetime.fromtimestamp(hi, dt.UTC).date().isoformat()
    return f"{EARLIEST_DATE.date().isoformat()} .. {latest}"


def _date_range(now_unix_s: float | None = None) -> tuple[float, float]:
    now = time.time() if now_unix_s is None else now_unix_s
    return EARLIEST_DATE.timestamp(), now + FUTURE_SLACK_S


def _shown_date(unix_s: float) -> str:
    try:
        return f"{dt.datetime.fromtimestamp(unix_s, dt.UTC):%Y-%m-%dT%H:%M:%S} UTC"
    except (OverflowError, ValueError, OSError):
        side = "before the year 1" if unix_s < 0 else "after the year 9999"
        return f"Unix time {unix_s:g} s ({side})"


def plausible_date(unix_s: float) -> bool:
    """``unix_s`` lies between :data:`EARLIEST_DATE` and now + :data:`FUTURE_SLACK_S`."""
    return _date_problem(unix_s, "") is None


def _date_problem(unix_s: float, what: str) -> str | None:
    """Why ``unix_s`` is no plausible date for ``what``, or None."""
    lo, hi = _date_range()
    if math.isfinite(unix_s) and lo <= unix_s <= hi:
        return None
    return (
        f"{what} {_shown_date(unix_s)} is outside the plausible dates "
        f"{date_range_text()}: is the clock, or the unit of the time stamps, wrong?"
    )


def check_date(unix_s: float, path: Path | str, line: int, what: str) -> float:
    """``unix_s`` if it is a plausible date (:data:`EARLIEST_DATE` .. now + a day).

    Raises:
        FileFormatError: naming the line and the plausible range.
    """
    problem = _date_problem(unix_s, what)
    if problem is not None:
        raise format_error(path, line, problem)
    return unix_s


def local_stamp(
    when: dt.datetime,
    tz: dt.tzinfo | None,
    path: Path | str,
    line: int,
    what: str,
    near: float | None = None,
) -> dt.datetime:
    """A file's stamp ``when`` (naive: local in ``tz``) as an aware UTC time, checked.

    Two results subtract exactly (to the µs); ``.timestamp()`` is the Unix time.

    ``near``: the previous stamp's Unix time; an ambiguous local time (the hour that
    repeats when clocks go back) is read as the reading nearest to it (:func:`wall_clock`).

    Raises:
        FileFormatError: naming the line: a date beyond what a clock can say (year 1,
            year 9999 in a zone) or outside the plausible dates (:func:`check_date`).
    """
    try:
        utc = utc_time(when, tz, near)
        unix_s = utc.timestamp()
    except (OverflowError, ValueError, OSError):
        raise format_error(
            path,
            line,
            f"{what} {when.isoformat()} is outside the plausible dates {date_range_text()}: "
            "is the clock wrong?",
        ) from None
    check_date(unix_s, path, line, what)
    return utc


def validate_imported(imported: ImportedRR) -> None:
    """Check every value of ``imported`` against what a recording can hold (module doc).

    Raises:
        FileFormatError: ``<file>: line <n>: <reason>`` (the line of the RR value where
            the reader recorded it; else the value's place), saying what to fix.
    """
    name = Path(imported.source).name if imported.source else f"the {imported.format} file"
    rr = imported.rr_ms
    lines = imported.rr_lines

    def fail(i: int | None, reason: str) -> FileFormatError:
        if i is None:
            return FileFormatError(f"{name}: {reason}")
        if lines is not None:
            return FileFormatError(f"{name}: line {lines[i]}: {reason}")
        return FileFormatError(f"{name}: RR value {i + 1}: {reason}")

    # Vectorised (a file may hold millions of beats); the first bad value is then named.
    rr_arr = _floats(rr)
    if rr_arr is None:
        i = next(i for i, v in enumerate(rr) if not _is_real(v))
        raise fail(i, f"RR interval {rr[i]!r} is not a finite number")
    bad = np.flatnonzero(~(np.isfinite(rr_arr) & (rr_arr > 0) & (rr_arr <= MAX_RR_MS)))
    if bad.size:
        i = int(bad[0])
        v = rr_arr[i]
        if not math.isfinite(v):
            raise fail(i, f"RR interval {rr[i]!r} is not a finite number")
        raise fail(
            i,
            f"RR interval {v:g} ms is not an RR interval (must be > 0 and at most "
            f"{MAX_RR_MS / 1000:g} s); fix or remove the line, or check the unit",
        )
    t = imported.t_s
    if t is not None:
        t_arr = _floats(t)
        if t_arr is None:
            i = next(i for i, v in enumerate(t) if not _is_real(v))
            raise fail(i, f"beat time {t[i]!r} is not a finite number")
        bad = np.flatnonzero(~np.isfinite(t_arr))
        if bad.size:
            i = int(bad[0])
            raise fail(i, f"beat time {t[i]!r} is not a finite number")
        bad = np.flatnonzero(np.abs(t_arr) > MAX_SPAN_S)
        if bad.size:
            i = int(bad[0])
            raise fail(
                i,
                f"beat time {t_arr[i]:g} s is more than {MAX_SPAN_S / 86_400:g} days from "
                "the file's clock origin: is the unit of the times wrong?",
            )
        bad = np.flatnonzero(~(np.diff(t_arr) > 0))
        if bad.size:
            i = int(bad[0]) + 1
            raise fail(i, f"beat times must increase ({t_arr[i - 1]:g} s, then {t_arr[i]:g} s)")
    span_s = imported.duration_s
    if span_s > MAX_SPAN_S:
        raise fail(
            None,
            f"the beats span {span_s / 86_400:g} days, more than the "
            f"{MAX_SPAN_S / 86_400:g} days a file may cover: is a time stamp or a unit wrong?",
        )
    for what, when in (
        ("the start", imported.started_unix_s),
        ("the end", imported.ended_unix_s),
    ):
        if when is not None:
            problem = _date_problem(when, what)
            if problem is not None:
                raise fail(None, problem)
    if imported.started_unix_s is not None:
        last = imported.started_unix_s + (
            t[-1] if t else span_s
        )  # the last beat, on the wall clock
        problem = _date_problem(last, "the last beat")
        if problem is not None:
            raise fail(None, problem)
        if imported.ended_unix_s is not None and imported.ended_unix_s < imported.started_unix_s:
            raise fail(None, "the end is before the start")
    for m in imported.markers:
        problem = control_problem(m)
        if problem is not None:
            raise fail(None, problem)
    for tag in imported.tags:
        if not isinstance(tag, str) or not tag.strip() or len(tag) > _MAX_TAG_CHARS:
            raise fail(
                None,
                f"tag {tag!r} is not a tag: tags are non-empty strings of at most "
                f"{_MAX_TAG_CHARS} characters",
            )


def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _floats(values: Sequence[float]) -> np.ndarray | None:
    """``values`` as a float array, or None when one is not a real number (or too big)."""
    try:
        return np.fromiter(values, dtype=float, count=len(values))
    except (TypeError, ValueError, OverflowError):
        return None


def control_problem(event: ControlEvent) -> str | None:
    """Why a marker or pacer change is not one a recording accepts, or None."""
    t = event.t_s
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
        return f"{event.type} time {t!r} is not a finite number"
    if abs(t) > MAX_SPAN_S:
        return f"{event.type} time {t:g} s is beyond any session"
    if isinstance(event, Marker):
        if not isinstance(event.text, str):
            return f"marker text {event.text!r} is not a string"
        return None
    if isinstance(event, PacerChange):
        rate = event.rate_bpm
        lo, hi = PACER_RANGE_BPM
        if rate is not None and (
            isinstance(rate, bool) or not isinstance(rate, int | float) or not lo <= rate <= hi
        ):
            return (
                f"pacer rate {rate!r} breaths/min is outside {lo:g}-{hi:g} "
                "(as `pacer N` during a recording)"
            )
        f = event.inhale_fraction
        if isinstance(f, bool) or not isinstance(f, int | float) or not 0 < f < 1:
            return f"pacer inhale fraction {f!r} is not between 0 and 1"
    return None


def _renamed(record: InputRecord, old: str | None, new: str) -> InputRecord:
    if old is None or old == new or isinstance(record, ControlRecord):
        return record
    if isinstance(record, PacketRecord | GapRecord | RRRecord) and record.participant == old:
        return dataclasses.replace(record, participant=new)
    return record


def zero_rr_note(count: int) -> str:
    """The notes' remark on RR values of 0 ms left out of an import (none: "").

    Straps send 0 ms right after (re)connecting; the live pipeline records it as a
    ``range`` artifact with no duration, and vagus's exports write it. It is no interval
    (the pipeline's ``receive_rr`` takes none), and leaving it out moves no other beat.
    """
    if count == 0:
        return ""
    return (
        f"; {count} RR value(s) of 0 ms left out (a strap's nonsense value, a range "
        "artifact with no duration)"
    )


def parse_time_zone(name: str) -> dt.tzinfo:
    """The IANA time zone ``name`` (``Europe/Amsterdam``, ``UTC``).

    Raises:
        InvalidInput: no such time zone (the message says what to pass).
    """
    try:
        return zoneinfo.ZoneInfo(name.strip())
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown time zone {name!r}: give an IANA name such as Europe/Amsterdam, "
            "America/New_York or UTC"
        ) from None


def wall_clock(when: dt.datetime, tz: dt.tzinfo | None, near: float | None = None) -> float:
    """Unix time (s) of ``when`` (naive: local in ``tz``); see :func:`utc_time`.

    Raises:
        OverflowError, ValueError, OSError: a date beyond what a clock can say.
    """
    return utc_time(when, tz, near).timestamp()


def utc_time(when: dt.datetime, tz: dt.tzinfo | None, near: float | None = None) -> dt.datetime:
    """``when`` in UTC; a naive ``when`` is a local time in ``tz``.

    ``tz=None`` means this machine's time zone. A time that names its own offset keeps
    it. An ambiguous local time (the hour that repeats when clocks go back) is read as
    ``when.fold`` says (0, the default: the first of its two readings), or, given
    ``near`` (the Unix time of the stamp before it in the file), as the reading nearest
    to ``near``: a file whose stamps run 02:59, 02:00 (the second 02:00) goes on one
    minute later, not an hour back. A local time that does not exist (skipped when
    clocks go forward) is read with the offset before the change, or the one nearest
    ``near``.

    Returns:
        ``when`` as an aware UTC time (exact: two such times subtract to the µs).

    Raises:
        OverflowError, ValueError, OSError: a date beyond what a clock can say (year 1
            in a zone east of UTC, year 9999 west of it).
    """
    if when.tzinfo is not None:
        return when.astimezone(dt.UTC)

    def at(fold: int) -> dt.datetime:
        w = when.replace(fold=fold)
        return (w.astimezone() if tz is None else w.replace(tzinfo=tz)).astimezone(dt.UTC)

    if near is None:
        return at(when.fold)
    first, second = at(0), at(1)
    if first == second:
        return first
    a, b = first.timestamp(), second.timestamp()
    return first if abs(a - near) <= abs(b - near) else second


def zone_label(tz: dt.tzinfo | None) -> str:
    """How the session notes name ``tz``: its IANA key, or "this machine's time zone"."""
    if tz is None:
        return "this machine's time zone"
    return str(getattr(tz, "key", None) or tz)


def read_text_lines(path: Path | str) -> list[str]:
    """The file's lines (without line ends), decoded as UTF-8 (a BOM is dropped).

    Raises:
        FileFormatError: the file does not exist, is empty, binary or not UTF-8 text.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise FileFormatError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise FileFormatError(f"{p}: is a directory, not a file") from None
    except OSError as exc:
        raise FileFormatError(f"{p}: cannot be read ({exc.strerror})") from None
    if not data.strip():
        raise format_error(p, 1, "the file is empty (no values)")
    probe = data[:_BINARY_PROBE_BYTES]
    if b"\x00" in probe:
        line = probe[: probe.index(b"\x00")].count(b"\n") + 1
        raise format_error(p, line, "binary data (a NUL byte), not a text RR file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise format_error(p, line, "not UTF-8 text; is this an RR text export?") from None
    bad = next((c for c in text[:_BINARY_PROBE_BYTES] if _is_control(c)), None)
    if bad is not None:
        line = text[: text.index(bad)].count("\n") + 1
        raise format_error(p, line, f"control character {bad!r}: binary data, not an RR text")
    return text.splitlines()


def _is_control(c: str) -> bool:
    return ord(c) < 32 and c not in "\t\r\n\f\v"


def parse_number(text: str, path: Path | str, line: int, what: str) -> float:
    """A finite float from ``text`` or a FileFormatError naming the line."""
    s = text.strip()
    try:
        value = float(s)
    except ValueError:
        shown = s if len(s) <= 40 else s[:37] + "..."
        raise format_error(path, line, f"{what} {shown!r} is not a number") from None
    if not math.isfinite(value):
        raise format_error(path, line, f"{what} {s!r} is not a finite number")
    return value


def check_rr(
    rr_ms: Sequence[float], lines: Sequence[int], path: Path | str, unit_hint: str = ""
) -> None:
    """Every RR must be > 0 and at most :data:`MAX_RR_MS`; the median must be physiological.

    ``unit_hint`` ends the message on an implausible median (e.g. which ``--unit`` to
    pass); a median that is physiological in µs gets the microseconds hint instead.

    Raises:
        FileFormatError: naming the first bad line, or line 1 for an implausible median.
    """
    if not rr_ms:
        raise format_error(path, lines[0] if lines else 1, "no RR intervals in the file")
    for v, ln in zip(rr_ms, lines, strict=True):
        if not v > 0:
            raise format_error(path, ln, f"RR interval {v:g} ms is not > 0")
    med = float(np.median(np.asarray(rr_ms)))
    lo, hi = PLAUSIBLE_MEDIAN_RR_MS
    if not lo <= med <= hi:
        hint = f" {unit_hint}" if unit_hint else ""
        if microseconds_like(med):
            hint = f"; {microseconds_hint(med)}"
        raise format_error(
            path,
            lines[0],
            f"the median RR is {med:g} ms, outside {lo:g}-{hi:g} ms: the unit is probably "
            f"wrong{hint}",
        )
    # The unit is right (the median says so): a single value beyond any RR is a bad line.
    for v, ln in zip(rr_ms, lines, strict=True):
        if not v <= MAX_RR_MS:
            raise format_error(
                path,
                ln,
                f"RR interval {v:g} ms is not an RR interval (over {MAX_RR_MS / 1000:g} s): "
                "fix or remove the line",
            )


def breaks_from_beat_times(
    rr_ms: Sequence[float], t_s: Sequence[float], tolerance_s: float = GAP_TOLERANCE_S
) -> list[tuple[int, str]]:
    """Where stated beat times disagree with the RR chain by more than ``tolerance_s``.

    Beat ``i`` should be at ``t[i-1] + rr[i]``; a later time means beats are missing
    (``"dropout"``), an earlier one that the clocks disagree (``"clock"``).
    """
    out: list[tuple[int, str]] = []
    for i in range(1, len(t_s)):
        err = t_s[i] - (t_s[i - 1] + rr_ms[i] / 1000.0)
        if err > tolerance_s:
            out.append((i, "dropout"))
        elif err < -tolerance_s:
            out.append((i, "clock"))
    return out


def beat_times_from_arrivals(
    rr_ms: Sequence[float] | np.ndarray,
    arrival_s: Sequence[float] | np.ndarray,
    tolerance_s: float = GAP_TOLERANCE_S,
    window_s: float = LAG_WINDOW_S,
) -> tuple[np.ndarray, list[tuple[int, str]], float]:
    """Beat times from RR values, with gaps found from the times the RR arrived.

    Apps such as Polar Sensor Logger and HRV Logger stamp each RR with the phone's clock
    when it *arrived* (several beats of one BLE packet share a stamp, bursts arrive late).
    As in the live pipeline (SCIENCE.md "Beats and time"), beat times come from the RR
    chain, never from arrival times; arrival times only find gaps. The lag of beat ``i``
    is ``arrival[i] - chain[i]``; its floor (the smallest lag in a window) is the
    transmission latency plus the missing time so far, and it follows slow drift between
    the strap's and the phone's clocks. Late bursts do not break the chain: the floors
    ignore them. Offline we can look both ways:

    - ``"dropout"`` (beats were lost): the floor of the ``window_s`` after beat ``i``
      (from ``i`` on) exceeds the floor of the ``window_s`` before it by more than
      ``tolerance_s``. A rise first shows when the window after reaches it, so the
      first such beat is where the gap is.
    - ``"clock"`` (the arrival clock stepped back, e.g. the phone set its clock): the
      floor after falls below the floor before by more than ``tolerance_s``. A fall
      shows as soon as the window after *reaches* it (up to ``window_s`` early) and
      lasts until the window before holds the fallen lags, so the gap is before the
      last beat of that run (the first beat stamped on the new clock). Only once the
      segment has :data:`_MIN_FLOOR_BEATS` beats: a late first beat is no clock jump.

    Each segment after a ``"dropout"`` is placed where its lag floor says (the gap lasts
    as long as the floor rose); a ``"clock"`` break loses no time, so the chain goes on
    across it (the duration stays the RR sum, as the live pipeline, which never starts a
    chain before the last beat). Beat times therefore always increase.

    Returns:
        ``(t_s, breaks, t0_arrival_s)``: beat times with 0 at the start of the first
        interval, the breaks, and the arrival clock's time of ``t_s == 0`` (the first
        segment's lag floor).
    """
    rr = np.asarray(rr_ms, dtype=float)
    arr = np.asarray(arrival_s, dtype=float)
    n = rr.size
    if n == 0:
        return np.empty(0), [], 0.0
    chain = np.cumsum(rr) / 1000.0
    lag = arr - chain
    # Forward floor F[i] = min(lag[j]) for j >= i with chain[j] <= chain[i] + window_s.
    fwd = np.empty(n)
    dq: deque[int] = deque()
    for i in range(n - 1, -1, -1):
        while dq and lag[dq[-1]] >= lag[i]:
            dq.pop()
        dq.append(i)
        while chain[dq[0]] > chain[i] + window_s:
            dq.popleft()
        fwd[i] = lag[dq[0]]
    breaks: list[tuple[int, str]] = []
    seg_start = 0
    back: deque[int] = deque()  # backward floor over the current segment (monotonic)
    clock_at: int | None = None  # last beat so far of a run with a falling floor

    def push(j: int) -> None:
        while back and lag[back[-1]] >= lag[j]:
            back.pop()
        back.append(j)

    def step_at(i: int) -> float:
        while chain[back[0]] < chain[i - 1] - window_s:
            back.popleft()
        return float(fwd[i] - lag[back[0]])

    for i in range(n):
        if i > seg_start:
            step = step_at(i)
            if step < -tolerance_s and i - seg_start >= _MIN_FLOOR_BEATS:
                clock_at = i  # the fall may still be ahead: decide when the run ends
            else:
                if clock_at is not None:
                    # The window before now holds the fallen lags: the clock stepped
                    # back before the run's last beat. Restart the segment there.
                    breaks.append((clock_at, "clock"))
                    seg_start = clock_at
                    clock_at = None
                    back.clear()
                    for j in range(seg_start, i):
                        push(j)
                    step = step_at(i)
                if step > tolerance_s:
                    breaks.append((i, "dropout"))
                    seg_start = i
                    back.clear()
        push(i)
    if clock_at is not None:
        breaks.append((clock_at, "clock"))
    # A segment after a dropout sits at its own lag floor (never before the last beat);
    # after a clock step the chain goes on.
    t = np.empty(n)
    bounds = [b for b, _ in breaks]
    starts = [0, *bounds]
    ends = [*bounds, n]
    floors = [float(lag[a:b].min()) for a, b in zip(starts, ends, strict=True)]
    t0 = floors[0]
    shift = 0.0
    for k, (a, b) in enumerate(zip(starts, ends, strict=True)):
        if k > 0 and breaks[k - 1][1] == "dropout":
            shift += max(0.0, floors[k] - floors[k - 1])
        t[a:b] = chain[a:b] + shift
    return t, breaks, t0
