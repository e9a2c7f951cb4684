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
store keeps.

:meth:`ImportedRR.records` turns that into the store's input records: one
:class:`~vagus.store.base.RRRecord` per stretch of up to :data:`RECORD_BEATS` beats, a
:class:`~vagus.store.base.GapRecord` at each break (so a gap in the file is a gap in the
pipeline, whatever the pipeline's own tolerance) and a
:class:`~vagus.store.base.ControlRecord` per marker or pacer change, in time order. A file
that holds a session's raw input (the vagus JSON export) sets ``input`` instead, and
:meth:`ImportedRR.records` returns those records as they were, so the imported session
replays to exactly the events of the exported one.

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
import zoneinfo
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vagus.core.events import ControlEvent
from vagus.exceptions import FileFormatError, InvalidInput
from vagus.formats.plain import microseconds_hint, microseconds_like
from vagus.store.base import ControlRecord, GapRecord, InputRecord, PacketRecord, RRRecord

__all__ = [
    "GAP_TOLERANCE_S",
    "RECORD_BEATS",
    "ImportedRR",
    "beat_times_from_arrivals",
    "breaks_from_beat_times",
    "check_rr",
    "format_error",
    "parse_number",
    "parse_time_zone",
    "read_text_lines",
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

    def __post_init__(self) -> None:
        if self.t_s is not None and len(self.t_s) != len(self.rr_ms):
            raise ValueError("t_s and rr_ms must have the same length")

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


def wall_clock(when: dt.datetime, tz: dt.tzinfo | None) -> float:
    """Unix time (s) of ``when``; a naive ``when`` is a local time in ``tz``.

    ``tz=None`` means this machine's time zone. A time that names its own offset keeps
    it. Ambiguous local times (the repeated hour when clocks go back) are read as the
    first of the two (``fold=0``).
    """
    if when.tzinfo is not None or tz is None:
        return when.timestamp()
    return when.replace(tzinfo=tz).timestamp()


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
    """Every RR must be > 0 ms; the median must be physiological (else: wrong unit?).

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
