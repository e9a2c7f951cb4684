"""The service: one asyncio process, one port for pages, static files, the admin API and
the websockets (the ``websockets`` library: its ``process_request`` hook answers the
plain HTTP requests, every other request becomes a websocket).

Routes (docs/protocol.md "URLs and tokens"):

- ``/static/...``: files under ``web/static/`` (no token);
- ``/s/<session>/{breathe,dashboard,view,review}?token=T``: ``web/<page>.html`` after the
  token check (403 otherwise);
- ``/admin?token=A`` and ``/api/...?token=A``: the admin page and JSON API;
- ``/ws/<session>?token=T[&mode=review]``: the session's websocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http
import ipaddress
import json
import logging
import mimetypes
import os
import socket
import ssl
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, quote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from vagus.core.events import PacerChange
from vagus.exceptions import InvalidInput, VagusError
from vagus.service.bus import (
    MAX_QUEUED,
    STALL_S,
    ClientQueue,
    InProcessBus,
    OutFrame,
    batch_text,
)
from vagus.service.host import Committer, HostedSession
from vagus.service.protocol import MAX_MESSAGE_BYTES as APP_MAX_BYTES
from vagus.service.protocol import (
    MAX_PACKETS_PER_FRAME,
    EndCmd,
    FrameError,
    MarkerCmd,
    PacerCmd,
    PacketsCmd,
    PingCmd,
    RecordingCmd,
    ReviewCmd,
    StatusCmd,
    dumps,
    parse_client_frame,
)
from vagus.service.sources import parse_participant
from vagus.service.tokens import Grant, Role, ServedSession, TokenStore, redact

__all__ = [
    "MESSAGES_PER_S",
    "RedactTokens",
    "Service",
    "check_bind",
    "web_dir",
]

log = logging.getLogger("vagus.service")

#: Sustained client messages per second per connection (a token bucket).
MESSAGES_PER_S: Final = 50.0
#: Messages a client may send in a burst above the sustained rate.
MESSAGES_BURST: Final = 200.0
#: Messages larger than this close the connection before they are read (websockets).
HARD_MAX_BYTES: Final = 1 << 20
#: Pending connections the listening socket holds (the kernel caps it at somaxconn).
LISTEN_BACKLOG: Final = 4096
#: Kernel send buffer of each websocket (bytes; Linux doubles it).
SEND_BUFFER_BYTES: Final = 64 * 1024
#: How often every connection's queue is checked for a stalled client (s).
WATCHDOG_S: Final = 1.0
#: Most characters of frames in one ``batch`` message (more go in the next one).
BATCH_MAX_CHARS: Final = 256 * 1024

#: page route -> (file in web/, roles allowed)
PAGES: Final[dict[str, tuple[str, tuple[Role, ...]]]] = {
    "breathe": ("breathe.html", ("participant",)),
    "dashboard": ("dashboard.html", ("practitioner",)),
    "view": ("dashboard.html", ("viewer",)),
    "review": ("review.html", ("practitioner", "viewer")),
}
#: Roles that may open a session's HTML report (``/s/<session>/report?token=T``).
REPORT_ROLES: Final[tuple[Role, ...]] = ("practitioner", "viewer")


def render_report(data_dir: Path | None, session_id: str) -> str:
    """The HTML report of a stored session, every participant (as ``vagus report ID``)."""
    from vagus.report.model import replay_participants
    from vagus.report.session import group_report_html
    from vagus.store.open import open_store

    store = open_store(data_dir, create=False, read_only=True)
    try:
        replays = replay_participants(store, session_id)
        html, _ = group_report_html(replays, generated_unix_s=time.time())
    finally:
        store.close()
    return html


_SECURITY_HEADERS: Final = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
)


class RedactTokens(logging.Filter):
    """Takes ``token=...`` out of every log record (tokens never appear in logs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text = redact(str(exc))
            if text != str(exc):
                record.exc_info = None
                record.exc_text = None
                record.msg = f"{record.msg} ({type(exc).__name__}: {text})"
        return True


def web_dir() -> Path:
    """Where the pages are: ``$VAGUS_WEB_DIR``, the checkout's ``web/``, or the install's
    ``<prefix>/share/vagus/web``."""
    env = os.environ.get("VAGUS_WEB_DIR")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[3] / "web"
    if checkout.is_dir():
        return checkout
    import sys

    return Path(sys.prefix) / "share" / "vagus" / "web"


def check_bind(host: str, *, tls: bool, insecure: bool) -> None:
    """Refuse a non-loopback bind without TLS or an explicit ``--insecure``."""
    if tls or insecure:
        return
    name = host.strip("[]")
    if name == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(name).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise InvalidInput(
            f"--host {host} would let other machines connect over plain HTTP (tokens "
            "readable on the network). Give --tls-cert CERT --tls-key KEY, or --insecure "
            "on a network you trust, or keep the default --host 127.0.0.1"
        )


@dataclass
class _Conn:
    """What the handshake decided about one websocket."""

    grant: Grant
    session: str
    review: bool
    #: a relay's connection: only its own replies (ack, error, pong), no events
    ingest: bool = False
    seq: int = 0
    tokens: float = MESSAGES_BURST
    last_refill: float = field(default_factory=time.monotonic)


class Service:
    """The service (see the module docstring).

    Args:
        tokens: token hashes (and served sessions).
        writer: the store writer sessions record through (None: no recording).
        data_dir: the store's data directory (review reads it).
        web: the folder of the pages.
        scheme: ``http`` or ``https`` (for the links).
    """

    def __init__(
        self,
        tokens: TokenStore,
        *,
        writer: Any = None,
        data_dir: Path | None = None,
        web: Path | None = None,
        tls: ssl.SSLContext | None = None,
        sim_speed: float | None = 1.0,
        stall_s: float = STALL_S,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self.tokens = tokens
        self.stall_s = stall_s
        self.max_queued = max_queued
        self.writer = writer
        self.data_dir = data_dir
        self.web = web if web is not None else web_dir()
        self.tls = tls
        self.bus = InProcessBus()
        self.sessions: dict[str, HostedSession] = {}
        #: sessions that ended while this server ran (the admin list shows them)
        self.ended_sessions: dict[str, HostedSession] = {}
        self.sim_speed = sim_speed
        self.server: Server | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self._conns: weakref.WeakKeyDictionary[ServerConnection, _Conn] = (
            weakref.WeakKeyDictionary()
        )
        #: each session's connections (its end closes them without a scan of all)
        self._session_conns: dict[str, weakref.WeakSet[ServerConnection]] = {}
        self._queues: set[ClientQueue] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self._file_cache: dict[Path, tuple[float, bytes]] = {}
        #: the session's plain tokens, for links printed by this process (never logged)
        self.links: dict[str, dict[str, Any]] = {}
        #: solo sessions (demo, live): their participant may steer the pacer (issue 11)
        self.solo: set[str] = set()
        self.stalled_disconnects = 0
        self.committer = Committer(writer)

    # ------------------------------------------------------------------ lifetime

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 8765) -> None:
        """Listen on ``host:port`` (port 0: any free port, see :attr:`port`)."""
        logger = logging.getLogger("websockets.server")
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
        self.server = await serve(
            self._handler,
            host,
            port,
            process_request=self._process_request,
            max_size=HARD_MAX_BYTES,
            # No permessage-deflate: frames are small, and compressing each one for each
            # client was a large share of the server's CPU (vagus bench serve --profile).
            compression=None,
            # Thousands of clients may (re)connect at once (a server restart, a class
            # joining): asyncio's default listen backlog of 100 refused them.
            backlog=LISTEN_BACKLOG,
            max_queue=64,
            write_limit=64 * 1024,
            close_timeout=2.0,
            ping_interval=20.0,
            ping_timeout=20.0,
            ssl=self.tls,
            logger=logger,
            server_header=None,
        )
        sock = next(iter(self.server.sockets))
        self.host = host
        self.port = int(sock.getsockname()[1])
        self._watchdog = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCHDOG_S)
            now = time.monotonic()
            for q in tuple(self._queues):
                q.check(now)

    async def stop(self, *, keep_served: bool = False) -> None:
        """End every session (saved), close every connection, stop listening.

        ``keep_served``: sessions of ``vagus serve`` are not ended but suspended (saved,
        and resumed by :meth:`resume_served` when the server starts again)."""
        served = {s.session for s in self.tokens.served_sessions()} if keep_served else set()
        # All at once: each waits for its own store work, which the writer thread queues.
        results = await asyncio.gather(
            *(
                hosted.suspend() if hosted.id in served else hosted.end("stopped with the server")
                for hosted in tuple(self.sessions.values())
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, Exception):
                log.error("stopping a session failed: %s", result)
        await self.committer.close()
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 5.0)

    # ------------------------------------------------------------------ sessions

    async def create_session(
        self,
        participants: list[tuple[str, str]],
        *,
        title: str | None = None,
        record: bool = True,
        served: bool = False,
        solo: bool = False,
    ) -> HostedSession:
        """Create, record and start a session; its links are in :attr:`links`. ``solo``
        (demo, live): the participant may also set the pacer, add markers and end it."""
        names = [n for n, _ in participants]
        if not names:
            raise InvalidInput("a session needs at least one participant (--participant NAME)")
        if len(set(names)) != len(names):
            raise InvalidInput(f"participant names must differ: {names}")
        hosted = self._host(participants, title, record=record)
        session_id = await hosted.start()
        self.sessions[session_id] = hosted
        if served:
            self.tokens.save_session(
                ServedSession(session_id, title, tuple(participants), hosted.created_unix_s)
            )
        self.links[session_id] = self.issue_links(session_id, names)
        if solo:
            self.solo.add(session_id)
        return hosted

    def _host(
        self, participants: list[tuple[str, str]], title: str | None, *, record: bool
    ) -> HostedSession:
        tokens = self.tokens
        holder: list[HostedSession] = []

        def on_offset(name: str, offset_s: float) -> None:
            if holder and holder[0].id:
                tokens.save_offset(holder[0].id, name, offset_s)

        hosted = HostedSession(
            participants,
            bus=self.bus,
            writer=self.writer,
            record=record and self.writer is not None,
            title=title,
            sim_speed=self.sim_speed,
            on_end=self._ended,
            on_offset=on_offset,
            committer=self.committer,
        )
        holder.append(hosted)
        return hosted

    async def resume_served(self) -> list[HostedSession]:
        """Host again the served sessions that were not ended (after a restart): recording
        continues in the same stored session, each relay resumes after the packets the
        store holds, and its clock maps as before."""
        resumed = []
        for served in self.tokens.served_sessions():
            if served.session in self.sessions:
                continue
            found = None
            if self.writer is not None:
                found = await asyncio.wrap_future(
                    self.writer._call(_resume, self.writer, served.session)
                )
                if found is None:  # deleted or ended meanwhile: not resumed
                    self.tokens.end_session(served.session)
                    continue
            hosted = self._host(list(served.participants), served.title, record=found is not None)
            recorder, counts, pacer = found if found is not None else (None, {}, None)
            if recorder is None:
                continue
            await hosted.start(
                resume=recorder,
                elapsed_s=max(0.0, time.time() - served.created_unix_s),
                offsets=self.tokens.offsets(served.session),
                counts=counts,
            )
            if pacer is not None and pacer.rate_bpm is not None and pacer.mode != "off":
                # the pacer as it was when the server stopped, set again now (a control
                # record of its own: a replay shows the pacer the pages showed)
                settings: dict[str, Any] = {
                    "mode": pacer.mode,
                    "rate_bpm": pacer.rate_bpm,
                    "inhale_fraction": pacer.inhale_fraction,
                    "hold_in_s": pacer.hold_in_s,
                    "hold_out_s": pacer.hold_out_s,
                }
                if pacer.guidance is not None:  # set by this change or an earlier one
                    settings["guidance"] = pacer.guidance
                hosted.set_pacer(settings)
            self.sessions[hosted.id] = hosted
            resumed.append(hosted)
        return resumed

    def _ended(self, hosted: HostedSession) -> None:
        self.tokens.end_session(hosted.id)
        self.sessions.pop(hosted.id, None)
        self.ended_sessions[hosted.id] = hosted
        while len(self.ended_sessions) > 100:
            del self.ended_sessions[next(iter(self.ended_sessions))]
        closing = [
            c
            for c in self._session_conns.pop(hosted.id, ())
            if (info := self._conns.get(c)) is not None and not info.review
        ]
        if closing:
            asyncio.get_running_loop().create_task(self._close_later(closing))

    async def _close_later(self, conns: list[ServerConnection]) -> None:
        """Close the sockets of an ended session once its last frames had time to go."""
        await asyncio.sleep(0.5)
        for ws in conns:
            with contextlib.suppress(Exception):
                await ws.close(1000, "session ended")

    def issue_links(self, session_id: str, participants: list[str]) -> dict[str, Any]:
        """New tokens for every role of a session, as page and websocket links (the
        ``--json`` shape: session, urls, ws, participants)."""
        practitioner = self.tokens.issue("practitioner", session_id)
        viewer = self.tokens.issue("viewer", session_id)
        parts: dict[str, dict[str, str]] = {}
        for name in participants:
            token = self.tokens.issue("participant", session_id, name)
            parts[name] = {
                "url": self.page_url(session_id, "breathe", token),
                "ws": self.ws_url(session_id, token),
                "token": token,
            }
        first = parts[participants[0]]
        return {
            "session": session_id,
            "urls": {
                "participant": first["url"],
                "practitioner": self.page_url(session_id, "dashboard", practitioner),
                "viewer": self.page_url(session_id, "view", viewer),
                "review": self.page_url(session_id, "review", practitioner),
            },
            "ws": {
                "participant": first["ws"],
                "practitioner": self.ws_url(session_id, practitioner),
                "viewer": self.ws_url(session_id, viewer),
            },
            "participants": parts,
        }

    def page_url(self, session_id: str, page: str, token: str) -> str:
        return f"{self.base_url}/s/{quote(session_id)}/{page}?token={token}"

    def ws_url(self, session_id: str, token: str, *, review: bool = False) -> str:
        scheme = "wss" if self.tls else "ws"
        host = f"[{self.host}]" if ":" in self.host else self.host
        mode = "&mode=review" if review else ""
        return f"{scheme}://{host}:{self.port}/ws/{quote(session_id)}?token={token}{mode}"

    # ------------------------------------------------------------------ HTTP

    def _response(
        self,
        status: http.HTTPStatus,
        body: bytes,
        content_type: str,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> Response:
        headers = Headers()
        headers["Content-Type"] = content_type
        headers["Content-Length"] = str(len(body))
        headers["Connection"] = "close"
        for k, v in (*_SECURITY_HEADERS, *extra):
            headers[k] = v
        return Response(status.value, status.phrase, headers, body)

    def _text(self, status: http.HTTPStatus, text: str) -> Response:
        return self._response(status, (text + "\n").encode(), "text/plain; charset=utf-8")

    def _json(self, status: http.HTTPStatus, obj: Any) -> Response:
        return self._response(status, json.dumps(obj, indent=1).encode(), "application/json")

    def _forbidden(self) -> Response:
        return self._text(
            http.HTTPStatus.FORBIDDEN,
            "403 Forbidden: this link needs a valid token (ask for a new link)",
        )

    def _file(self, path: Path, root_dir: Path | None = None) -> Response:
        """A file under ``root_dir`` (default: the web folder); 404 for anything else."""
        try:
            real = path.resolve()
            root = (root_dir if root_dir is not None else self.web).resolve()
            if root not in real.parents or not real.is_file():
                return self._text(http.HTTPStatus.NOT_FOUND, "404 Not Found")
            mtime = real.stat().st_mtime
            cached = self._file_cache.get(real)
            if cached is None or cached[0] != mtime:
                cached = (mtime, real.read_bytes())
                self._file_cache[real] = cached
        except OSError:
            return self._text(http.HTTPStatus.NOT_FOUND, "404 Not Found")
        ctype = mimetypes.guess_type(real.name)[0] or "application/octet-stream"
        if real.suffix == ".js" or real.suffix == ".mjs":
            ctype = "text/javascript"
        if ctype.startswith("text/") or ctype in ("application/json", "image/svg+xml"):
            ctype += "; charset=utf-8"
        return self._response(http.HTTPStatus.OK, cached[1], ctype)

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        try:
            url = urlsplit(request.path)
            query = parse_qs(url.query, keep_blank_values=True)
        except ValueError:
            return self._text(http.HTTPStatus.BAD_REQUEST, "400 Bad Request")
        path = url.path
        token = query["token"][0] if query.get("token") else None
        parts = [p for p in path.split("/") if p]
        method = request.method
        if parts == ["ws"]:  # the token names the session
            grant = self.tokens.check(token)
            if grant is None or grant.session is None:
                return self._forbidden()
            return self._check_ws(connection, request, grant.session, token, query)
        if parts[:1] == ["ws"] and len(parts) == 2:
            return self._check_ws(connection, request, parts[1], token, query)
        if method not in ("GET", "HEAD") and parts[:1] != ["api"]:
            return self._text(http.HTTPStatus.METHOD_NOT_ALLOWED, "405 Method Not Allowed")
        if parts[:1] == ["static"]:
            return self._file(self.web.joinpath("static", *parts[1:]), self.web / "static")
        if parts[:1] == ["s"] and len(parts) == 3 and parts[2] == "report":
            grant = self.tokens.check(token)
            if grant is None or grant.role not in REPORT_ROLES or grant.session != parts[1]:
                return self._forbidden()
            return await self._report(parts[1])
        if parts[:1] == ["s"] and len(parts) == 3 and parts[2] in PAGES:
            page, roles = PAGES[parts[2]]
            grant = self.tokens.check(token)
            if grant is None or grant.role not in roles or grant.session != parts[1]:
                return self._forbidden()
            if parts[2] != "review" and parts[1] not in self.sessions:
                return self._text(
                    http.HTTPStatus.NOT_FOUND,
                    "404: this session is not running here (it ended, or the server restarted "
                    "without it); its review link still works",
                )
            return self._file(self.web / page)
        if parts == ["admin"]:
            grant = self.tokens.check(token)
            if grant is None or grant.role != "admin":
                return self._forbidden()
            return self._file(self.web / "admin.html")
        if parts[:1] == ["api"]:
            grant = self.tokens.check(token)
            if grant is None or grant.role != "admin":
                return self._json(
                    http.HTTPStatus.FORBIDDEN, {"error": "a valid admin token is needed"}
                )
            try:
                return await self._api(method, parts[1:], query)
            except VagusError as exc:
                return self._json(http.HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        if parts == []:
            return self._text(
                http.HTTPStatus.NOT_FOUND,
                "vagus: open the link the server printed (it carries your token)",
            )
        return self._text(http.HTTPStatus.NOT_FOUND, "404 Not Found")

    async def _report(self, session_id: str) -> Response:
        """The HTML report of a stored session (``vagus report``'s document), rendered in a
        worker thread (it replays the session and draws its figures: seconds, not the
        event loop's time); 404 with the reason when the store has no such session."""
        try:
            html = await asyncio.to_thread(render_report, self.data_dir, session_id)
        except VagusError as exc:
            return self._text(http.HTTPStatus.NOT_FOUND, f"404: no report: {exc}")
        return self._response(http.HTTPStatus.OK, html.encode(), "text/html; charset=utf-8")

    def _check_ws(
        self,
        connection: ServerConnection,
        request: Request,
        session_id: str,
        token: str | None,
        query: dict[str, list[str]],
    ) -> Response | None:
        grant = self.tokens.check(token)
        if grant is None or grant.role == "admin" or grant.session != session_id:
            return self._forbidden()
        origin = request.headers.get("Origin")
        if origin is not None and not self._origin_ok(origin, request):
            return self._text(
                http.HTTPStatus.FORBIDDEN, "403 Forbidden: cross-origin websocket refused"
            )
        mode = (query.get("mode") or [""])[0]
        if mode not in ("", "live", "review", "ingest"):
            return self._text(http.HTTPStatus.BAD_REQUEST, "400: mode is live, review or ingest")
        review = mode == "review"
        if mode == "ingest" and grant.role != "participant":
            return self._forbidden()
        if review:
            if grant.role not in ("practitioner", "viewer"):
                return self._forbidden()
        elif session_id not in self.sessions:
            return self._text(http.HTTPStatus.NOT_FOUND, "404: this session is not running here")
        self._conns[connection] = _Conn(grant, session_id, review, ingest=mode == "ingest")
        if not review:
            self._session_conns.setdefault(session_id, weakref.WeakSet()).add(connection)
        # A bounded kernel send buffer: what a stalled client can hold is small, so the
        # stall policy (bus.py) applies within seconds instead of after megabytes.
        sock = connection.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        return None

    def _origin_ok(self, origin: str, request: Request) -> bool:
        host = request.headers.get("Host", "")
        scheme = "https" if self.tls else "http"
        return origin in (f"{scheme}://{host}", self.base_url)

    async def _api(self, method: str, parts: list[str], query: dict[str, list[str]]) -> Response:
        if parts == ["sessions"] and method == "GET":
            return self._json(
                http.HTTPStatus.OK,
                {
                    "sessions": [
                        self._api_session(h)
                        for h in (*self.sessions.values(), *self.ended_sessions.values())
                    ]
                },
            )
        if parts == ["sessions"] and method == "POST":
            specs = query.get("participant") or ["participant=relay"]
            participants = [parse_participant(p) for p in specs]
            title = query["title"][0] if query.get("title") else None
            if title is not None and len(title) > 200:
                raise InvalidInput("a title has at most 200 characters")
            record = (query.get("record") or ["1"])[0] not in ("0", "false", "no")
            hosted = await self.create_session(
                participants, title=title, record=record, served=True
            )
            return self._json(http.HTTPStatus.CREATED, self._api_session(hosted))
        if len(parts) >= 2 and parts[0] == "sessions":
            found = self.sessions.get(parts[1]) or self.ended_sessions.get(parts[1])
            if found is None:
                return self._json(
                    http.HTTPStatus.NOT_FOUND, {"error": f"no session {parts[1]!r} here"}
                )
            hosted = found
            if len(parts) == 2 and method == "GET":
                return self._json(http.HTTPStatus.OK, self._api_session(hosted))
            if parts[2:] == ["end"] and method == "POST":
                await hosted.end("ended by the admin")
                return self._json(http.HTTPStatus.OK, self._api_session(hosted))
            if parts[2:] == ["links"] and method == "POST" and not hosted.ended:
                self.links[hosted.id] = self.issue_links(hosted.id, list(hosted.participants))
                return self._json(http.HTTPStatus.OK, self._api_session(hosted))
        return self._json(
            http.HTTPStatus.NOT_FOUND, {"error": "no such API call; see docs/protocol.md"}
        )

    def _api_session(self, hosted: HostedSession) -> dict[str, Any]:
        out = hosted.summary()
        links = self.links.get(hosted.id)
        if links is not None:
            out.update(links)
        return out

    # ------------------------------------------------------------------ websocket

    async def _handler(self, ws: ServerConnection) -> None:
        conn = self._conns.get(ws)
        if conn is None:  # not through _check_ws (cannot happen)
            await ws.close(1008, "no token")
            return
        if conn.review:
            from vagus.service.review import run_review

            await run_review(self, ws, conn)
            return
        hosted = self.sessions.get(conn.session)
        if hosted is None or hosted.ended:
            await ws.close(1000, "session ended")
            return
        await self._serve_live(ws, conn, hosted)

    def _frame(self, conn: _Conn, kind: str, **fields: Any) -> OutFrame:
        return OutFrame.make(conn.session, {"type": kind, **fields})

    def make_queue(self, ws: ServerConnection, conn: _Conn) -> ClientQueue:
        """A connection's queue, its role's filter and the stall policy."""
        grant = conn.grant
        if conn.ingest:

            def accept(frame: OutFrame) -> bool:
                return False
        elif grant.role == "participant":
            mine = grant.participant

            def accept(frame: OutFrame) -> bool:
                return (frame.participant == mine or frame.participant is None) and (
                    frame.kind != "marker"
                )
        else:

            def accept(frame: OutFrame) -> bool:
                return True

        def on_stall(reason: str) -> None:
            self.stalled_disconnects += 1
            log.info("closing a slow client of session %s: %s", conn.session, reason)
            asyncio.get_running_loop().create_task(ws.close(1008, "too slow: reconnect"))

        q = ClientQueue(accept, on_stall, stall_s=self.stall_s, max_queued=self.max_queued)
        q.direct = self._direct_sender(ws, conn)
        self._queues.add(q)
        return q

    @staticmethod
    def _direct_sender(ws: ServerConnection, conn: _Conn) -> Callable[[list[OutFrame]], bool]:
        """Frames sent at once from the publishing code, while the connection's queue is
        empty and no send is waiting: one message (a ``batch`` for several frames)
        written to the socket's buffer, no wake-up of the connection's pump task (that
        hand-over was a large part of the server's CPU per packet, ``vagus bench
        serve``). It refuses (the frames are queued and the pump sends them, waiting
        for the socket) when the socket's buffer is over its limit, the connection is
        closing, or the frames would make a message over :data:`BATCH_MAX_CHARS`."""
        session_json = dumps(conn.session)

        def direct(frames: list[OutFrame]) -> bool:
            if (
                ws.paused
                or ws.protocol.state is not State.OPEN
                or ws.send_in_progress is not None
                or ws.transport.is_closing()
            ):
                return False
            if len(frames) == 1:
                data = frames[0].text(conn.seq + 1)
            else:
                if any(frame.kind == "hello" for frame in frames):
                    return False  # hello alone: the pump splits
                seq = conn.seq
                data = batch_text(session_json, [f.text(seq + i) for i, f in enumerate(frames, 1)])
                if len(data) > BATCH_MAX_CHARS:
                    return False
            conn.seq += len(frames)
            try:
                ws.protocol.send_text(data.encode())
                ws.send_data()
            except Exception as exc:  # as websockets' own send: the connection ends
                log.info("closing a client of session %s: send failed: %s", conn.session, exc)
                ws.transport.abort()
            return True

        return direct

    async def pump(self, ws: ServerConnection, conn: _Conn, q: ClientQueue) -> None:
        """Send the queue's frames, numbering them; ends when the socket closes.

        The frames queued together go in one websocket message, a ``batch``
        (docs/protocol.md): a packet's beat, metrics and spectrum cost one send, not
        three (the sends were the largest share of the server's CPU in ``vagus bench
        serve --profile``). A ``hello`` always goes alone, first; a batch holds at most
        :data:`BATCH_MAX_CHARS` of frames."""
        session_json = dumps(conn.session)
        try:
            while True:
                frames = await q.get_batch()
                if not frames:
                    return
                texts: list[str] = []
                size = 0
                for frame in frames:
                    conn.seq += 1
                    text = frame.text(conn.seq)
                    if frame.kind == "hello" or size + len(text) > BATCH_MAX_CHARS:
                        if texts:
                            await self._send(ws, q, texts, session_json)
                            texts, size = [], 0
                        if frame.kind == "hello":
                            await self._send(ws, q, [text], session_json)
                            continue
                    texts.append(text)
                    size += len(text)
                if texts:
                    await self._send(ws, q, texts, session_json)
        except ConnectionClosed:
            return

    @staticmethod
    async def _send(ws: ServerConnection, q: ClientQueue, texts: list[str], session: str) -> None:
        q.sending_since = time.monotonic()
        await ws.send(texts[0] if len(texts) == 1 else batch_text(session, texts))
        q.sending_since = None

    def reply(self, q: ClientQueue, conn: _Conn, kind: str, **fields: Any) -> None:
        q.put(self._frame(conn, kind, **fields))

    def error(self, q: ClientQueue, conn: _Conn, exc: FrameError) -> None:
        self.reply(q, conn, "error", code=exc.code, message=str(exc), re=exc.re)

    def rate_ok(self, conn: _Conn) -> bool:
        now = time.monotonic()
        conn.tokens = min(MESSAGES_BURST, conn.tokens + (now - conn.last_refill) * MESSAGES_PER_S)
        conn.last_refill = now
        if conn.tokens < 1.0:
            return False
        conn.tokens -= 1.0
        return True

    async def _serve_live(self, ws: ServerConnection, conn: _Conn, hosted: HostedSession) -> None:
        grant = conn.grant
        q = self.make_queue(ws, conn)
        participant = grant.participant if grant.role == "participant" else None
        link = hosted.participants.get(participant) if participant is not None else None
        if grant.role == "participant" and link is None:
            await ws.close(1008, "this participant is not in the session")
            return
        hello: dict[str, Any] = {
            "type": "hello",
            "participant": participant,
            "role": grant.role,
            "mode": "live",
            "title": hosted.title,
            "participants": hosted.participants_info(participant),
            "server_time_s": round(hosted.now_s(), 4),
            "server_unix_s": time.time(),
            "recording": hosted.recording,
            "ended": hosted.ended,
            "limits": {
                "max_message_bytes": APP_MAX_BYTES,
                "messages_per_s": MESSAGES_PER_S,
                "max_packets_per_frame": MAX_PACKETS_PER_FRAME,
            },
            "state": hosted.state.snapshot(participant),
            "solo": hosted.id in self.solo,
        }
        known = self.links.get(hosted.id)
        if grant.role == "practitioner" and known is not None:  # the dashboard's invite links
            hello["links"] = {
                "participants": {n: p["url"] for n, p in known["participants"].items()},
                "viewer": known["urls"]["viewer"],
            }
        if link is not None:
            hello["packets_upto"] = link.durable_upto
        q.put(OutFrame.make(hosted.id, hello))
        # No await between the snapshot and the subscription: nothing missed, nothing twice.
        # A relay's connection takes no events: not subscribed at all (one subscriber
        # less to offer every frame of the session to).
        unsubscribe: Callable[[], None] = (
            _nothing if conn.ingest else self.bus.subscribe(hosted.id, q)
        )
        unlisten: Callable[[], None] | None = None
        last_packets_seq: list[int | None] = [None]
        if link is not None and link.source == "relay":

            def on_durable(name: str, upto: int) -> None:
                if name == participant:
                    self.reply(q, conn, "ack", re=last_packets_seq[0], packets_upto=upto)

            unlisten = hosted.on_durable(on_durable)
        pump = asyncio.create_task(self.pump(ws, conn, q))
        relaying = False
        try:
            async for message in ws:
                if hosted.ended:
                    self.error(q, conn, FrameError("ended", "the session has ended"))
                    continue
                if not self.rate_ok(conn):
                    self.error(
                        q,
                        conn,
                        FrameError(
                            "rate_limited",
                            f"more than {MESSAGES_PER_S:g} messages/s: this one was dropped; "
                            "send packets in batches",
                        ),
                    )
                    continue
                try:
                    cmd = parse_client_frame(message, session=hosted.id)
                    if isinstance(cmd, PacketsCmd):
                        last_packets_seq[0] = cmd.seq
                        if not relaying and link is not None:
                            relaying = True
                            link.relay_clients += 1
                            hosted.set_link(link.name, connected=True)
                    self._apply(hosted, grant, cmd, q, conn)
                except FrameError as exc:
                    self.error(q, conn, exc)
                except Exception:  # a bug: reported, the connection lives on
                    log.exception("session %s: handling a client frame failed", hosted.id)
                    self.error(q, conn, FrameError("internal", "the server failed on this frame"))
        except ConnectionClosed:
            pass
        finally:
            unsubscribe()
            if unlisten is not None:
                unlisten()
            self._queues.discard(q)
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
            if relaying and link is not None:
                link.relay_clients -= 1
                if link.relay_clients == 0 and not hosted.ended:
                    hosted.set_link(link.name, connected=False)

    def _apply(
        self,
        hosted: HostedSession,
        grant: Grant,
        cmd: Any,
        q: ClientQueue,
        conn: _Conn,
    ) -> None:
        role = grant.role
        if isinstance(cmd, PingCmd):
            self.reply(
                q,
                conn,
                "pong",
                re=cmd.seq,
                client_time=cmd.client_time,
                server_time_s=round(hosted.now_s(), 4),
            )
            return
        if isinstance(cmd, ReviewCmd):
            raise FrameError(
                "conflict", "review commands need a review connection (&mode=review)", cmd.seq
            )
        if isinstance(cmd, PacerCmd | MarkerCmd | EndCmd | RecordingCmd):
            solo = role == "participant" and hosted.id in self.solo
            if role != "practitioner" and not (solo and not isinstance(cmd, RecordingCmd)):
                raise FrameError(
                    "forbidden",
                    f"a {role} cannot change the session (only the practitioner)",
                    cmd.seq,
                )
            try:
                if isinstance(cmd, PacerCmd):
                    hosted.set_pacer(cmd.changes)
                elif isinstance(cmd, MarkerCmd):
                    hosted.add_marker(cmd.text, cmd.t_s)
            except FrameError as exc:
                exc.re = cmd.seq
                raise
            self.reply(q, conn, "ack", re=cmd.seq)
            if isinstance(cmd, EndCmd):
                asyncio.get_running_loop().create_task(self._end(hosted))
            elif isinstance(cmd, RecordingCmd):
                asyncio.get_running_loop().create_task(hosted.set_recording(cmd.on))
            return
        if isinstance(cmd, PacketsCmd | StatusCmd):
            if role != "participant":
                raise FrameError(
                    "forbidden", f"a {role} cannot send {type(cmd).__name__[:-3].lower()}", cmd.seq
                )
            name = grant.participant
            assert name is not None
            if cmd.participant is not None and cmd.participant != name:
                raise FrameError(
                    "conflict", f"this token is {name!r}'s, not {cmd.participant!r}'s", cmd.seq
                )
            link = hosted.participants[name]
            if isinstance(cmd, StatusCmd):
                hosted.set_link(
                    name,
                    connected=cmd.connected,
                    battery_pct=cmd.battery_pct,
                    battery_given=cmd.battery_given,
                )
                return
            if link.source != "relay":
                raise FrameError(
                    "conflict",
                    f"{name!r} is fed by {link.source} on the server, not by a relay",
                    cmd.seq,
                )
            try:
                hosted.take_packets(name, cmd.items)
            except FrameError as exc:
                exc.re = cmd.seq
                raise
            return
        raise FrameError("unknown_type", "unhandled frame", getattr(cmd, "seq", None))

    async def _end(self, hosted: HostedSession) -> None:
        await hosted.end("ended by the practitioner")


def _nothing() -> None:
    pass


def dumps_links(links: dict[str, Any]) -> str:
    """The ``--json`` first line: session, urls, ws (and participants)."""
    return dumps(links)


def _resume(writer: Any, session_id: str) -> tuple[Any, dict[str, int], PacerChange | None] | None:
    """In the store writer's thread: a session writer that appends to an existing,
    unended session, how many packet/gap records each participant has there (the
    relays' sequence numbers stored), and the session's last pacer change (to set the
    pacer again as it was). None if the session is gone or ended.

    Uses the writer's and store's internals (``_recorders``, ``_recording``): the
    public writer API only creates sessions.
    """
    from collections import Counter

    from vagus.exceptions import StoreError
    from vagus.store.base import ControlRecord, GapRecord, PacketRecord
    from vagus.store.recorder import Recorder
    from vagus.store.writer import SessionWriter

    store = writer.store
    if store is None:
        return None
    try:
        info = store.get_session(session_id)
        if info.ended_unix_s is not None:
            return None
        counts: Counter[str] = Counter()
        pacer: PacerChange | None = None
        guidance: str | None = None  # the latest change that set it (None: keep)
        for r in store.iter_input(info.id):
            if isinstance(r, PacketRecord | GapRecord):
                counts[r.participant] += 1
            elif isinstance(r, ControlRecord) and isinstance(r.event, PacerChange):
                pacer = r.event
                if pacer.guidance is not None:
                    guidance = pacer.guidance
        if pacer is not None and pacer.guidance is None and guidance is not None:
            pacer = dataclasses.replace(pacer, guidance=guidance)
    except StoreError:
        return None
    recorder = Recorder(store, info.id, started_unix_s=info.started_unix_s)
    recording = getattr(store, "_recording", None)
    if isinstance(recording, set):
        recording.add(info.id)  # its heartbeat is refreshed again: it lists as recording
    writer._recorders.append(recorder)
    return SessionWriter(writer, recorder, store.location), dict(counts), pacer
