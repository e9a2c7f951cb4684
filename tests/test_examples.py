"""Every script in examples/ runs and exits 0 (CI runs the examples, like BrainFlow's)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script: Path) -> None:
    if "offline" in script.name and not SHARED.exists():
        pytest.skip(f"{SHARED} is absent (the shared recordings sit beside the project)")
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=90, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip(), "an example should print what it shows"


def test_simulated_breathing_shows_coherence_rise() -> None:
    script = ROOT / "examples" / "simulated_breathing.py"
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=90, check=True
    ).stdout
    medians = {
        line.split(":")[0].strip(): float(line.split("ratio")[1].split()[0])
        for line in out.splitlines()
        if "median coherence ratio" in line
    }
    assert medians["paced 6/min"] > 2 * medians["spontaneous"], out
