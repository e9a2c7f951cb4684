"""Import formats by name, and format detection by content.

:func:`detect_format` sniffs the first bytes (EDF+), the first lines (and, for Elite HRV,
the file name), never the extension alone, and never a unit from magnitudes. Where the
content fits several formats (one bare number per line: plain ms, plain s, Elite HRV …)
it raises a :class:`~vagus.exceptions.FileFormatError` that asks for ``--format`` (and ``--unit``).
A file that starts as a recognised format and then has a bad line is detected as that
format where the start says which (an Elite HRV file name and whole ms), so the reader names
the bad line and its reason; a list of numbers with a bad line and no format to tell gets
an error naming that line, never "not a recognised RR file" at line 1.

=============  ==========================================  ==========  ===============
name           what                                        RR unit     beat times
=============  ==========================================  ==========  ===============
``plain``      one RR per line, ``#`` comments              ``--unit``  cumulative
``csv``        a named column of a CSV/TSV (``--column``)   name/unit   cumulative
``kubios``     Kubios RR text: header, RR or time+RR        header      time column
``heartmath``  HeartMath / HRV Logger CSV                   ms          RR chain + gaps
``vu_ams``     VU-AMS IBI export                            ms          R-peak times
``physionet``  PhysioNet RR text (first line = time)        s           cumulative
``polar``      Polar Sensor Logger ``_RR.txt``              ms          RR chain + gaps
``elite_hrv``  Elite HRV export (one RR per line)           ms          cumulative
``json``       ``vagus export --format json``              ms          raw input
``vagus_csv``  ``vagus export --format csv``               ms          ``t_s`` column
``edf``        ``vagus export --format edf`` (EDF+)        ms          annotations
=============  ==========================================  ==========  ===============

The last three read back what ``vagus export`` writes (Kubios RR text already is
``kubios``): ``json`` replays to exactly the exported session's events, the others to the
same RR, gaps and markers. ``--format csv`` without ``--column`` on a vagus CSV export
reads it as ``vagus_csv``. Formats with naive local times take the zone ``tz``
(``vagus import --tz``; None: this machine's).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

from vagus.core.events import ControlEvent
from vagus.exceptions import FileFormatError, InvalidInput
from vagus.formats import (
    csvcolumn,
    edf,
    elitehrv,
    heartmath,
    kubios,
    physionet,
    polar,
    vaguscsv,
    vagusjson,
    vuams,
)
from vagus.formats.common import RECORD_BEATS, ImportedRR, format_error, read_text_lines
from vagus.formats.plain import (
    RRScan,
    check_regular_file,
    microseconds_hint,
    microseconds_like,
    read_rr_text,
    scan_rr_text,
)
from vagus.store.base import InputRecord, RRRecord

__all__ = [
    "FIXED_UNITS",
    "FORMATS",
    "PlainStream",
    "detect_format",
    "open_rr_file",
    "read_rr_file",
]

#: Every import format name, in the order of the table above.
FORMATS: tuple[str, ...] = (
    "plain",
    csvcolumn.FORMAT,
    kubios.FORMAT,
    heartmath.FORMAT,
    vuams.FORMAT,
    physionet.FORMAT,
    polar.FORMAT,
    elitehrv.FORMAT,
    vagusjson.FORMAT,
    vaguscsv.FORMAT,
    edf.FORMAT,
)
#: Formats whose RR unit is fixed by the format.
FIXED_UNITS: dict[str, str] = {
    heartmath.FORMAT: "ms",
    vuams.FORMAT: "ms",
    physionet.FORMAT: "s",
    polar.FORMAT: "ms",
    elitehrv.FORMAT: "ms",
    vagusjson.FORMAT: "ms",
    vaguscsv.FORMAT: "ms",
    edf.FORMAT: "ms",
}


def _one_number_per_line(lines: list[str]) -> bool:
    seen = 0
    for ln in lines:
        s = ln.strip()
        if not s or s.startswith("#"):
            continue
        try:
            float(s)
        except ValueError:
            return False
        seen += 1
        if seen >= 200:
            break
    return seen > 0


def _numbers(lines: list[str], limit: int = 200) -> list[float]:
    """The first ``limit`` values of a file of one number per line (comments skipped)."""
    out: list[float] = []
    for ln in lines:
        s = ln.strip()
        if s and not s.startswith("#"):
            out.append(float(s))
            if len(out) >= limit:
                break
    return out


def _first_non_number(lines: list[str]) -> int | None:
    """The index of the first line that breaks a list of one number per line, or None.

    None unless the first value line (not blank, not a ``#`` comment) is a number: a file
    that starts as an RR list and then has a bad line is an RR list with a bad line, and
    that line is what the user needs to see, not line 1.
    """
    seen = False
    for i, ln in enumerate(lines):
        s = ln.strip()
        if not s or s.startswith("#"):
            continue
        try:
            float(s)
        except ValueError:
            return i if seen else None
        seen = True
    return None


def detect_format(path: Path | str, *, unit: str | None = None, column: str | None = None) -> str:
    """The import format of ``path`` from its content (see the module doc).

    Raises:
        FileFormatError: an empty, binary or unrecognised file, or content that fits
            several formats (the message says which ``--format`` / ``--unit`` to pass).
    """
    p = Path(path)
    check_regular_file(p)
    if edf.looks_like_edf(_head(p)):
        return edf.FORMAT
    lines = _detect_lines(p)
    if vagusjson.looks_like(lines):
        return vagusjson.FORMAT
    if vaguscsv.looks_like(lines):
        return vaguscsv.FORMAT
    if vuams.looks_like(lines):
        return vuams.FORMAT
    if polar.looks_like(lines):
        return polar.FORMAT
    if heartmath.looks_like(lines):
        return heartmath.FORMAT
    if kubios.looks_like(lines):
        return kubios.FORMAT
    if column is not None:
        return csvcolumn.FORMAT
    if elitehrv.looks_like(p, lines):
        return elitehrv.FORMAT
    if physionet.looks_like(lines):
        return physionet.FORMAT
    first_at = next(i for i, ln in enumerate(lines) if ln.strip())
    if _one_number_per_line(lines):
        if unit is not None:
            return "plain"
        values = _numbers(lines)
        median = sorted(values)[len(values) // 2]
        micro = f"; {microseconds_hint(median)}" if microseconds_like(median) else ""
        raise format_error(
            p,
            first_at + 1,
            "one number per line with no unit stated: pass --format plain --unit ms "
            "(or --unit s); for an Elite HRV export --format elite_hrv, for PhysioNet RR "
            f"text (first line = first beat time) --format physionet{micro}",
        )
    bad = _first_non_number(lines)
    if bad is not None:
        raise format_error(
            p,
            bad + 1,
            f"{lines[bad].strip()[:40]!r} is not a number, but the lines before it are one "
            "number each (an RR list): fix or remove that line, and pass --format plain "
            "--unit ms (or --unit s)",
        )
    first = lines[first_at]
    if first.lstrip().startswith(("{", "[")):
        raise format_error(
            p,
            first_at + 1,
            "JSON that is not a vagus session export (`vagus export --format json`); "
            "vagus reads RR files and its own exports",
        )
    if any(d in first for d in (",", ";", "\t")):
        raise format_error(
            p,
            first_at + 1,
            "a table that is no known RR export; name the RR column with --column NAME "
            "(and --unit if its name does not say ms or s)",
        )
    raise format_error(
        p,
        first_at + 1,
        f"not a recognised RR file (formats: {', '.join(FORMATS)}); "
        f"starts with {first.strip()[:40]!r}",
    )


#: Detection reads at most this much of a file: a format shows in its first lines.
DETECT_BYTES = 1 << 16


def _detect_lines(p: Path) -> list[str]:
    """The lines of the file, or of its first :data:`DETECT_BYTES` when it is longer
    (whole lines, or the head as one line when it holds no line end): detection never
    holds a big file in memory.

    Raises:
        FileFormatError: as :func:`~vagus.formats.common.read_text_lines` (empty,
            binary, not UTF-8).
    """
    try:
        size = p.stat().st_size
    except OSError:
        size = 0
    if size <= DETECT_BYTES:
        return read_text_lines(p)
    with p.open("rb") as f:
        head = f.read(DETECT_BYTES)
    cut = head.rfind(b"\n")
    if cut >= 0:
        head = head[: cut + 1]
    else:  # one long line (a JSON export): drop a character cut in two
        for trim in range(4):
            try:
                head[: len(head) - trim].decode("utf-8")
            except UnicodeDecodeError:
                continue
            head = head[: len(head) - trim]
            break
    import tempfile

    # read_text_lines' checks (binary, UTF-8, control characters) on the head alone.
    with tempfile.NamedTemporaryFile(suffix=p.suffix) as tmp:
        tmp.write(head)
        tmp.flush()
        try:
            return read_text_lines(tmp.name)
        except FileFormatError as exc:
            raise FileFormatError(str(exc).replace(Path(tmp.name).name, p.name, 1)) from None


def _head(p: Path) -> bytes:
    """The first 256 bytes ("" for a file that cannot be opened: read_text_lines says why)."""
    try:
        with p.open("rb") as f:
            return f.read(256)
    except OSError:
        return b""


def read_rr_file(
    path: Path | str,
    fmt: str | None = None,
    *,
    unit: str | None = None,
    column: str | None = None,
    tz: dt.tzinfo | None = None,
) -> ImportedRR:
    """Read an RR file in ``fmt`` (detected when None) into an :class:`ImportedRR`.

    Args:
        path: the file.
        fmt: one of :data:`FORMATS`, or None to detect it.
        unit: ``"ms"`` or ``"s"``: required for ``plain``, and for ``kubios``/``csv``
            when the file does not state it; must agree with a format's fixed unit.
        column: the RR column of a ``csv`` table.
        tz: the time zone of naive local times in the file (None: this machine's).

    Raises:
        FileFormatError: the file is not in the format (names the line and reason).
        InvalidInput: unknown format or unit, or a unit that contradicts the format.
    """
    if unit is not None and unit not in ("ms", "s"):
        raise InvalidInput(f"unknown unit {unit!r}: use ms or s")
    check_regular_file(Path(path))
    if fmt is None:
        fmt = detect_format(path, unit=unit, column=column)
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    fixed = FIXED_UNITS.get(fmt)
    if fixed is not None and unit is not None and unit != fixed:
        raise InvalidInput(f"{fmt} files hold RR in {fixed}; drop --unit {unit}")
    p = Path(path)
    check_regular_file(p)  # /dev/zero, a pipe: may never end
    if fmt == "plain":
        if unit is None:
            raise InvalidInput("plain RR text needs its unit: pass --unit ms or --unit s")
        _detect_lines(p)  # empty / binary: named errors first (from the file's start)
        text = read_rr_text(p, "ms" if unit == "ms" else "s")
        return ImportedRR(
            format="plain", rr_ms=text.rr_ms, notes=f"imported from {p.name} (plain, {unit})"
        )
    if fmt == csvcolumn.FORMAT:
        if column is None:
            if vaguscsv.looks_like(read_text_lines(p)):
                return vaguscsv.read_vagus_csv(p)
            raise InvalidInput("--format csv needs --column NAME (the RR column)")
        return csvcolumn.read_csv_column(p, column, unit)
    if fmt == kubios.FORMAT:
        return kubios.read_kubios(p, unit, tz)
    if fmt == heartmath.FORMAT:
        return heartmath.read_heartmath(p, tz)
    if fmt == vuams.FORMAT:
        return vuams.read_vu_ams(p, tz)
    if fmt == physionet.FORMAT:
        return physionet.read_physionet(p)
    if fmt == polar.FORMAT:
        return polar.read_polar(p, tz)
    if fmt == vagusjson.FORMAT:
        return vagusjson.read_vagus_json(p)
    if fmt == vaguscsv.FORMAT:
        return vaguscsv.read_vagus_csv(p)
    if fmt == edf.FORMAT:
        return edf.read_edf(p, tz)
    return elitehrv.read_elite_hrv(p, tz)


class _PlainRecords(Sequence[InputRecord]):
    """The store's records of a plain RR list, read from the file on each iteration.

    The same records as :meth:`ImportedRR.records` (one :class:`RRRecord` per
    :data:`~vagus.formats.common.RECORD_BEATS` values, cumulative times), made one block
    of the file at a time, so iterating holds one block, never the file.
    """

    def __init__(self, scan: RRScan, participant: str) -> None:
        self._scan = scan
        self._participant = participant

    def __len__(self) -> int:
        return -(-self._scan.beats // RECORD_BEATS)

    def __iter__(self) -> Iterator[InputRecord]:
        who = self._participant
        carry: list[float] = []
        for chunk in self._scan.chunks():
            values = carry + chunk.tolist()
            whole = len(values) - len(values) % RECORD_BEATS
            for a in range(0, whole, RECORD_BEATS):
                yield RRRecord(rr_ms=tuple(values[a : a + RECORD_BEATS]), participant=who)
            carry = values[whole:]
        if carry:
            yield RRRecord(rr_ms=tuple(carry), participant=who)

    @overload
    def __getitem__(self, index: int) -> InputRecord: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[InputRecord]: ...
    def __getitem__(self, index: int | slice) -> InputRecord | Sequence[InputRecord]:
        """Random access (reads the file up to the record: iterate instead)."""
        if isinstance(index, slice):
            return list(self)[index]
        n = len(self)
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError(index)
        return next(itertools.islice(iter(self), i, None))


@dataclass(frozen=True, slots=True)
class PlainStream:
    """A plain RR list checked from end to end, its values left in the file.

    What ``vagus import`` needs of an :class:`ImportedRR` (the same names), for a file
    of any length: :meth:`records` reads the file again block by block.
    """

    scan: RRScan
    format: str = "plain"
    notes: str = ""
    participant: str | None = None
    started_unix_s: float | None = None
    ended_unix_s: float | None = None
    title: str | None = None
    device_profile: str | None = None
    tags: tuple[str, ...] = ()
    breaks: tuple[tuple[int, str], ...] = ()
    markers: tuple[ControlEvent, ...] = ()

    @property
    def beats(self) -> int:
        """Number of RR intervals."""
        return self.scan.beats

    @property
    def duration_s(self) -> float:
        """The sum of the RR intervals (s)."""
        return self.scan.sum_ms / 1000.0

    def records(self, participant: str = "me") -> Sequence[InputRecord]:
        """The store's input records (see :class:`_PlainRecords`)."""
        return _PlainRecords(self.scan, participant)


def open_rr_file(
    path: Path | str,
    fmt: str | None = None,
    *,
    unit: str | None = None,
    column: str | None = None,
    tz: dt.tzinfo | None = None,
) -> ImportedRR | PlainStream:
    """:func:`read_rr_file`, except that a plain RR list is streamed (:class:`PlainStream`).

    Raises:
        FileFormatError, InvalidInput: as :func:`read_rr_file`.
    """
    if unit in ("ms", "s") and (fmt == "plain" or fmt is None):
        name = fmt or detect_format(path, unit=unit, column=column)
        if name == "plain":
            p = Path(path)
            check_regular_file(p)
            _detect_lines(p)  # empty / binary: named errors first (from the file's start)
            scan = scan_rr_text(p, "ms" if unit == "ms" else "s")
            return PlainStream(scan, notes=f"imported from {p.name} (plain, {unit})")
    return read_rr_file(path, fmt, unit=unit, column=column, tz=tz)
