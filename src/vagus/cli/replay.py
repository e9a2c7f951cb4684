"""``vagus replay ID``: feed a recorded session through the same Pipeline, paced.

The recorded input (packets, gaps, control events, imported RR) is fed to new
pipelines, one per participant (:mod:`vagus.store.replay`, the one replay; markers and
pacer changes reach each), at ``--speed`` times real time against a target clock
(:mod:`vagus.sources.replay`), so the events are exactly those computed live.
``--participant P`` replays one participant (its events equal that participant
recorded alone); an unknown name is an error listing the session's participants.
``--from`` starts pacing (and printing) that far into the session (``MM:SS``,
``H:MM:SS`` or seconds: :func:`parse_offset`); the input before it is fed at once so
the windows are warm. With ``--json``, one event per line,
as ``vagus monitor --json``; otherwise a live one-line status, and a progress bar on
stderr at max speed. Ctrl-C (or SIGTERM) stops it with a summary and exit status 130
(143 after SIGTERM), as ``monitor`` and ``record``.

The status line counts packets for a recorded session and beats for an imported one
(RR intervals, no packets), and says "(reconnecting)" only after a recorded link loss,
until input comes again.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import signal
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from vagus.cli._common import ProgressBar, interrupted_status, note, parse_speed, status_line
from vagus.cli._data_dir import add_data_dir_argument
from vagus.cli._live import LiveStatus
from vagus.cli.sessions import format_duration, session_id_arg
from vagus.exceptions import InvalidInput
from vagus.session import SessionEvent
from vagus.sources.replay import Scheduled, paced
from vagus.store.base import ControlRecord, GapRecord, InputRecord, PacketRecord, RRRecord
from vagus.store.recorder import SessionSummaries
from vagus.store.replay import check_participant, replay_items, session_participants

__all__ = ["close_iterator", "parse_offset", "register", "replay_records", "run"]


#: ``[[H:]MM:]SS[.fff]``: whole hours and minutes, seconds with an optional fraction.
_OFFSET = re.compile(r"^(?:(?:(\d+):)?(\d+):)?(\d+(?:\.\d*)?|\.\d+)$", re.ASCII)
_OFFSET_FORMS = "give MM:SS (e.g. 05:30), H:MM:SS (1:05:30) or seconds (330)"


def parse_offset(text: str) -> float:
    """argparse type for ``--from``: a time into the session, to seconds.

    Accepted: ``MM:SS`` (``05:30``; the minutes may exceed 59: ``90:00``), ``H:MM:SS``
    (``1:05:30``) and plain seconds (``330``, ``12.5``). After a colon, minutes and
    seconds are 0-59 (``5:75`` is refused, not read as 6:15); the seconds may have a
    fraction. Negative, non-finite and malformed values are refused.

    Raises:
        argparse.ArgumentTypeError: anything else (a usage error, exit status 2).
    """
    m = _OFFSET.match(text.strip())
    if m is None:
        what = "a time cannot be negative" if text.strip().startswith("-") else "not a time"
        raise argparse.ArgumentTypeError(f"{text!r}: {what}; {_OFFSET_FORMS}")
    hours, minutes, secs = m.group(1), m.group(2), float(m.group(3))
    if minutes is not None and secs >= 60:
        raise argparse.ArgumentTypeError(
            f"{text!r}: the seconds after a colon must be below 60; {_OFFSET_FORMS}"
        )
    if hours is not None and int(minutes) >= 60:
        raise argparse.ArgumentTypeError(
            f"{text!r}: the minutes in H:MM:SS must be below 60; {_OFFSET_FORMS}"
        )
    offset_s = int(hours or 0) * 3600.0 + int(minutes or 0) * 60.0 + secs
    if not math.isfinite(offset_s):  # e.g. 400 digits: float() gives inf
        raise argparse.ArgumentTypeError(f"{text[:20]!r}…: not a time; {_OFFSET_FORMS}")
    return offset_s


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``replay`` to the CLI."""
    p = subparsers.add_parser(
        "replay",
        help="replay a session through the pipeline",
        description=(
            "Feed a recorded session through the same pipeline as live, paced against "
            "a target clock; the events equal those computed live."
        ),
    )
    p.add_argument("id", metavar="ID", type=session_id_arg, help="session id (or a unique prefix)")
    p.add_argument(
        "--speed",
        type=parse_speed,
        default=1.0,
        metavar="1|4|max",
        help="times real time (default 1); max: as fast as possible",
    )
    p.add_argument(
        "--from",
        dest="from_s",
        type=parse_offset,
        default=0.0,
        metavar="TIME",
        help=(
            "start this far into the session: MM:SS, H:MM:SS or seconds, e.g. 05:30, "
            "1:05:30 or 330 (seconds and minutes after a colon are 0-59); the input "
            "before it is fed at once to warm the pipeline up"
        ),
    )
    p.add_argument(
        "--participant",
        default=None,
        metavar="P",
        help=(
            "replay only this participant (default: every participant of the session, "
            "each through its own pipeline); a name the session does not have is an "
            "error listing those it has"
        ),
    )
    p.add_argument("--json", action="store_true", help="print the events, one JSON object per line")
    add_data_dir_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Replay one session."""
    from vagus.cli.sessions import note_read_only, require_store

    store = require_store(args.data_dir)
    note_read_only(store, "replay")
    records: Iterable[InputRecord] = ()
    try:
        info = store.get_session(args.id)
        names = session_participants(store, info)
        if args.participant is not None:
            names = {args.participant: names[check_participant(info, names, args.participant)]}
        total = store.input_count(info.id)
        if total == 0:
            raise InvalidInput(f"session {info.id} has no recorded input to replay")
        records = store.iter_input(info.id, participants=set(names.values()))
        return replay_records(
            records,
            session_id=info.id,
            total=total,
            speed=args.speed,
            from_s=args.from_s,
            json_out=args.json,
            out=sys.stdout,
            names=names,
        )
    except BrokenPipeError:
        # The reader of --json went away (`| head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
    finally:
        # The reader holds a cursor of the store: close it first (else it is closed
        # when collected, on a closed database: "Exception ignored ... ProgrammingError").
        close_iterator(records)
        store.close()


def close_iterator(items: Iterable[object]) -> None:
    """Close ``items`` now if it is a generator (or anything with ``close()``)."""
    close = getattr(items, "close", None)
    if close is not None:
        close()


def replay_records(
    records: Iterable[InputRecord],
    *,
    session_id: str,
    total: int,
    speed: float | None,
    from_s: float,
    json_out: bool,
    out: TextIO,
    names: Mapping[str, str] | None = None,
) -> int:
    """Replay ``records`` (:func:`vagus.store.replay.replay_items`: one pipeline per
    participant), paced; print events or a status.

    ``names``: the participants to replay, label -> the name their records carry (None:
    every name found in the records). The JSON lines are the session's events as live
    (:meth:`vagus.session.SessionEvent.to_json`: each carries ``"participant"``, null for
    the session-wide marker, pacer and pacer_state).
    """
    if names is None:
        records = list(records)
        found = dict.fromkeys(r.participant for r in records if not isinstance(r, ControlRecord))
        names = {n: n for n in found} or {"me": "me"}
    summary = SessionSummaries(list(names))
    status = LiveStatus(speed=speed)
    progress = ProgressBar(f"replay {session_id}", total=total) if speed is None else None
    show_status = speed is not None and (not json_out or sys.stderr.isatty())
    next_status = time.monotonic()
    t_wall0 = time.perf_counter()
    shown = False

    def tail() -> str:
        return f"REPLAY {session_id}"

    def emit(events: list[SessionEvent], hidden: bool) -> None:
        status.add_events([ev for _who, ev in events])
        if json_out and not hidden and events:
            out.write("".join(json.dumps(ev.to_json()) + "\n" for ev in events))
            if speed is not None:
                out.flush()

    stopped_by: list[int] = []

    def on_sigterm(signum: int, _frame: object) -> None:
        stopped_by.append(signum)
        raise KeyboardInterrupt  # ends the loop below as Ctrl-C does

    previous = None
    with contextlib.suppress(ValueError):  # only the main thread may set a handler
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    interrupted = False
    items = paced(records, speed=speed, from_s=from_s)
    steps = replay_items(items, names, _record_of)
    try:
        for step in steps:
            summary.add_step(step)
            rec, item = step.record, step.item
            if rec is None or item is None:  # end of input: after the loop
                emit(step.events, not shown)
                continue
            if isinstance(rec, PacketRecord):
                status.connected = True
                if not step.malformed:
                    status.packets += 1
                else:
                    status.malformed += 1
            elif isinstance(rec, GapRecord):
                status.connected = False
                status.gaps += 1
            elif isinstance(rec, RRRecord):
                status.connected = True
                if status.packets == 0:  # imported RR: beats, not packets
                    status.input_kind = "beats"
            status.at(item.t_s)
            emit(step.events, item.catch_up)
            shown = shown or not item.catch_up
            if progress is not None:
                progress.update(item.source_index + 1)
            elif show_status and not item.catch_up and time.monotonic() >= next_status:
                next_status = time.monotonic() + 1.0
                status_line(status.with_tail(tail()))
            # Done with the step: the loop variable would keep its events alive through
            # the next record's replay (more work for the garbage collector; as bench replay).
            del step
    except KeyboardInterrupt:
        interrupted = True
        if not stopped_by:
            stopped_by.append(signal.SIGINT)
    finally:
        close_iterator(steps)
        close_iterator(items)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    whole = summary.as_dict()
    if interrupted:
        if progress is not None:
            progress.finish()
        elif show_status and sys.stderr.isatty():
            sys.stderr.write("\n")
        why = "SIGTERM" if stopped_by[0] == signal.SIGTERM else "Ctrl-C"
        note(
            f"vagus replay: stopped ({why}) at {format_duration(status.elapsed_s)} of "
            f"session {session_id}: {_figures(whole)} replayed in "
            f"{time.perf_counter() - t_wall0:.2f} s"
        )
        return interrupted_status(stopped_by[0])
    elapsed = time.perf_counter() - t_wall0
    if progress is not None:
        progress.finish()
    elif show_status:
        status_line(status.with_tail(tail()))
        if sys.stderr.isatty():
            sys.stderr.write("\n")
    if not shown and from_s > 0:
        longest = max(s.get("duration_s", 0.0) for s in whole["by_participant"].values())
        print(
            f"vagus replay: error: --from {format_duration(from_s)} is past the end of "
            f"session {session_id} ({format_duration(longest)} long); nothing replayed",
            file=sys.stderr,
        )
        return 1
    print(
        f"vagus replay: session {session_id}: {_figures(whole)} replayed in {elapsed:.2f} s",
        file=sys.stderr,
    )
    return 0


def _record_of(item: Scheduled) -> InputRecord:
    return item.record


def _figures(summary: dict[str, Any]) -> str:
    """ "5:00, 300 beats, 0 gaps" (one participant) or "ann: ...; bob: ..." (several)."""
    per: dict[str, dict[str, Any]] = summary["by_participant"]

    def one(s: dict[str, Any]) -> str:
        return f"{format_duration(s['duration_s'])}, {s['beats']} beats, {s['gaps']} gaps"

    if len(per) == 1:
        return one(next(iter(per.values())))
    return "; ".join(f"{who}: {one(s)}" for who, s in per.items())
