"""``vagus review ID``: a stored session in the browser, replayed with a timeline.

Serves the review page for one stored session on http://127.0.0.1:8765 (``--port``):
the same dashboard, fed by a replay of the stored input through the same pipeline
(same numbers as live), with play, pause, seek and speed (1x, 4x, as fast as possible).
Ctrl-C stops the server; nothing is changed in the store.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from vagus.service.app import add_service_arguments, print_links, run_service
from vagus.service.server import Service
from vagus.store.base import check_session_id

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "review",
        help="replay a stored session in the browser, with a timeline",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("session", metavar="ID", help="the session (or a unique id prefix)")
    add_service_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vagus.store.open import open_store

    check_session_id(args.session)
    store = open_store(args.data_dir, create=False, read_only=True)
    try:
        info = store.get_session(args.session)
    finally:
        store.close()
    args.no_record = True  # review writes nothing

    async def setup(service: Service) -> str | None:
        practitioner = service.tokens.issue("practitioner", info.id)
        viewer = service.tokens.issue("viewer", info.id)
        links: dict[str, Any] = {
            "session": info.id,
            "urls": {
                "review": service.page_url(info.id, "review", practitioner),
                "viewer": service.page_url(info.id, "review", viewer),
            },
            "ws": {
                "review": service.ws_url(info.id, practitioner, review=True),
                "viewer": service.ws_url(info.id, viewer, review=True),
            },
        }
        print_links(
            links, as_json=args.json, heading=f"vagus review: session {info.id}, Ctrl-C to end"
        )
        if not args.json:
            print(f"  {'review':<12} {links['urls']['review']}", flush=True)
        return str(links["urls"]["review"])

    return asyncio.run(run_service(args, setup))
