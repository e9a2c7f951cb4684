"""``vagus sessions``, ``vagus show ID`` and ``vagus delete ID``: the sessions in the store.

The figures shown (mean HR, RMSSD, mean coherence, beats, duration) are the session's
cached summary (:func:`vagus.store.recorder.session_summary`), recomputed by replaying
the raw record when missing or stale. A session being recorded right now is listed as
*recording* (``vagus delete`` refuses it until the recording stops); one that never
ended (the recorder was killed or the machine lost power) as *interrupted*; its record
is readable.

A store that cannot be written (a read-only directory or mount) is read all the same,
with a note; summaries computed for it are then not cached.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from vagus.exceptions import InvalidInput, StoreError, VagusError
from vagus.store.base import ControlRecord, GapRecord, PacketRecord, RRRecord, SessionInfo, Store
from vagus.store.location import add_data_dir_argument, data_dir
from vagus.store.open import open_store, store_exists, store_location
from vagus.store.recorder import session_summary

__all__ = [
    "format_duration",
    "note_read_only",
    "open_existing",
    "register",
    "require_store",
    "say_where",
    "session_json",
]


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
    p.add_argument("id", metavar="ID", help="session id (or a unique prefix)")
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
    p.add_argument("id", metavar="ID", help="session id (or a unique prefix)")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    add_data_dir_argument(p)
    p.set_defaults(func=run_delete)


def format_duration(seconds: float | None) -> str:
    """``MM:SS`` or ``H:MM:SS`` (``--`` for unknown)."""
    if seconds is None:
        return "--"
    s = max(0, round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


def _iso(unix_s: float | None) -> str | None:
    if unix_s is None:
        return None
    return dt.datetime.fromtimestamp(unix_s).astimezone().isoformat(timespec="seconds")


def _local(unix_s: float) -> str:
    return dt.datetime.fromtimestamp(unix_s).astimezone().strftime("%Y-%m-%d %H:%M")


def _num(value: Any, spec: str) -> str:
    return "--" if value is None else format(value, spec)


def session_json(info: SessionInfo, summary: dict[str, Any]) -> dict[str, Any]:
    """The JSON form of a session in ``vagus sessions --json`` / ``vagus show --json``."""
    return {
        "id": info.id,
        "started": _iso(info.started_unix_s),
        "ended": _iso(info.ended_unix_s),
        "started_unix_s": info.started_unix_s,
        "ended_unix_s": info.ended_unix_s,
        "status": info.status,
        "duration_s": summary.get("duration_s"),
        "beats": summary.get("beats"),
        "title": info.title,
        "participants": list(info.participants),
        "device_profile": info.device_profile,
        "source": info.source,
        "tags": list(info.tags),
        "notes": info.notes,
        "mean_hr_bpm": summary.get("mean_hr_bpm"),
        "rmssd_ms": summary.get("rmssd_ms"),
        "sdnn_ms": summary.get("sdnn_ms"),
        "mean_coherence": summary.get("mean_coherence"),
        "artifact_pct": summary.get("artifact_pct"),
        "gaps": summary.get("gaps"),
        "summary": summary,
    }


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
        rows = [(info, _summary_or_error(store, info)) for info in store.list_sessions()]
    finally:
        store.close()
    if args.json:
        print(json.dumps([session_json(i, s) for i, s in rows]))
        return 0
    if not rows:
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
    for info, s in rows:
        title = info.title + ("" if info.status == "ended" else f" ({info.status})")
        table.append(
            (
                info.id,
                _local(info.started_unix_s),
                format_duration(s.get("duration_s")),
                ", ".join(info.participants),
                str(s.get("beats", "--")),
                _num(s.get("mean_hr_bpm"), ".0f"),
                _num(s.get("rmssd_ms"), ".1f"),
                _num(s.get("mean_coherence"), ".2f"),
                info.source,
                title.strip(),
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
    print("(mean HR in bpm, RMSSD in ms over the whole session)", file=sys.stderr)
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
        summary = session_summary(store, info, cache=not info.recording)
        counts, controls, t_first = _record_counts(store, info.id)
    finally:
        store.close()
    obj = session_json(info, summary)
    obj["records"] = counts
    obj["control_events"] = controls
    if args.json:
        print(json.dumps(obj))
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
        f"beats        {s.get('beats')} ({_num(s.get('artifact_pct'), '.1f')}% artifacts)",
        f"gaps         {s.get('gaps')} ({_num(s.get('gap_s'), '.1f')} s)",
        f"mean HR      {_num(s.get('mean_hr_bpm'), '.1f')} bpm",
        f"RMSSD        {_num(s.get('rmssd_ms'), '.1f')} ms",
        f"SDNN         {_num(s.get('sdnn_ms'), '.1f')} ms",
        f"coherence    {_num(s.get('mean_coherence'), '.2f')} mean, "
        f"{_num(s.get('high_coherence_pct'), '.0f')}% of spectra high",
    ]
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
        info = store.get_session(args.id)
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
