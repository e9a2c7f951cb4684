"""HeartMath / HRV Logger RR CSV: ``timestamp, rr, since_start``.

The layout (as ``../shared/data/wearablehrv/test_heartmath.csv``, written by Marco Altini's
HRV Logger app from a HeartMath pulse sensor; HRV Logger's own files name the first column
``date`` and hold a local date-time instead of Unix ms)::

    timestamp, rr, since_start
    1688126658992,945,6442          <- Unix ms when the RR arrived, RR (ms), cumulative RR (ms)

A ``date`` without a time zone is a local time, read in the zone given as ``tz``
(``vagus import --tz``, by default this machine's). The ``timestamp`` is the phone's clock
when the beat *arrived* (bursts of beats share
nearly one stamp), so beat times come from the RR chain and the stamps only find gaps
(:func:`~vagus.formats.common.beat_times_from_arrivals`): in the example file the sensor
dropped beats 18 times (4-30 s each), and each becomes a gap in the pipeline.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from vagus.formats.common import (
    ImportedRR,
    beat_times_from_arrivals,
    check_date,
    check_rr,
    format_error,
    local_stamp,
    parse_number,
    plausible_date,
    read_text_lines,
)

__all__ = ["FORMAT", "looks_like", "read_heartmath"]

FORMAT = "heartmath"


def _columns(header: str) -> list[str]:
    return [c.strip().lower().replace(" ", "_") for c in header.split(",")]


def looks_like(lines: list[str]) -> bool:
    """True when the first non-blank line is a ``timestamp|date, rr[, since_start]`` header."""
    first = next((ln for ln in lines if ln.strip()), "")
    cols = _columns(first)
    return len(cols) >= 2 and cols[0] in ("timestamp", "date") and cols[1] == "rr"


#: The most digits a stamp may have to be read as a number at all (Unix ms has 13; µs
#: (16) and ns (19) are read, then refused as dates beyond any plausible one).
_MAX_STAMP_DIGITS = 19


def parse_clock(
    text: str, path: Path, line: int, tz: dt.tzinfo | None = None, near: float | None = None
) -> float:
    """Unix ms (ASCII digits) or an ISO date-time (naive: local in ``tz``), as Unix seconds.

    ``near``: the previous stamp (Unix s), to read an ambiguous local time
    (:func:`~vagus.formats.common.wall_clock`).

    Raises:
        FileFormatError: naming the line: neither form, or a date outside the plausible
            range (:func:`~vagus.formats.common.check_date`), such as a stamp in µs.
    """
    s = text.strip()
    if s.isascii() and s.isdigit():
        if len(s) > _MAX_STAMP_DIGITS:
            raise format_error(
                path,
                line,
                f"timestamp {s[:20]}{'...' if len(s) > 20 else ''} has {len(s)} digits: "
                "Unix ms has 13; fix or remove the line",
            )
        unix_s = int(s) / 1000.0
        if plausible_date(unix_s / 1000.0) and not plausible_date(unix_s):
            raise format_error(
                path,
                line,
                f"timestamp {s} looks like Unix microseconds ({len(s)} digits); this "
                "column holds Unix milliseconds (13 digits): divide the stamps by 1000",
            )
        return check_date(unix_s, path, line, f"timestamp {s} (Unix ms) =")
    try:
        when = dt.datetime.fromisoformat(s)
    except ValueError:
        shown = s if len(s) <= 40 else s[:37] + "..."
        raise format_error(
            path, line, f"timestamp {shown!r} is neither Unix ms nor an ISO date-time"
        ) from None
    return local_stamp(when, tz, path, line, "timestamp", near).timestamp()


def read_heartmath(path: Path | str, tz: dt.tzinfo | None = None) -> ImportedRR:
    """Read a HeartMath / HRV Logger RR CSV (see the module doc); ``tz``: see there.

    Raises:
        FileFormatError: naming the line: a missing header, a row with the wrong number of
            fields, a timestamp or RR that is not a number, an RR that is not > 0.
    """
    p = Path(path)
    lines = read_text_lines(p)
    header_at = next(i for i, ln in enumerate(lines) if ln.strip())
    cols = _columns(lines[header_at])
    if not looks_like(lines):
        raise format_error(
            p, header_at + 1, "expected the header 'timestamp, rr, since_start' (HeartMath CSV)"
        )
    arrival: list[float] = []
    rr: list[float] = []
    where: list[int] = []
    for i in range(header_at + 1, len(lines)):
        text = lines[i].strip()
        if not text:
            continue
        fields = [f.strip() for f in text.split(",")]
        if len(fields) != len(cols):
            raise format_error(
                p,
                i + 1,
                f"{len(fields)} fields, expected {len(cols)} ({', '.join(cols)}); "
                "is the line truncated or the delimiter not a comma?",
            )
        near = arrival[-1] if arrival else None
        arrival.append(parse_clock(fields[0], p, i + 1, tz, near))
        rr.append(parse_number(fields[1], p, i + 1, "RR"))
        where.append(i + 1)
    check_rr(rr, where, p)
    origin = arrival[0]  # keep the lags small: float precision of Unix seconds is ~0.2 µs
    t_s, breaks, t0 = beat_times_from_arrivals(rr, [a - origin for a in arrival])
    return ImportedRR(
        format=FORMAT,
        rr_ms=tuple(rr),
        t_s=tuple(float(t) for t in t_s),
        breaks=tuple(breaks),
        started_unix_s=origin + t0,
        notes=(
            f"imported from {p.name} (HeartMath/HRV Logger CSV): beat times from the RR "
            f"chain; {len(breaks)} gap(s) found from the arrival stamps"
        ),
        source=p.name,
        rr_lines=tuple(where),
    )
