"""bleak stays on the BLE path (STYLE.md: one facade, the backend imported lazily in one
place): the simulator path never imports it, and only ``vagus/sources/ble.py`` does."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "vagus"


def test_the_simulator_source_leaves_bleak_unimported() -> None:
    code = """
import asyncio, sys
from vagus.sources import Packet, SimSpec, open_source

async def main() -> int:
    packets = 0
    async with open_source(SimSpec(seed=1, speed=None, duration_s=30)) as source:
        async for item in source:
            packets += isinstance(item, Packet)
    return packets

assert asyncio.run(main()) > 20
import vagus.cli.monitor, vagus.cli._live  # the live command's modules too
assert "bleak" not in sys.modules, sorted(m for m in sys.modules if m.startswith("bleak"))
print("ok")
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def _imports_bleak(path: Path) -> list[int]:
    """Line numbers of ``import bleak…`` / ``from bleak… import`` statements in a file."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        if any(n == "bleak" or n.startswith("bleak.") for n in names):
            lines.append(node.lineno)
    return lines


def test_only_the_ble_source_imports_bleak() -> None:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 30  # the whole source tree was scanned
    importers = {str(p.relative_to(SRC)): lines for p in files if (lines := _imports_bleak(p))}
    assert set(importers) == {"sources/ble.py"}, importers
    # and the check itself sees what it looks for
    assert _imports_bleak(SRC / "sources" / "ble.py")
