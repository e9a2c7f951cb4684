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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from vagus.exceptions import FileFormatError

__all__ = [
    "PLAUSIBLE_MEDIAN_RR_MS",
    "RRText",
    "RRUnit",
    "microseconds_hint",
    "microseconds_like",
    "read_rr_text",
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
    """Read a plain RR text file (format: module doc).

    Args:
        path: the file.
        unit: ``"ms"`` or ``"s"``: the unit of every value. Never guessed.
        first_value_is_time: the first value is the time of the first beat (in ``unit``),
            not an RR interval (PhysioNet's ``*_rr_secs.txt`` exports).

    Raises:
        FileFormatError: the file cannot be read, a line is not one number, a value is
            not finite or not > 0, no RR value is present, or the values are implausible
            for ``unit``. The message names the first bad line (number and content).
    """
    p = Path(path)
    if unit not in _FACTOR_TO_MS:
        raise FileFormatError(f"unknown RR unit {unit!r}: use 'ms' or 's'")
    factor = _FACTOR_TO_MS[unit]
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise FileFormatError(f"cannot read {p}: {exc.strerror or exc}") from None
    values: list[float] = []
    line_nos: list[int] = []
    comments: list[str] = []
    first_beat_s: float | None = None
    raw_values: list[float] = []  # as written, for the hints
    all_lines = data.splitlines()
    for no, raw in enumerate(all_lines, start=1):
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
            comments.append(line[1:].strip())
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
        first_value = not raw_values and not first_value_is_time
        raw_values.append(value)
        if first_value_is_time and first_beat_s is None:
            if value < 0:
                raise FileFormatError(
                    f"{p}, line {no}: first-beat time {_show(line)} must not be negative"
                )
            first_beat_s = value * factor / 1000.0
            continue
        if value <= 0:
            raise FileFormatError(
                f"{p}, line {no}: {_show(line)} is not a positive RR interval ({unit})"
            )
        if value * factor > _MAX_VALUE_MS:
            hint = "; if the file is in ms, pass --unit ms" if unit == "s" else ""
            if microseconds_like(value):
                hint = f"; {microseconds_hint(value)}"
            elif first_value and _physionet_like([value, *_numbers_after(all_lines[no:])]):
                hint = f"; {_PHYSIONET_HINT}"
            raise FileFormatError(
                f"{p}, line {no}: {_show(line)} {unit} is not an RR interval "
                f"(over {_MAX_VALUE_MS / 1000:.0f} s){hint}"
            )
        values.append(value * factor)
        line_nos.append(no)
    if not values:
        raise FileFormatError(f"{p}: no RR values found (one RR interval per line expected)")
    median_ms = sorted(values)[len(values) // 2]
    lo, hi = PLAUSIBLE_MEDIAN_RR_MS
    if not lo <= median_ms <= hi:
        other = "s" if unit == "ms" else "ms"
        if not first_value_is_time and _physionet_like(raw_values):
            hint = _PHYSIONET_HINT
        else:
            hint = f"if the file is in {other}, pass --unit {other}"
        raise FileFormatError(
            f"{p}: values are implausible as RR intervals in {unit} (median RR "
            f"{median_ms / factor:g} {unit}, expected {lo / factor:g}-{hi / factor:g} "
            f"{unit}); {hint}"
        )
    return RRText(
        path=p,
        unit=unit,
        rr_ms=tuple(values),
        first_beat_s=first_beat_s,
        comments=tuple(comments),
    )


def _show(line: str) -> str:
    """The offending line, quoted and shortened."""
    return repr(line if len(line) <= 60 else line[:57] + "...")
