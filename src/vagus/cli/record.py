"""``vagus record``: headless capture of a session to the store, with a live one-line status.

Every packet and link gap is written to the store as it arrives (the input, not the
output: DESIGN.md), committed at least every second, while the same :class:`Pipeline`
as ``vagus monitor`` runs live for the status line. The session ends cleanly on Ctrl-C
(or SIGTERM) or after ``--duration``, with its summary cached; it then exits with
status 0, or 130 after Ctrl-C (143 after SIGTERM), as ``monitor`` and ``replay`` do.

Control events are part of the record (DESIGN.md): a ``start`` marker at the first
input, a ``stop: <reason>`` marker at the end (Ctrl-C, SIGTERM, duration reached, strap
lost), and, when stdin is a terminal (or with ``--markers-from-stdin``), one event per
line typed: ``pacer N`` is a pacer change to N breaths/min (``pacer off`` ends it; the
simulated subject follows it), any other text a marker with that text, at the current
beat time. They go through the live pipeline like the strap's input, so a replay gives
them back in the same place.

If the store cannot be opened or written (read-only directory, full disk...), the live
session keeps running in memory and ``vagus record`` says plainly, on stderr and in the
status line, that it is NOT recording; it then exits with status 1. The same if another
process deletes the session meanwhile (``vagus delete`` refuses a session being
recorded, but a raw ``sqlite3`` does not): recording stops, and nothing of it is kept.

While it records, the session lists as *recording* (its heartbeat is refreshed at every
commit, at least every second); once it ends, as ended.

Times: the session starts when the recording starts (wall clock). A strap's session ends
on the wall clock; a simulated one (``--sim``) at the start plus the simulated seconds it
ran, so at ``--speed 4`` or ``max`` its start and end are as far apart as its duration.
``--duration`` counts from the first input received, for the strap and ``--sim`` alike
(with several participants, from each one's first input): the settling time after
connecting (packets discarded) does not count.

Several participants in one session: ``--participant NAME=SOURCE``, repeated
(:mod:`vagus.cli._participants`: ``ann=sim:seed=1``, ``bob=C0:FE:...``). Their input is
stored together, each record with its participant; the control events (markers, pacer
changes, start and stop) once for the session; the status shows a line per participant.
The session itself is run by :class:`vagus.runner.Runner` (the store written from its
writer thread, off the event loop); this module is the command line and the view.

As in ``vagus monitor`` (whose helpers this module uses): options of the other source
(``--seed``, ``--speed``, ``--sim-option`` without ``--sim``; ``--device``,
``--scan-timeout``, ``--connect-timeout``, ``--retries`` with it) are usage errors; the
status line is redrawn while the strap is searched for or reconnected, and a link loss
shows at once with the attempt under way; a strap whose profile says its RR intervals are
missing or unfit for HRV gets a note on stderr when it connects, once.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import Any, Protocol

from vagus.cli._common import interrupted_status, note, positive_float
from vagus.cli._data_dir import add_data_dir_argument
from vagus.cli._driver import LiveTerminal
from vagus.cli._live import (
    PACER_RANGE_BPM,
    LiveStatus,
    StatusView,
    add_sim_arguments,
    add_strap_arguments,
    check_sim_options,
    check_source_options,
    clock_text,
    parse_control_line,
    reconnect_budget_text,
    source_spec,
)
from vagus.cli._participants import add_participant_argument, participants_from_args
from vagus.exceptions import StoreError
from vagus.runner import START_MARKER, Participant, ParticipantState, Runner, RunResult
from vagus.sources.base import SourceSpec
from vagus.store.writer import SessionWriter, StoreWriter

__all__ = [
    "PACER_RANGE_BPM",
    "START_MARKER",
    "LiveStatus",
    "clock_text",
    "parse_control_line",
    "register",
    "run",
]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``record`` to the CLI."""
    p = subparsers.add_parser(
        "record",
        help="record a session headless (strap, --sim, or several --participant)",
        description=(
            "Record a session to the store with a live status line per participant. "
            "Without --device, --sim or --participant NAME=SOURCE, the first heart-rate "
            "strap found is used. Several participants: --participant NAME=SOURCE, "
            "repeated (e.g. --participant ann=sim:seed=1 --participant bob=sim:seed=2 "
            "--speed max --duration 300); their input is stored together, each record "
            "with its participant. Ctrl-C ends the session. "
            "The session starts when the recording starts; a strap's ends on the wall "
            "clock, a simulated one (--sim) on the simulated clock: its end is its start "
            "plus the simulated seconds recorded, whatever the --speed, so a 10-minute "
            "session recorded at --speed max still spans 10 minutes. "
            + reconnect_budget_text()
            + " A strap lost for good ends the session, saved, with the marker "
            "`stop: strap lost`."
        ),
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--device", metavar="ADDR|NAME", help="strap address, or part of its name")
    src.add_argument("--sim", action="store_true", help="record the simulated strap")
    add_sim_arguments(p)
    p.add_argument(
        "--duration",
        type=positive_float,
        default=None,
        metavar="S",
        help="stop after S seconds of packets, counted from the first packet received (the "
        "settling time after connecting, when packets are discarded, does not count), for "
        "the strap and --sim alike; with several participants, for each one from its "
        "first packet",
    )
    add_strap_arguments(p)
    p.add_argument("--title", default="", help="session title")
    add_participant_argument(p)
    p.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the live events, one JSON object per line (as `vagus monitor --json`)",
    )
    p.add_argument(
        "--markers-from-stdin",
        action="store_true",
        help=(
            "read markers (one line of text each) and `pacer N` lines from stdin even when "
            "it is not a terminal (for scripts; on a terminal this is the default)"
        ),
    )
    add_data_dir_argument(p)
    p.set_defaults(func=run, record_usage_error=p.error)


