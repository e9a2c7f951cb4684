"""Export a session: run its stored input through the real pipeline, write a file.

:func:`run_session` replays the session's input records (``feed`` from
:mod:`vagus.store.base`, ``close()`` at the end, malformed packets counted and skipped as
live) and keeps every event. The writers then turn that into:

``kubios``
    Kubios-compatible RR text (:func:`vagus.formats.kubios.write_kubios`): the measured
    RR (not corrected: Kubios applies its own correction) with beat times; re-imports with
    ``vagus import --format kubios`` to the same RR and gaps.
``csv``
    One table for spreadsheets, one row per event, a ``type`` column saying which
    (:data:`CSV_COLUMNS`): ``beat`` rows carry the measured RR, the artifact class, the
    corrected NN and the metrics computed at that beat (HR, RMSSD 30/60 s, SDNN, pNN50,
    artifact rate); ``spectrum`` rows the 5-s spectrum results (peak frequency, coherence
    ratio, LF, HF, LF/HF); ``gap``, ``marker``, ``pacer`` and ``contact`` rows their fields.
    Rows are in pipeline order (beat time); cells that do not apply are empty. ``time_utc``
    is the wall-clock time (session start + beat time). Filter on ``type`` to get one
    table; the full spectra (PSD arrays) are in the JSON export only.
One participant per file: a session with several participants is exported one
participant at a time (``participant=``; its events are exactly those of that
participant recorded alone). The markers and pacer changes, session-wide, are in each.

``json``
    The whole session in one JSON object (:data:`JSON_FORMAT`, version
    :data:`JSON_VERSION`): session metadata, an input summary, every event in its protocol
    form (``Event.to_json()``) and the raw input records (``input``:
    :func:`vagus.formats.vagusjson.record_to_json`), so ``vagus import`` of the file gives a
    session that replays to exactly the same events.
``edf``
    EDF+ (via pyedflib): two signals, the RR and NN tachograms (ms) resampled at
    :data:`EDF_RATE_HZ` for viewing, and EDF+ annotations that carry the exact values:
    one ``RR=<ms>`` annotation per measured beat at its beat time (``RR=<ms> <class>``
    for artifacts; the RR with up to 7 decimals, exact for a strap's 1/1024 s ticks),
    ``Gap: <reason>`` with its duration, ``Marker: <text>`` (EDFlib keeps at most 40
    characters of an annotation), ``Pacer: <rate>/min inhale <fraction>``.
    :func:`read_edf_annotations` reads them back and ``vagus import`` (:mod:`vagus.formats.edf`)
    imports them: beat times to EDF+'s 100 µs. The file starts (UTC; EDF has no time
    zone) at a beat time ``t0`` that is a multiple of :data:`EDF_ALIGN_S` (0 for imports),
    with EDF+'s sub-second start ("+0.ffff", to 100 µs), so an onset is ``beat time - t0``
    exactly (to 100 µs): a re-import has the same beat times, markers and coherence
    windows (:func:`edf_start`). Every format is written atomically
    (:mod:`vagus.files`): a failure or Ctrl-C leaves the target as it was.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from vagus import __version__
from vagus.core.events import (
    PROTOCOL_VERSION,
    Beat,
    Contact,
    Event,
    Gap,
    Marker,
    Metrics,
    PacerChange,
    Spectrum,
)
from vagus.exceptions import InvalidInput
from vagus.files import WriteError
from vagus.formats.edf import read_edf_annotations
from vagus.formats.kubios import write_kubios
from vagus.formats.vagusjson import JSON_FORMAT, JSON_VERSION, record_to_json
from vagus.store.base import InputRecord, SessionInfo, Store
from vagus.store.recorder import RunningSummary
from vagus.store.replay import (
    UnknownParticipant,
    check_participant,
    replay,
    session_participants,
)

__all__ = [
    "CSV_COLUMNS",
    "EDF_RATE_HZ",
    "EXPORT_FORMATS",
    "JSON_FORMAT",
    "SessionRun",
    "read_edf_annotations",
    "run_session",
    "write_csv",
    "write_edf",
    "write_json",
    "write_kubios_rr",
]

EXPORT_FORMATS: tuple[str, ...] = ("kubios", "csv", "json", "edf")
#: Sample rate (Hz) of the EDF+ tachogram signals (the usual HRV resampling rate).
EDF_RATE_HZ = 4
CSV_COLUMNS: tuple[str, ...] = (
    "type",
    "t_s",
    "time_utc",
    "rr_ms",
    "nn_ms",
    "artifact",
    "inserted",
    "hr_bpm",
    "rmssd_30s_ms",
    "rmssd_60s_ms",
    "sdnn_60s_ms",
    "pnn50_60s",
    "artifact_rate_60s",
    "mean_nn_60s_ms",
    "peak_hz",
    "coherence_ratio",
    "lf_ms2",
    "hf_ms2",
    "lf_hf",
    "duration_s",
    "reason",
    "text",
    "rate_bpm",
    "inhale_fraction",
    "contact",
)

Progress = Callable[[int, int], None]


@dataclass(slots=True)
class SessionRun:
    """One participant of a session replayed through the pipeline: the session's
    metadata, the participant, its input summary and events (and its input records,
    control records included, when asked for)."""

    info: SessionInfo
    participant: str = "me"
    events: list[Event] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    input: list[InputRecord] | None = None

    def beats(self) -> list[Beat]:
        """The beat events, in order."""
        return [e for e in self.events if isinstance(e, Beat)]

    def measured_rr(self) -> tuple[list[float], list[float]]:
        """``(t_s, rr_ms)`` of the measured beats (the corrector's inserted beats left out)."""
        ts: list[float] = []
        rr: list[float] = []
        for b in self.beats():
            if not b.inserted:
                ts.append(b.t_s)
                rr.append(b.rr_ms)
        return ts, rr


def run_session(
    store: Store,
    session_id: str,
    progress: Progress | None = None,
    *,
    keep_input: bool = False,
    participant: str | None = None,
) -> SessionRun:
    """Replay one participant of a session (:func:`vagus.store.replay.replay`) and keep
    every event of its pipeline.

    Args:
        store: the store.
        session_id: the session (a unique prefix is accepted).
        progress: called as ``progress(done, total)`` with input records done.
        keep_input: also keep the participant's input records and the session's control
            records (``run.input``: the JSON export, which re-imports as that participant
            alone).
        participant: whose beats; None: the session's only participant.

    Raises:
        UnknownParticipant: the session has no such participant, or ``participant`` is
            None and the session has several (the message lists them: export one at a
            time, as each file holds one heart).
    """
    info = store.get_session(session_id)
    names = session_participants(store, info)
    if participant is None:
        if len(names) > 1:
            listed = ", ".join(repr(p) for p in names)
            raise UnknownParticipant(
                f"session {info.id} has {len(names)} participants ({listed}); an export "
                "holds one participant's beats: choose one with --participant NAME",
                tuple(names),
            )
        participant = next(iter(names))
    check_participant(info, names, participant)
    total = store.input_count(info.id)
    summary = RunningSummary()
    run = SessionRun(info=info, participant=participant, input=[] if keep_input else None)
    for step in replay(store, info, participant=participant):
        if step.record is not None:
            if run.input is not None:
                run.input.append(step.record)
            summary.add_record(step.record, malformed=step.malformed)
        events = step.pipeline_events(participant)
        summary.add_events(events)
        run.events.extend(events)
        if progress is not None and step.index >= 0:
            progress(step.index + 1, total)
    run.summary = summary.as_dict()
    return run


# ------------------------------------------------------------------ kubios


def write_kubios_rr(run: SessionRun, out: TextIO) -> int:
    """Write the measured RR with beat times as Kubios RR text; returns the beats written."""
    ts, rr = run.measured_rr()
    write_kubios(
        out,
        ts,
        rr,
        title=run.info.title,
        device=run.info.device_profile,
        session_id=run.info.id,
        started_unix_s=run.info.started_unix_s,
    )
    return len(rr)


# --------------------------------------------------------------------- csv


def _utc(run: SessionRun, t_s: float, origin: float) -> str:
    when = dt.datetime.fromtimestamp(run.info.started_unix_s + t_s - origin, dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return value


def _csv_row(run: SessionRun, event: Event, origin: float) -> dict[str, Any]:
    row: dict[str, Any] = {"type": event.type, "t_s": event.t_s}
    row["time_utc"] = _utc(run, event.t_s, origin)
    if isinstance(event, Beat):
        row.update(
            rr_ms=event.rr_ms, nn_ms=event.nn_ms, artifact=event.artifact, inserted=event.inserted
        )
    elif isinstance(event, Metrics):
        row.update({k: getattr(event, k) for k in CSV_COLUMNS if hasattr(event, k)})
        row["type"] = "metrics"
    elif isinstance(event, Spectrum):
        row.update(
            peak_hz=event.peak_hz,
            coherence_ratio=event.coherence_ratio,
            lf_ms2=event.lf_ms2,
            hf_ms2=event.hf_ms2,
            lf_hf=event.lf_hf,
        )
    elif isinstance(event, Gap):
        row.update(duration_s=event.duration_s, reason=event.reason)
    elif isinstance(event, Marker):
        row.update(text=event.text)
    elif isinstance(event, PacerChange):
        row.update(rate_bpm=event.rate_bpm, inhale_fraction=event.inhale_fraction)
    elif isinstance(event, Contact):
        row.update(contact=event.contact)
    return row


def write_csv(run: SessionRun, out: TextIO) -> int:
    """Write the events as one CSV table (see the module doc); returns the rows written."""
    writer = csv.DictWriter(out, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    rows = 0
    origin = edf_origin(run)
    pending: dict[str, Any] | None = None  # the last beat row, waiting for its metrics
    for event in run.events:
        if isinstance(event, Metrics) and pending is not None and pending["t_s"] == event.t_s:
            pending.update({k: v for k, v in _csv_row(run, event, origin).items() if k != "type"})
            continue
        if pending is not None:
            writer.writerow({k: _cell(v) for k, v in pending.items()})
            rows += 1
            pending = None
        row = _csv_row(run, event, origin)
        if isinstance(event, Beat):
            pending = row
            continue
        writer.writerow({k: _cell(v) for k, v in row.items()})
        rows += 1
    if pending is not None:
        writer.writerow({k: _cell(v) for k, v in pending.items()})
        rows += 1
    return rows


# -------------------------------------------------------------------- json


def session_document(run: SessionRun) -> dict[str, Any]:
    """The JSON export as a dict (see the module doc); ``input`` needs ``keep_input``."""
    info = run.info
    doc: dict[str, Any] = {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "protocol_version": PROTOCOL_VERSION,
        "exported_by": f"vagus {__version__}",
        "session": {
            "id": info.id,
            "started_unix_s": info.started_unix_s,
            "ended_unix_s": info.ended_unix_s,
            # The file holds one participant: it re-imports as that participant alone.
            **info.labels_json([run.participant]),
        },
        "summary": run.summary,
        "events": [e.to_json() for e in run.events],
    }
    if run.input is not None:
        doc["input"] = [record_to_json(r) for r in run.input]
    return doc


def write_json(run: SessionRun, out: TextIO) -> int:
    """Write the whole session as one JSON object; returns the events written."""
    json.dump(session_document(run), out, allow_nan=False, separators=(",", ":"))
    out.write("\n")
    return len(run.events)


# --------------------------------------------------------------------- edf


def _tachogram(t_s: Iterable[float], values: Iterable[float], t0: float, n: int) -> np.ndarray:
    """Values at beat times, linearly interpolated onto ``n`` samples from ``t0``."""
    t = np.asarray(list(t_s), dtype=float)
    v = np.asarray(list(values), dtype=float)
    grid = t0 + np.arange(n) / EDF_RATE_HZ
    if t.size == 0:
        return np.zeros(n)
    out: np.ndarray = np.interp(grid, t, v)
    return out


def _edf_annotations(run: SessionRun) -> list[tuple[float, float, str]]:
    out: list[tuple[float, float, str]] = []
    for e in run.events:
        if isinstance(e, Beat) and not e.inserted:
            text = f"RR={_decimal(e.rr_ms, 7)}" + (f" {e.artifact}" if e.artifact else "")
            out.append((e.t_s, -1.0, text))
        elif isinstance(e, Gap):
            dur = e.duration_s if e.duration_s is not None else -1.0
            out.append((e.t_s, dur, f"Gap: {e.reason}"))
        elif isinstance(e, Marker):
            out.append((e.t_s, -1.0, f"Marker: {e.text}"))
        elif isinstance(e, PacerChange):
            rate = "off" if e.rate_bpm is None else f"{e.rate_bpm:g}/min"
            out.append((e.t_s, -1.0, f"Pacer: {rate} inhale {e.inhale_fraction:g}"))
    return out


def edf_origin(run: SessionRun) -> float:
    """The beat time (s) at the session's start: 0 for sessions whose times start near 0
    (imports), else the first event's whole second (clocks of live captures).

    The wall-clock time of beat time ``t`` is ``started_unix_s + t - edf_origin(run)``.
    """
    times = [e.t_s for e in run.events]
    if not times:
        return 0.0
    lo = min(times)
    if lo >= 0.0 and max(times) < 7 * 86400.0:
        return 0.0
    return float(math.floor(lo))


#: The EDF+ file starts at a beat time that is a multiple of this many seconds: the
#: pipeline's spectrum interval (:class:`~vagus.core.pipeline.Pipeline`, 5 s of beat time,
#: itself on its 4 Hz grid). A re-import then has its beats at the same phase of that
#: grid, so its 64 s coherence windows cover the same beats and give the same values.
EDF_ALIGN_S = 5.0
#: EDF+ onsets and the sub-second start are stored to 100 µs ("+SSSS.ffff").
EDF_RESOLUTION_S = 1e-4


def edf_start(run: SessionRun) -> tuple[float, int, int]:
    """``(t0, whole_s, subsecond_100ns)``: the beat time ``t0`` at the EDF+ file's start
    (a multiple of :data:`EDF_ALIGN_S` at or before the first event), and the file's
    wall-clock start (Unix seconds, and the fraction in 100 ns units, a multiple of
    100 µs) that corresponds to it: ``started_unix_s + t0 - edf_origin(run)``."""
    origin = edf_origin(run)
    t0 = math.floor(origin / EDF_ALIGN_S) * EDF_ALIGN_S
    start_wall = run.info.started_unix_s + (t0 - origin)
    whole = math.floor(start_wall)
    ticks = round((start_wall - whole) / EDF_RESOLUTION_S)  # 100 µs units
    if ticks >= round(1.0 / EDF_RESOLUTION_S):
        whole, ticks = whole + 1, 0
    return t0, whole, ticks * 1000


def write_edf(run: SessionRun, path: Path | str) -> int:
    """Write the session as EDF+ (see the module doc); returns the annotations written.

    The file is written to a temporary next to ``path`` (:func:`vagus.files.atomic_path`),
    EDFlib's return codes are checked and the file's size is checked against its header
    before it is renamed into place: a full disk or a Ctrl-C leaves ``path`` as it was.

    Raises:
        WriteError: the file could not be written (names the path and the reason).
        InvalidInput: the session is too dense in annotations for EDF+.
    """
    from vagus.files import atomic_path

    with atomic_path(path) as tmp:
        n = _write_edf_file(run, tmp, path)
        problem = edf_size_problem(tmp)
        if problem is not None:
            raise WriteError(f"cannot write {path}: {problem} (disk full, or a file-size limit?)")
    return n


def _write_edf_file(run: SessionRun, tmp: Path, path: Path | str) -> int:
    import pyedflib
    from pyedflib._extensions._pyedflib import close_file, set_starttime_subsecond

    beats = [b for b in run.beats() if not b.inserted]
    nn = [b for b in run.beats() if b.nn_ms is not None]
    t0, whole_s, subsecond = edf_start(run)
    t_end = max((e.t_s for e in run.events), default=t0 + 1.0)
    records = max(1, math.ceil(t_end - t0 + 1e-9))
    n = records * EDF_RATE_HZ
    rr_sig = _tachogram((b.t_s for b in beats), (b.rr_ms for b in beats), t0, n)
    nn_sig = _tachogram((b.t_s for b in nn), (b.nn_ms or 0.0 for b in nn), t0, n)
    annotations = _edf_annotations(run)
    # EDFlib stores at most one annotation per annotation signal per data record.
    per_record = math.ceil((len(annotations) + 1) / records) + 1
    if per_record > 64:
        raise InvalidInput(
            f"too many annotations for EDF+ ({len(annotations)} in {records} s); "
            "export --format json or csv instead"
        )
    writer = pyedflib.EdfWriter(str(tmp), 2, file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        writer.set_number_of_annotation_signals(per_record)
        headers: list[dict[str, str | int | float | None]] = []
        for label, sig in (("RR", rr_sig), ("NN", nn_sig)):
            headers.append(
                {
                    "label": label,
                    "dimension": "ms",
                    "sample_frequency": EDF_RATE_HZ,
                    "physical_min": 0.0,
                    "physical_max": max(3000.0, float(np.ceil(sig.max(initial=0.0)))),
                    "digital_min": -32768,
                    "digital_max": 32767,
                    "transducer": "heart-rate strap (RR from 0x2A37)",
                    "prefilter": f"linear interpolation to {EDF_RATE_HZ} Hz",
                }
            )
        writer.setSignalHeaders(headers)
        start = dt.datetime.fromtimestamp(whole_s, dt.UTC).replace(tzinfo=None)
        writer.setStartdatetime(start)
        writer.setPatientCode(_edf_text(run.participant))
        equipment = _edf_text(f"vagus {__version__} {run.info.device_profile}", 24)
        writer.setEquipment(equipment)
        # EDF+ recording field: equipment + additional + 23 chars of fixed parts <= 80.
        additional = _edf_text(f"session {run.info.id} {run.info.title}", 57 - len(equipment))
        writer.setRecordingAdditional(additional)
        # The sub-second start (EDF+ "+0.ffff" in the first time-keeping annotation), in
        # 100 ns units. Set directly: pyedflib's setStartdatetime passes microseconds
        # x 100, which EDFlib rejects for any fraction of 0.1 s or more.
        if set_starttime_subsecond(writer.handle, subsecond) != 0:
            raise WriteError(f"cannot write {path}: EDFlib refused the sub-second start")
        writer.writeSamples([rr_sig, nn_sig])
        for onset, duration, text in annotations:
            if writer.writeAnnotation(onset - t0, duration, text) != 0:
                raise WriteError(f"cannot write {path}: EDFlib refused annotation {text!r}")
    except BaseException:
        writer.close()
        raise
    handle, writer.handle = writer.handle, -1
    if close_file(handle) != 0:
        raise WriteError(f"cannot write {path}: EDFlib could not finish the file")
    return len(annotations)


def edf_size_problem(path: Path | str) -> str | None:
    """None when the EDF file is as long as its header says (header bytes + records x
    record bytes, 2 bytes a sample), else what is wrong with it."""
    p = Path(path)
    size = p.stat().st_size
    with p.open("rb") as f:
        data = f.read(256 * 257)
    try:
        header_bytes = int(data[184:192].decode("ascii"))
        records = int(data[236:244].decode("ascii"))
        signals = int(data[252:256].decode("ascii"))
        at = 256 + signals * 216
        samples = [int(data[at + 8 * i : at + 8 * i + 8].decode("ascii")) for i in range(signals)]
    except (ValueError, UnicodeDecodeError):
        return f"the EDF header came out incomplete ({size} bytes written)"
    expected = header_bytes + records * 2 * sum(samples)
    if records < 1 or size != expected:
        return f"the EDF+ file came out incomplete ({size} of {expected} bytes written)"
    return None


def _decimal(value: float, places: int) -> str:
    """``value`` with at most ``places`` decimals, trailing zeros dropped (812.0, 811.5234375)."""
    text = f"{value:.{places}f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _edf_text(text: str, limit: int = 60) -> str:
    """EDF header fields are ASCII; spaces are allowed by EDF+ only as separators; at
    most ``limit`` characters (the header has 80 for several fields together)."""
    clean = "".join(c if 32 <= ord(c) < 127 else "_" for c in text)
    return "_".join(clean.split())[:limit]
