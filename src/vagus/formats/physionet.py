"""PhysioNet RR text (as ``nsr001_rr_secs.txt`` of the nsr2db database via RHRV).

One value per line in seconds; **the first line is the time of the first beat** (e.g.
225.8 s into the Holter record), not an interval, and every following line is an RR
interval (s). Beat times are the first beat's time plus the cumulative RR, on the record's
own clock (0 = start of the record). Lines starting with ``#`` are comments.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vagus.formats.common import ImportedRR, read_text_lines
from vagus.formats.plain import read_rr_text

__all__ = ["FORMAT", "looks_like", "read_physionet"]

FORMAT = "physionet"
#: RR intervals (s) we accept as the seconds scale when sniffing.
_RR_RANGE_S = (0.2, 3.0)


def _values(lines: list[str], limit: int) -> list[float] | None:
    out: list[float] = []
    for ln in lines:
        s = ln.strip()
        if not s or s.startswith("#"):
            continue
        try:
            out.append(float(s))
        except ValueError:
            return None
        if len(out) >= limit:
            break
    return out


def looks_like(lines: list[str]) -> bool:
    """One number per line, the first beyond any RR (a time, > 3 s), the next ones RR in s."""
    vals = _values(lines, 200)
    if vals is None or len(vals) < 3:
        return False
    lo, hi = _RR_RANGE_S
    rest = np.asarray(vals[1:])
    return vals[0] > hi and float(np.median(rest)) < hi and float(np.median(rest)) > lo


def read_physionet(path: Path | str) -> ImportedRR:
    """Read a PhysioNet RR text file (see the module doc).

    The numbers are read by :func:`vagus.formats.plain.read_rr_text` (seconds, first
    value a time).

    Raises:
        FileFormatError: naming the line (binary or empty file, not a number, an RR that
            is not > 0, implausible values for seconds).
    """
    p = Path(path)
    read_text_lines(p)  # empty / binary / not UTF-8: named errors before parsing numbers
    text = read_rr_text(p, "s", first_value_is_time=True)
    first = text.first_beat_s if text.first_beat_s is not None else 0.0
    t = first + np.cumsum(np.asarray(text.rr_ms)) / 1000.0
    return ImportedRR(
        format=FORMAT,
        rr_ms=text.rr_ms,
        t_s=tuple(float(v) for v in t),
        notes=(
            f"imported from {p.name} (PhysioNet RR text, s); first beat at {first:g} s "
            "of the record; no wall-clock date in the file"
        ),
        source=p.name,
    )
