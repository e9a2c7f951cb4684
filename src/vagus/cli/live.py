"""``vagus live``: a live session with real straps, served to the browser.

Like ``vagus demo`` with one participant per strap: ``--device ADDR|NAME`` (repeat for
several straps; the strongest strap in range when none is given) or ``--participant
NAME=SOURCE`` as in ``vagus record`` (SOURCE: a strap address or name, ``sim[:seed=N]``,
or ``relay`` for a participant who joins with ``vagus relay``). Recorded to the store;
Ctrl-C ends and saves the session.
"""

from __future__ import annotations

import argparse
import asyncio

from vagus.cli._common import positive_float
from vagus.cli._pacer_plan import add_pacer_plan_arguments, pacer_plan_from_args
from vagus.exceptions import InvalidInput
from vagus.service.app import add_service_arguments, print_links, run_service
from vagus.service.server import Service
from vagus.service.sources import parse_participant

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "live",
        help="a live session with real straps, in the browser",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_service_arguments(parser)
    parser.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="ADDR|NAME",
        help="a strap's address or part of its name (repeat for several participants)",
    )
    parser.add_argument(
        "--participant",
        action="append",
        default=[],
        metavar="NAME=SOURCE",
        help="a named participant and its source: a strap address or name, "
        "sim[:seed=N,...] or relay (repeatable)",
    )
    parser.add_argument("--title", default="", help="the session's title")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        metavar="BPM",
        help="start the pacer at BPM breaths/min (default: off; the practitioner sets it)",
    )
    add_pacer_plan_arguments(parser)
    parser.add_argument("--duration", type=positive_float, metavar="S", help="end after S seconds")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    participants = [parse_participant(p, default_source="") for p in args.participant]
    if any(not source for _, source in participants):
        raise InvalidInput("--participant needs NAME=SOURCE (e.g. ann=AA:BB:CC:DD:EE:FF)")
    for i, device in enumerate(args.device):
        name = "me" if len(args.device) == 1 and not participants else f"p{i + 1}"
        participants.append(parse_participant(f"{name}={device}"))
    if not participants:
        participants = [("me", "strap")]  # the strongest strap in range
    if not (args.rate == 0 or 1 <= args.rate <= 40):
        raise InvalidInput(f"--rate {args.rate:g}: use 1 to 40 breaths/min, or 0 for no pacer")
    pacer_plan = pacer_plan_from_args(args)

    async def setup(service: Service) -> str | None:
        hosted = await service.create_session(
            participants, title=args.title or "vagus live", record=not args.no_record, solo=True
        )
        # The stored resonance rate and the plan's pacer follow the first participant.
        pacer_plan.start(hosted, participants[0][0], rate_bpm=args.rate or None)
        links = service.links[hosted.id]
        print_links(
            links, as_json=args.json, heading=f"vagus live: session {hosted.id}, Ctrl-C to end"
        )
        return str(links["urls"]["participant"])

    return asyncio.run(run_service(args, setup, duration_s=args.duration))
