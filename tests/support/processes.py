"""``vagus`` as a real process, for the tests of what a user sees from a shell: exit
statuses, Ctrl-C and SIGTERM, what is saved when a command is stopped.

:func:`vagus_process` starts ``python -m vagus ARGS`` with its store in a given folder;
:func:`signal_when` sends a signal once a line of its stderr says it is under way;
:func:`sim_session` records a simulated session in-process (``--speed max``) for a
process to replay.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vagus.cli import main


def vagus_process(data_dir: Path, *args: str) -> subprocess.Popen[str]:
    """``python -m vagus ARGS`` with ``VAGUS_DATA_DIR=data_dir``, no stdin, stdout and
    stderr as text pipes."""
    return subprocess.Popen(
        [sys.executable, "-m", "vagus", *args],
        env={**os.environ, "VAGUS_DATA_DIR": str(data_dir)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def signal_when(
    proc: subprocess.Popen[str],
    needle: str | re.Pattern[str],
    sig: int = signal.SIGINT,
    timeout_s: float = 60.0,
) -> tuple[int, str]:
    """Send ``sig`` (Ctrl-C by default) once ``needle`` (text, or a pattern searched for)
    shows on the process's stderr; wait for it to end (killed if it has not after
    ``timeout_s``).

    Returns (exit status, all of its stderr).
    """
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            if needle.search(line) if isinstance(needle, re.Pattern) else needle in line:
                proc.send_signal(sig)
                break
        _out, rest = proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, "".join(seen) + rest


def sim_session(data_dir: Path, capsys: pytest.CaptureFixture[str], seconds: int = 600) -> str:
    """Record ``seconds`` of the simulated strap into the store in ``data_dir`` (in this
    process, as fast as it goes); the new session's id."""
    code = main(
        [
            "record",
            "--sim",
            "--speed",
            "max",
            "--duration",
            str(seconds),
            "--data-dir",
            str(data_dir),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    return out.strip()
