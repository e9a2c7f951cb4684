"""``vagus monitor``: connect to a strap (or the simulator) and show live HRV.

The packets of the source go through :class:`vagus.Pipeline`, exactly as in a recorded
session. By default a one-line status (heart rate, RMSSD over 60 s, coherence, battery,
contact, packets, gaps) is rewritten in place on stderr; with ``--json`` every pipeline
event is printed to stdout as one JSON line (``event.to_json()``), flushed per line, for
scripting. A malformed packet is counted and reported, never fatal. Ctrl-C (or SIGTERM)
ends cleanly (notifications stopped, strap disconnected) with a summary and exit status
130 (143 after SIGTERM), as ``record`` and ``replay``.

The status line says what is still computing and for how long: ``RMSSD30 in 12 s``,
``coherence in 40 s`` (:class:`~vagus.cli._live.Readiness`, from the metric's window
rule and the beats so far), and shows the pacer's rate with an inhale/exhale cue once one
is set. Lines typed on the terminal (or piped in with ``--markers-from-stdin``) are
control events as in ``vagus record``: ``pacer N`` sets the pacer to N breaths/min
(``pacer off`` ends it; the simulated subject follows it), any other text is a marker;
they go through the pipeline (and ``--json`` prints them) but nothing is stored.

The status line does not wait for packets: it is redrawn at least once a second (four
times on a terminal) while the strap is searched for, connected, or reconnected, with the
attempt under way (``reconnecting… attempt 2 of 6, link down 12 s``), and a link loss
shows at once (the gap count goes up). A strap whose device profile says its RR intervals
are missing or unfit for HRV gets a note on stderr when it connects, once.

Several participants: ``--participant NAME=SOURCE``, repeated, as in ``vagus record``;
a status line per participant. The session is run by :class:`vagus.runner.Runner`
(with no store and no start/stop markers); this module is the command line and the view.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from vagus.cli._common import interrupted_status, note, positive_float
from vagus.cli._driver import SIGNAL_NAMES, LiveTerminal
from vagus.cli._live import (
    LiveStatus,
    add_sim_arguments,
    add_strap_arguments,
    reconnect_budget_text,
)
from vagus.cli._participants import add_participant_argument, participants_from_args
from vagus.exceptions import VagusError
from vagus.runner import ParticipantState, Runner

__all__ = ["register", "run"]

_BODY_LOCATIONS = {0: "other", 1: "chest", 2: "wrist", 3: "finger", 4: "hand", 5: "ear lobe"}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "monitor",
        help="connect to a strap (or --sim) and show live HRV",
        description=(
            "Connect to a heart-rate strap (the strongest one in range unless --device is "
            "given) or to the simulator, and show live heart rate, RMSSD and coherence "
            "(or how long until each is ready). Several participants at once: "
            "--participant NAME=SOURCE, repeated (a line each). Type a line and Enter to "
            "add a marker; `pacer N` sets a pacer of N breaths/min (`pacer off` ends it); "
            "nothing is stored (use `vagus record` for that). " + reconnect_budget_text()
        ),
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--device",
        metavar="ADDR|NAME",
        help="the strap's address, or part of its advertised name (see `vagus scan`)",
    )
    source.add_argument("--sim", action="store_true", help="use the simulated subject and strap")
    add_sim_arguments(parser)
    add_participant_argument(parser)
    parser.add_argument(
        "--duration",
        type=positive_float,
        metavar="S",
        help="stop after S seconds of packets, counted from the first packet received (the "
        "settling time after connecting, when packets are discarded, does not count), for "
        "the strap and --sim alike; with several participants, for each one from its "
        "first packet",
    )
    parser.add_argument("--json", action="store_true", help="print every event as a JSON line")
    parser.add_argument(
        "--markers-from-stdin",
        action="store_true",
        help=(
            "read markers (one line of text each) and `pacer N` lines from stdin even when "
            "it is not a terminal (for scripts; on a terminal this is the default)"
        ),
    )
    add_strap_arguments(parser)
    parser.add_argument(
        "--acquire-notify",
        action="store_true",
        default=argparse.SUPPRESS,
        help="Linux: receive notifications through AcquireNotify instead of StartNotify",
    )
    parser.set_defaults(func=run, monitor_usage_error=parser.error)


def _connected(state: ParticipantState) -> None:
    where = _BODY_LOCATIONS.get(state.body_location or -1, "")
    note(
        f"connected to {state.device} ({state.device_id}), profile "
        f"{state.profile_id}" + (f", worn on the {where}" if where else "")
    )


async def _monitor(
    args: argparse.Namespace,
    runner: Runner,
    stopped_by: list[signal.Signals],
    statuses: dict[str, LiveStatus],
) -> None:
    """Run the session with its view until done, the duration, or a signal (noted in
    ``stopped_by``); ``statuses`` gets each participant's status (for the summary).
    Raises the error that ended a source (the strap vanished and the retry budget is
    spent), after ending the session."""
    as_json: bool = args.json
    terminal = LiveTerminal(
        "monitor",
        runner,
        args,
        json_out=as_json,
        out=sys.stdout,
        show_status=not as_json,
        stop_on_broken_pipe=True,
        on_connect=None if as_json else _connected,
    )
    statuses.update(terminal.statuses)
    outcome = await terminal.run(
        hint=None
        if as_json
        else (
            "vagus monitor: type a line and Enter to add a marker; `pacer N` sets a "
            "pacer of N breaths/min (`pacer off` ends it); nothing is stored"
        )
    )
    if outcome.stopped_by is not None:
        stopped_by.append(outcome.stopped_by)
    if outcome.broken_pipe:
        raise BrokenPipeError
    failure = next(iter(outcome.result.failures.values()), None)
    if failure is not None:
        raise failure


def _summary(statuses: dict[str, LiveStatus]) -> str:
    several = len(statuses) > 1
    return "\n".join(
        (f"{name}: " if several else "") + status.summary() for name, status in statuses.items()
    )


def run(args: argparse.Namespace) -> int:
    participants = participants_from_args(args, args.monitor_usage_error)
    runner = Runner(participants, duration_s=args.duration, markers=False)
    stopped_by: list[signal.Signals] = []
    statuses: dict[str, LiveStatus] = {}
    try:
        asyncio.run(_monitor(args, runner, stopped_by, statuses))
    except KeyboardInterrupt:  # Ctrl-C where no signal handler could be set (Windows)
        stopped_by.append(signal.SIGINT)
    except BrokenPipeError:
        # the reader of --json output went away (`| head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except VagusError:
        # e.g. the strap vanished and the retry budget is spent: sum up what was
        # received, and let the command line print the error (exit status 1)
        if any(s.device for s in statuses.values()):
            print(_summary(statuses), file=sys.stderr)
        raise
    if stopped_by:
        print(f"stopped ({SIGNAL_NAMES.get(stopped_by[0], 'signal')})", file=sys.stderr)
    print(_summary(statuses), file=sys.stderr)
    return interrupted_status(stopped_by[0]) if stopped_by else 0
