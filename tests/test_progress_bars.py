"""Long commands draw a progress bar on a terminal, and none with ``--quiet`` or in a log.

The commands run in a subprocess whose stderr is a real pseudo-terminal (``pty``), as a
user's shell gives them; what they draw there is read back from the terminal's master side.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")

BAR = re.compile(r"\[[#.]{30}\]\s+\d+\.\d %")


def run_on_tty(*args: str) -> tuple[int, str, str]:
    """Run ``vagus ARGS`` with stderr on a pseudo-terminal: (status, stdout, terminal text)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vagus", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
        )
        os.close(slave)
        chunks: list[bytes] = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        out, _ = proc.communicate(timeout=120)
    finally:
        os.close(master)
    return proc.returncode, out, b"".join(chunks).decode("utf-8", "replace")


def _rr_file(root: Path) -> Path:
    rr = root / "rr.txt"
    rr.write_text("".join(f"{800 + 40 * ((k % 10) - 5)}\n" for k in range(600)))
    return rr


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """A store holding one imported 8-minute session, its id, and a scratch folder.

    600 beats: neurokit2's nonlinear domain, the slow part of a report, grows as N²
    (1000 NN take ~12 s of CPU), and the bars need no more."""
    root = tmp_path_factory.mktemp("bars")
    data = root / "store"
    rr = str(_rr_file(root))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vagus",
            "import",
            rr,
            "--unit",
            "ms",
            "--data-dir",
            str(data),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return data, json.loads(proc.stdout)["id"], root


def test_import_draws_a_bar_on_a_terminal_and_quiet_hides_it(tmp_path: Path) -> None:
    rr = _rr_file(tmp_path)
    code, _, term = run_on_tty("import", str(rr), "--unit", "ms", "--data-dir", str(tmp_path))
    assert code == 0, term
    assert BAR.search(term), f"no progress bar on the terminal: {term!r}"
    code, _, term = run_on_tty(
        "import", str(rr), "--unit", "ms", "-q", "--again", "--data-dir", str(tmp_path)
    )
    assert code == 0, term
    assert not BAR.search(term), term


@pytest.mark.parametrize(
    "command",
    [
        ["export", "{id}", "--format", "csv", "-o", "{root}/s.csv"],
        ["report", "{id}", "-o", "{root}/r.html"],
        ["replay", "{id}", "--speed", "max"],
    ],
)
def test_long_commands_draw_a_bar_and_quiet_hides_it(
    session: tuple[Path, str, Path], command: list[str]
) -> None:
    data, sid, root = session
    args = [a.format(id=sid, root=root) for a in command] + ["--data-dir", str(data)]
    code, _, term = run_on_tty(*args)
    assert code == 0, term
    assert BAR.search(term), f"no progress bar for {command[0]}: {term!r}"
    if command[0] != "replay":
        code, _, term = run_on_tty(*args, "--quiet")
        assert code == 0, term
        assert not BAR.search(term), f"--quiet still drew a bar for {command[0]}: {term!r}"


def test_no_bar_in_a_log(session: tuple[Path, str, Path]) -> None:
    data, sid, root = session
    out = str(root / "s.json")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vagus",
            "export",
            sid,
            "--format",
            "json",
            "-o",
            out,
            "--data-dir",
            str(data),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert not BAR.search(proc.stderr) and "\r" not in proc.stderr