def _check_options(args: argparse.Namespace) -> None:
    """Options that do not apply to the chosen source are usage errors (exit status 2),
    never silently ignored: the same rule and messages as ``vagus monitor``; so is a
    ``--sim-option`` with an unknown key or a value out of its range."""
    check_source_options(args, args.record_usage_error)
    check_sim_options(args, args.record_usage_error)


def _spec(args: argparse.Namespace) -> SourceSpec:
    """The single source of ``args`` (``--sim`` or ``--device``), built as ``vagus
    monitor`` builds it (the strap's address or name, --scan-timeout, --connect-timeout,
    --retries; --seed, --speed, --sim-option).

    No ``duration_s`` for the simulator: ``--duration`` counts from the first input, as
    for a strap (the runner stops there)."""
    return source_spec(args)


def _participants(args: argparse.Namespace) -> list[Participant]:
    """The session's participants: ``--participant NAME=SOURCE``, or the one source of
    ``--sim`` / ``--device`` (:func:`_spec`), named by ``--participant NAME``."""
    participants = participants_from_args(args, args.record_usage_error)
    if len(participants) == 1 and not any(
        source is not None for _name, source in getattr(args, "participant", []) or []
    ):
        return [Participant(participants[0].name, _spec(args))]
    return participants


def _fmt(value: float | None, spec: str) -> str:
    return "--" if value is None else format(value, spec)


class _Recording(Protocol):
    """What the status tail reads of a recording (a SessionWriter or a Recorder)."""

    @property
    def recording(self) -> bool: ...

    session_id: str | None


def _tail(recording: _Recording | None) -> str:
    if recording is not None and recording.recording:
        return f"REC {recording.session_id}"
    return "NOT RECORDING"


class _RecordStatusView(StatusView):
    """``vagus monitor``'s live status line (:class:`~vagus.cli._live.StatusView`:
    redrawn while no packet flows, a link loss shown at once with the reconnection attempt
    under way), followed by ``REC <id>`` or ``NOT RECORDING`` once a strap is connected."""

    def __init__(self, status: LiveStatus, recording: _Recording, *, tty: bool) -> None:
        super().__init__(status, None, tty=tty)
        self.recording = recording

    def text(self) -> str:
        text = super().text()
        if text and self.status.device:
            return f"{text}  {_tail(self.recording)}"
        return text


def _warn_not_recording(error: StoreError | None) -> None:
    print(
        f"\nvagus record: NOT RECORDING: {error}\n"
        "vagus record: the live session continues in memory, but nothing more is being saved.",
        file=sys.stderr,
        flush=True,
    )


def _connected_note(searching: dict[str, bool]) -> Callable[[ParticipantState], None]:
    def on_connect(state: ParticipantState) -> None:
        if searching.pop(state.name, False):
            note(
                f"vagus record: connected to {state.device} ({state.device_id}), "
                f"profile {state.profile_id}"
            )

    return on_connect


