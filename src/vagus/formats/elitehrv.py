"""Elite HRV RR export: one RR interval (ms, integer) per line, nothing else.

Elite HRV's "Export Data" e-mails a zip of one ``.txt`` per reading, named by the
reading's local start time (``2017-06-29 13-11-53.txt``); the file itself holds only the
RR values. The start time is taken from that name when it matches (a local time, read in
the zone given as ``tz``, ``vagus import --tz``, by default this machine's); beat times are the
cumulative RR (the file has no times and no gaps).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from vagus.formats.common import ImportedRR, local_stamp, read_text_lines, zone_label
from vagus.formats.plain import read_rr_text

__all__ = ["FORMAT", "looks_like", "read_elite_hrv", "start_from_name"]

FORMAT = "elite_hrv"
_NAME = re.compile(r"(\d{4}-\d{2}-\d{2}) (\d{2})-(\d{2})-(\d{2})")


def start_from_name(path: Path | str) -> dt.datetime | None:
    """The reading's start time from an Elite HRV file name, or None."""
    m = _NAME.search(Path(path).stem)
    if m is None:
        return None
    try:
        return dt.datetime.fromisoformat(f"{m[1]} {m[2]}:{m[3]}:{m[4]}")
    except ValueError:
        return None


def looks_like(path: Path | str, lines: list[str]) -> bool:
    """An Elite HRV file name, an integer on the first line, and no other kind of number.

    Of the first 200 non-blank lines, the first must be an integer and every line that is
    a number must be one (Elite HRV writes whole ms; a decimal means a plain RR list,
    whose unit is not ours to guess). A line that is no number at all does not stop the
    detection: the file is an Elite HRV export with a bad line, and
    :func:`read_elite_hrv` names that line and says what is wrong with it.
    """
    if start_from_name(path) is None:
        return False
    vals = [ln.strip() for ln in lines if ln.strip()][:200]
    if not vals or not vals[0].isdigit():
        return False
    return all(v.isdigit() or not _is_number(v) for v in vals)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_elite_hrv(path: Path | str, tz: dt.tzinfo | None = None) -> ImportedRR:
    """Read an Elite HRV RR export (see the module doc; ``tz``: the file name's zone).

    The numbers are read by :func:`vagus.formats.plain.read_rr_text` (ms).

    Raises:
        FileFormatError: naming the line (binary or empty file, not a number, RR <= 0).
    """
    p = Path(path)
    read_text_lines(p)
    text = read_rr_text(p, "ms")
    start = start_from_name(p)
    # The name's date must be plausible too ("line 1": the error is about the file name).
    started = (
        local_stamp(start, tz, p, 1, "the start time in the file name").timestamp()
        if start is not None
        else None
    )
    return ImportedRR(
        format=FORMAT,
        rr_ms=text.rr_ms,
        started_unix_s=started,
        notes=f"imported from {p.name} (Elite HRV, ms)"
        + (
            f"; start time from the file name, local time in {zone_label(tz)}"
            if start is not None
            else ""
        ),
        source=p.name,
    )
