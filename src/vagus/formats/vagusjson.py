"""The vagus JSON session export (``vagus export --format json``), read back.

The document (:func:`vagus.formats.export.session_document`)::

    {"format": "vagus-session", "version": 2, "protocol_version": 1,
     "session": {"id", "started_unix_s", "ended_unix_s", "title", "participants",
                 "device_profile", "source", "tags", "notes"},
     "summary": {...}, "events": [<event JSON>, ...],
     "input": [<input record JSON>, ...]}

``input`` (since version 2) is the session's raw input, record by record
(:func:`record_to_json`): ``{"kind": "packet", "t_arrival_s", "payload": <hex>,
"participant"}``, ``{"kind": "gap", "t_s", "reason", "participant"}``,
``{"kind": "control", "event": <marker or pacer event JSON>}`` and ``{"kind": "rr",
"rr_ms": [...], "t_s": [...] | null, "participant"}``. JSON numbers carry every float
exactly, so an import of ``input`` replays to exactly the events of the exported session.

A version-1 document (no ``input``) is read from its events instead: the measured beats
(RR and beat time; the corrector's inserted beats left out), a break at each gap, and the
markers and pacer changes (RR values of 0 ms left out:
:func:`~vagus.formats.common.zero_rr_note`): the re-imported session replays to the same
beats.

The session's ``tags`` come back as the imported session's tags. Values are checked as
every import's are (:func:`~vagus.formats.common.validate_imported`): dates in the
plausible range, RR and session times within a recording's limits, pacer rates of 1-40
breaths/min, tags non-empty strings.

Errors (:class:`~vagus.exceptions.FileFormatError`) name the line for JSON syntax errors
and the JSON path otherwise (``input[12]``, ``events[3]``, ``session.started_unix_s``).
"""

from __future__ import annotations

import bisect
import json
import math
import re
import time
from pathlib import Path
from typing import Any

from vagus.core.events import Beat, ControlEvent, Gap, Marker, PacerChange, event_from_json
from vagus.core.pipeline import Pipeline
from vagus.exceptions import FileFormatError, InvalidInput
from vagus.formats.common import (
    EARLIEST_DATE,
    FUTURE_SLACK_S,
    MAX_RR_MS,
    MAX_SPAN_S,
    ImportedRR,
    control_problem,
    date_range_text,
    format_error,
    read_text_lines,
    zero_rr_note,
)
from vagus.store.base import ControlRecord, GapRecord, InputRecord, PacketRecord, RRRecord
from vagus.store.recorder import feed_counting

__all__ = [
    "FORMAT",
    "JSON_FORMAT",
    "JSON_VERSION",
    "looks_like",
    "read_vagus_json",
    "record_from_json",
    "record_to_json",
]

FORMAT = "json"
#: ``"format"`` of the document.
JSON_FORMAT = "vagus-session"
#: The version written; versions 1 (events only) and 2 (events and input) are read.
JSON_VERSION = 2
_MAGIC = re.compile(r'"format"\s*:\s*"vagus-session"')


def looks_like(lines: list[str]) -> bool:
    """True when the file is a JSON object naming ``"format": "vagus-session"`` early on."""
    first = next((ln.lstrip() for ln in lines if ln.strip()), "")
    if not first.startswith("{"):
        return False
    head = "".join(lines[:20])[:2000]
    return _MAGIC.search(head) is not None


def record_to_json(record: InputRecord) -> dict[str, Any]:
    """One input record as a JSON-ready dict (see the module doc)."""
    if isinstance(record, PacketRecord):
        return {
            "kind": "packet",
            "t_arrival_s": record.t_arrival_s,
            "payload": record.payload.hex(),
            "participant": record.participant,
        }
    if isinstance(record, GapRecord):
        return {
            "kind": "gap",
            "t_s": record.t_s,
            "reason": record.reason,
            "participant": record.participant,
        }
    if isinstance(record, ControlRecord):
        return {"kind": "control", "event": record.event.to_json()}
    return {
        "kind": "rr",
        "rr_ms": list(record.rr_ms),
        "t_s": None if record.t_s is None else list(record.t_s),
        "participant": record.participant,
    }


def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number, got {_shown(value)}")
    try:
        v = float(value)
    except OverflowError:
        v = math.inf  # an integer beyond any float
    if not math.isfinite(v):
        raise ValueError(f"{what} must be finite, got {_shown(value)}")
    return v


def _session_time(value: Any, what: str) -> float:
    """A time on the session's clock (s): finite and within :data:`MAX_SPAN_S` of 0."""
    v = _finite(value, what)
    if abs(v) > MAX_SPAN_S:
        raise ValueError(f"{what} {v:g} s is beyond any session ({MAX_SPAN_S / 86_400:g} days)")
    return v


def _unix_date(value: Any, what: str) -> float:
    """A wall-clock date (Unix s) in the plausible range (:func:`date_range_text`)."""
    v = _finite(value, what)
    lo, hi = _plausible()
    if not lo <= v <= hi:
        raise ValueError(
            f"{what} {v:g} is outside the plausible dates {date_range_text()} (Unix seconds)"
        )
    return v


