"""The first install runs every command (issue 8 §2): the report, progress, EDF+ and the
benchmarks' libraries are ordinary dependencies, imported lazily so the live path stays
light, and a module missing from a broken environment is a clear error, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("matplotlib", "neurokit2", "pyedflib", "pandas")


def test_report_export_and_bench_libraries_are_ordinary_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    deps = project["dependencies"]
    names = {dep.split(">")[0].split("=")[0].split("[")[0].strip() for dep in deps}
    assert set(HEAVY) <= names, sorted(set(HEAVY) - names)
    # no extra is needed for a documented feature
    assert "report" not in project.get("optional-dependencies", {})


def test_the_live_commands_do_not_import_the_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "import vagus, vagus.cli, vagus.cli.monitor, vagus.cli.record, vagus.cli._live\n"
        "import vagus.cli.sessions, vagus.cli.transfer, vagus.cli.report, vagus.cli.analyze\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def _run_without(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``vagus ARGS`` in a subprocess where importing MODULE fails, as in a broken venv."""
    code = (
        "import sys\n"
        f"sys.modules[{module!r}] = None  # import raises ModuleNotFoundError\n"
        "from vagus.cli import main\n"
        f"raise SystemExit(main({list(args)!r}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_a_missing_module_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    proc = _run_without("matplotlib", "progress", "--data-dir", str(tmp_path), "-q")
    assert "Traceback" not in proc.stderr, proc.stderr
    # either nothing to report yet (a plain error) or the missing module, said plainly
    if "matplotlib" in proc.stderr:
        assert proc.returncode == 1
        assert "pip install" in proc.stderr
    else:
        assert proc.returncode in (0, 1), proc.stderr


def test_a_missing_module_in_analyze_report_names_it(tmp_path: Path) -> None:
    rr = tmp_path / "rr.txt"
    rr.write_text("\n".join(str(800 + 40 * (i % 5)) for i in range(400)) + "\n", encoding="utf-8")
    proc = _run_without("numpy", "analyze", str(rr))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "'numpy'" in proc.stderr and "pip install" in proc.stderr
