"""Shared pieces of the browser tests (tests/test_browser_*.py).

A real server (``vagus demo`` / ``vagus serve``, started as a subprocess on a free port
with ``--no-browser --json``; its links are the first stdout line) and a real browser:
Debian's ``chromium`` driven by Playwright's Python package (``executable_path`` from
PATH; Playwright never downloads a browser). Without chromium the tests skip and say so;
CI installs it (tests/install-system-deps.sh).

How a browser test uses it (the fixtures ``chromium`` and ``pages`` are in
tests/conftest.py)::

    from support.browser import VagusServer, server_fixture

    demo = server_fixture("demo", "--rate", "20")  # one server for the module

    def test_x(demo: VagusServer, pages: Pages) -> None:
        breathe, dash = pages.participant_and_practitioner(demo)  # both loaded and ready
        ...
        pages.console.assert_clean()  # every page closes when the test ends
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "img"
#: Environment variable: save screenshots to docs/img (the README's pictures) when "1";
#: otherwise they go to the test's tmp_path.
SAVE_SCREENSHOTS_ENV = "VAGUS_SAVE_SCREENSHOTS"


def chromium_path() -> str:
    """Debian's chromium, or skip the test saying how to get it."""
    path = shutil.which("chromium")
    if path is None:
        pytest.skip(
            "chromium not installed (Debian package `chromium`: tests/install-system-deps.sh)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("Playwright's Python package not installed (pip install -e '.[dev]')")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class VagusServer:
    """``vagus ARGS --no-browser --json --port P --data-dir D`` as a subprocess.

    ``links`` is the JSON object of its first stdout line. :meth:`restart` stops it
    (SIGINT: a clean stop that saves everything) and starts the same command again on the
    same port and data directory.
    """

    def __init__(self, args: list[str], data_dir: Path, *, port: int | None = None) -> None:
        self.args = args
        self.data_dir = data_dir
        self.port = port or free_port()
        self.proc: subprocess.Popen[str] | None = None
        self.links: dict[str, Any] = {}
        self.output: list[str] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout_s: float = 30.0) -> dict[str, Any]:
        cmd = [sys.executable, "-m", "vagus", *self.args, "--json", "--port", str(self.port)]
        cmd += ["--data-dir", str(self.data_dir)]
        if self.args[0] in ("demo", "live"):
            cmd.append("--no-browser")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        line = self._first_line(timeout_s)
        self.links = json.loads(line)
        # Drain the rest so the child never blocks on a full pipe.
        for stream in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=self._drain, args=(stream,), daemon=True).start()
        return self.links

    def _first_line(self, timeout_s: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        result: list[str] = []
        t = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()))  # type: ignore[union-attr]
        t.daemon = True
        t.start()
        t.join(timeout_s)
        if not result or not result[0].strip():
            err = ""
            if self.proc.poll() is not None and self.proc.stderr is not None:
                err = self.proc.stderr.read()
            self.stop()
            raise AssertionError(f"`vagus {' '.join(self.args)}` printed no links: {err[-2000:]}")
        return result[0]

    def _drain(self, stream: Any) -> None:
        with contextlib.suppress(ValueError, OSError):
            for line in stream:
                self.output.append(line)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        return proc.returncode

    def restart(self) -> dict[str, Any]:
        self.stop()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the port is free again once the old one exits
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", self.port))
                    break
                except OSError:
                    time.sleep(0.1)
        return self.start()

    def api(self, method: str, path: str, **params: str | list[str]) -> Any:
        """Call the admin JSON API of ``vagus serve`` with its admin token."""
        from urllib.parse import parse_qs, urlencode, urlsplit

        admin = self.links.get("admin") or self.links.get("urls", {}).get("admin")
        token = parse_qs(urlsplit(admin).query)["token"][0]
        query = urlencode({"token": token, **params}, doseq=True)
        req = urllib.request.Request(f"{self.base}/api/{path}?{query}", method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def __enter__(self) -> VagusServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def server_fixture(*args: str) -> Callable[..., Iterator[VagusServer]]:
    """A module-scoped fixture: ``vagus ARGS`` running for the module's tests, on a free
    port with its own data directory, stopped (SIGINT, a clean stop) after the last test.

    Assign it to the fixture's name in the test module: ``demo = server_fixture("demo")``.
    """

    @pytest.fixture(scope="module")
    def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VagusServer]:
        with VagusServer(list(args), tmp_path_factory.mktemp("data")) as running:
            yield running

    return server


class Console:
    """Every console error and uncaught page error of the pages it watches."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allow: list[str] = []

    def watch(self, page: Any) -> Any:
        def on_console(msg: Any) -> None:
            if msg.type == "error" and not any(a in msg.text for a in self.allow):
                self.errors.append(f"{page.url}: {msg.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        return page

    def assert_clean(self) -> None:
        assert self.errors == [], "console errors:\n" + "\n".join(self.errors)


@contextlib.contextmanager
def browser() -> Iterator[Any]:
    """A headless Debian chromium under Playwright (sync API)."""
    exe = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def new_page(
    b: Any,
    console: Console,
    *,
    width: int = 1440,
    height: int = 900,
    first_notice_seen: bool = True,
    **kw: Any,
) -> Any:
    """A page in a fresh context (by default the first-session notice already seen);
    ``kw`` are Playwright's context options (``is_mobile``, ``color_scheme``, ...)."""
    ctx = b.new_context(viewport={"width": width, "height": height}, **kw)
    if first_notice_seen:
        ctx.add_init_script(
            "try { localStorage.setItem('vagus.firstNoticeSeen', '1'); } catch (e) {}"
        )
    return console.watch(ctx.new_page())


