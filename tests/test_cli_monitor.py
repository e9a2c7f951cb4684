"""``vagus monitor`` and ``vagus scan`` end to end: the simulator, and a real subprocess
running the real bleak code against the simulated BlueZ."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import pytest

from vagus.cli import main
from vagus.core.events import event_from_json
from vagus.testing.fake_bluez import (
    BusEnvironment,
    FakeBlueZ,
    FakeStrap,
    ScriptedStrap,
    SentPacket,
    strap_address,
)


def test_monitor_sim_json_prints_valid_events(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("vagus.sources.simulator")
    code = main(["monitor", "--sim", "--seed", "3", "--duration", "30", "--speed", "200", "--json"])
    assert code == 0
    out, err = capsys.readouterr()
    events = [json.loads(line) for line in out.splitlines()]
    types = {e["type"] for e in events}
    assert {"beat", "metrics", "spectrum"} <= types
    for e in events:
        event_from_json(e)  # each line is a valid protocol event
    assert sum(e["type"] == "beat" for e in events) >= 20
    assert "packets" in err  # the summary goes to stderr, stdout stays pure JSON


def test_monitor_sim_status_line(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("vagus.sources.simulator")
    assert main(["monitor", "--sim", "--duration", "20", "--speed", "200"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "HR " in err and "RMSSD60" in err and "0 malformed packets" in err


class _SometimesBroken:
    """Every 5th payload breaks its own flags (an odd number of RR bytes)."""

    def __init__(self, seed: int) -> None:
        self.inner = ScriptedStrap(seed)
        self.n = 0

    def packets_until(self, t_s: float) -> list[SentPacket]:
        out = []
        for item in self.inner.packets_until(t_s):
            self.n += 1
            payload = b"\x10\x40\x01" if self.n % 5 == 0 else item.payload
            out.append(SentPacket(item.t_s, payload, 0))
        return out


async def run_vagus(env: BusEnvironment, *args: str, timeout_s: float = 40) -> tuple[int, str, str]:
    """Run ``python -m vagus ...`` as a subprocess without blocking this loop (the fake)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vagus",
        *args,
        env=env.env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.ble
async def test_monitor_device_against_fake_bluez(
    fake_bluez: FakeBlueZ, bluez_bus: BusEnvironment
) -> None:
    fake_bluez.set_time_scale(20.0)
    strap = fake_bluez.add_strap(
        FakeStrap(strap_address(0), "Polar H10 0A0B0C0D", _SometimesBroken(seed=1))
    )
    code, out, err = await run_vagus(
        bluez_bus,
        "monitor",
        "--device",
        strap.address,
        "--duration",
        "2",
        "--acquire-notify",
        "--json",
    )
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert sum(e["type"] == "beat" for e in events) > 25
    assert {"metrics", "spectrum", "contact"} <= {e["type"] for e in events}
    assert "malformed" in err and " 0 malformed" not in err  # counted, not fatal
    assert "Traceback" not in err
    assert strap.connections == 1 and not strap.connected


@pytest.mark.ble
async def test_monitor_by_name_human_status(
    fake_bluez: FakeBlueZ, bluez_bus: BusEnvironment
) -> None:
    fake_bluez.set_time_scale(20.0)
    fake_bluez.add_strap(FakeStrap(strap_address(0), "TICKR 1A2B", ScriptedStrap(2)))
    code, _out, err = await run_vagus(bluez_bus, "monitor", "--device", "tickr", "--duration", "2")
    assert code == 0, err
    assert "connected to TICKR 1A2B" in err and "wahoo_tickr" in err
    assert "battery 87%" in err


@pytest.mark.ble
async def test_monitor_missing_strap_is_a_clear_error(
    fake_bluez: FakeBlueZ, bluez_bus: BusEnvironment
) -> None:
    code, _out, err = await run_vagus(
        bluez_bus, "monitor", "--device", "C0:FE:00:00:99:99", "--scan-timeout", "1"
    )
    assert code == 1
    assert "no strap with address C0:FE:00:00:99:99" in err and "vagus scan" in err
    assert "Traceback" not in err


@pytest.mark.ble
async def test_scan_command_table_and_json(
    fake_bluez: FakeBlueZ, bluez_bus: BusEnvironment
) -> None:
    fake_bluez.add_strap(FakeStrap(strap_address(0), "Polar H10 A1B2C3D4", ScriptedStrap(0)))
    fake_bluez.add_strap(FakeStrap(strap_address(1), "HRM-Pro:123456", ScriptedStrap(1)))
    code, out, err = await run_vagus(bluez_bus, "scan", "--timeout", "0.5", "--json")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert {(r["name"], r["profile_id"]) for r in rows} == {
        ("Polar H10 A1B2C3D4", "polar_h10"),
        ("HRM-Pro:123456", "garmin_hrm_pro"),
    }
    code, out, err = await run_vagus(bluez_bus, "scan", "--timeout", "0.5")
    assert code == 0, err
    assert "Polar H10" in out and "Garmin HRM-Pro" in out and strap_address(1) in out


@pytest.mark.ble
async def test_scan_none_found_gives_hints(
    fake_bluez: FakeBlueZ, bluez_bus: BusEnvironment
) -> None:
    code, _out, err = await run_vagus(bluez_bus, "scan", "--timeout", "0.3")
    assert code == 1
    assert "No heart-rate strap found" in err and "wet" in err


@pytest.mark.ble
async def test_scan_without_bluez_is_a_clear_error(bluez_bus: BusEnvironment) -> None:
    code, _out, err = await run_vagus(bluez_bus, "scan", "--timeout", "0.3")
    assert code == 1
    assert "BlueZ is not running" in err and "Traceback" not in err


@pytest.mark.ble
async def test_monitor_ctrl_c_disconnects_with_summary(
    fake_bluez: FakeBlueZ, bluez_bus: BusEnvironment
) -> None:
    fake_bluez.set_time_scale(10.0)
    strap = fake_bluez.add_strap(FakeStrap(strap_address(0), "HRM-Pro:42", ScriptedStrap(4)))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vagus",
        "monitor",
        "--device",
        strap.address,
        env=bluez_bus.env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(30):
            while len(strap.sent) < 30:  # connected and streaming past the settling time
                await asyncio.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            _out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = err.decode()
    assert proc.returncode == 130, text  # as a shell reports Ctrl-C
    assert "stopped (Ctrl-C)" in text and "HRM-Pro:42" in text and "packets" in text
    assert "Traceback" not in text
    await asyncio.sleep(0.2)
    assert not strap.connected  # notifications stopped and the strap disconnected
