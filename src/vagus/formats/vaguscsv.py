"""The vagus CSV export (``vagus export --format csv``), read back.

The export is one table with a ``type`` column (:data:`vagus.formats.export.CSV_COLUMNS`,
header ``type,t_s,time_utc,rr_ms,nn_ms,artifact,inserted,…``). The reader keeps:

- ``beat`` rows: the *measured* RR (``rr_ms``, never the corrected ``nn_ms``) at beat time
  ``t_s``; rows with ``inserted`` = ``true`` (beats the corrector inserted) are left out,
  and so are RR values of 0 ms (:func:`~vagus.formats.common.zero_rr_note`);
- ``gap`` rows: a break before the next beat (the gap's ``reason``);
- ``marker`` and ``pacer`` rows: control events (``text``; ``rate_bpm`` empty = off,
  ``inhale_fraction``).

Other rows (``metrics``, ``spectrum``, ``contact``) are derived and ignored: the pipeline
computes them again. Values are written with ``repr`` (every digit), so RR and beat times
come back exactly; the wall-clock start is ``time_utc - t_s`` of the first row (ms).
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
from pathlib import Path

from vagus.core.events import ControlEvent, Marker, PacerChange
from vagus.formats.common import (
    ImportedRR,
    breaks_from_beat_times,
    check_date,
    check_rr,
    control_problem,
    format_error,
    parse_number,
    read_text_lines,
    zero_rr_note,
)

__all__ = ["FORMAT", "HEADER_START", "looks_like", "read_vagus_csv"]

FORMAT = "vagus_csv"
#: The first columns of the export's header (the rest may grow).
HEADER_START: tuple[str, ...] = ("type", "t_s", "time_utc", "rr_ms")
_ROW_TYPES = frozenset({"beat", "metrics", "spectrum", "gap", "marker", "pacer", "contact"})


def looks_like(lines: list[str]) -> bool:
    """True when the first non-blank line starts with ``type,t_s,time_utc,rr_ms``."""
    first = next((ln for ln in lines if ln.strip()), "")
    names = tuple(c.strip() for c in first.split(","))
    return names[: len(HEADER_START)] == HEADER_START


def read_vagus_csv(path: Path | str) -> ImportedRR:
    """Read a vagus CSV export (see the module doc).

    Raises:
        FileFormatError: naming the line: no export header, a row with the wrong number of
            fields (truncated), an unknown row type, a number that is not one, RR <= 0,
            beat times that do not increase, no beat rows.
    """
    p = Path(path)
    lines = read_text_lines(p)
    header_at = next(i for i, ln in enumerate(lines) if ln.strip())
    if not looks_like(lines):
        raise format_error(
            p,
            header_at + 1,
            f"expected the header '{','.join(HEADER_START)},…' of `vagus export --format csv`",
        )
    reader = csv.reader(lines[header_at:])
    names = [c.strip() for c in next(reader)]
    col = {name: k for k, name in enumerate(names)}
    for need in ("inserted", "reason", "text", "rate_bpm", "inhale_fraction"):
        if need not in col:
            raise format_error(p, header_at + 1, f"no {need!r} column (a vagus CSV export has it)")
    rr: list[float] = []
    t_s: list[float] = []
    where: list[int] = []
    gaps: list[tuple[float, str]] = []
    controls: list[ControlEvent] = []
    origin: float | None = None
    zeros = 0
    line = header_at + 1
    while True:
        start = header_at + reader.line_num + 1  # the row's first line (1-based)
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise format_error(p, start, f"not CSV ({exc})") from None
        line = start
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(names):
            raise format_error(
                p, line, f"{len(row)} field(s), expected {len(names)}; truncated line?"
            )
        kind = row[0].strip()
        if kind not in _ROW_TYPES:
            raise format_error(
                p, line, f"row type {kind!r} is not one of {', '.join(sorted(_ROW_TYPES))}"
            )
        t = parse_number(row[col["t_s"]], p, line, "t_s")
        if origin is None and row[col["time_utc"]].strip():
            origin = check_date(
                _wall(row[col["time_utc"]], p, line) - t, p, line, "the session start"
            )
        if kind == "beat":
            if row[col["inserted"]].strip().lower() == "true":
                continue
            value = parse_number(row[col["rr_ms"]], p, line, "rr_ms")
            if value == 0:
                zeros += 1
                continue
            if t_s and t <= t_s[-1]:
                raise format_error(p, line, "beat times must increase")
            rr.append(value)
            t_s.append(t)
            where.append(line)
        elif kind == "gap":
            gaps.append((t, row[col["reason"]].strip() or "file_gap"))
        elif kind in ("marker", "pacer"):
            event: ControlEvent
            if kind == "marker":
                event = Marker(t_s=t, text=row[col["text"]])
            else:
                rate_text = row[col["rate_bpm"]].strip()
                rate = parse_number(rate_text, p, line, "rate_bpm") if rate_text else None
                inhale = parse_number(row[col["inhale_fraction"]], p, line, "inhale_fraction")
                event = PacerChange(t_s=t, rate_bpm=rate, inhale_fraction=inhale)
            problem = control_problem(event)
            if problem is not None:
                raise format_error(p, line, problem)
            controls.append(event)
    if not rr:
        raise format_error(p, line, "no beat rows: nothing to import")
    check_rr(rr, where, p)
    breaks = dict(breaks_from_beat_times(rr, t_s))
    for t_gap, reason in gaps:
        i = bisect.bisect_right(t_s, t_gap)
        if 0 < i < len(rr):
            breaks[i] = reason
    return ImportedRR(
        format=FORMAT,
        rr_ms=tuple(rr),
        t_s=tuple(t_s),
        breaks=tuple(sorted(breaks.items())),
        started_unix_s=origin,
        markers=tuple(controls),
        notes=f"imported from {p.name} (vagus CSV export: measured RR of the beat rows)"
        + zero_rr_note(zeros),
        source=p.name,
        rr_lines=tuple(where),
    )


def _wall(text: str, p: Path, line: int) -> float:
    s = text.strip()
    try:
        when = dt.datetime.fromisoformat(s)
    except ValueError:
        shown = s if len(s) <= 40 else s[:37] + "..."
        raise format_error(p, line, f"time_utc {shown!r} is not an ISO date-time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)  # the column is UTC by definition
    try:
        return when.timestamp()
    except (OverflowError, ValueError, OSError):
        raise format_error(p, line, f"time_utc {s!r} is beyond any plausible date") from None
