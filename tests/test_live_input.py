"""Typed input during a live session (issues 8 §3 and 13 §4): lines are bounded (a 10 MB
line never blocks the loop and never takes the later lines with it), and on a terminal
the typed text never runs into the status line."""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

from support.loop import LoopTurns
from vagus.cli._common import MAX_LINE_CHARS, StdinLines
from vagus.core.events import Marker
from vagus.store.base import ControlRecord
from vagus.store.sqlite import SqliteStore


async def _read_lines(data: bytes) -> tuple[list[str], list[int]]:
    """Write ``data`` into a pipe (from a thread) and collect what StdinLines hands out."""
    read_fd, write_fd = os.pipe()
    lines: list[str] = []
    too_long: list[int] = []

    def on_line(line: str) -> None:
        lines.append(line)

    reader = StdinLines(on_line, read_fd, on_too_long=too_long.append)

    def writer() -> None:
        with os.fdopen(write_fd, "wb") as f:
            f.write(data)

    loop = asyncio.get_running_loop()
    reader.start(loop)
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while not reader.closed:
            await asyncio.sleep(0.01)
    finally:
        reader.close()
        thread.join()
        os.close(read_fd)
    return lines, too_long


async def test_a_huge_line_is_dropped_with_its_length_and_later_lines_are_kept() -> None:
    huge = b"x" * (10 * 1024 * 1024)
    data = b"before\n" + huge + b"\nafter 1\n" + b"y" * MAX_LINE_CHARS + b"\nafter 2"
    lines, too_long = await _read_lines(data)
    assert lines == ["before", "after 1", "y" * MAX_LINE_CHARS, "after 2"]
    assert too_long == [len(huge)]


async def test_the_limit_is_in_characters_not_bytes() -> None:
    ok = "é" * MAX_LINE_CHARS  # 2 bytes each: within the limit
    data = (ok + "\n" + "é" * (MAX_LINE_CHARS + 1) + "\nend\n").encode()
    lines, too_long = await _read_lines(data)
    assert lines == [ok, "end"]
    assert too_long == [2 * (MAX_LINE_CHARS + 1)]


async def test_the_loop_keeps_running_while_a_huge_line_arrives() -> None:
    """Each read is looked at once: other tasks run between the reads of a 10 MB line."""
    async with LoopTurns() as turns:
        lines, too_long = await _read_lines(b"z" * (10 * 1024 * 1024) + b"\nlast\n")
    assert lines == ["last"] and too_long
    assert turns.count > 20  # the loop ran while the line came in (not blocked by it)


def test_record_keeps_the_lines_after_a_huge_one(tmp_path: Path) -> None:
    stdin = "first\n" + "x" * (10 * 1024 * 1024) + "\nsecond\npacer 6\n"
    args = ["record", "--sim", "--speed", "20", "--duration", "40", "--markers-from-stdin"]
    proc = subprocess.run(
        [sys.executable, "-m", "vagus", *args],
        input=stdin,
        env={**os.environ, "VAGUS_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert re.search(
        r"not recorded: a line of 10,485,760 bytes: a marker is at most 1000", proc.stderr
    )
    with SqliteStore(tmp_path / "sessions.sqlite3") as store:
        (info,) = store.list_sessions()
        records = list(store.iter_input(info.id))
    events = [r.event for r in records if isinstance(r, ControlRecord)]
    texts = [e.text for e in events if isinstance(e, Marker)]
    assert texts == ["start", "first", "second", "stop: duration reached"]
    assert any(e.type == "pacer" for e in events)


# ------------------------------------------------------------------ on a terminal

#: Runs argv[2:] as ``python -m vagus ...`` with the pty slave argv[1] as its controlling
#: terminal (a new session), stdin, stdout and stderr: as a shell in a terminal would.
_LAUNCH = """
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for k in (0, 1, 2):
    os.dup2(fd, k)
os.execv(sys.executable, [sys.executable, "-m", "vagus", *sys.argv[2:]])
"""


def _read_pty(master: int, until: float, seen: bytearray, needle: bytes | None = None) -> None:
    while time.monotonic() < until:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other side closed
                return
            if not chunk:
                return
            seen.extend(chunk)
            if needle is not None and needle in seen:
                return


def test_typed_text_never_runs_into_the_status_line(tmp_path: Path) -> None:
    master, slave = os.openpty()
    name = os.ttyname(slave)
    # a terminal 200 columns wide: the whole status line fits (it is cut to the width)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
    env = {**os.environ, "VAGUS_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _LAUNCH, name, "monitor", "--sim", "--speed", "5"],
        env=env,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen = bytearray()
    try:
        _read_pty(master, time.monotonic() + 30, seen, b"packets ")
        assert b"packets " in seen, seen.decode(errors="replace")
        for key in b"pacer 7":  # typed key by key, as a person types
            os.write(master, bytes([key]))
            _read_pty(master, time.monotonic() + 0.05, seen)
        _read_pty(master, time.monotonic() + 0.6, seen)  # a redraw or two
        os.write(master, b"\r")
        _read_pty(master, time.monotonic() + 60, seen, b"pacer 7 breaths/min")
        _read_pty(master, time.monotonic() + 1.0, seen, b"pacer 7/min")
        proc.send_signal(signal.SIGINT)
        _read_pty(master, time.monotonic() + 30, seen, b"stopped (Ctrl-C)")
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        os.close(slave)  # kept open till here: a pty without a slave open reads as EIO
    text = seen.decode(errors="replace")
    # The terminal's own echo is off: the typed text shows only where vagus draws it, after
    # "> " at the end of the status line, never glued to the status text.
    assert re.search(r"(gaps \d+|reconnecting\)|…)p", text) is None, text[-3000:]
    assert re.search(r"gaps \d+  > pacer 7", text), text[-3000:]
    assert "vagus monitor: pacer 7 breaths/min at" in text
    assert "pacer 7/min " in text  # the status line shows the pacer and its cue
    assert "Traceback" not in text
