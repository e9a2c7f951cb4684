"""``vagus monitor`` and ``vagus scan`` end to end: the simulator, and a real subprocess
running the real bleak code against the simulated BlueZ; bad device profiles, the RR note,
the live status while reconnecting, and the monitor's options."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from support.fake_bluez import (
    BusEnvironment,
    FakeBlueZ,
    FakeStrap,
    ScriptedStrap,
    SentPacket,
    strap_address,
)
from vagus.cli import main
from vagus.cli._live import LiveStatus, StatusView, rr_note
from vagus.devices import default_profiles_dir, load_profiles
from vagus.session import session_event_from_json
from vagus.sources.base import BleSpec, LinkState


def test_monitor_sim_json_prints_valid_events(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("vagus.sources.simulator")
    code = main(["monitor", "--sim", "--seed", "3", "--duration", "30", "--speed", "200", "--json"])
    assert code == 0
    out, err = capsys.readouterr()
    events = [json.loads(line) for line in out.splitlines()]
    types = {e["type"] for e in events}
    assert {"beat", "metrics", "spectrum"} <= types
    for e in events:
        # each line is a valid session event: the event's fields and its participant
        assert session_event_from_json(e).participant in ("me", None)
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


async def run_vagus(
    env: BusEnvironment, *args: str, timeout_s: float = 40, extra_env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run ``python -m vagus ...`` as a subprocess without blocking this loop (the fake)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vagus",
        *args,
        env={**env.env(), **(extra_env or {})},
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


# ------------------------------------------------------------------ device profiles


@pytest.fixture
def bad_profiles(tmp_path: Path) -> Path:
    """The shipped profiles, but the Polar H10's with ``settle_s = -1``."""
    folder = tmp_path / "devices"
    shutil.copytree(default_profiles_dir(), folder)
    h10 = folder / "polar_h10.toml"
    text = h10.read_text()
    assert "\nsettle_s = 2.0\n" in text
    h10.write_text(text.replace("\nsettle_s = 2.0\n", "\nsettle_s = -1\n"))
    return folder


@pytest.mark.ble
async def test_a_bad_profile_file_is_an_error_not_a_generic_strap(
    fake_bluez: FakeBlueZ, bluez_bus: BusEnvironment, bad_profiles: Path
) -> None:
    strap = fake_bluez.add_strap(
        FakeStrap(strap_address(0), "Polar H10 A1B2C3D4", ScriptedStrap(0))
    )
    where = f"device profile {bad_profiles / 'polar_h10.toml'}: field 'settle_s'"
    env = {"VAGUS_DEVICES_DIR": str(bad_profiles)}
    runs = [
        ("scan", "--timeout", "0.5"),
        ("scan", "--timeout", "0.5", "--json"),
        ("monitor", "--device", strap.address, "--duration", "1"),
        ("monitor", "--json", "--duration", "1"),
    ]
    for args in runs:
        code, out, err = await run_vagus(bluez_bus, *args, extra_env=env)
        assert code == 1, (args, err)
        assert f"vagus {args[0]}: error: {where}" in err, (args, err)
        assert "expected a finite number >= 0.0, got -1" in err
        assert "Traceback" not in err, args
        if args[0] == "scan" and "--json" in args:  # no strap listed as "generic": the error
            assert json.loads(out) == {
                "error": err.split(": error: ", 1)[1].strip(),
                "kind": "DeviceProfileError",
            }
        else:
            assert out == "", args  # no strap listed as "generic"
    assert strap.connections == 0
    # the same message as `vagus devices` gives for that folder
    code, _out, err = await run_vagus(bluez_bus, "devices", "--dir", str(bad_profiles))
    assert code == 1 and where in err


# ------------------------------------------------------------------ live status and notes


async def _read_stderr_until(
    proc: asyncio.subprocess.Process, seen: list[str], text: str, timeout_s: float = 20
) -> None:
    """Collect stderr lines into ``seen`` until one contains ``text``."""
    assert proc.stderr is not None
    async with asyncio.timeout(timeout_s):
        while True:
            line = await proc.stderr.readline()
            assert line, f"stderr ended before {text!r}: {''.join(seen)}"
            seen.append(line.decode())
            if text in seen[-1]:
                return


