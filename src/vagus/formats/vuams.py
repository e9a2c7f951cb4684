"""VU-AMS (VU University Ambulatory Monitoring System) IBI export.

The layout (as ``../shared/data/wearablehrv/test_vu.txt``, exported by VU-DAMS)::

    Subject Id: P37
    R-peak time<TAB>ibi_cumulative<TAB>ibi<TAB>interpolated<TAB>LabelCode1 … LabelCode5
    30-06-23/14:08:59.580<TAB>0<TAB>0<TAB>O<TAB>-9999 …

``R-peak time`` is the local date and time of each R peak (``dd-mm-yy/HH:MM:SS.fff``,
no time zone: read in the zone given as ``tz``, ``vagus import --tz``, by default this
machine's; each time is turned into UTC before times are compared, so a daylight-saving
change during the recording is no gap; the store keeps UTC),
``ibi`` the interval (ms) ending at it; an ``ibi`` of 0 starts a segment (the first R
peak, or after excluded data). The R-peak times are kept as beat times, so a gap in the
file is a gap in the pipeline. A ``LabelCode`` column whose value changes to something
other than ``-9999`` (none) becomes a marker ``LabelCodeN=value``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from vagus.core.events import Marker
from vagus.formats.common import (
    ImportedRR,
    breaks_from_beat_times,
    check_rr,
    format_error,
    local_stamp,
    parse_number,
    read_text_lines,
    zone_label,
)

__all__ = ["FORMAT", "looks_like", "read_vu_ams"]

FORMAT = "vu_ams"
_TIME_FORMAT = "%d-%m-%y/%H:%M:%S.%f"
_NO_LABEL = "-9999"


def looks_like(lines: list[str]) -> bool:
    """True for a ``Subject Id:`` line followed by a tab header with ``R-peak time``."""
    head = [ln for ln in lines[:3] if ln.strip()]
    return len(head) >= 2 and head[0].lower().startswith("subject id") and "R-peak time" in head[1]


def read_vu_ams(path: Path | str, tz: dt.tzinfo | None = None) -> ImportedRR:
    """Read a VU-AMS IBI export (see the module doc); ``tz``: the zone of its local times.

    Raises:
        FileFormatError: naming the line (missing header or column, wrong field count,
            a bad R-peak time or ibi, R-peak times going backwards).
    """
    p = Path(path)
    lines = read_text_lines(p)
    if not lines[0].lower().startswith("subject id"):
        raise format_error(p, 1, "expected 'Subject Id: …' (a VU-AMS IBI export)")
    participant = lines[0].split(":", 1)[1].strip() if ":" in lines[0] else ""
    if len(lines) < 2:
        raise format_error(p, 2, "the header line is missing (truncated file?)")
    cols = [c.strip() for c in lines[1].rstrip("\t").split("\t")]
    for need in ("R-peak time", "ibi"):
        if need not in cols:
            raise format_error(p, 2, f"no {need!r} column in the tab-separated header")
    i_time, i_ibi = cols.index("R-peak time"), cols.index("ibi")
    labels = [(k, c) for k, c in enumerate(cols) if c.lower().startswith("labelcode")]
    t0: dt.datetime | None = None  # the first R peak (UTC)
    prev: dt.datetime | None = None
    rr: list[float] = []
    t_s: list[float] = []
    where: list[int] = []
    starts: list[int] = []
    markers: list[Marker] = []
    last_label = dict.fromkeys([c for _, c in labels], _NO_LABEL)
    for i in range(2, len(lines)):
        text = lines[i]
        if not text.strip():
            continue
        fields = text.rstrip("\r").split("\t")
        if len(fields) == len(cols) + 1 and fields[-1].strip() == "":
            fields = fields[:-1]
        if len(fields) != len(cols):
            raise format_error(
                p,
                i + 1,
                f"{len(fields)} field(s), expected {len(cols)} separated by tabs; "
                "is the line truncated or the delimiter not a tab?",
            )
        try:
            when = dt.datetime.strptime(fields[i_time].strip(), _TIME_FORMAT)
        except ValueError:
            raise format_error(
                p, i + 1, f"R-peak time {fields[i_time]!r} is not dd-mm-yy/HH:MM:SS.fff"
            ) from None
        # Each R-peak time to UTC first: a daylight-saving change moves no beat.
        near = prev.timestamp() if prev is not None else None
        utc = local_stamp(when, tz, p, i + 1, "R-peak time", near)
        if t0 is None:
            t0 = utc
        if prev is not None and utc <= prev:
            raise format_error(p, i + 1, "R-peak times must increase")
        prev = utc
        t = (utc - t0).total_seconds()  # exact to the µs
        ibi = parse_number(fields[i_ibi], p, i + 1, "ibi")
        for k, name in labels:
            value = fields[k].strip() if k < len(fields) else _NO_LABEL
            if value and value != last_label[name] and value != _NO_LABEL:
                markers.append(Marker(t_s=t, text=f"{name}={value}"))
            last_label[name] = value or _NO_LABEL
        if ibi == 0:
            starts.append(len(rr))
            continue
        if ibi < 0:
            raise format_error(p, i + 1, f"ibi {ibi:g} ms is negative")
        rr.append(ibi)
        t_s.append(t)
        where.append(i + 1)
    check_rr(rr, where, p)
    assert t0 is not None
    breaks = {i: r for i, r in breaks_from_beat_times(rr, t_s)}
    for s in starts:
        if 0 < s < len(rr):
            breaks.setdefault(s, "file_gap")
    return ImportedRR(
        format=FORMAT,
        rr_ms=tuple(rr),
        t_s=tuple(t_s),
        breaks=tuple(sorted(breaks.items())),
        started_unix_s=t0.timestamp(),
        participant=participant or None,
        markers=tuple(markers),
        notes=f"imported from {p.name} (VU-AMS); R-peak times read as local time in "
        f"{zone_label(tz)}",
        source=p.name,
        rr_lines=tuple(where),
    )
