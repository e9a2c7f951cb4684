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
``--duration`` counts from the first input received, for the strap and ``--sim`` alike:
the settling time after connecting (packets discarded) does not count.

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
import contextlib
import json
import os
import signal
import sys
from typing import Any, NamedTuple, TextIO

from vagus.cli._common import (
    interrupted_status,
    note,
    positive_float,
    status_line,
    stop_on_signals,
)
from vagus.cli._data_dir import add_data_dir_argument
from vagus.cli._live import (
    PACER_RANGE_BPM,
    ControlLines,
    LiveStatus,
    RRNotes,
    StatusView,
    add_sim_arguments,
    add_strap_arguments,
    check_sim_options,
    check_source_options,
    clock_text,
    parse_control_line,
    reconnect_budget_text,
    source_spec,
    stdin_lines,
)
from vagus.core.events import Event, Marker
from vagus.core.pipeline import Pipeline
from vagus.exceptions import StoreError
from vagus.sources.base import (
    BleSpec,
    DeviceInfo,
    LinkGap,
    LinkState,
    Packet,
    SimSpec,
    SourceSpec,
)
from vagus.store.base import ControlRecord, GapRecord, InputRecord, PacketRecord, Store
from vagus.store.recorder import Recorder, SessionSummary, feed_counting

__all__ = [
    "PACER_RANGE_BPM",
    "START_MARKER",
    "Capture",
    "LiveStatus",
    "clock_text",
    "parse_control_line",
    "register",
    "run",
]

_TICK_S = 0.25