def _plausible() -> tuple[float, float]:
    return EARLIEST_DATE.timestamp(), time.time() + FUTURE_SLACK_S


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _text(obj: dict[str, Any], key: str, default: str) -> str:
    value = obj.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string, got {value!r}")
    return value


def record_from_json(obj: Any) -> InputRecord:
    """An input record from :func:`record_to_json`'s form.

    Raises:
        ValueError: not such a record (says which field is wrong).
    """
    if not isinstance(obj, dict):
        raise ValueError(f"expected an object, got {type(obj).__name__}")
    kind = obj.get("kind")
    if kind == "packet":
        payload = obj.get("payload")
        if not isinstance(payload, str):
            raise ValueError(f"payload must be a hex string, got {payload!r}")
        try:
            data = bytes.fromhex(payload)
        except ValueError:
            raise ValueError(f"payload {payload[:40]!r} is not hex") from None
        return PacketRecord(
            _session_time(obj.get("t_arrival_s"), "t_arrival_s"),
            data,
            _text(obj, "participant", "me"),
        )
    if kind == "gap":
        return GapRecord(
            _session_time(obj.get("t_s"), "t_s"),
            _text(obj, "reason", "link_lost"),
            _text(obj, "participant", "me"),
        )
    if kind == "control":
        event = obj.get("event")
        if not isinstance(event, dict):
            raise ValueError(f"event must be an object, got {event!r}")
        ev = event_from_json(event)
        if not isinstance(ev, Marker | PacerChange):
            raise ValueError(f"a {ev.type!r} event is not a control event")
        return ControlRecord(_checked_control(ev))
    if kind == "rr":
        values = obj.get("rr_ms")
        times = obj.get("t_s")
        if not isinstance(values, list) or not values:
            raise ValueError("rr_ms must be a non-empty list of numbers")
        rr = tuple(_finite(v, "rr_ms") for v in values)
        if any(not v > 0 for v in rr):
            raise ValueError(f"RR intervals must be > 0 ms, got {min(rr):g}")
        if max(rr) > MAX_RR_MS:
            raise ValueError(
                f"RR intervals must be at most {MAX_RR_MS:g} ms ({MAX_RR_MS / 1000:g} s), "
                f"got {max(rr):g}"
            )
        ts: tuple[float, ...] | None = None
        if times is not None:
            if not isinstance(times, list) or len(times) != len(rr):
                raise ValueError("t_s must be null or a list as long as rr_ms")
            ts = tuple(_session_time(v, "t_s") for v in times)
        return RRRecord(rr, ts, _text(obj, "participant", "me"))
    raise ValueError(f"unknown record kind {kind!r} (packet, gap, control, rr)")


def _checked_control(ev: ControlEvent) -> ControlEvent:
    """``ev`` if its fields have their types and ranges (as a recording accepts them).

    event_from_json does not check them; :func:`~vagus.formats.common.control_problem`
    does (a pacer rate of 1-40 breaths/min, as ``pacer N``).
    """
    _finite(ev.t_s, "t_s")
    problem = control_problem(ev)
    if problem is not None:
        raise ValueError(problem)
    return ev


def _error(path: Path, where: str, reason: str) -> FileFormatError:
    return FileFormatError(f"{path.name}: {where}: {reason}")


def read_vagus_json(path: Path | str) -> ImportedRR:
    """Read a vagus JSON session export (see the module doc).

    Raises:
        FileFormatError: not JSON (names the line), not a vagus session export, an
            unknown version, or a bad record or event (names its JSON path and the reason).
    """
    p = Path(path)
    lines = read_text_lines(p)
    try:
        doc = json.loads("\n".join(lines))
    except json.JSONDecodeError as exc:
        raise format_error(
            p, exc.lineno, f"not valid JSON ({exc.msg} at column {exc.colno}); truncated file?"
        ) from None
    except RecursionError:
        raise format_error(p, 1, "JSON nested too deeply: not a vagus session export") from None
    if not isinstance(doc, dict) or doc.get("format") != JSON_FORMAT:
        raise format_error(
            p, 1, f'not a vagus session export (no "format": "{JSON_FORMAT}"); see vagus export'
        )
    version = doc.get("version")
    if version not in (1, 2):
        raise _error(
            p, "version", f"{version!r} is not a version this vagus reads (1-{JSON_VERSION})"
        )
    session = doc.get("session")
    if not isinstance(session, dict):
        raise _error(p, "session", "missing or not an object")
    try:
        started = _unix_date(session.get("started_unix_s"), "started_unix_s")
        ended_raw = session.get("ended_unix_s")
        ended = None if ended_raw is None else _unix_date(ended_raw, "ended_unix_s")
        if ended is not None and ended < started:
            raise ValueError(f"ended_unix_s {ended:g} is before started_unix_s {started:g}")
        title = _text(session, "title", "")
        device = _text(session, "device_profile", "generic")
        notes = _text(session, "notes", "")
        sid = _text(session, "id", "?")
        people = session.get("participants", ["me"])
        if not isinstance(people, list) or not all(isinstance(x, str) for x in people):
            raise ValueError(f"participants must be a list of names, got {_shown(people)}")
        if people and not people[0].strip():
            raise ValueError("the first participant's name is empty")
        tags = session.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(x, str) and x.strip() for x in tags):
            raise ValueError(f"tags must be a list of non-empty strings, got {_shown(tags)}")
    except ValueError as exc:
        raise _error(p, "session", str(exc)) from None
    about = f"imported from {p.name} (vagus JSON export of session {sid}"
    if "input" in doc:
        result = _from_input(p, doc["input"])
        about += ", raw input)"
    else:
        result = _from_events(p, doc.get("events"))
        about += ", beats from its events)"
    rr, t_s, breaks, controls, records, zeros = result
    return ImportedRR(
        format=FORMAT,
        rr_ms=tuple(rr),
        t_s=tuple(t_s),
        breaks=tuple(breaks),
        started_unix_s=started,
        participant=people[0] if people else None,
        markers=tuple(controls),
        notes=about + zero_rr_note(zeros) + (f"; {notes}" if notes else ""),
        input=records,
        title=title or None,
        device_profile=device,
        ended_unix_s=ended,
        tags=tuple(tags),
        source=p.name,
    )