@contextlib.asynccontextmanager
async def _vagus_running(
    env: BusEnvironment, *args: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m vagus ARGS`` with stderr piped; killed on the way out if still running."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vagus",
        *args,
        env=env.env(),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _read_to_end(proc: asyncio.subprocess.Process, seen: list[str]) -> None:
    """Collect the rest of stderr into ``seen`` and wait for the process to exit."""
    assert proc.stderr is not None
    async with asyncio.timeout(20):
        seen.append((await proc.stderr.read()).decode())
        await proc.wait()


@pytest.mark.ble
async def test_monitor_notes_a_sensor_without_rr_once(
    fake_bluez: FakeBlueZ, bluez_bus: BusEnvironment
) -> None:
    """A strap whose profile says ``rr_available = false`` (named like a Polar Verity
    Sense): the note goes to stderr when it connects, and not again on a reconnect."""
    fake_bluez.set_time_scale(10.0)
    strap = fake_bluez.add_strap(
        FakeStrap(strap_address(0), "Polar Sense 1A2B3C4D", ScriptedStrap(5))
    )
    seen: list[str] = []
    async with _vagus_running(bluez_bus, "monitor", "--device", strap.address) as proc:
        await _read_stderr_until(proc, seen, "sends no RR intervals")
        fake_bluez.drop_link(strap.address)
        await _read_stderr_until(proc, seen, "gaps 1")
        await _read_stderr_until(proc, seen, "connected to Polar Sense")  # reconnected
        await asyncio.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        await _read_to_end(proc, seen)
    err = "".join(seen)
    assert proc.returncode == 130, err
    assert strap.connections == 2
    assert err.count("connected to Polar Sense 1A2B3C4D") == 2
    assert err.count("note: ") == 1  # once, at the first connect
    (line,) = [x for x in err.splitlines() if x.startswith("note: ")]
    assert "Polar Verity Sense sends no RR intervals" in line
    assert "chest strap" in line and "Not suitable for HRV" in line  # + the profile's note
    assert "Traceback" not in err


def test_rr_note_comes_from_the_profile_fields() -> None:
    profiles = {p.id: p for p in load_profiles()}
    for pid, profile in profiles.items():
        text = rr_note(pid)
        assert (text is None) == (profile.rr_available and profile.rr_reliable), pid
        if text is not None:
            assert profile.rr_quality in text
    assert rr_note("no_such_profile") is None


def test_status_shows_a_link_loss_at_once_with_the_attempt() -> None:
    status = LiveStatus(device="HRM-Pro:42", connected=True, packets=12)
    link = LinkState(phase="connected", max_attempts=6)
    view = StatusView(status, link, tty=False)
    assert "gaps 0" in view.text() and "reconnecting" not in view.text()
    # what the monitor does on a LinkGap; the source has set its state before yielding it
    status.gaps, status.connected = 1, False
    link.phase, link.attempt, link.t_lost_s = "reconnecting", 2, time.monotonic() - 12.2
    link.last_error = "[org.bluez.Error.Failed] Software caused connection abort"
    text = view.text()
    assert "gaps 1" in text
    assert "reconnecting… attempt 2 of 6, link down 12 s; last attempt: [org.bluez" in text
    # a source without link state (the simulator)
    assert StatusView(status, None, tty=False).text().endswith("gaps 1  reconnecting…")
    # before the first connection: what the search is doing
    first = LinkState(phase="connecting", attempt=3, max_attempts=6, device="TICKR 1A2B (C0:FE)")
    text = StatusView(LiveStatus(), first, tty=False).text()
    assert text == "connecting to TICKR 1A2B (C0:FE)… attempt 3 of 6"


async def test_status_is_redrawn_while_no_item_arrives(capsys: pytest.CaptureFixture[str]) -> None:
    status = LiveStatus(device="HRM-Pro:42", connected=False, gaps=1)
    link = LinkState(phase="reconnecting", attempt=1, max_attempts=6, t_lost_s=time.monotonic())
    view = StatusView(status, link, tty=True)  # a terminal: four times a second
    task = asyncio.create_task(view.keep_drawing())
    await asyncio.sleep(0.6)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 2 and all("reconnecting… attempt 1 of 6" in x for x in lines)


@pytest.mark.ble
async def test_monitor_strap_vanishes_status_then_clear_error(
    fake_bluez: FakeBlueZ, bluez_bus: BusEnvironment
) -> None:
    fake_bluez.set_time_scale(10.0)
    strap = fake_bluez.add_strap(FakeStrap(strap_address(0), "HRM-Pro:42", ScriptedStrap(4)))
    args = ("monitor", "--device", strap.address, "--retries", "1", "--connect-timeout", "0.5")
    seen: list[str] = []
    async with _vagus_running(bluez_bus, *args) as proc:
        await _read_stderr_until(proc, seen, "gaps 0")  # connected: the status line is up
        async with asyncio.timeout(20):
            while len(strap.sent) < 3:  # streaming (a link that never delivered counts as
                await asyncio.sleep(0.02)  # a failed attempt already)
        fake_bluez.disappear(strap.address)
        await _read_to_end(proc, seen)
    err = "".join(seen)
    lines = err.splitlines()
    assert proc.returncode == 1, err
    # the loss shows at once, with the attempt, before the source gives up
    (first,) = [x for x in lines if "gaps 1" in x][:1]
    assert first.endswith("reconnecting… attempt 1 of 2, link down 0 s")
    assert lines[-2].startswith("HRM-Pro:42: ") and "1 gaps" in lines[-2]  # the summary
    assert lines[-1].startswith(f"vagus monitor: error: lost HRM-Pro:42 ({strap.address})")
    assert "could not reconnect: 2 attempts in " in lines[-1] and "Try: " in lines[-1]
    assert "Traceback" not in err


# ------------------------------------------------------------------ options


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (
            ["--seed", "5", "--speed", "max"],
            "--seed and --speed: only for the simulator; add --sim",
        ),
        (["--speed", "2"], "--speed: only for the simulator; add --sim"),
        (["--device", "Polar", "--seed", "1"], "--seed: only for the simulator"),
        (["--sim", "--scan-timeout", "3"], "--scan-timeout: only for a strap, not with --sim"),
        (["--sim", "--retries", "1", "--acquire-notify"], "--retries and --acquire-notify: "),
    ],
)
def test_monitor_options_of_the_other_source_are_usage_errors(
    args: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Never silently ignored (``--seed 5 --speed max`` without --sim used to try Bluetooth)."""
    with pytest.raises(SystemExit) as exc:
        main(["monitor", *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"vagus monitor: error: {named}" in err and "usage: vagus monitor" in err
    assert "searching" not in err


@pytest.mark.parametrize("args", [["--sim"], ["--sim", "--speed", "max", "--json"]])
def test_monitor_sim_duration_counts_from_the_first_packet(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """As for a strap: the settling time after connecting (2 s, packets discarded) is not
    part of --duration (it used to be: ``--sim --duration 5`` gave "2 s, 3 packets")."""
    speed = [] if "--speed" in args else ["--speed", "50"]
    assert main(["monitor", *args, *speed, "--duration", "5"]) == 0
    summary = capsys.readouterr().err.strip().splitlines()
    line = next(x for x in summary if " packets, " in x)
    match = re.search(r": (\d+) s, (\d+) packets", line)
    assert match is not None, line
    elapsed_s, packets = int(match[1]), int(match[2])
    assert 5 <= elapsed_s <= 6 and packets >= 6, line  # a packet about once a second


def test_monitor_help_says_how_long_vagus_keeps_trying(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["monitor", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    spec = BleSpec()
    assert f"up to {spec.max_attempts} attempts in a row (1 + --retries)" in text
    assert f"at most about {spec.give_up_after_s:.0f} s" in text and "what to try" in text
    assert "counted from the first packet received" in text  # --duration, strap and --sim
