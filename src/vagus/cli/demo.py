"""``vagus demo``: a live session with a simulated participant, in the browser.

No strap needed: a simulated subject (seeded) wears a virtual strap and breathes with the
pacer; its session is recorded to the store and served on http://127.0.0.1:8765. The
participant's breathing view opens in the browser; the practitioner's dashboard and a
read-only viewer link are printed too. Ctrl-C ends the session and saves it.
"""

from __future__ import annotations

import argparse
import asyncio

from vagus.cli._common import positive_float
from vagus.cli._pacer_plan import add_pacer_plan_arguments, pacer_plan_from_args
from vagus.service.app import add_service_arguments, print_links, run_service
from vagus.service.server import Service

__all__ = ["register"]

#: The pacer a demo starts with: 6 breaths/min, 40 % inhale (SCIENCE.md: near the
#: typical resonance rate).
DEMO_RATE_BPM = 6.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="a live session with a simulated participant, in the browser",
        description=(
            "Start a live session with a simulated participant (no strap needed) who "
            "breathes with the pacer, record it, serve it on http://127.0.0.1:8765 and open "
            "the breathing view in the browser. The practitioner dashboard and viewer links "
            "are printed. Ctrl-C ends and saves the session."
        ),
    )
    add_service_arguments(parser)
    parser.add_argument(
        "--seed", type=int, default=1, help="the simulated subject's seed (default 1)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=DEMO_RATE_BPM,
        metavar="BPM",
        help=f"the pacer's starting rate in breaths/min (default {DEMO_RATE_BPM:g}; 0: off)",
    )
    add_pacer_plan_arguments(parser)
    parser.add_argument(
        "--duration", type=positive_float, metavar="S", help="end after S seconds (default: Ctrl-C)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not (args.rate == 0 or 1 <= args.rate <= 40):
        from vagus.exceptions import InvalidInput

        raise InvalidInput(f"--rate {args.rate:g}: use 1 to 40 breaths/min, or 0 for no pacer")
    pacer_plan = pacer_plan_from_args(args)

    async def setup(service: Service) -> str | None:
        hosted = await service.create_session(
            [("me", f"sim:seed={args.seed}")],
            title="vagus demo",
            record=not args.no_record,
            solo=True,
        )
        pacer_plan.start(hosted, "me", rate_bpm=args.rate or None)
        links = service.links[hosted.id]
        print_links(
            links,
            as_json=args.json,
            heading=f"vagus demo: session {hosted.id} (simulated subject), Ctrl-C to end",
        )
        return str(links["urls"]["participant"])

    return asyncio.run(run_service(args, setup, duration_s=args.duration))
