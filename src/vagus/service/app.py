"""Running the service from a command: options, start, links, Ctrl-C, clean stop.

``vagus demo``, ``vagus live`` and ``vagus serve`` share this: the ``--host``/``--port``/
TLS options, the store writer (recording off the event loop), the token file, the links
printed (``--json``: one JSON object on the first line of stdout), the browser opened,
and a stop on Ctrl-C or SIGTERM that ends and saves every session.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import ssl
import sys
import webbrowser
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, Final, TypeVar

from vagus.exceptions import InvalidInput, VagusError
from vagus.service.server import Service, check_bind
from vagus.service.tokens import SERVICE_DB_FILENAME, TokenStore

__all__ = [
    "LOOPS",
    "add_service_arguments",
    "run",
    "run_service",
    "service_data_dir",
    "tune_gc",
]

T = TypeVar("T")

#: The event loops a service process can run on.
LOOPS: Final = ("asyncio", "uvloop")


def run(main: Coroutine[Any, Any, T], *, loop: str = "asyncio") -> T:
    """``asyncio.run(main)`` on the standard library's event loop, or on uvloop's
    (``loop="uvloop"``; uvloop is not a dependency: ``vagus bench serve --loop uvloop``
    compares them, and measured no less server CPU per packet with it).

    Raises:
        InvalidInput: ``loop`` is not one of :data:`LOOPS`, or uvloop is asked for and
            not installed.
    """
    if loop not in LOOPS:
        raise InvalidInput(f"the event loop is one of {', '.join(LOOPS)}, not {loop!r}")
    if loop == "uvloop":
        try:
            import uvloop  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            raise InvalidInput(
                "uvloop is not installed: pip install uvloop, or use --loop asyncio"
            ) from None
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    return asyncio.run(main)


def tune_gc() -> None:
    """Fewer full garbage collections in a server process.

    A full (generation 2) collection walks every tracked object: with the late joiners'
    state of a thousand sessions (300 s of beats each) it stalled the event loop for
    hundreds of ms about once a second, and that was the server's p99 latency
    (``vagus bench serve``, N = 1000: p99 700 ms with the default thresholds, 76 ms
    with these). The objects alive after start-up are frozen out of the collections,
    and young generations are collected less often; the service's objects are not
    cyclic, so little waits for the rarer full collections.
    """
    import gc

    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)


def add_service_arguments(parser: argparse.ArgumentParser, *, browser: bool = True) -> None:
    """``--host``, ``--port``, ``--tls-cert``/``--tls-key``, ``--insecure``, ``--json``,
    ``--data-dir`` (and ``--no-browser``)."""
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; any other "
        "address needs --tls-cert/--tls-key or --insecure)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8765,
        help="port for pages and websockets (default 8765; 0: any free port)",
    )
    parser.add_argument(
        "--tls-cert", type=Path, metavar="PEM", help="serve https/wss with this certificate"
    )
    parser.add_argument("--tls-key", type=Path, metavar="PEM", help="the certificate's private key")
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback --host without TLS (only on a network you trust: "
        "tokens travel in clear)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the links as one JSON object on the first line of stdout "
        '({"session", "urls": {participant, practitioner, viewer}, "ws": {...}})',
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where sessions are stored (default: $VAGUS_DATA_DIR if set, else the platform's "
        "user data directory)",
    )
    parser.add_argument(
        "--no-record", action="store_true", help="do not store the session (nothing is saved)"
    )
    if browser:
        parser.add_argument(
            "--no-browser", action="store_true", help="do not open the page in a browser"
        )


def service_data_dir(data_dir: Path | None) -> Path:
    from vagus.store.location import data_dir as resolve

    return resolve(data_dir)


def _tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    if (args.tls_cert is None) != (args.tls_key is None):
        raise InvalidInput("give both --tls-cert and --tls-key (or neither)")
    if args.tls_cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidInput(
            f"cannot load --tls-cert {args.tls_cert} / --tls-key {args.tls_key}: {exc}"
        ) from None
    return context


def print_links(links: dict[str, Any], *, as_json: bool, heading: str) -> None:
    """The links a user needs: JSON on the first line, or readable lines."""
    if as_json:
        out: dict[str, Any] = {k: links[k] for k in ("session", "urls", "ws") if k in links}
        for k, v in links.items():
            out.setdefault(k, v)
        print(json.dumps(out), flush=True)
        return
    print(heading, flush=True)
    urls = links.get("urls", {})
    for role in ("participant", "practitioner", "viewer"):
        if role in urls:
            print(f"  {role:<12} {urls[role]}", flush=True)
    for name, part in list(links.get("participants", {}).items())[1:]:
        print(f"  {'participant':<12} {part['url']}  ({name})", flush=True)


async def run_service(
    args: argparse.Namespace,
    setup: Callable[[Service], Awaitable[str | None]],
    *,
    duration_s: float | None = None,
    sim_speed: float | None = 1.0,
    keep_served: bool = False,
) -> int:
    """Start the service, call ``setup`` (creates sessions, prints links, returns a URL
    to open), run until Ctrl-C/SIGTERM (or ``duration_s``), then end and save everything.

    Returns the exit status (0; 130 after Ctrl-C, 143 after SIGTERM).
    """
    from vagus.store.writer import StoreWriter

    check_bind(args.host, tls=args.tls_cert is not None, insecure=args.insecure)
    tune_gc()
    tls = _tls(args)
    directory = service_data_dir(args.data_dir)
    writer = None
    if not args.no_record:
        writer = StoreWriter.for_data_dir(args.data_dir)
        error = writer.start()
        if error is not None:
            print(f"vagus: not recording: {error}", file=sys.stderr)
    tokens = TokenStore(directory / SERVICE_DB_FILENAME)
    service = Service(tokens, writer=writer, data_dir=args.data_dir, tls=tls, sim_speed=sim_speed)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    stopped_by: list[signal.Signals] = []
    from vagus.cli._common import interrupted_status, stop_on_signals

    handled = stop_on_signals(loop, stop, stopped_by)
    try:
        try:
            await service.start(args.host, args.port)
        except OSError as exc:
            raise InvalidInput(
                f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}; is another "
                "vagus running? (--port chooses another port, 0 any free one)"
            ) from None
        url = await setup(service)
        if url and not getattr(args, "no_browser", True):
            with contextlib.suppress(Exception):
                await loop.run_in_executor(None, webbrowser.open, url)
        if duration_s is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration_s)
        else:
            await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await service.stop(keep_served=keep_served)
        if writer is not None:
            with contextlib.suppress(VagusError):
                await asyncio.wrap_future(writer.close())
        tokens.close()
    saved = list(service.links)
    if not args.no_record and saved:
        print(f"vagus: saved session(s) {', '.join(saved)} (vagus show ID)", file=sys.stderr)
    return interrupted_status(stopped_by[0]) if stopped_by else 0
