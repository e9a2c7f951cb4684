"""RR in a named column of a CSV (or TSV / semicolon) table: ``--column NAME``.

The first non-blank line is the header; the delimiter is the one of ``,`` ``;`` or tab
that splits it into the most fields. The unit comes from the column name (``rr_ms``,
``RR [ms]``, ``ibi (s)`` …) or from ``--unit``; if both are given they must agree.
Empty cells in the column are errors (a half-filled table is not silently skipped).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from vagus.formats.common import ImportedRR, check_rr, format_error, parse_number, read_text_lines

__all__ = ["FORMAT", "read_csv_column", "unit_from_name"]

FORMAT = "csv"
_MS = re.compile(r"(^|[\s_\[(])ms([\s\])]|$)", re.IGNORECASE)
_S = re.compile(r"(^|[\s_\[(])(s|sec|secs|seconds)([\s\])]|$)", re.IGNORECASE)


def unit_from_name(name: str) -> str | None:
    """``"ms"`` or ``"s"`` when the column name states it, else None."""
    if _MS.search(name):
        return "ms"
    if _S.search(name):
        return "s"
    return None


def read_csv_column(path: Path | str, column: str, unit: str | None = None) -> ImportedRR:
    """Read the RR column ``column`` (see the module doc).

    Raises:
        FileFormatError: naming the line (no such column, wrong number of fields, a value
            that is not a number, RR <= 0, unknown unit).
    """
    p = Path(path)
    lines = read_text_lines(p)
    header_at = next(i for i, ln in enumerate(lines) if ln.strip())
    header_line = lines[header_at]
    delim = max([",", ";", "\t"], key=lambda d: len(header_line.split(d)))
    rows = list(csv.reader(lines[header_at:], delimiter=delim))
    names = [c.strip() for c in rows[0]]
    if column not in names:
        raise format_error(
            p, header_at + 1, f"no column {column!r}; the columns are {', '.join(names)}"
        )
    k = names.index(column)
    stated = unit_from_name(column)
    if stated and unit and stated != unit:
        raise format_error(p, header_at + 1, f"column {column!r} is in {stated}, not {unit}")
    use = stated or unit
    if use not in ("ms", "s"):
        raise format_error(
            p, header_at + 1, f"column {column!r} does not name its unit; pass --unit ms or s"
        )
    factor = 1.0 if use == "ms" else 1000.0
    rr: list[float] = []
    where: list[int] = []
    for n, row in enumerate(rows[1:], start=header_at + 2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(names):
            raise format_error(p, n, f"{len(row)} field(s), expected {len(names)}; truncated line?")
        rr.append(parse_number(row[k], p, n, column) * factor)
        where.append(n)
    check_rr(rr, where, p, f"(read as {use}; pass --unit to change)")
    return ImportedRR(
        format=FORMAT,
        rr_ms=tuple(rr),
        notes=f"imported from {p.name}, column {column!r} ({use})",
        source=p.name,
        rr_lines=tuple(where),
    )
