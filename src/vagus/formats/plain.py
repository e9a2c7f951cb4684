"""Plain RR text: one RR interval per line, in a unit the caller states.

The format Kubios, PhysioNet ``ann2rr`` and most apps export::

    # optional comment lines start with '#'
    812
    798.5

    845

Rules: one number per line (optional surrounding whitespace); blank lines ignored;
comment/header lines allowed only when marked with a leading ``#``. The unit is never
guessed from magnitudes (NeuroKit's ``intervals_sanitize`` does; we don't): it is given
(``"ms"`` or ``"s"``), and a file whose values are implausible for it (median RR outside
250-2500 ms) is rejected with a hint to pass the other unit. Single out-of-range values
inside a plausible file (a 0.2 s or 3 s interval) are kept: classifying them is the
artifact corrector's job (range class). Anything else raises
:class:`~vagus.exceptions.FileFormatError` naming the first bad line and the reason.

The hints name the likely mistake: the other unit; values in microseconds (850000 µs
is a physiological 850 ms: vagus reads ms or s, so the file needs converting); or, for a
PhysioNet RR export read as plain RR (a first value far beyond any RR, then RR intervals in
seconds), ``--format physionet`` (the first value is the time of the first beat, not an
interval).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np

from vagus.exceptions import FileFormatError

__all__ = [
    "CHUNK_BYTES",
    "MAX_LINE_BYTES",
    "PLAUSIBLE_MEDIAN_RR_MS",
    "RRScan",
    "RRText",
    "RRUnit",
    "check_regular_file",
    "microseconds_hint",
    "microseconds_like",
    "read_rr_text",
    "scan_rr_text",
]

RRUnit = Literal["ms", "s"]

#: The median RR of a recording must lie in this range (ms) for the stated unit to be believed.
PLAUSIBLE_MEDIAN_RR_MS = (250.0, 2500.0)
#: No single value may exceed this (ms): not an RR interval in any unit.
_MAX_VALUE_MS = 60_000.0
_FACTOR_TO_MS: dict[str, float] = {"ms": 1.0, "s": 1000.0}
#: Values (s) the hint for PhysioNet RR text looks for: a first value beyond any RR
#: interval, then a median RR in this range.
_PHYSIONET_FIRST_S = 3.0
_PHYSIONET_RR_S = (0.2, 3.0)
_PHYSIONET_HINT = (
    "this looks like PhysioNet RR text: the first value is the time of the first beat "
    "and the rest are RR intervals in seconds; pass --format physionet"
)


def _physionet_like(values: list[float]) -> bool:
    """The raw numbers look like PhysioNet RR text (first a time, then RR in seconds)."""
    if len(values) < 3 or not values[0] > _PHYSIONET_FIRST_S:
        return False
    rest = sorted(values[1:])
    median = rest[len(rest) // 2]
    lo, hi = _PHYSIONET_RR_S
    return lo <= median <= hi


def microseconds_like(value: float) -> bool:
    """``value`` read as µs is a physiological RR (:data:`PLAUSIBLE_MEDIAN_RR_MS`).

    Some exports (e.g. raw R-R from ECG software) write µs; 851527 then means 851.5 ms.
    Only the hint uses this: the unit is still never guessed.
    """
    lo, hi = PLAUSIBLE_MEDIAN_RR_MS
    return lo <= value / 1000.0 <= hi


def microseconds_hint(value: float) -> str:
    """The hint for values in µs (see :func:`microseconds_like`)."""
    return (
        f"the values look like microseconds ({value:g} µs = {value / 1000.0:g} ms); vagus "
        "reads RR in ms or s (--unit ms|s): convert the file to ms (divide by 1000)"
    )


def _numbers_after(lines: list[bytes], limit: int = 200) -> list[float]:
    """Up to ``limit`` numbers of ``lines`` (comments, blanks and non-numbers skipped)."""
    out: list[float] = []
    for raw in lines:
        try:
            out.append(float(raw.decode("utf-8", "replace").strip()))
        except ValueError:
            continue
        if len(out) >= limit:
            break
    return out


@dataclass(frozen=True, slots=True)
class RRText:
    """The content of a plain RR text file.

    Attributes:
        path: the file read.
        unit: the unit the values were given in.
        rr_ms: the RR intervals, converted to ms, in file order.
        first_beat_s: with ``first_value_is_time=True``, the time (s) of the first beat
            (PhysioNet RR exports), else None.
        comments: the ``#`` lines, without the ``#``.
    """

    path: Path
    unit: RRUnit
    rr_ms: tuple[float, ...]
    first_beat_s: float | None = None
    comments: tuple[str, ...] = field(default=())

    @property
    def beat_times_s(self) -> tuple[float, ...]:
        """Beat times (s): cumulative RR, starting at ``first_beat_s`` (or at the first RR)."""
        t = self.first_beat_s if self.first_beat_s is not None else 0.0
        out = []
        for rr in self.rr_ms:
            t += rr / 1000.0
            out.append(t)
        return tuple(out)


def read_rr_text(path: str | Path, unit: RRUnit, *, first_value_is_time: bool = False) -> RRText:
    """Read a plain RR text file (format: module doc) into memory.

    For big files use :func:`scan_rr_text` and :meth:`RRScan.chunks`, which hold one
    block of the file at a time; this reads through them and keeps every value.

    Args:
        path: the file.
        unit: ``"ms"`` or ``"s"``: the unit of every value. Never guessed.
        first_value_is_time: the first value is the time of the first beat (in ``unit``),
            not an RR interval (PhysioNet's ``*_rr_secs.txt`` exports).

    Raises:
        FileFormatError: the file cannot be read, is not a regular file, has a line
            longer than :data:`MAX_LINE_BYTES`, a line is not one number, a value is
            not finite or not > 0, no RR value is present, or the values are implausible
            for ``unit``. The message names the first bad line (number and content).
    """
    scan = scan_rr_text(path, unit, first_value_is_time=first_value_is_time)
    values: list[float] = []
    for chunk in scan.chunks():
        values.extend(chunk.tolist())
    return RRText(
        path=scan.path,
        unit=scan.unit,
        rr_ms=tuple(values),
        first_beat_s=scan.first_beat_s,
        comments=scan.comments,
    )


#: Bytes read per block: memory holds one block (and its values), never the file.
CHUNK_BYTES = 1 << 20
#: A line longer than this (no line end within 1 MiB) is no RR text: refused.
MAX_LINE_BYTES = 1 << 20
#: Comment lines kept (a file of millions of ``#`` lines keeps only the first ones).
_MAX_COMMENTS = 1000


def check_regular_file(path: Path) -> None:
    """Refuse what is not a regular file (a device such as /dev/zero, a pipe, a directory).

    Such input may never end; vagus reads RR files, which it may read more than once.

    Raises:
        FileFormatError: no such file, not readable, or not a regular file.
    """
    import stat

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FileFormatError(f"cannot read {path}: no such file") from None
    except OSError as exc:
        raise FileFormatError(f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise FileFormatError(f"{path}: is a directory, not a file")
    if not stat.S_ISREG(mode):
        raise FileFormatError(
            f"{path}: not a regular file (a device, pipe or socket, which may never end); "
            "save the RR values to a file and pass that file"
        )


@dataclass(frozen=True, slots=True)
class RRScan:
    """A plain RR text file checked from end to end, without keeping its values.

    :func:`scan_rr_text` reads the file once, block by block, and checks every line and
    the median; :meth:`chunks` reads it again and yields the RR values (ms) block by
    block as numpy arrays. Memory holds one block (:data:`CHUNK_BYTES`), never the file.

    Attributes:
        path, unit, first_beat_s, comments: as :class:`RRText` (at most 1000 comments).
        beats: number of RR values.
        sum_ms: their sum (ms).
        spool: a binary file the scan wrote the values to (float64, ms), if it was
            given one (:func:`scan_rr_text`): :meth:`chunks` then reads them from there
            instead of parsing the text again.
    """

    path: Path
    unit: RRUnit
    first_value_is_time: bool
    beats: int
    sum_ms: float
    first_beat_s: float | None = None
    comments: tuple[str, ...] = field(default=())
    spool: BinaryIO | None = None

    def chunks(self) -> Iterator[np.ndarray]:
        """The RR values (ms, float64) in file order, one array per block of the file.

        Raises:
            FileFormatError: the file changed since it was scanned and has a bad line.
        """
        if self.spool is not None:
            self.spool.flush()
            self.spool.seek(0)
            while True:
                # A block of CHUNK_BYTES: as many values as the text holds, about.
                count = max(1, CHUNK_BYTES // 8)
                values = np.fromfile(self.spool, dtype=np.float64, count=count)
                if not values.size:
                    return
                yield values
        state = _ParseState(self.path, self.unit, self.first_value_is_time)
        for no, lines in _blocks(self.path):
            values = _parse_block(state, no, lines)
            if values.size:
                yield values


def scan_rr_text(
    path: str | Path,
    unit: RRUnit,
    *,
    first_value_is_time: bool = False,
    spool: BinaryIO | None = None,
) -> RRScan:
    """Check a plain RR text file from end to end (see :func:`read_rr_text` for the rules).

    Args:
        spool: an empty binary file (e.g. a ``tempfile.TemporaryFile``, owned by the
            caller) to write the parsed values to (8 bytes each), so that
            :meth:`RRScan.chunks` reads them back instead of parsing the text twice.

    Raises:
        FileFormatError: as :func:`read_rr_text`.
    """
    p = Path(path)
    if unit not in _FACTOR_TO_MS:
        raise FileFormatError(f"unknown RR unit {unit!r}: use 'ms' or 's'")
    check_regular_file(p)
    factor = _FACTOR_TO_MS[unit]
    lo, hi = PLAUSIBLE_MEDIAN_RR_MS
    state = _ParseState(p, unit, first_value_is_time)
    n = 0
    below = above = 0  # values (ms) below / above the plausible median range
    rest_below = rest_above = 0  # raw values after the first outside _PHYSIONET_RR_S
    first_raw: float | None = None
    sums: list[float] = []
    for no, lines in _blocks(p):
        values = _parse_block(state, no, lines)
        if not values.size:
            continue
        if first_raw is None:
            first_raw = float(values[0]) / factor
            raw_rest = values[1:] / factor
        else:
            raw_rest = values / factor
        n += values.size
        if spool is not None:
            values.tofile(spool)
        sums.append(float(values.sum()))
        below += int(np.count_nonzero(values < lo))
        above += int(np.count_nonzero(values > hi))
        rest_below += int(np.count_nonzero(raw_rest < _PHYSIONET_RR_S[0]))
        rest_above += int(np.count_nonzero(raw_rest > _PHYSIONET_RR_S[1]))
    if n == 0:
        raise FileFormatError(f"{p}: no RR values found (one RR interval per line expected)")
    m = n // 2  # the median is sorted(values)[n // 2]
    if below > m or above > n - 1 - m:
        scan = RRScan(p, unit, first_value_is_time, n, math.fsum(sums), state.first_beat_s)
        median_ms = float(np.partition(np.concatenate(list(scan.chunks())), m)[m])
        other = "s" if unit == "ms" else "ms"
        rest_m = (n - 1) // 2  # median of the raw values after the first
        physionet = (
            not first_value_is_time
            and n >= 3
            and first_raw is not None
            and first_raw > _PHYSIONET_FIRST_S
            and rest_below <= rest_m
            and rest_above <= n - 2 - rest_m
        )
        hint = _PHYSIONET_HINT if physionet else f"if the file is in {other}, pass --unit {other}"
        raise FileFormatError(
            f"{p}: values are implausible as RR intervals in {unit} (median RR "
            f"{median_ms / factor:g} {unit}, expected {lo / factor:g}-{hi / factor:g} "
            f"{unit}); {hint}"
        )
    return RRScan(
        path=p,
        unit=unit,
        first_value_is_time=first_value_is_time,
        beats=n,
        sum_ms=math.fsum(sums),
        first_beat_s=state.first_beat_s,
        comments=tuple(state.comments),
        spool=spool,
    )


def _blocks(p: Path) -> Iterator[tuple[int, list[bytes]]]:
    """``(number of the first line, lines)`` per block of about :data:`CHUNK_BYTES`.

    Raises:
        FileFormatError: the file cannot be read, or a line is longer than
            :data:`MAX_LINE_BYTES` (no line end within it: not a text RR file).
    """
    try:
        f = p.open("rb")
    except OSError as exc:
        raise FileFormatError(f"cannot read {p}: {exc.strerror or exc}") from None
    with f:
        carry = b""
        no = 1
        while True:
            try:
                block = f.read(CHUNK_BYTES)
            except OSError as exc:
                raise FileFormatError(f"cannot read {p}: {exc.strerror or exc}") from None
            if not block:
                break
            data = carry + block if carry else block
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
            else:
                lines = data[:cut].split(b"\n")
                carry = data[cut + 1 :]
                yield no, lines
                no += len(lines)
            if len(carry) > MAX_LINE_BYTES:
                raise FileFormatError(
                    f"{p}, line {no}: no line end within {MAX_LINE_BYTES // (1 << 20)} MiB: "
                    "not a text file of one RR interval per line"
                )
        if carry:
            yield no, [carry]


class _ParseState:
    """What parsing carries from one block to the next."""

    __slots__ = (
        "comments",
        "factor",
        "first_beat_s",
        "first_value_is_time",
        "path",
        "seen",
        "unit",
    )

    def __init__(self, path: Path, unit: RRUnit, first_value_is_time: bool) -> None:
        self.path = path
        self.unit = unit
        self.factor = _FACTOR_TO_MS[unit]
        self.first_value_is_time = first_value_is_time
        self.first_beat_s: float | None = None
        self.comments: list[str] = []
        self.seen = False  # a value has been read


def _parse_block(state: _ParseState, no: int, lines: list[bytes]) -> np.ndarray:
    """The RR values (ms) of one block of lines starting at line ``no``.

    Fast path: every line one number, all in range (``float`` of each line, checked with
    numpy). Anything else (blank or comment lines, a bad value, the first line, a
    first-beat time) goes line by line, which names the first bad line and its reason.
    """
    parts: list[np.ndarray] = []
    head = 64
    # The file's start (BOM, comments, a first-beat time) line by line, the rest fast.
    while lines and (not state.seen or (state.first_value_is_time and state.first_beat_s is None)):
        parts.append(_parse_lines(state, no, lines[:head]))
        lines = lines[head:]
        no += head
    if lines:
        try:
            values = np.array([float(x) for x in lines], dtype=np.float64)
        except ValueError:
            values = _parse_lines(state, no, lines)
        else:
            with np.errstate(over="ignore"):  # 1e308 s overflows to inf: refused below
                values *= state.factor
            ok = np.all(np.isfinite(values)) and values.min() > 0 and values.max() <= _MAX_VALUE_MS
            if not ok:
                values = _parse_lines(state, no, lines)
        parts.append(values)
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.empty(0)


def _parse_lines(state: _ParseState, start: int, lines: list[bytes]) -> np.ndarray:
    """:func:`_parse_block`, line by line (the rules and messages of the module doc)."""
    p = state.path
    unit = state.unit
    factor = state.factor
    first_value_is_time = state.first_value_is_time
    values: list[float] = []
    for i, raw in enumerate(lines):
        no = start + i
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise FileFormatError(
                f"{p}, line {no}: not UTF-8 text ({raw[:40]!r}); expected one RR interval per line"
            ) from None
        if no == 1:
            line = line.lstrip("\ufeff")  # byte-order mark
        if not line:
            continue
        if line.startswith("#"):
            if len(state.comments) < _MAX_COMMENTS:
                state.comments.append(line[1:].strip())
            continue
        try:
            value = float(line)
        except ValueError:
            raise FileFormatError(
                f"{p}, line {no}: {_show(line)} is not a number; expected one RR interval "
                f"({unit}) per line, comment lines starting with '#'"
            ) from None
        if not math.isfinite(value):
            raise FileFormatError(f"{p}, line {no}: {_show(line)} is not a finite number")
        first_value = not state.seen and not first_value_is_time
        state.seen = True
        if first_value_is_time and state.first_beat_s is None:
            if value < 0:
                raise FileFormatError(
                    f"{p}, line {no}: first-beat time {_show(line)} must not be negative"
                )
            state.first_beat_s = value * factor / 1000.0
            continue
        if value <= 0:
            raise FileFormatError(
                f"{p}, line {no}: {_show(line)} is not a positive RR interval ({unit})"
            )
        if value * factor > _MAX_VALUE_MS:
            hint = "; if the file is in ms, pass --unit ms" if unit == "s" else ""
            if microseconds_like(value):
                hint = f"; {microseconds_hint(value)}"
            elif first_value and _physionet_like([value, *_numbers_after(lines[i + 1 :])]):
                hint = f"; {_PHYSIONET_HINT}"
            raise FileFormatError(
                f"{p}, line {no}: {_show(line)} {unit} is not an RR interval "
                f"(over {_MAX_VALUE_MS / 1000:.0f} s){hint}"
            )
        values.append(value * factor)
    return np.array(values, dtype=np.float64)


def _show(line: str) -> str:
    """The offending line, quoted and shortened."""
    return repr(line if len(line) <= 60 else line[:57] + "...")