#: The text of the marker written at the first input of a recording.
START_MARKER = "start"
_SIGNAL_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``record`` to the CLI."""
    p = subparsers.add_parser(
        "record",
        help="record a session headless (strap or --sim)",
        description=(
            "Record a session to the store with a live one-line status. Without --device "
            "or --sim, the first heart-rate strap found is used. Ctrl-C ends the session. "
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
        "the strap and --sim alike",
    )
    add_strap_arguments(p)
    p.add_argument("--title", default="", help="session title")
    p.add_argument("--participant", default="me", help="participant name (default: me)")
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
    """The source of ``args``, built as ``vagus monitor`` builds it (the strap's address or
    name, --scan-timeout, --connect-timeout, --retries; --seed, --speed, --sim-option).

    No ``duration_s`` for the simulator: ``--duration`` counts from the first input, as for
    a strap (:func:`_capture` stops there)."""
    return source_spec(args)


def _fmt(value: float | None, spec: str) -> str:
    return "--" if value is None else format(value, spec)


def _tail(recorder: Recorder) -> str:
    if recorder.recording:
        return f"REC {recorder.session_id}"
    return "NOT RECORDING"


class _RecordStatusView(StatusView):
    """``vagus monitor``'s live status line (:class:`~vagus.cli._live.StatusView`:
    redrawn while no packet flows, a link loss shown at once with the reconnection attempt
    under way), followed by ``REC <id>`` or ``NOT RECORDING`` once a strap is connected."""

    def __init__(self, status: LiveStatus, recorder: Recorder, *, tty: bool) -> None:
        super().__init__(status, None, tty=tty)
        self.recorder = recorder

    def text(self) -> str:
        text = super().text()
        if text and self.status.device:
            return f"{text}  {_tail(self.recorder)}"
        return text


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _warn_not_recording(error: StoreError | None) -> None:
    print(
        f"\nvagus record: NOT RECORDING: {error}\n"
        "vagus record: the live session continues in memory, but nothing more is being saved.",
        file=sys.stderr,
        flush=True,
    )


def _open_recorder(args: argparse.Namespace, source_name: str) -> Recorder:
    from vagus.store.open import open_store

    store: Store | None = None
    try:
        store = open_store(args.data_dir)
        info = store.create_session(
            title=args.title,
            participants=(args.participant,),
            source=source_name,
            tags=tuple(args.tag),
            recording=True,  # lists as recording; `vagus delete` refuses it meanwhile
        )
    except StoreError as exc:
        if store is not None:
            with contextlib.suppress(StoreError):
                store.close()
        return Recorder(None, None, error=exc)
    return Recorder(store, info.id, started_unix_s=info.started_unix_s)


class Capture(NamedTuple):
    """What :func:`_capture` ends with."""

    summary: SessionSummary
    status: LiveStatus
    #: the error that ended the source (strap lost...), if any
    failure: BaseException | None
    #: the signal that ended the recording (Ctrl-C: SIGINT), if any
    stopped_by: signal.Signals | None
    #: the time of the last input, the stop marker's (s, source clock); None if none
    t_end_s: float | None = None


async def _capture(
    spec: SourceSpec,
    recorder: Recorder,
    args: argparse.Namespace,
    out: TextIO,
) -> Capture:
    """Run the source into the store and the pipeline until done, Ctrl-C or the duration."""
    from vagus.sources.base import open_source

    pipeline = Pipeline()
    summary = SessionSummary()
    status = LiveStatus(speed=spec.speed if isinstance(spec, SimSpec) else 1.0)
    participant: str = args.participant
    json_out: bool = args.json
    flush_each = not (isinstance(spec, SimSpec) and spec.speed is None)  # live: per batch
    show_status = not json_out or sys.stderr.isatty()
    # monitor's status view: redrawn while no packet flows (searching, reconnecting with
    # the attempt under way), a link loss drawn at once; the source's link state is
    # attached when the source is opened
    view = _RecordStatusView(status, recorder, tty=sys.stderr.isatty())
    profile: str | None = None
    rr_notes = RRNotes()  # each profile's RR-quality note, once
    warned = not recorder.recording
    searching = isinstance(spec, BleSpec)
    # Typed lines: markers and pacer changes at the current beat time, into the store
    # and the pipeline (lines typed before the first input wait for it).
    controls = ControlLines("record", status, lambda event: write(ControlRecord(event)))
    controls.refused = "not recorded"

    def emit(events: list[Event]) -> None:
        nonlocal json_out
        if not events:
            return
        summary.add_events(events)
        status.add_events(events)
        if json_out:
            try:
                out.write("".join(json.dumps(ev.to_json()) + "\n" for ev in events))
                if flush_each:
                    out.flush()
            except BrokenPipeError:
                # The reader of the events went away (`| head`): keep recording.
                _silence_stdout()
                json_out = False

    def write(record: InputRecord) -> None:
        nonlocal warned
        recorder.write(record)
        ok = feed_counting(pipeline, record)
        summary.add_record(record, malformed=not ok)
        if isinstance(record, PacketRecord):
            if ok:
                status.packets += 1
            else:
                status.malformed += 1
        emit(pipeline.events_received())
        if not recorder.recording and not warned:
            warned = True
            _warn_not_recording(recorder.error)

    def start(t_s: float) -> None:
        controls.emit(Marker(t_s, START_MARKER))
        controls.start(t_s)

    # The recording stops once its input spans ``--duration`` from the first input (the
    # start marker), for a strap and the simulator alike: scan, connection and the
    # settling time after connecting (packets discarded) do not count.
    limit_s: float | None = args.duration

    async def consume() -> None:
        nonlocal profile, searching
        opened = open_source(spec)
        link = getattr(opened, "link_state", None)  # a strap's: searching, attempt k of n
        view.link = link if isinstance(link, LinkState) else None
        async with opened as source:
            set_pacer = getattr(source, "set_pacer", None)
            if set_pacer is not None:
                controls.set_pacer = set_pacer  # the simulated subject breathes with it
            async for item in source:
                if isinstance(item, DeviceInfo):
                    status.device = item.name
                    status.battery_pct = item.battery_pct
                    status.connected = item.connected
                    if searching:
                        searching = False
                        note(
                            f"vagus record: connected to {item.name} ({item.device_id}), "
                            f"profile {item.profile_id}"
                        )
                    if item.connected:
                        rr_notes.connected(item.profile_id)
                    if item.profile_id != profile:
                        profile = item.profile_id
                        recorder.set_device_profile(profile)
                    if show_status:
                        view.draw(force=True)
                    continue
                t_item = item.t_arrival_s if isinstance(item, Packet) else item.t_s
                if controls.t_start_s is None:
                    start(t_item)
                elif limit_s is not None and t_item - controls.t_start_s > limit_s:
                    return
                if isinstance(item, Packet):
                    status.connected = True
                    status.at(item.t_arrival_s)
                    write(PacketRecord(item.t_arrival_s, item.payload, participant))
                elif isinstance(item, LinkGap):
                    status.connected = False
                    status.gaps += 1
                    status.at(item.t_s)
                    write(GapRecord(item.t_s, item.reason, participant))
                    if show_status:
                        view.draw(force=True)  # the loss shows at once, with the attempt

    async def ticker() -> None:
        while True:
            await asyncio.sleep(_TICK_S)
            recorder.tick()
            if not recorder.recording and not warned:
                write_warning()
            if show_status:
                view.draw()  # four times a second on a terminal, else once (if changed)

    def write_warning() -> None:
        nonlocal warned
        warned = True
        _warn_not_recording(recorder.error)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    stopped_by: list[signal.Signals] = []

    handled = stop_on_signals(loop, stop, stopped_by)
    stdin = stdin_lines(args, controls, view if show_status else None)
    if stdin is not None:
        stdin.start(loop)
        note(
            "vagus record: type a line and Enter to add a marker with that text; "
            "`pacer N` records a pacer change to N breaths/min (`pacer off` ends it)"
        )
    if searching:
        note("vagus record: searching for a strap…")
    consume_task = asyncio.ensure_future(consume())
    stop_task = asyncio.ensure_future(stop.wait())
    tick_task = asyncio.ensure_future(ticker())
    failure: BaseException | None = None
    try:
        await asyncio.wait({consume_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if stdin is not None:
            stdin.close()
        for sig in handled:
            loop.remove_signal_handler(sig)
        for task in (consume_task, stop_task, tick_task):
            task.cancel()
        await asyncio.gather(consume_task, stop_task, tick_task, return_exceptions=True)
    if consume_task.done() and not consume_task.cancelled():
        failure = consume_task.exception()
    signal_name = _SIGNAL_NAMES.get(stopped_by[0], stopped_by[0].name) if stopped_by else ""
    if stopped_by:
        note(f"vagus record: stopped ({signal_name}); ending the session")
    t_end: float | None = None
    if controls.t_start_s is not None:
        if stopped_by:
            reason = signal_name
        elif failure is not None:
            reason = "strap lost"
        elif args.duration is not None:
            reason = "duration reached"
        else:
            reason = "end of input"
        t_end = max(status.t_last_s, controls.t_control_s)
        controls.emit(Marker(t_end, f"stop: {reason}"))
    # End of input: the pending beats are decided exactly as a replay decides them.
    pipeline.close()
    emit(pipeline.events_received())
    if show_status and not searching:
        status_line(status.with_tail(_tail(recorder)))
        if sys.stderr.isatty():
            sys.stderr.write("\n")
    return Capture(summary, status, failure, stopped_by[0] if stopped_by else None, t_end)


def run(args: argparse.Namespace) -> int:
    """Record until done; returns 0 if the whole session was saved, 130 after Ctrl-C
    (143 after SIGTERM), else 1."""
    _check_options(args)
    spec = _spec(args)
    source_name = "sim" if isinstance(spec, SimSpec) else "ble"
    recorder = _open_recorder(args, source_name)
    if recorder.recording:
        assert recorder.store is not None
        where = recorder.store.location
        print(
            f"vagus record: recording session {recorder.session_id} to {where} (Ctrl-C to stop)",
            file=sys.stderr,
            flush=True,
        )
    else:
        _warn_not_recording(recorder.error)
    summary, _live, failure, stopped_by, t_end = asyncio.run(
        _capture(spec, recorder, args, sys.stdout)
    )
    interrupted = interrupted_status(stopped_by) if stopped_by is not None else None
    data = summary.as_dict()
    if recorder.recording and summary.records == 0:
        # Nothing arrived (no strap found, stopped at once): keep no empty session.
        assert recorder.store is not None and recorder.session_id is not None
        with contextlib.suppress(StoreError):
            recorder.store.delete_session(recorder.session_id)
        with contextlib.suppress(StoreError):
            recorder.store.close()
        print("vagus record: nothing was received; no session saved", file=sys.stderr)
        if failure is not None:
            raise failure
        return interrupted or 1
    saved = recorder.recording
    recorder.finish(data, _ended_unix_s(spec, recorder, t_end))
    if recorder.store is not None:
        try:
            recorder.store.close()
        except StoreError as exc:
            recorder.error = recorder.error or exc
            saved = False
    saved = saved and recorder.recording
    _report(recorder, data, saved, args.json)
    if failure is not None:
        raise failure
    if not saved:
        return 1
    return interrupted or 0


def _ended_unix_s(spec: SourceSpec, recorder: Recorder, t_end_s: float | None) -> float | None:
    """The session's end (Unix s): None (now, the wall clock) for a strap; for the
    simulator, its start plus the simulated seconds elapsed (the simulator's clock starts
    at 0 as the session is created), so start and end agree with the duration at any
    ``--speed``."""
    if not isinstance(spec, SimSpec) or t_end_s is None or recorder.started_unix_s is None:
        return None
    return recorder.started_unix_s + max(0.0, t_end_s)


def _report(recorder: Recorder, data: dict[str, Any], saved: bool, json_out: bool) -> None:
    line = (
        f"{clock_text(data['duration_s'])}, {data['beats']} beats, "
        f"mean HR {_fmt(data['mean_hr_bpm'], '.0f')} bpm, "
        f"RMSSD {_fmt(data['rmssd_ms'], '.0f')} ms, "
        f"mean coherence {_fmt(data['mean_coherence'], '.2f')}, "
        f"{data['gaps']} gaps"
    )
    if saved:
        print(f"vagus record: saved session {recorder.session_id}: {line}", file=sys.stderr)
        if not json_out:
            print(recorder.session_id)
    elif recorder.session_deleted:
        print(
            f"vagus record: session {recorder.session_id} was deleted by another process "
            "while it was being recorded; recording stopped then, and nothing of it is "
            f"kept in the store. Live session: {line}",
            file=sys.stderr,
        )
    elif recorder.session_id is not None:
        print(
            f"vagus record: session {recorder.session_id} is incomplete: recording stopped "
            f"({recorder.error}); {recorder.committed} records were committed before that "
            f"and are kept. Live session: {line}",
            file=sys.stderr,
        )
    else:
        print(
            f"vagus record: nothing was saved ({recorder.error}). Live session: {line}",
            file=sys.stderr,
        )