async def _record(
    args: argparse.Namespace, runner: Runner, recording: SessionWriter
) -> tuple[RunResult, int | None]:
    """Run the session with its terminal view; the result and the signal's exit status."""
    json_out: bool = args.json
    warned = [not recording.recording]

    def watch(_pairs: object) -> None:
        rec = runner.recording
        if rec is not None and not rec.recording and not warned[0]:
            warned[0] = True
            _warn_not_recording(rec.error)

    runner.subscribe_events(watch)
    searching = {n: st.kind == "ble" for n, st in runner.participants.items()}
    terminal = LiveTerminal(
        "record",
        runner,
        args,
        json_out=json_out,
        out=sys.stdout,
        show_status=not json_out or sys.stderr.isatty(),
        tail=lambda: _tail(runner.recording),
        on_connect=_connected_note(searching),
        refused="not recorded",
    )

    async def watch_store() -> None:  # a failure in a quiet second shows too
        while True:
            await asyncio.sleep(0.25)
            watch(None)

    watcher = asyncio.ensure_future(watch_store())
    try:
        outcome = await terminal.run(
            hint=(
                "vagus record: type a line and Enter to add a marker with that text; "
                "`pacer N` records a pacer change to N breaths/min (`pacer off` ends it)"
            )
        )
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    # The writer thread may find a store failure after the last input (a simulation at
    # max speed ends within its first poll): say so before the summary all the same.
    watch(None)
    status = interrupted_status(outcome.stopped_by) if outcome.stopped_by is not None else None
    return outcome.result, status


def run(args: argparse.Namespace) -> int:
    """Record until done; returns 0 if the whole session was saved, 130 after Ctrl-C
    (143 after SIGTERM), else 1."""
    participants = _participants(args)
    writer = StoreWriter.for_data_dir(args.data_dir)
    writer.start()
    runner = Runner(
        participants,
        writer=writer,
        title=args.title,
        tags=tuple(args.tag),
        duration_s=args.duration,
    )

    async def main() -> tuple[RunResult, int | None, SessionWriter]:
        recording = await runner.start_recording()
        if recording.recording:
            print(
                f"vagus record: recording session {recording.session_id} to "
                f"{recording.location} (Ctrl-C to stop)",
                file=sys.stderr,
                flush=True,
            )
        else:
            _warn_not_recording(recording.error)
        result, status = await _record(args, runner, recording)
        return result, status, recording

    try:
        result, interrupted, recording = asyncio.run(main())
    finally:
        writer.close().result()
        writer.join()
    failure = next(iter(result.failures.values()), None)
    if result.discarded or (recording.session_id is not None and result.records == 0):
        print("vagus record: nothing was received; no session saved", file=sys.stderr)
        if failure is not None:
            raise failure
        return interrupted or 1
    saved = result.saved and recording.recording
    _report(recording, result.summary, saved, args.json)
    if failure is not None:
        raise failure
    if not saved:
        return 1
    return interrupted or 0


def _line(data: dict[str, Any]) -> str:
    return (
        f"{clock_text(data['duration_s'])}, {data['beats']} beats, "
        f"mean HR {_fmt(data['mean_hr_bpm'], '.0f')} bpm, "
        f"RMSSD {_fmt(data['rmssd_ms'], '.0f')} ms, "
        f"mean coherence {_fmt(data['mean_coherence'], '.2f')}, "
        f"{data['gaps']} gaps"
    )


def _summary_text(data: dict[str, Any]) -> str:
    """One participant's figures, or each participant's (``ann: ...; bob: ...``)."""
    per: dict[str, dict[str, Any]] = data.get("by_participant") or {}
    if len(per) > 1:
        return "; ".join(f"{name}: {_line(values)}" for name, values in per.items())
    return _line(data)


def _report(recording: SessionWriter, data: dict[str, Any], saved: bool, json_out: bool) -> None:
    line = _summary_text(data)
    if saved:
        print(f"vagus record: saved session {recording.session_id}: {line}", file=sys.stderr)
        if not json_out:
            print(recording.session_id)
    elif recording.session_deleted:
        print(
            f"vagus record: session {recording.session_id} was deleted by another process "
            "while it was being recorded; recording stopped then, and nothing of it is "
            f"kept in the store. Live session: {line}",
            file=sys.stderr,
        )
    elif recording.session_id is not None:
        print(
            f"vagus record: session {recording.session_id} is incomplete: recording stopped "
            f"({recording.error}); {recording.committed} records were committed before that "
            f"and are kept. Live session: {line}",
            file=sys.stderr,
        )
    else:
        print(
            f"vagus record: nothing was saved ({recording.error}). Live session: {line}",
            file=sys.stderr,
        )
