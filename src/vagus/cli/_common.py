"""Helpers shared by the command modules: argument types, terminal output, stdin lines
and the exit status after Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "MAX_LINE_CHARS",
    "ProgressBar",
    "StdinLines",
    "fit_status",
    "foreground_tty",
    "interrupted_status",
    "note",
    "parse_speed",
    "positive_float",
    "status_line",
    "stop_on_signals",
    "terminal_columns",
    "termios_error",
]


def interrupted_status(sig: int = signal.SIGINT) -> int:
    """The exit status of a command ended by signal ``sig`` (Ctrl-C: 130), as shells
    report a process killed by it (128 + the signal number). ``monitor``, ``record`` and
    ``replay`` end cleanly on Ctrl-C (record saves the session) and then exit with it."""
    return 128 + int(sig)


def stop_on_signals(
    loop: asyncio.AbstractEventLoop, stop: asyncio.Event, stopped_by: list[signal.Signals]
) -> list[signal.Signals]:
    """Make SIGINT and SIGTERM set ``stop`` (each appended to ``stopped_by``), so a live
    command ends the same way, with its summary, whichever signal came. Returns the signals
    handled; the caller removes them with ``loop.remove_signal_handler`` in ``finally``.
    Where the loop cannot take signal handlers (not the main thread, Windows) none are set."""

    def on_signal(sig: signal.Signals) -> None:
        stopped_by.append(sig)
        stop.set()

    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
            handled.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, Windows
            pass
    return handled


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


#: Status lines on the terminal now (the cursor is on the last of them).
_drawn_lines = 0


def _clear_status() -> str:
    """The terminal codes that erase the status lines drawn (the cursor at their start)."""
    global _drawn_lines
    up = f"\x1b[{_drawn_lines - 1}A" if _drawn_lines > 1 else ""
    _drawn_lines = 0
    return "\r" + up + "\x1b[J"


def status_line(text: str) -> None:
    """Rewrite the current terminal line (a live one-line status); plain lines if not a TTY.

    On a terminal the line is fitted to the terminal's width (a line that wrapped could
    not be rewritten in place): :func:`fit_status`."""
    status_lines([text])


def status_lines(lines: Sequence[str]) -> None:
    """Rewrite the live status in place: one line per participant (the cursor is moved
    back up over the lines drawn before); plain lines if not a TTY. Each line is fitted
    to the terminal's width (:func:`fit_status`)."""
    global _drawn_lines
    if sys.stderr.isatty():
        width = terminal_columns()
        text = "\n".join(fit_status(line, width) for line in lines)
        if len(lines) == 1 and _drawn_lines <= 1:
            sys.stderr.write("\r\x1b[2K" + text)  # one line: as it always was
        else:
            sys.stderr.write(_clear_status() + text)
        _drawn_lines = len(lines)
    else:
        sys.stderr.write("".join(line + "\n" for line in lines))
    sys.stderr.flush()


def end_status() -> None:
    """Leave the status lines on the terminal and move below them."""
    global _drawn_lines
    if sys.stderr.isatty() and _drawn_lines:
        sys.stderr.write("\n")
        sys.stderr.flush()
    _drawn_lines = 0


#: Status fields (separated by two spaces) left out first when the line is too wide, in
#: this order; a lost contact is always kept.
#: (A field ending in a space is a prefix; the others are whole fields.)
_OPTIONAL_FIELDS = (
    "battery ",
    "contact ok",
    "contact n/a",
    "packets ",
    "beats ",
    "gaps 0",
    "malformed ",
)


def fit_status(text: str, width: int) -> str:
    """``text`` (fields separated by two spaces) fitted to ``width`` columns: the optional
    fields (battery, contact while ok, packets or beats, malformed count) are left out
    first, then the middle is cut, keeping the last field (``REC <id>``, ``NOT
    RECORDING``, the line being typed)."""
    if len(text) < width:
        return text
    fields = text.strip().split("  ")
    for name in _OPTIONAL_FIELDS:
        if name.endswith(" "):
            fields = [f for f in fields if not f.startswith(name)]
        else:
            fields = [f for f in fields if f != name]
        if len("  ".join(fields)) < width:
            return "  ".join(fields)
    head, tail = "  ".join(fields[:-1]), fields[-1]
    room = width - 1 - len(tail) - 3
    if room >= 10:
        return f"{head[:room]}…  {tail}"
    return "  ".join(fields)[: max(width - 2, 1)] + "…"