_Parsed = tuple[
    list[float],
    list[float],
    list[tuple[int, str]],
    list[ControlEvent],
    tuple[InputRecord, ...] | None,
    int,
]


def _from_input(p: Path, raw: Any) -> _Parsed:
    """Parse the raw input and replay it once: its beats, gaps and control events."""
    if not isinstance(raw, list):
        raise _error(p, "input", "must be a list of input records")
    records: list[InputRecord] = []
    for k, obj in enumerate(raw):
        try:
            records.append(record_from_json(obj))
        except ValueError as exc:
            raise _error(p, f"input[{k}]", str(exc)) from None
    pipeline = Pipeline()
    rr: list[float] = []
    t_s: list[float] = []
    breaks: list[tuple[int, str]] = []
    controls: list[ControlEvent] = []

    def take(events: list[Any]) -> None:
        for ev in events:
            if isinstance(ev, Beat) and not ev.inserted:
                rr.append(ev.rr_ms)
                t_s.append(ev.t_s)
            elif isinstance(ev, Gap) and ev.duration_s is not None:
                breaks.append((len(rr), ev.reason))
            elif isinstance(ev, Marker | PacerChange):
                controls.append(ev)

    for k, record in enumerate(records):
        try:
            feed_counting(pipeline, record)  # malformed packets: skipped, as live
        except InvalidInput as exc:
            raise _error(p, f"input[{k}]", str(exc)) from None
        take(pipeline.events_received())
    pipeline.close()
    take(pipeline.events_received())
    if not rr:
        raise _error(p, "input", "the session holds no beats: nothing to import")
    return rr, t_s, breaks, controls, tuple(records), 0


def _from_events(p: Path, raw: Any) -> _Parsed:
    """Version 1: the measured beats, gaps and control events of the event list."""
    if not isinstance(raw, list):
        raise _error(p, "events", "must be a list of events")
    rr: list[float] = []
    t_s: list[float] = []
    gaps: list[tuple[float, str]] = []
    controls: list[ControlEvent] = []
    zeros = 0
    for k, obj in enumerate(raw):
        where = f"events[{k}]"
        if not isinstance(obj, dict):
            raise _error(p, where, "not an event object")
        try:
            ev = event_from_json(obj)
        except (ValueError, TypeError) as exc:
            raise _error(p, where, str(exc)) from None
        if isinstance(ev, Beat):
            if ev.inserted:
                continue
            try:
                t = _finite(ev.t_s, "t_s")
                v = _finite(ev.rr_ms, "rr_ms")
            except ValueError as exc:
                raise _error(p, where, str(exc)) from None
            if v == 0:
                zeros += 1
                continue
            if not v > 0:
                raise _error(p, where, f"RR interval {v:g} ms is not > 0")
            if t_s and t <= t_s[-1]:
                raise _error(p, where, "beat times must increase")
            rr.append(v)
            t_s.append(t)
        elif isinstance(ev, Gap):
            try:
                gaps.append((_finite(ev.t_s, "t_s"), str(ev.reason)))
            except ValueError as exc:
                raise _error(p, where, str(exc)) from None
        elif isinstance(ev, Marker | PacerChange):
            try:
                controls.append(_checked_control(ev))
            except ValueError as exc:
                raise _error(p, where, str(exc)) from None
    if not rr:
        raise _error(p, "events", "no beat events: nothing to import")
    breaks: dict[int, str] = {}
    for t_gap, reason in gaps:
        i = bisect.bisect_right(t_s, t_gap)
        if 0 < i < len(rr):
            breaks[i] = reason
    return rr, t_s, sorted(breaks.items()), controls, None, zeros
