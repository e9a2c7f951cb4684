"""Issue 9 §6 house-keeping that must stay done: the GATT UUIDs have one definition
(``vagus.core.hrm``), the store does not parse the command line, and the simulated BlueZ
(Linux-only, ``dbus-fast``) is test support code, not part of the installed package;
``vagus bench ble`` finds it in a source checkout or says plainly why it cannot run."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import vagus
from vagus.cli import main
from vagus.core import hrm

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(vagus.__file__).resolve().parent


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(encoding="utf-8"))) for p in sorted(PACKAGE.rglob("*.py"))]


def _imported(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_gatt_uuids_are_the_bluetooth_base_forms() -> None:
    assert hrm.uuid16(0x180D) == "0000180d-0000-1000-8000-00805f9b34fb"
    assert hrm.uuid16(0x180D) == hrm.HEART_RATE_SERVICE_UUID
    assert hrm.HEART_RATE_MEASUREMENT_UUID == "00002a37-0000-1000-8000-00805f9b34fb"
    assert hrm.uuid16(0x2A38) == hrm.BODY_SENSOR_LOCATION_UUID
    assert hrm.uuid16(0x180F) == hrm.BATTERY_SERVICE_UUID
    assert hrm.uuid16(0x2A19) == hrm.BATTERY_LEVEL_UUID
    assert hrm.uuid16(0x2902) == hrm.CCCD_UUID
    for bad in (-1, 0x10000):
        with pytest.raises(ValueError, match="16-bit"):
            hrm.uuid16(bad)


def test_gatt_uuids_have_one_definition() -> None:
    """No module but ``vagus.core.hrm`` assigns a ``*_UUID`` constant; the others import
    (and re-export) the same objects, the simulated BlueZ included."""
    defining = sorted(
        str(path.relative_to(PACKAGE))
        for path, tree in _modules()
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name) and target.id.endswith("_UUID")
    )
    assert defining == ["core/hrm.py"] * len(defining) and defining, defining

    import vagus.devices as devices
    import vagus.sources.ble as ble

    assert devices.BLUETOOTH_BASE_UUID is hrm.BLUETOOTH_BASE_UUID
    assert ble.HEART_RATE_SERVICE_UUID is hrm.HEART_RATE_SERVICE_UUID
    assert ble.HEART_RATE_MEASUREMENT_UUID is hrm.HEART_RATE_MEASUREMENT_UUID
    assert ble.BATTERY_LEVEL_UUID is hrm.BATTERY_LEVEL_UUID
    assert devices.normalise_uuid("0x2A37") == hrm.HEART_RATE_MEASUREMENT_UUID
    fake = pytest.importorskip("support.fake_bluez")
    assert fake.uuid16 is hrm.uuid16
    assert fake.HEART_RATE_SERVICE_UUID is hrm.HEART_RATE_SERVICE_UUID


def test_the_store_does_not_parse_the_command_line(tmp_path: Path) -> None:
    """argparse lives in the CLI layer: ``--data-dir`` is parsed by ``vagus.cli._data_dir``,
    and no module of ``vagus.store`` imports argparse."""
    store_modules = [
        str(path.relative_to(PACKAGE))
        for path, tree in _modules()
        if path.parent.name == "store" and "argparse" in _imported(tree)
    ]
    assert store_modules == []
    from vagus.cli._data_dir import data_dir_type

    assert data_dir_type(str(tmp_path / "new")) == tmp_path / "new"
    a_file = tmp_path / "sessions.txt"
    a_file.write_text("x", encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        main(["sessions", "--data-dir", str(a_file)])
    assert exc.value.code == 2


def test_the_installed_package_holds_no_test_doubles() -> None:
    """The simulated BlueZ moved to tests/support: nothing under src/vagus imports
    dbus-fast or a ``vagus.testing`` package, and importing the BLE bench loads neither."""
    assert importlib.util.find_spec("vagus.testing") is None
    offenders = sorted(
        str(path.relative_to(PACKAGE))
        for path, tree in _modules()
        if any(
            name == "dbus_fast" or name.startswith(("dbus_fast.", "vagus.testing"))
            for name in _imported(tree)
        )
    )
    assert offenders == []
    code = (
        "import sys, vagus.cli, vagus.bench.ble\n"
        "print(sorted(m for m in sys.modules if m.startswith(('dbus_fast', 'vagus.testing'))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="vagus bench ble is Linux-only")
def test_bench_ble_finds_the_simulated_bluez_of_this_checkout() -> None:
    from vagus.bench import ble as bench

    assert bench.find_fake_bluez() == ROOT / "tests" / "support" / "fake_bluez.py"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="vagus bench ble is Linux-only")
def test_bench_ble_without_a_checkout_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As after a wheel install: no tests/support anywhere. One plain message that says
    what to do, exit status 1, no traceback."""
    from vagus.bench import ble as bench

    monkeypatch.setattr(bench, "_search_roots", lambda: [tmp_path])
    assert main(["bench", "ble", "--straps", "1", "--duration", "1"]) == 1
    err = capsys.readouterr().err
    assert "source checkout" in err and "pip install -e '.[dev]'" in err, err
    assert "Traceback" not in err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="vagus bench ble is Linux-only")
def test_bench_ble_without_dbus_fast_is_a_clear_error() -> None:
    code = (
        "import sys\n"
        "sys.modules['dbus_fast'] = None  # import raises ModuleNotFoundError\n"
        "from vagus.cli import main\n"
        "raise SystemExit(main(['bench', 'ble', '--straps', '1', '--duration', '1']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 1, proc.stderr
    assert "dbus_fast" in proc.stderr and "pip install -e '.[dev]'" in proc.stderr
    assert "Traceback" not in proc.stderr
