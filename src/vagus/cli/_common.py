"""Helpers shared by the command modules: argument types, terminal output, stdin lines
and the exit status after Ctrl-C."""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "ProgressBar",
    "StdinLines",
    "foreground_tty",
    "interrupted_status",
    "note",
    "parse_speed",
    "positive_float",
    "status_line",
]


def interrupted_status(sig: int = signal.SIGINT) -> int:
    """The exit status of a command ended by signal ``sig`` (Ctrl-C: 130), as shells
    report a process killed by it (128 + the signal number). ``monitor``, ``record`` and
    ``replay`` end cleanly on Ctrl-C (record saves the session) and then exit with it."""
    return 128 + int(sig)


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def parse_speed(text: str) -> float | None:
    """argparse type for ``--speed``: a positive number (1 is real time), or ``max``
    (returned as None: as fast as possible)."""
    if text.strip().lower() == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a positive number or max (1 is real time, 4 four times faster)"
        )
    return value


def status_line(text: str) -> None:
    """Rewrite the current terminal line (a live one-line status); plain lines if not a TTY."""
    if sys.stderr.isatty():
        sys.stderr.write("\r\x1b[2K" + text)
    else:
        sys.stderr.write(text + "\n")
    sys.stderr.flush()


class ProgressBar:
    """A progress bar on stderr for long work: ``label [#####.....]  50 %``.

    On a terminal the line is rewritten in place, at most ten times a second; on
    anything else (a log, a pipe) one plain line is written per stage, so logs stay
    short. Use :meth:`update` for counted work and call the bar as
    ``bar(stage, fraction)`` for work in named stages (the report's progress callback).
    """

    _WIDTH = 30

    def __init__(
        self,
        label: str,
        *,
        total: int | None = None,
        stream: TextIO | None = None,
        enabled: bool = True,
    ) -> None:
        self.label = label
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()
        self._stage: str | None = None
        self._next_draw = 0.0
        self._drawn = False

    def update(self, done: int, total: int | None = None) -> None:
        """Counted progress: ``done`` of ``total`` (or of the total given at creation)."""
        total = total if total is not None else self.total
        if not self.tty or not total or total <= 0:
            return
        self._draw(self.label, min(1.0, done / total), force=done >= total)

    def __call__(self, stage: str, fraction: float) -> None:
        """Staged progress: ``stage`` is a short description, ``fraction`` in [0, 1]."""
        if not self.enabled:
            return
        if stage != self._stage:
            if self._drawn:
                self.stream.write("\n")
                self._drawn = False
            self._stage = stage
            self._next_draw = 0.0
            if not self.tty:
                self.stream.write(f"{self.label}: {stage}…\n")
                self.stream.flush()
                return
        if self.tty:
            self._draw(f"{self.label}: {stage:<24}", fraction, force=fraction >= 1.0)

    def _draw(self, text: str, fraction: float, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now < self._next_draw:
            return
        self._next_draw = now + 0.1
        fraction = max(0.0, min(1.0, fraction))
        fill = round(fraction * self._WIDTH)
        bar = "#" * fill + "." * (self._WIDTH - fill)
        self.stream.write(f"\r\x1b[2K{text} [{bar}] {100 * fraction:5.1f} %")
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        """End the bar's line (on a terminal)."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def note(text: str) -> None:
    """A line of its own on stderr, above a live status line (which it clears first)."""
    prefix = "\r\x1b[2K" if sys.stderr.isatty() else ""
    sys.stderr.write(prefix + text + "\n")
    sys.stderr.flush()


def foreground_tty(stream: TextIO | None) -> bool:
    """True if ``stream`` is a terminal this process may read: a background job
    (``vagus record &``) reading its terminal would be stopped (SIGTTIN)."""
    try:
        if stream is None or not stream.isatty():
            return False
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    tcgetpgrp = getattr(os, "tcgetpgrp", None)
    if tcgetpgrp is None:  # Windows: no job control
        return True
    try:
        return bool(tcgetpgrp(fd) == os.getpgrp())
    except OSError:  # not our controlling terminal: no job control to stop us
        return True


class StdinLines:
    """Lines typed on (or piped into) stdin, handed to ``on_line`` in the event loop
    without ever blocking it.

    Where the loop can watch the file descriptor (POSIX: a terminal or a pipe) it does
    (``loop.add_reader``), so nothing is left behind by :meth:`close`; elsewhere
    (Windows, a regular file) a daemon thread reads and hands each chunk to the loop.
    Raw ``os.read`` on the descriptor, never ``sys.stdin``, so no buffer lock is held
    at exit. A last line without a newline is handed out at end of input.
    """

    def __init__(self, on_line: Callable[[str], None], fd: int | None = None) -> None:
        self._on_line = on_line
        self._fd = sys.stdin.fileno() if fd is None else fd
        self._buffer = b""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watching = False
        self.closed = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start reading (call from within ``loop``)."""
        self._loop = loop
        try:
            loop.add_reader(self._fd, self._readable)
            self._watching = True
        except (NotImplementedError, OSError, ValueError, RuntimeError):
            thread = threading.Thread(target=self._read_in_thread, name="vagus-stdin", daemon=True)
            thread.start()

    def close(self) -> None:
        """Stop reading; lines not yet handed out are dropped."""
        if self._watching and self._loop is not None:
            self._watching = False
            self._loop.remove_reader(self._fd)
        self.closed = True

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        self._feed(data)

    def _read_in_thread(self) -> None:
        loop = self._loop
        assert loop is not None
        while True:
            try:
                data = os.read(self._fd, 4096)
            except OSError:
                data = b""
            try:
                loop.call_soon_threadsafe(self._feed, data)
            except RuntimeError:  # the loop is closed: the command is over
                return
            if not data:
                return

    def _feed(self, data: bytes) -> None:
        if self.closed:
            return
        if not data:  # end of input
            rest, self._buffer = self._buffer, b""
            self.close()
            if rest.strip():
                self._on_line(rest.decode("utf-8", "replace").rstrip("\r"))
            return
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        for line in lines:
            if self.closed:
                return
            self._on_line(line.decode("utf-8", "replace").rstrip("\r"))