def terminal_columns() -> int:
    """The width of the terminal on stderr (80 if unknown)."""
    import shutil

    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns or 80
    except (AttributeError, OSError, ValueError):
        return shutil.get_terminal_size().columns or 80


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
    """A line of its own on stderr, above the live status lines (which it clears first;
    they are drawn again below it)."""
    prefix = (_clear_status() if _drawn_lines > 1 else "\r\x1b[2K") if sys.stderr.isatty() else ""
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


#: The longest line :class:`StdinLines` hands out (characters): a marker's text is at most
#: this long; a longer line is dropped with a note, and the lines after it are kept.
MAX_LINE_CHARS = 1000


class StdinLines:
    """Lines typed on (or piped into) stdin, handed to ``on_line`` in the event loop
    without ever blocking it.

    Where the loop can watch the file descriptor (POSIX: a terminal or a pipe) it does
    (``loop.add_reader``), so nothing is left behind by :meth:`close`; elsewhere
    (Windows, a regular file) a daemon thread reads and hands each chunk to the loop.
    Raw ``os.read`` on the descriptor, never ``sys.stdin``, so no buffer lock is held
    at exit. A last line without a newline is handed out at end of input.

    Lines are bounded: one longer than ``max_chars`` characters (UTF-8) is never
    buffered whole; its bytes are counted and dropped as they arrive (each read is
    looked at once, so the work per read is bounded by the read size), ``on_too_long``
    is told its length in bytes once its newline (or the end of input) arrives, and the
    lines after it are handed out as usual.

    ``edit=True`` on a terminal (used while a live status line is drawn on it): the
    terminal's echo and line editing are switched off while reading (and restored by
    :meth:`close`), so typed text never runs into the status line; the line being typed
    is kept here instead (:attr:`pending_text`, backspace, Ctrl-U and Ctrl-W edit it;
    other control keys and escape sequences such as the arrow keys are ignored), and
    ``on_edit`` is called after each change so the caller can redraw it. Ctrl-C and
    Ctrl-Z still send their signals.
    """

    _READ_BYTES = 65536

    def __init__(
        self,
        on_line: Callable[[str], None],
        fd: int | None = None,
        *,
        max_chars: int = MAX_LINE_CHARS,
        on_too_long: Callable[[int], None] | None = None,
        edit: bool = False,
        on_edit: Callable[[], None] | None = None,
    ) -> None:
        self._on_line = on_line
        self._edit_wanted = edit
        self._on_edit = on_edit
        self.editing = False  # the terminal's echo is off and lines are edited here
        self._saved_mode: list[Any] | None = None
        self._escape = 0  # inside an escape sequence: 1 after ESC, 2 after ESC [
        self._on_too_long = on_too_long
        self._fd = sys.stdin.fileno() if fd is None else fd
        self.max_chars = max_chars
        # UTF-8 takes at most 4 bytes a character: more bytes than this is too long.
        self._max_bytes = 4 * max_chars + 2  # and a "\r\n"
        self._parts: list[bytes] = []  # the current line so far
        self._size = 0  # its length in bytes (counted on, not kept, once too long)
        self._too_long = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watching = False
        self.closed = False

    @property
    def pending_text(self) -> str:
        """The line being typed (``edit`` mode), "" if none."""
        if not self.editing:
            return ""
        if self._too_long:
            return f"(a line of {self._size:,} bytes: too long, Enter drops it)"
        return b"".join(self._parts).decode("utf-8", "replace")

    def _start_editing(self) -> None:
        try:
            import termios

            if not os.isatty(self._fd):
                return
            mode = termios.tcgetattr(self._fd)
            self._saved_mode = [*mode[:6], list(mode[6])]
            mode[3] &= ~(termios.ICANON | termios.ECHO)
            mode[6][termios.VMIN] = 1
            mode[6][termios.VTIME] = 0
            termios.tcsetattr(self._fd, termios.TCSANOW, mode)
        except (ImportError, OSError, termios_error()):
            self._saved_mode = None
            return
        self.editing = True

    def _stop_editing(self) -> None:
        if self._saved_mode is None:
            return
        mode, self._saved_mode = self._saved_mode, None
        self.editing = False
        try:
            import termios

            termios.tcsetattr(self._fd, termios.TCSADRAIN, mode)
        except (ImportError, OSError, termios_error()):
            pass

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start reading (call from within ``loop``)."""
        self._loop = loop
        if self._edit_wanted:
            self._start_editing()
        try:
            loop.add_reader(self._fd, self._readable)
            self._watching = True
        except (NotImplementedError, OSError, ValueError, RuntimeError):
            thread = threading.Thread(target=self._read_in_thread, name="vagus-stdin", daemon=True)
            thread.start()

    def close(self) -> None:
        """Stop reading; lines not yet handed out are dropped (the terminal's mode is
        restored)."""
        self._stop_editing()
        if self._watching and self._loop is not None:
            self._watching = False
            self._loop.remove_reader(self._fd)
        self.closed = True

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, self._READ_BYTES)
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
                data = os.read(self._fd, self._READ_BYTES)
            except OSError:
                data = b""
            try:
                loop.call_soon_threadsafe(self._feed, data)
            except RuntimeError:  # the loop is closed: the command is over
                return
            if not data:
                return

    def _add(self, data: bytes) -> None:
        """Add bytes of the current line (no newline in ``data``)."""
        self._size += len(data)
        if self._too_long:
            return
        if self._size > self._max_bytes:
            self._too_long = True
            self._parts.clear()
        else:
            self._parts.append(data)

    def _end_line(self) -> None:
        """The current line is complete: hand it out (or report it as too long)."""
        raw = b"".join(self._parts)
        size, too_long = self._size, self._too_long
        self._parts.clear()
        self._size = 0
        self._too_long = False
        text = "" if too_long else raw.decode("utf-8", "replace").rstrip("\r")
        if too_long or len(text) > self.max_chars:
            if self._on_too_long is not None:
                self._on_too_long(size)
            return
        self._on_line(text)

    def _feed(self, data: bytes) -> None:
        if self.closed:
            return
        if not data:  # end of input
            pending = self._size > 0 and (self._too_long or b"".join(self._parts).strip())
            if pending:
                self._end_line()
            self.close()
            return
        if self.editing:
            self._feed_keys(data)
            return
        start = 0
        while not self.closed:
            end = data.find(b"\n", start)
            if end < 0:
                self._add(data[start:])
                return
            self._add(data[start:end])
            start = end + 1
            self._end_line()

    def _feed_keys(self, data: bytes) -> None:
        """Typed bytes in ``edit`` mode: line editing done here (the echo is off)."""
        changed = False
        chunk = bytearray()  # printable bytes not yet added
        for byte in data:
            if self.closed:
                return
            if self._escape:  # ESC [ ... final byte, or ESC O x: dropped
                if self._escape == 1 and byte in (0x5B, 0x4F):
                    self._escape = 2 if byte == 0x5B else 3
                elif self._escape == 2 and not 0x40 <= byte <= 0x7E:
                    pass
                else:
                    self._escape = 0
                continue
            if byte >= 0x20 and byte != 0x7F:
                chunk.append(byte)
                continue
            if chunk:
                self._add(bytes(chunk))
                chunk.clear()
            changed = True
            if byte in (0x0A, 0x0D):  # Enter
                self._end_line()
            elif byte in (0x7F, 0x08):  # backspace: one character (UTF-8)
                self._erase(word=False)
            elif byte == 0x17:  # Ctrl-W: the last word
                self._erase(word=True)
            elif byte == 0x15:  # Ctrl-U: the whole line
                self._parts.clear()
                self._size = 0
                self._too_long = False
            elif byte == 0x1B:
                self._escape = 1
        if chunk:
            self._add(bytes(chunk))
            changed = True
        if changed and self._on_edit is not None and not self.closed:
            self._on_edit()

    def _erase(self, *, word: bool) -> None:
        if self._too_long:
            return
        text = b"".join(self._parts).decode("utf-8", "replace")
        if word:
            text = text.rstrip()
            text = text[: len(text) - len(text.split(" ")[-1])] if text else ""
        else:
            text = text[:-1]
        raw = text.encode("utf-8")
        self._parts[:] = [raw] if raw else []
        self._size = len(raw)


def termios_error() -> type[Exception]:
    """``termios.error`` where there is termios, else a class nothing raises."""
    try:
        import termios
    except ImportError:  # Windows
        return _NoError
    return termios.error


class _NoError(Exception):
    pass
