"""Kubios-style RR text: a header block, then RR (one column) or time and RR (two columns).

Kubios HRV reads RR interval data from ASCII text: optional header lines, then either one
column of RR intervals or two columns (time of the beat, RR interval), separated by
whitespace, comma or semicolon, in seconds or milliseconds. The header written by the
``kubios`` Python package (``# SIGNAL/SERIES EXPORT - KUBIOS`` …, the "Type 1" layout of
the Kubios HRV user's guide) is the common one. vagus writes (``vagus export --format
kubios``)::

    # SIGNAL/SERIES EXPORT - KUBIOS
    # File:           <session title or id>
    # Device:         <device profile>
    # DeviceID / MAC: n/a
    # Sampling rate:  n/a
    # Resolution:     0.1 us (RR), 1 us (time)
    # Comment:        RR intervals exported by vagus … from session <id>, started <ISO time>
    # Columns:        time [s]<TAB>RR interval [ms]
    12.345<TAB>811.5234375

The time column is the beat time (s from the session start); a gap in the session is a
jump in it, which the reader turns back into a gap. Reading: the unit is taken from the
header (``[ms]``/``(ms)`` or ``[s]``/``(s)`` next to "RR"); a header that names none needs
``--unit`` (never guessed from magnitudes). An RR of 0 (a strap's nonsense value right
after connecting, written as the ``range`` artifact it was) is left out of files vagus
wrote, and is an error in any other file. A start time in the comment without a UTC
offset (other tools) is a local time, read in the zone given as ``tz`` (``vagus import
--tz``, by default this machine's); vagus writes UTC with its offset.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from vagus import __version__
from vagus.formats.common import (
    ImportedRR,
    breaks_from_beat_times,
    check_rr,
    format_error,
    local_stamp,
    parse_number,
    read_text_lines,
    zero_rr_note,
)

__all__ = ["FORMAT", "MAGIC", "looks_like", "read_kubios", "write_kubios"]

FORMAT = "kubios"
MAGIC = "# SIGNAL/SERIES EXPORT - KUBIOS"
_SPLIT = re.compile(r"[\s,;]+")
_STARTED = re.compile(r"started (\d{4}-\d{2}-\d{2}T[0-9:.+-]+)")
_UNIT_MS = re.compile(r"rr[^\n]*?[\[(]\s*ms\s*[\])]", re.IGNORECASE)
_UNIT_S = re.compile(r"rr[^\n]*?[\[(]\s*s\s*[\])]", re.IGNORECASE)


def looks_like(lines: list[str]) -> bool:
    """True when the header block names Kubios (``# SIGNAL/SERIES EXPORT - KUBIOS`` …)."""
    for ln in lines[:20]:
        s = ln.strip()
        if not s:
            continue
        if _is_number_row(s):
            return False
        if "kubios" in s.lower():
            return True
    return False


def _is_number_row(s: str) -> bool:
    parts = [x for x in _SPLIT.split(s) if x]
    if not parts or len(parts) > 2:
        return False
    try:
        [float(x) for x in parts]
    except ValueError:
        return False
    return True


def read_kubios(
    path: Path | str, unit: str | None = None, tz: dt.tzinfo | None = None
) -> ImportedRR:
    """Read Kubios-style RR text (see the module doc).

    Args:
        path: the file.
        unit: ``"ms"`` or ``"s"`` for the RR column when the header does not say.
        tz: the zone of a start time without an offset (None: this machine's).

    Raises:
        FileFormatError: naming the line (no data, a row with a different number of
            columns, a value that is not a number, RR <= 0, no unit and none given, or a
            header unit that contradicts ``unit``).
    """
    p = Path(path)
    lines = read_text_lines(p)
    header: list[str] = []
    first_data = None
    for i, ln in enumerate(lines):
        s = ln.strip()
        if not s:
            continue
        if s.startswith("#") or not _is_number_row(s):
            if first_data is not None:
                raise format_error(p, i + 1, f"{s[:40]!r} is not one or two numbers")
            header.append(s)
            continue
        if first_data is None:
            first_data = i
    if first_data is None:
        raise format_error(p, len(lines), "no RR values after the header")
    head = "\n".join(header)
    stated = "ms" if _UNIT_MS.search(head) else "s" if _UNIT_S.search(head) else None
    if stated is not None and unit is not None and unit != stated:
        raise format_error(p, 1, f"the header says RR in {stated}, but --unit {unit} was given")
    use = stated or unit
    if use not in ("ms", "s"):
        raise format_error(
            p,
            first_data + 1,
            "the header does not state the RR unit; pass --unit ms or --unit s",
        )
    factor = 1.0 if use == "ms" else 1000.0
    ours = "exported by vagus" in head
    zeros = 0
    ncols: int | None = None
    rr: list[float] = []
    times: list[float] = []
    where: list[int] = []
    for i in range(first_data, len(lines)):
        s = lines[i].strip()
        if not s:
            continue
        parts = [x for x in _SPLIT.split(s) if x]
        if ncols is None:
            ncols = len(parts)
        if len(parts) != ncols:
            raise format_error(
                p,
                i + 1,
                f"{len(parts)} column(s), expected {ncols} like the first data row; "
                "truncated line or a different delimiter?",
            )
        value = parse_number(parts[-1], p, i + 1, "RR") * factor
        time = parse_number(parts[0], p, i + 1, "time") if ncols == 2 else 0.0
        if ours and value == 0:
            zeros += 1
            continue
        if ncols == 2:
            times.append(time)
        rr.append(value)
        where.append(i + 1)
    check_rr(rr, where, p, f"(read as {use}; pass --unit to change)")
    t_s: tuple[float, ...] | None = None
    breaks: list[tuple[int, str]] = []
    if ncols == 2:
        for k in range(1, len(times)):
            if times[k] <= times[k - 1]:
                raise format_error(p, where[k], "beat times must increase")
        t_s = tuple(times)
        breaks = breaks_from_beat_times(rr, times)
    started = _started(p, lines, tz)
    return ImportedRR(
        format=FORMAT,
        rr_ms=tuple(rr),
        t_s=t_s,
        breaks=tuple(breaks),
        started_unix_s=started,
        notes=f"imported from {p.name} (Kubios RR text, RR in {use})" + zero_rr_note(zeros),
        source=p.name,
        rr_lines=tuple(where),
    )


def _started(p: Path, lines: list[str], tz: dt.tzinfo | None) -> float | None:
    """The start time a header comment states (``started <ISO time>``), or None.

    A time that does not parse is no start time (other tools write other comments); one
    that parses must be a plausible date.

    Raises:
        FileFormatError: naming the header line, for a date outside the plausible range.
    """
    for i, ln in enumerate(lines):
        s = ln.strip()
        if s and not s.startswith("#") and _is_number_row(s):
            return None  # the header has ended
        m = _STARTED.search(s)
        if m is None:
            continue
        try:
            when = dt.datetime.fromisoformat(m[1])
        except ValueError:
            return None
        return local_stamp(when, tz, p, i + 1, "the header's start time").timestamp()
    return None


def write_kubios(
    out: TextIO,
    t_s: Sequence[float],
    rr_ms: Sequence[float],
    *,
    title: str,
    device: str,
    session_id: str,
    started_unix_s: float | None,
) -> None:
    """Write RR (measured, not corrected: Kubios corrects itself) with beat times."""
    when = (
        dt.datetime.fromtimestamp(started_unix_s, dt.UTC).isoformat(timespec="milliseconds")
        if started_unix_s is not None
        else "unknown"
    )
    clean = " ".join(title.split()) or session_id
    out.write(f"{MAGIC}\n")
    out.write(f"# File:\t\t\t{clean}\n")
    out.write(f"# Device:\t\t{device}\n")
    out.write("# DeviceID / MAC:\tn/a\n")
    out.write("# Sampling rate:\tn/a\n")
    out.write("# Resolution:\t\t0.1 us (RR), 1 us (time)\n")
    out.write(
        f"# Comment:\t\tRR intervals exported by vagus {__version__} from session "
        f"{session_id}, started {when}\n"
    )
    out.write("# Columns:\t\ttime [s]\tRR interval [ms]\n")
    for t, rr in zip(t_s, rr_ms, strict=True):
        out.write(f"{_decimal(t, 6)}\t{_decimal(rr, 7)}\n")


def _decimal(value: float, places: int) -> str:
    """``value`` with at most ``places`` decimals, trailing zeros dropped (812.5, 811.5234375)."""
    text = f"{value:.{places}f}".rstrip("0")
    return text + "0" if text.endswith(".") else text
