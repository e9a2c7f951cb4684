"""``vagus sessions``, ``vagus show ID`` and ``vagus delete ID``: the sessions in the store.

The figures shown (mean HR, RMSSD, mean coherence, beats, duration) are the session's
cached summary (:func:`vagus.store.recorder.session_summary`), recomputed by replaying
the raw record when missing or stale, one per participant: ``sessions`` lists a line
per participant, ``show`` a block per participant, and their ``--json`` forms carry
``by_participant`` (the top-level figures are the first participant's). A session
being recorded right now is listed as *recording* (``vagus delete`` refuses it until
the recording stops); one that never ended (the recorder was killed or the machine lost
power) as *interrupted*; its record is readable.

A store that cannot be written (a read-only directory or mount) is read all the same,
with a note; summaries computed for it are then not cached.

Values out of any real range stored before the readers checked them (a start in the
year 55464, a beat time of 1e18 s) are shown as such ("date out of range"), never a
traceback. A session row edited by hand into something that is not a session
(:class:`~vagus.store.base.MalformedSession`) is listed by ``sessions`` with the reason
and refused by ``show`` with an error naming the session and the column; ``delete``
removes it. Session ids on the command line are checked first
(:func:`~vagus.store.base.check_session_id`): a usage error, before any query.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from vagus.cli._data_dir import add_data_dir_argument
from vagus.exceptions import InvalidInput, StoreError, VagusError
from vagus.store.base import (
    ControlRecord,
    GapRecord,
    MalformedSession,
    PacketRecord,
    RRRecord,
    SessionInfo,
    Store,
    check_session_id,
    unix_datetime,
)
from vagus.store.location import data_dir
from vagus.store.open import open_store, store_exists, store_location
from vagus.store.recorder import session_summary

__all__ = [
    "format_duration",
    "json_safe",
    "local_time",
    "note_read_only",
    "open_existing",
    "refuse_malformed",
    "register",
    "require_store",
    "say_where",
    "session_id_arg",
    "session_json",
]

#: How an out-of-range date (:func:`~vagus.store.base.unix_datetime` None) is shown.
OUT_OF_RANGE = "date out of range"


def session_id_arg(text: str) -> str:
    """argparse type for a session id (or a unique prefix): the rule of
    :func:`~vagus.store.base.check_session_id`, as a usage error (exit 2)."""
    try:
        return check_session_id(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``sessions``, ``show`` and ``delete`` to the CLI."""
    p = subparsers.add_parser(
        "sessions",
        help="list recorded sessions",
        description="List the sessions in the store, oldest first.",
    )
    p.add_argument(
        "--json", action="store_true", help="print a JSON list of objects (one per session)"
    )
    add_data_dir_argument(p)
    p.set_defaults(func=run_sessions)

    p = subparsers.add_parser(
        "show", help="show one session", description="Show one session's details and summary."
    )
    p.add_argument("id", metavar="ID", type=session_id_arg, help="session id (or a unique prefix)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_data_dir_argument(p)
    p.set_defaults(func=run_show)

    p = subparsers.add_parser(
        "delete",
        help="delete a session",
        description=(
            "Delete a session and its raw record. Asks first unless --yes. A session "
            "being recorded is never deleted: stop the recording first."
        ),
    )
    p.add_argument("id", metavar="ID", type=session_id_arg, help="session id (or a unique prefix)")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    add_data_dir_argument(p)
    p.set_defaults(func=run_delete)


#: Durations longer than this (s; about 30 years) are shown as out of range.
_MAX_DURATION_S = 1e9


def format_duration(seconds: float | None) -> str:
    """``MM:SS`` or ``H:MM:SS`` (``--`` for unknown or not a number; ``out of range``
    beyond about 30 years, which no recording lasts)."""
    if not _is_number(seconds):
        return "--"
    assert seconds is not None
    if abs(seconds) > _MAX_DURATION_S:
        return "out of range"
    s = max(0, round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


def _is_number(value: Any) -> bool:
    """A finite int or float (not a bool): what a figure may be shown from."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _iso(unix_s: float | None) -> str | None:
    """Local ISO 8601 time; None when unknown or no real date."""
    when = unix_datetime(unix_s)
    return None if when is None else when.isoformat(timespec="seconds")


def local_time(unix_s: float) -> str:
    """``YYYY-MM-DD HH:MM`` in this machine's zone, or ``date out of range (…)`` for a
    value no calendar holds (e.g. a start read from microsecond stamps)."""
    when = unix_datetime(unix_s)
    if when is None:
        return f"{OUT_OF_RANGE} ({unix_s:.4g} s)" if isinstance(unix_s, float) else OUT_OF_RANGE
    return when.strftime("%Y-%m-%d %H:%M")


_local = local_time


def _num(value: Any, spec: str) -> str:
    return format(value, spec) if _is_number(value) else "--"


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, ±inf) replaced by None, so that
    ``json.dumps(..., allow_nan=False)`` writes standard JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


#: The figures of a participant in ``by_participant`` (``sessions --json``, ``show --json``).
_PARTICIPANT_FIELDS = (
    "duration_s",
    "beats",
    "mean_hr_bpm",
    "rmssd_ms",
    "sdnn_ms",
    "mean_coherence",
    "high_coherence_pct",
    "artifact_pct",
    "gaps",
    "gap_s",
    "packets",
    "malformed_packets",
)


def participant_rows(
    info: SessionInfo, summary: dict[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    """(participant, its figures) for each participant of the session, in its order
    (the summary's ``by_participant``); one row with the whole summary when the summary
    has no per-participant figures (an error, or a summary being computed)."""
    per = summary.get("by_participant")
    if isinstance(per, dict) and per:
        return [(p, v if isinstance(v, dict) else {}) for p, v in per.items()]
    return [(", ".join(info.participants), summary)]


def session_json(info: SessionInfo, summary: dict[str, Any]) -> dict[str, Any]:
    """The JSON form of a session in ``vagus sessions --json`` / ``vagus show --json``
    (``started``/``ended`` null where the stored time is no real date; non-finite
    numbers null: :func:`json_safe`).

    ``by_participant`` holds each participant's own figures (never pooled); the
    top-level figures are the first participant's (the default one)."""
    per = summary.get("by_participant")
    by_participant = (
        {
            p: {k: v.get(k) for k in _PARTICIPANT_FIELDS}
            for p, v in per.items()
            if isinstance(v, dict)
        }
        if isinstance(per, dict)
        else {}
    )
    obj: dict[str, Any] = json_safe(
        {
            "id": info.id,
            "started": _iso(info.started_unix_s),
            "ended": _iso(info.ended_unix_s),
            "started_unix_s": info.started_unix_s,
            "ended_unix_s": info.ended_unix_s,
            "status": info.status,
            "duration_s": summary.get("duration_s"),
            "beats": summary.get("beats"),
            **info.labels_json(),
            "mean_hr_bpm": summary.get("mean_hr_bpm"),
            "rmssd_ms": summary.get("rmssd_ms"),
            "sdnn_ms": summary.get("sdnn_ms"),
            "mean_coherence": summary.get("mean_coherence"),
            "artifact_pct": summary.get("artifact_pct"),
            "gaps": summary.get("gaps"),
            "content_sha256": info.content_sha256,
            "by_participant": by_participant,
            "summary": summary,
        }
    )
    return obj


def say_where(directory: Path | None) -> None:
    """Tell (on stderr, never in the ``--json`` output) where the store lives."""
    sys.stdout.flush()  # keep it after what was printed before, when both go to one file
    print(f"store: {store_location(directory)}", file=sys.stderr)


def note_read_only(store: Store | None, command: str) -> None:
    """Say on stderr (before any output) that ``store`` is open read-only, and why."""
    if store is not None and store.read_only:
        sys.stdout.flush()
        print(
            f"vagus {command}: note: {store.read_only_reason}; reading only, nothing is "
            "changed (summaries are computed but not cached)",
            file=sys.stderr,
        )


def open_existing(directory: Path | None, *, write: bool = False) -> Store | None:
    """The store, or None when there is none yet (no sessions).

    ``write``: open it for writing (``delete``); else for writing where possible and
    read-only where not (a read-only directory or mount: :func:`note_read_only`).

    Raises:
        StoreError: the data directory is unusable (a file, no permission...), or
            ``write`` and the store cannot be written.
    """
    if not store_exists(directory):
        return None
    return open_store(directory, create=False, read_only=False if write else None)


def require_store(directory: Path | None, *, write: bool = False) -> Store:
    """:func:`open_existing`, with no store yet a SessionNotFound saying how to make one."""
    from vagus.exceptions import SessionNotFound

    store = open_existing(directory, write=write)
    if store is None:
        raise SessionNotFound(
            f"no sessions in {data_dir(directory)} yet; `vagus record` or `vagus import` "
            "creates them (or point --data-dir / VAGUS_DATA_DIR at your store)"
        )
    return store


def refuse_malformed(store: Store, command: str) -> None:
    """Raise StoreError if the store fails the integrity check
    (:meth:`~vagus.store.base.Store.malformed_sessions`): ``import`` and ``edit`` never
    write into a store that ``sessions`` and ``show`` call malformed."""
    problems = store.malformed_sessions()
    if not problems:
        return
    ids = ", ".join(dict.fromkeys(p.session_id for p in problems))
    done = "imported" if command == "import" else "changed"
    raise StoreError(
        f"nothing {done}: the session store {store.location} holds malformed session(s) "
        f"({ids}), and vagus writes only into a sound store. {problems[0]}"
    )


def _summary_or_error(store: Store, info: SessionInfo) -> dict[str, Any]:
    """The summary; a session whose record cannot be replayed is listed with the reason.

    A session being recorded changes every second: its summary is computed, not cached
    (writing it would wait for the recorder's lock and be stale at once)."""
    try:
        return session_summary(store, info, cache=not info.recording)
    except VagusError as exc:
        return {"error": str(exc)}


def run_sessions(args: argparse.Namespace) -> int:
    """List the sessions."""
    store = open_existing(args.data_dir)
    say_where(args.data_dir)
    note_read_only(store, "sessions")
    if store is None:
        if args.json:
            print("[]")
        else:
            print(f"no sessions yet in {data_dir(args.data_dir)}", file=sys.stderr)
        return 0
    try:
        rows = [
            (info, _summary_or_error(store, info))
            for info in store.list_sessions(skip_malformed=True)
        ]
        malformed = store.malformed_sessions()
    finally:
        store.close()
    for problem in malformed:
        print(f"vagus sessions: {problem}", file=sys.stderr)
    for info, summary in rows:
        if "error" in summary:
            print(f"vagus sessions: note: session {info.id}: {summary['error']}", file=sys.stderr)
    if args.json:
        listed = [session_json(i, s) for i, s in rows]
        listed += [
            {"id": p.session_id, "status": "malformed", "column": p.column, "error": str(p)}
            for p in malformed
            if p.column != "records"  # a listed session with a bad record: its summary says
        ]
        print(json.dumps(listed, allow_nan=False))
        return 0
    if not rows and not malformed:
        print(f"no sessions yet in {data_dir(args.data_dir)}", file=sys.stderr)
        return 0
    table = [
        (
            "ID",
            "DATE",
            "DURATION",
            "PARTICIPANT",
            "BEATS",
            "MEAN HR",
            "RMSSD",
            "COHERENCE",
            "SOURCE",
            "TITLE",
        )
    ]
    for info, summary in rows:
        title = info.title + ("" if info.status == "ended" else f" ({info.status})")
        if "error" in summary:
            title += " (no summary: see the note)"
        # One line per participant: a session's participants are never pooled.
        for who, s in participant_rows(info, summary):
            table.append(
                (
                    info.id,
                    _local(info.started_unix_s),
                    format_duration(s.get("duration_s")),
                    who,
                    str(s.get("beats", "--")),
                    _num(s.get("mean_hr_bpm"), ".0f"),
                    _num(s.get("rmssd_ms"), ".1f"),
                    _num(s.get("mean_coherence"), ".2f"),
                    info.source,
                    title.strip(),
                )
            )
    for p in malformed:
        if p.column != "records":
            table.append(
                (
                    p.session_id,
                    "?",
                    "--",
                    "?",
                    "--",
                    "--",
                    "--",
                    "--",
                    "?",
                    f"(malformed: column {p.column}; see the note)",
                )
            )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    right = {4, 5, 6, 7}
    for row in table:
        cells = [
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=False))
        ]
        print("  ".join([*cells, row[-1]]).rstrip())
    print(
        "(mean HR in bpm, RMSSD in ms over the whole session; one line per participant)",
        file=sys.stderr,
    )
    return 0


def _record_counts(
    store: Store, session_id: str
) -> tuple[dict[str, int], list[dict[str, Any]], float]:
    """Records per kind, the control events, and the first record's time (s)."""
    counts = {"packets": 0, "gaps": 0, "control_events": 0, "rr_chunks": 0, "rr_beats": 0}
    controls: list[dict[str, Any]] = []
    t_first: float | None = None
    for rec in store.iter_input(session_id):
        t: float | None = None
        if isinstance(rec, PacketRecord):
            counts["packets"] += 1
            t = rec.t_arrival_s
        elif isinstance(rec, GapRecord):
            counts["gaps"] += 1
            t = rec.t_s
        elif isinstance(rec, ControlRecord):
            counts["control_events"] += 1
            controls.append(rec.event.to_json())
            t = rec.event.t_s
        elif isinstance(rec, RRRecord):
            counts["rr_chunks"] += 1
            counts["rr_beats"] += len(rec.rr_ms)
            t = rec.t_s[0] - rec.rr_ms[0] / 1000.0 if rec.t_s else 0.0
        if t_first is None:
            t_first = t
    return counts, controls, t_first or 0.0


def run_show(args: argparse.Namespace) -> int:
    """Show one session."""
    store = require_store(args.data_dir)
    say_where(args.data_dir)
    note_read_only(store, "show")
    try:
        info = store.get_session(args.id)
        summary = _summary_or_error(store, info)
        counts, controls, t_first = _record_counts(store, info.id)
    finally:
        store.close()
    obj = session_json(info, summary)
    obj["records"] = counts
    obj["control_events"] = json_safe(controls)
    if args.json:
        print(json.dumps(obj, allow_nan=False))
        return 0
    s = summary
    lines = [
        f"session      {info.id}",
        f"title        {info.title or '--'}",
        f"started      {_local(info.started_unix_s)}",
        "ended        "
        + (
            _local(info.ended_unix_s)
            if info.ended_unix_s is not None
            else "not yet: recording now"
            if info.recording
            else "interrupted"
        ),
        f"duration     {format_duration(s.get('duration_s'))}",
        f"participants {', '.join(info.participants)}",
        f"device       {info.device_profile}",
        f"source       {info.source}",
        f"tags         {', '.join(info.tags) or '--'}",
        f"notes        {info.notes or '--'}",
        "input        "
        + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if v)
        + ("" if any(counts.values()) else "none"),
    ]
    people = participant_rows(info, summary)
    for who, p in people:
        # Each participant's own figures (never pooled), indented under its name
        # when the session has several.
        pad = ""
        if len(people) > 1:
            lines.append(f"participant  {who}")
            pad = "  "
        lines += [
            f"{pad}beats        {p.get('beats')} ({_num(p.get('artifact_pct'), '.1f')}% artifacts)",
            f"{pad}gaps         {p.get('gaps')} ({_num(p.get('gap_s'), '.1f')} s)",
            f"{pad}mean HR      {_num(p.get('mean_hr_bpm'), '.1f')} bpm",
            f"{pad}RMSSD        {_num(p.get('rmssd_ms'), '.1f')} ms",
            f"{pad}SDNN         {_num(p.get('sdnn_ms'), '.1f')} ms",
            f"{pad}coherence    {_num(p.get('mean_coherence'), '.2f')} mean, "
            f"{_num(p.get('high_coherence_pct'), '.0f')}% of spectra high",
        ]
    if "error" in s:
        lines.append(f"summary      cannot be computed: {s['error']}")
    for c in controls:
        at = format_duration(c["t_s"] - t_first)
        if c["type"] == "marker":
            lines.append(f"marker       {at}  {c['text']}")
        else:
            rate = c.get("rate_bpm")
            lines.append(
                f"pacer        {at}  " + ("off" if rate is None else f"{rate:.1f} breaths/min")
            )
    print("\n".join(lines))
    return 0


