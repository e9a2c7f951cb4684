"""``vagus serve``: a long-running server for many sessions, with an admin link.

On start it prints one admin link (a fresh admin token each start; earlier ones stop
working). With it a practitioner creates sessions through the JSON API (docs/protocol.md
"Admin API") or the admin page, and gets each session's participant, practitioner and
viewer links. Participants join with a strap on the server machine, a simulated subject,
or ``vagus relay`` from their own machine. Sessions and their tokens survive a restart:
Ctrl-C saves every session and leaves it open; the next ``vagus serve`` on the same data
directory resumes it (relays reconnect and resend what was not stored).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from vagus.service.app import add_service_arguments, print_links, run_service
from vagus.service.server import Service
from vagus.service.sources import parse_participant

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="a multi-session server: an admin link to create sessions and invite people",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_service_arguments(parser, browser=False)
    parser.add_argument(
        "--participant",
        action="append",
        default=[],
        metavar="NAME[=SOURCE]",
        help="create a first session with this participant at start (repeat for more); "
        "SOURCE is relay (default), sim[:seed=N,...] or a strap address or name",
    )
    parser.add_argument("--title", help="the first session's title")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    participants = [parse_participant(p) for p in args.participant]

    async def setup(service: Service) -> str | None:
        service.tokens.revoke_role("admin")
        admin = service.tokens.issue("admin", None)
        admin_url = f"{service.base_url}/admin?token={admin}"
        resumed = await service.resume_served()
        links: dict[str, object] = {"session": None, "urls": {}, "ws": {}}
        if participants:
            hosted = await service.create_session(
                participants, title=args.title, record=not args.no_record, served=True
            )
            links = dict(service.links[hosted.id])
        links["admin"] = admin_url
        links["api"] = f"{service.base_url}/api/sessions?token={admin}"
        if args.json:
            print(json.dumps(links), flush=True)
        else:
            print(f"vagus serve on {service.base_url} (Ctrl-C to stop)", flush=True)
            print(f"  admin        {admin_url}", flush=True)
            if participants:
                print_links(links, as_json=False, heading="first session:")
        for hosted in resumed:
            print(
                f"vagus serve: resumed session {hosted.id} "
                f"({', '.join(hosted.participants)}); its links work as before",
                file=sys.stderr,
                flush=True,
            )
        return None

    return asyncio.run(run_service(args, setup, keep_served=True))