#: The page script sets this once it has its state (every page: breathe, dashboard, ...).
READY = "document.body.dataset.ready === '1'"


class Pages:
    """The pages one test opens: each in a fresh context of ``browser``, all watched by one
    :class:`Console` (``console``), all closed by :meth:`close` (the ``pages`` fixture
    calls it when the test ends, passed or failed)."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.console = Console()
        self._contexts: list[Any] = []

    def new(self, **kw: Any) -> Any:
        """A blank page; ``kw`` as :func:`new_page` (size, first_notice_seen, context
        options). Route or listen on it before its first ``goto``."""
        page = new_page(self.browser, self.console, **kw)
        self._contexts.append(page.context)
        return page

    def open(self, url: str, **kw: Any) -> Any:
        """:meth:`new`, then load ``url`` and wait until the page says it is ready."""
        page = self.new(**kw)
        page.goto(url)
        page.wait_for_function(READY)
        return page

    def participant_and_practitioner(
        self, server: VagusServer, *, width: int = 800, height: int = 700, **kw: Any
    ) -> tuple[Any, Any]:
        """The server's breathing view (``width`` x ``height``, ``kw`` for its context)
        and its dashboard (1440 x 900), both loaded and ready."""
        urls = server.links["urls"]
        breathe = self.open(urls["participant"], width=width, height=height, **kw)
        return breathe, self.open(urls["practitioner"])

    def close(self) -> None:
        from playwright.sync_api import Error as PlaywrightError

        for ctx in self._contexts:
            with contextlib.suppress(PlaywrightError):  # the browser is gone already
                ctx.close()
        self._contexts.clear()


def edit_pacer_states(page: Any, edit: Callable[[dict[str, Any]], bool]) -> None:
    """Route ``page``'s websocket (``/ws/``) through this process: each ``pacer_state``
    the server sends (a frame of its own, one in a ``batch`` message, or the pacer in
    ``hello``'s state) goes to ``edit``, which may change it in place and returns whether
    it did; a message so changed reaches the page re-encoded, every other message as the
    server sent it. Call it before the page's first ``goto``. E.g. an ``edit`` that sets
    ``st["guidance"] = "subtle"`` shows the faded pacer without waiting minutes for real
    coherence to stay high."""

    def relay(message: str | bytes) -> str | bytes:
        if isinstance(message, bytes):
            return message
        msg = json.loads(message)
        changed = False
        for frame in msg.get("frames", []) if msg.get("type") == "batch" else [msg]:
            st = frame.get("state", {}).get("pacer") if frame.get("type") == "hello" else frame
            if isinstance(st, dict) and st.get("type") == "pacer_state" and edit(st):
                changed = True
        return json.dumps(msg) if changed else message

    def route(ws: Any) -> None:
        server = ws.connect_to_server()
        server.on_message(lambda m: ws.send(relay(m)))

    page.route_web_socket(re.compile(r"/ws/"), route)


def wait_faded_but_moving(page: Any, looks: int = 10) -> None:
    """Wait until the breathing view says its pacer is "subtle" and draws it as a faint cue
    (``data-alpha`` below 0.3: it fades over a few seconds), then check that the cue
    still moves with the pacer: more than 3 drawn sizes in ``looks`` looks 150 ms apart."""
    page.wait_for_function("document.body.dataset.guidance === 'subtle'")
    page.wait_for_function("Number(document.querySelector('#pacer').dataset.alpha) < 0.3")
    scales = set()
    for _ in range(looks):
        scales.add(page.evaluate("() => document.querySelector('#pacer').dataset.scale"))
        page.wait_for_timeout(150)
    assert len(scales) > 3, scales


def screenshot(page: Any, name: str, tmp_path: Path) -> Path:
    """Save a screenshot: to docs/img/NAME.png when $VAGUS_SAVE_SCREENSHOTS=1 (the README's
    pictures), else under the test's tmp_path."""
    folder = SCREENSHOTS if os.environ.get(SAVE_SCREENSHOTS_ENV) == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def sample_pacer(
    page: Any, seconds: float, selector: str = "#pacer"
) -> list[tuple[float, float, float]]:
    """Sample what the page draws every animation frame for ``seconds``: a list of
    (the page's clock when that frame was computed (s), drawn scale, drawn phase) read
    from the canvas's data- attributes (the test hook), one row per drawn frame."""
    rows: list[list[float]] = page.evaluate(
        """([sel, ms]) => new Promise((resolve) => {
            const el = document.querySelector(sel);
            const out = [];
            const t0 = performance.now();
            function step() {
              const t = performance.now();
              const s = el.dataset.scale, p = el.dataset.phase, tt = Number(el.dataset.t);
              const last = out.length ? out[out.length - 1][0] : null;
              if (s !== "" && p !== "" && tt !== last) out.push([tt, Number(s), Number(p)]);
              if (t - t0 < ms) requestAnimationFrame(step); else resolve(out);
            }
            requestAnimationFrame(step);
        })""",
        [selector, seconds * 1000],
    )
    return [(r[0], r[1], r[2]) for r in rows]
