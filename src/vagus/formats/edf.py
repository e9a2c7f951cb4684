"""EDF+ as written by ``vagus export --format edf``, read back through its annotations.

The export (:func:`vagus.formats.export.write_edf`) carries the exact values as EDF+
annotations, onsets in seconds from the file's start (EDF+ stores them, and the
sub-second part of the start, to 100 µs):

- ``RR=<ms>`` (``RR=<ms> <artifact class>``) at each measured beat's time (RR values of
  0 ms are left out: :func:`~vagus.formats.common.zero_rr_note`);
- ``Gap: <reason>`` at the last beat before a gap, with its duration;
- ``Marker: <text>`` and ``Pacer: <rate>/min inhale <fraction>`` (``Pacer: off …``).

The reader turns them back into RR intervals with beat times (the onsets), a break at
every ``Gap`` annotation (and wherever the beat times disagree with the RR chain, as for
every format with times), markers and pacer changes as control events. The RR and NN
signals (4 Hz tachograms for viewing) are not read: the annotations are exact. The file's
start is UTC when vagus wrote it (the ``equipment`` field starts with ``vagus``); another
tool's EDF+ start is a local time, read in the zone given as ``tz``.

Errors (:class:`~vagus.exceptions.FileFormatError`) name the place: the header, or the
annotation's number and onset (an EDF+ file has no text lines).
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import re
import warnings
from pathlib import Path

from vagus.core.events import ControlEvent, Marker, PacerChange
from vagus.exceptions import FileFormatError
from vagus.formats.common import (
    ImportedRR,
    breaks_from_beat_times,
    wall_clock,
    zero_rr_note,
    zone_label,
)

__all__ = ["FORMAT", "looks_like", "looks_like_edf", "read_edf", "read_edf_annotations"]

FORMAT = "edf"
#: An EDF (and EDF+) header starts with the version field: "0" padded to 8 bytes.
_VERSION = b"0       "
_HEADER_BYTES = 256
_RR = re.compile(r"^RR=(\S+)(?:\s+(\S+))?$")
_PACER = re.compile(r"^Pacer:\s+(off|\S+?)(?:/min)?\s+inhale\s+(\S+)$")


def looks_like(head: bytes) -> bool:
    """True for an EDF+ header (the first 256 bytes: version "0", reserved "EDF+C/D")."""
    return (
        len(head) >= _HEADER_BYTES
        and head.startswith(_VERSION)
        and head[192:197] in (b"EDF+C", b"EDF+D")
    )


def looks_like_edf(head: bytes) -> bool:
    """True for any EDF header (EDF or EDF+): ``read_edf`` then says if it can read it."""
    return len(head) >= _HEADER_BYTES and head.startswith(_VERSION)


def _error(path: Path, where: str, reason: str) -> FileFormatError:
    return FileFormatError(f"{path.name}: {where}: {reason}")


def read_edf_annotations(path: Path | str) -> list[tuple[float, float, str]]:
    """The EDF+ file's annotations as ``(onset_s, duration_s, text)`` (via pyedflib)."""
    import pyedflib

    reader = pyedflib.EdfReader(str(path))
    try:
        onsets, durations, texts = reader.readAnnotations()
    finally:
        reader.close()
    return [(float(o), float(d), str(t)) for o, d, t in zip(onsets, durations, texts, strict=True)]


def _open(p: Path) -> tuple[dt.datetime, str, str, list[tuple[float, float, str]]]:
    """(start, equipment, patient code, annotations), or a FileFormatError saying why not."""
    try:
        with p.open("rb") as f:
            head = f.read(_HEADER_BYTES)
    except FileNotFoundError:
        raise FileFormatError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise FileFormatError(f"{p}: is a directory, not a file") from None
    except OSError as exc:
        raise FileFormatError(f"{p}: cannot be read ({exc.strerror})") from None
    if not head.startswith(_VERSION):
        raise _error(p, "header", "not an EDF file (it does not start with the EDF version '0')")
    if not looks_like(head):
        raise _error(
            p,
            "header",
            "plain EDF without annotations (or a truncated header); vagus reads the EDF+ "
            "files that `vagus export --format edf` writes",
        )
    _check_size(p)
    import pyedflib  # a dependency; lazily, so the live path never loads it

    # pyedflib warns (UserWarning) when a header field is not UTF-8 and decodes it as
    # Latin-1: harmless for the fields read here, and not the user's business.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            reader = pyedflib.EdfReader(str(p))
        except OSError as exc:
            reason = str(exc).split(": ", 1)[-1] or "unreadable"
            raise _error(
                p, "header", f"not a readable EDF+ file ({reason}); truncated or damaged?"
            ) from None
        try:
            # The sub-second start (EDF+ "+0.ffff"), in 100 ns units, read directly:
            # pyedflib's getStartdatetime divides it by 100 instead of 10.
            subsecond = int(getattr(reader, "starttime_subsecond", 0) or 0)
            start = reader.getStartdatetime().replace(microsecond=0) + dt.timedelta(
                microseconds=round(subsecond / 10)
            )
            equipment = str(reader.getEquipment()).strip()
            patient = str(reader.getPatientCode()).strip()
            onsets, durations, texts = reader.readAnnotations()
        finally:
            reader.close()
    notes = [(float(o), float(d), str(t)) for o, d, t in zip(onsets, durations, texts, strict=True)]
    return start, equipment, patient, notes


