"""Polar Sensor Logger RR export (the Android/iOS app's ``…_RR.txt``).

The layout (semicolon-separated, one RR per row, the phone's local clock)::

    Phone timestamp;RR-interval [ms]
    2026-04-24T14:10:16.752;937

The phone timestamp is when the heart-rate notification *arrived*, so the RR values of one
notification share a stamp and a stamp can be seconds after its beat. Beat times come from
the RR chain; the stamps only find gaps
(:func:`~vagus.formats.common.beat_times_from_arrivals`). Naive stamps are local times,
read in the zone given as ``tz`` (``vagus import --tz``, by default this machine's), each
stamp turned into UTC before the stamps are compared, so a daylight-saving change during
the recording is no gap (:func:`~vagus.formats.common.wall_clock`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from vagus.formats.common import (
    ImportedRR,
    beat_times_from_arrivals,
    check_rr,
    format_error,
    local_stamp,
    parse_number,
    read_text_lines,
    zone_label,
)

__all__ = ["FORMAT", "HEADER", "looks_like", "read_polar"]

FORMAT = "polar"
HEADER = "Phone timestamp;RR-interval [ms]"


def looks_like(lines: list[str]) -> bool:
    """True when the first non-blank line is Polar Sensor Logger's RR header."""
    first = next((ln for ln in lines if ln.strip()), "")
    return first.strip().rstrip(";").lower() == HEADER.lower()


def read_polar(path: Path | str, tz: dt.tzinfo | None = None) -> ImportedRR:
    """Read a Polar Sensor Logger ``_RR.txt`` export (see the module doc; ``tz`` there).

    Raises:
        FileFormatError: naming the line (wrong header, field count, stamp or RR).
    """
    p = Path(path)
    lines = read_text_lines(p)
    header_at = next(i for i, ln in enumerate(lines) if ln.strip())
    if not looks_like(lines):
        raise format_error(
            p, header_at + 1, f"expected the header {HEADER!r} (Polar Sensor Logger)"
        )
    first: dt.datetime | None = None
    stamps: list[dt.datetime] = []  # each stamp in UTC
    rr: list[float] = []
    where: list[int] = []
    for i in range(header_at + 1, len(lines)):
        text = lines[i].strip()
        if not text:
            continue
        fields = [f.strip() for f in text.rstrip(";").split(";")]
        if len(fields) != 2:
            raise format_error(
                p,
                i + 1,
                f"{len(fields)} field(s), expected 2 separated by ';' (timestamp;RR); "
                "is the line truncated or the delimiter wrong?",
            )
        try:
            when = dt.datetime.fromisoformat(fields[0])
        except ValueError:
            shown = fields[0] if len(fields[0]) <= 40 else fields[0][:37] + "..."
            raise format_error(
                p, i + 1, f"phone timestamp {shown!r} is not an ISO date-time"
            ) from None
        if first is None:
            first = when
        if (when.tzinfo is None) != (first.tzinfo is None):
            raise format_error(p, i + 1, "time stamps mix local and zoned times")
        # Each stamp to UTC before any two are subtracted: a DST change moves no beat.
        near = stamps[-1].timestamp() if stamps else None
        stamps.append(local_stamp(when, tz, p, i + 1, "phone timestamp", near))
        rr.append(parse_number(fields[1], p, i + 1, "RR"))
        where.append(i + 1)
    check_rr(rr, where, p)
    assert first is not None
    arrival = [(u - stamps[0]).total_seconds() for u in stamps]  # exact, unlike Unix s
    t_s, breaks, t0 = beat_times_from_arrivals(rr, arrival)
    return ImportedRR(
        format=FORMAT,
        rr_ms=tuple(rr),
        t_s=tuple(float(t) for t in t_s),
        breaks=tuple(breaks),
        started_unix_s=stamps[0].timestamp() + t0,
        notes=(
            f"imported from {p.name} (Polar Sensor Logger): beat times from the RR chain; "
            f"{len(breaks)} gap(s) found from the phone stamps"
            + (f"; stamps read as local time in {zone_label(tz)}" if first.tzinfo is None else "")
        ),
        source=p.name,
        rr_lines=tuple(where),
    )