def run_delete(args: argparse.Namespace) -> int:
    """Delete one session, after confirmation (or --yes); never one being recorded."""
    store = require_store(args.data_dir, write=True)
    try:
        try:
            info = store.get_session(args.id)
        except MalformedSession as exc:
            # Its row cannot be read as a session: deleting it is the way out.
            return _delete_malformed(store, exc, yes=args.yes)
        if info.recording:
            # Checked again by the store, in the delete's own transaction.
            raise StoreError(
                f"session {info.id} is being recorded right now; stop the recording first "
                "(Ctrl-C where `vagus record` runs), then delete it"
            )
        if not args.yes:
            if not sys.stdin.isatty():
                raise InvalidInput(
                    f"not deleting session {info.id} without confirmation; "
                    "run in a terminal or add --yes"
                )
            title = f", {info.title}" if info.title else ""
            what = f"{info.id} ({_local(info.started_unix_s)}{title})"
            answer = input(f"Delete session {what} and its raw record? [y/N] ")
            if answer.strip().lower() not in {"y", "yes"}:
                print("not deleted", file=sys.stderr)
                return 1
        store.delete_session(info.id)
    finally:
        store.close()
    print(f"deleted session {info.id}", file=sys.stderr)
    return 0


def _delete_malformed(store: Store, problem: MalformedSession, *, yes: bool) -> int:
    """Delete a session whose row cannot be read (after confirmation, or ``yes``)."""
    sid = problem.session_id
    if not yes:
        if not sys.stdin.isatty():
            raise InvalidInput(
                f"not deleting session {sid} without confirmation; run in a terminal or add --yes"
            )
        print(f"session {sid} is malformed: {problem}", file=sys.stderr)
        answer = input(f"Delete session {sid} and its raw record? [y/N] ")
        if answer.strip().lower() not in {"y", "yes"}:
            print("not deleted", file=sys.stderr)
            return 1
    store.delete_session(sid)
    print(f"deleted session {sid}", file=sys.stderr)
    return 0