def _check_size(p: Path) -> None:
    """The file is as long as its header says (EDF spec: header bytes + records x record
    bytes, 2 bytes a sample), so a truncated file is named before EDFlib reads it."""
    size = p.stat().st_size
    with p.open("rb") as f:
        data = f.read(_HEADER_BYTES * 257)  # the header, for up to 256 signals
    try:
        header_bytes = int(data[184:192].decode("ascii"))
        records = int(data[236:244].decode("ascii"))
        signals = int(data[252:256].decode("ascii"))
        at = _HEADER_BYTES + signals * 216  # the "samples per record" fields (8 bytes each)
        samples = [int(data[at + 8 * i : at + 8 * i + 8].decode("ascii")) for i in range(signals)]
    except (ValueError, UnicodeDecodeError):
        raise _error(p, "header", "a number field of the EDF header is not a number") from None
    if signals < 1 or header_bytes != _HEADER_BYTES * (signals + 1) or size < header_bytes:
        raise _error(p, "header", "the EDF header is damaged or truncated")
    expected = header_bytes + records * 2 * sum(samples)
    if records < 1 or size != expected:
        raise _error(
            p,
            "data",
            f"{size} bytes, but the header promises {expected} ({records} data records): "
            "truncated or damaged file",
        )


def read_edf(path: Path | str, tz: dt.tzinfo | None = None) -> ImportedRR:
    """Read an EDF+ file written by ``vagus export --format edf`` (see the module doc).

    Args:
        path: the file.
        tz: the zone of the start time of an EDF+ that vagus did not write (None: this
            machine's); a vagus EDF+ starts in UTC.

    Raises:
        FileFormatError: not EDF+, unreadable (truncated, damaged), no ``RR=`` annotations,
            or a bad annotation (names its number and onset and says what is wrong).
    """
    p = Path(path)
    start, equipment, patient, annotations = _open(p)
    ours = equipment.lower().startswith("vagus")
    rr: list[float] = []
    t_s: list[float] = []
    gaps: list[tuple[float, str]] = []
    controls: list[ControlEvent] = []
    zeros = 0
    for k, (onset, _duration, text) in enumerate(annotations, start=1):
        at = f"annotation {k} (at {onset:.4f} s)"
        if not math.isfinite(onset) or onset < 0:
            raise _error(p, at, f"onset {onset} is not a time in the file")
        text = text.strip()
        m = _RR.match(text)
        if text.startswith("RR="):
            value = _number(m[1] if m else text[3:], p, at, "RR")
            if value == 0:
                zeros += 1
                continue
            if not value > 0:
                raise _error(p, at, f"RR interval {value:g} ms is not > 0")
            if t_s and onset <= t_s[-1]:
                raise _error(p, at, "beat times must increase")
            rr.append(value)
            t_s.append(onset)
        elif text.startswith("Gap:"):
            gaps.append((onset, text[4:].strip() or "file_gap"))
        elif text.startswith("Marker:"):
            controls.append(Marker(t_s=onset, text=text[7:].strip()))
        elif text.startswith("Pacer:"):
            pm = _PACER.match(text)
            if pm is None:
                raise _error(p, at, f"{text!r} is not 'Pacer: <rate>/min inhale <fraction>'")
            rate = None if pm[1] == "off" else _number(pm[1], p, at, "pacer rate")
            inhale = _number(pm[2], p, at, "inhale fraction")
            controls.append(PacerChange(t_s=onset, rate_bpm=rate, inhale_fraction=inhale))
        # Other annotations (another tool's) carry nothing vagus replays.
    if not rr:
        raise _error(
            p,
            "annotations",
            "no 'RR=<ms>' annotations: not an EDF+ written by `vagus export --format edf`",
        )
    breaks = dict(breaks_from_beat_times(rr, t_s))
    for onset, reason in gaps:
        i = bisect.bisect_right(t_s, onset)
        if 0 < i < len(rr):
            breaks[i] = reason
    started = wall_clock(start, dt.UTC if ours else tz)
    zone = "in UTC, as vagus writes it" if ours else f"read as local time in {zone_label(tz)}"
    return ImportedRR(
        format=FORMAT,
        source=p.name,
        rr_ms=tuple(rr),
        t_s=tuple(t_s),
        breaks=tuple(sorted(breaks.items())),
        started_unix_s=started,
        participant=patient if patient and patient != "X" else None,
        markers=tuple(controls),
        notes=(
            f"imported from {p.name} (EDF+: RR from its RR= annotations, beat times to "
            f"0.1 ms; start {zone})" + zero_rr_note(zeros)
        ),
    )


def _number(text: str, p: Path, at: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _error(p, at, f"{what} {text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise _error(p, at, f"{what} {text!r} is not a finite number")
    return value
