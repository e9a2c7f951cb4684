"""``vagus record`` behaves as ``vagus monitor`` does: options of the other source are usage
errors, ``--sim --duration`` counts from the first packet, the RR-quality note on connect,
``--connect-timeout``/``--retries`` reach the strap's spec, and the status line shows a link
loss at once with the reconnection attempt."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import pytest

from support.fake_bluez import (
    BusEnvironment,
    FakeBlueZ,
    FakeStrap,
    ScriptedStrap,
    strap_address,
)
from vagus.cli import _build_parser, main
from vagus.cli._live import LiveStatus, source_spec
from vagus.cli.record import _check_options, _RecordStatusView, _spec
from vagus.core.events import Marker
from vagus.exceptions import StoreError
from vagus.sources.base import BleSpec, LinkState, SimSpec
from vagus.store.base import ControlRecord, PacketRecord
from vagus.store.recorder import Recorder
from vagus.store.sqlite import SqliteStore


def _parse(*argv: str) -> argparse.Namespace:
    return _build_parser(argv[0]).parse_args(list(argv))


# ------------------------------------------------------------------ options of the other source


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--seed", "5"], "--seed: only for the simulator; add --sim (or leave it out"),
        (["--speed", "max"], "--speed: only for the simulator; add --sim"),
        (
            ["--sim-option", "ectopic_rate=0.1"],
            "--sim-option: only for the simulator; add --sim (or leave it out to use a strap)",
        ),
        (
            ["--device", "Polar", "--seed", "1", "--speed", "2", "--sim-option", "x=1"],
            "--seed and --speed and --sim-option: only for the simulator; add --sim (or "
            "leave them out to use a strap)",
        ),
        (["--sim", "--scan-timeout", "3"], "--scan-timeout: only for a strap, not with --sim"),
        (["--sim", "--connect-timeout", "3"], "--connect-timeout: only for a strap"),
        (
            ["--sim", "--retries", "1", "--connect-timeout", "2"],
            "--connect-timeout and --retries: only for a strap, not with --sim; leave them out",
        ),
    ],
)
def test_record_options_of_the_other_source_are_usage_errors(
    args: list[str], named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["record", *args, "--data-dir", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"vagus record: error: {named}" in err and "usage: vagus record" in err
    assert "searching" not in err and "recording session" not in err
    assert not (tmp_path / "sessions.sqlite3").exists()  # before any store is opened


@pytest.mark.parametrize(
    "args",
    [
        ["--seed", "5", "--speed", "max"],
        ["--speed", "2"],
        ["--device", "Polar", "--seed", "1"],
        ["--sim", "--scan-timeout", "3"],
        ["--sim", "--retries", "1"],
        ["--sim", "--scan-timeout", "1", "--connect-timeout", "3", "--retries", "0"],
    ],
)
def test_record_gives_the_same_messages_as_monitor(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    messages = []
    for command in ("monitor", "record"):
        with pytest.raises(SystemExit) as exc:
            main([command, *args])
        assert exc.value.code == 2
        (line,) = [x for x in capsys.readouterr().err.splitlines() if ": error: " in x]
        messages.append(line.replace(f"vagus {command}: ", "vagus COMMAND: "))
    assert messages[0] == messages[1]


def test_options_of_the_chosen_source_are_accepted() -> None:
    for argv in (
        ["record", "--sim", "--seed", "2", "--speed", "max", "--sim-option", "ectopic_rate=0.01"],
        ["record", "--device", "Polar", "--scan-timeout", "3", "--retries", "0"],
        ["record", "--connect-timeout", "4"],
    ):
        _check_options(_parse(*argv))  # no usage error


# ------------------------------------------------------------------ the strap's spec


def test_connect_timeout_and_retries_reach_the_ble_spec() -> None:
    address = "C0:FE:00:00:12:34"
    spec = _spec(
        _parse(
            "record", "--device", address,
            "--scan-timeout", "3", "--connect-timeout", "4.5", "--retries", "2",
        )
    )  # fmt: skip
    assert spec == BleSpec(
        address=address, scan_timeout_s=3.0, connect_timeout_s=4.5, max_retries=2
    )
    assert spec.max_attempts == 3
    # exactly as monitor builds it, for a name, an address and the defaults
    for argv in (
        ["--device", "polar", "--retries", "0", "--connect-timeout", "2"],
        ["--device", address, "--retries", "7"],
        [],
    ):
        rec_spec = _spec(_parse("record", *argv))
        assert isinstance(rec_spec, BleSpec)
        assert rec_spec == source_spec(_parse("monitor", *argv))
    assert _spec(_parse("record", "--device", "polar", "--retries", "0")) == BleSpec(
        name="polar", max_retries=0
    )
    assert _spec(_parse("record")) == BleSpec()  # monitor's defaults: 15 s, 5 retries


def test_sim_spec_has_the_options_and_no_duration() -> None:
    spec = _spec(
        _parse(
            "record", "--sim", "--seed", "4", "--speed", "max", "--duration", "60",
            "--sim-option", "profile_id=polar_verity_sense", "--sim-option", "dropouts=[[9,2]]",
        )
    )  # fmt: skip
    assert spec == SimSpec(
        seed=4,
        speed=None,
        duration_s=None,  # --duration counts from the first packet: record stops there
        options={"profile_id": "polar_verity_sense", "dropouts": [[9, 2]]},
    )
    assert _spec(_parse("record", "--sim")) == SimSpec()


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--retries", "-1"], "give a whole number >= 0"),
        (["--retries", "two"], "give a whole number >= 0"),
        (["--connect-timeout", "0"], "must be a positive number"),
        (["--scan-timeout", "-3"], "must be a positive number"),
        (["--duration", "0"], "must be a positive number"),
    ],
)
def test_bad_link_option_values_are_usage_errors(
    args: list[str], why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["record", *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert args[0] in err and why in err


def test_record_help_documents_the_budget_and_the_duration_as_monitor(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["record", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    spec = BleSpec()
    assert f"up to {spec.max_attempts} attempts in a row (1 + --retries)" in text
    assert f"at most about {spec.give_up_after_s:.0f} s" in text and "what to try" in text
    assert "counted from the first packet received" in text and "--sim alike" in text
    # the same help text as monitor's, option by option
    helps = {}
    for command in ("monitor", "record"):
        parser = _build_parser(command)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        helps[command] = {a.dest: a.help for a in sub.choices[command]._actions}
    for dest in ("connect_timeout", "retries", "scan_timeout", "duration"):
        assert helps["record"][dest] == helps["monitor"][dest], dest


# ------------------------------------------------------------------ --sim --duration


def _session(data: Path) -> tuple[dict[str, float], list[float], list[tuple[float, str]]]:
    """(times and duration, packet arrival times, markers) of the only session."""
    with SqliteStore(data / "sessions.sqlite3") as store:
        (info,) = store.list_sessions()
        records = list(store.iter_input(info.id))
    assert info.ended_unix_s is not None and info.summary is not None
    times = {
        "started": info.started_unix_s,
        "ended": info.ended_unix_s,
        "duration": float(info.summary["duration_s"]),
    }
    packets = [r.t_arrival_s for r in records if isinstance(r, PacketRecord)]
    markers = [
        (r.event.t_s, r.event.text)
        for r in records
        if isinstance(r, ControlRecord) and isinstance(r.event, Marker)
    ]
    return times, packets, markers


@pytest.mark.parametrize("seed", [0, 11])
def test_sim_duration_counts_from_the_first_packet(
    seed: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--sim --speed max --duration 60``: 60 s of packets from the first one received,
    the settling time after connecting (2 s, packets discarded) not counted (it used to
    be: the packets then spanned only about 57 s). The simulated strap sends a packet
    about once a second (at most about 1.06 s apart), so the packets span 60 s minus less
    than one interval: 58.8-60 s, and 59-62 packets."""
    argv = ["record", "--sim", "--speed", "max", "--seed", str(seed), "--duration", "60"]
    assert main([*argv, "--data-dir", str(tmp_path)]) == 0, capsys.readouterr().err
    times, packets, markers = _session(tmp_path)
    settle_s = BleSpec().settle_s
    assert packets[0] >= settle_s  # the settling time is not recorded...
    assert 58.8 <= packets[-1] - packets[0] <= 60.0  # ...nor counted
    assert 59 <= len(packets) <= 62
    # the start marker at the first packet, the stop marker at the last input
    assert markers[0] == (packets[0], "start")
    assert markers[-1] == (packets[-1], "stop: duration reached")
    # A simulated session ends at its start plus the simulated seconds it ran (the
    # simulator's clock starts as the session is created): the stop marker's time.
    span_s = times["ended"] - times["started"]
    assert span_s == pytest.approx(markers[-1][0], abs=1e-3)
    # Its duration is the span of its input (from the first beat carried by the first
    # packet to the last packet): within start and end, ending at the end.
    assert 60.0 <= times["duration"] <= 61.5
    assert 0.0 <= span_s - times["duration"] <= packets[0]


# ------------------------------------------------------------------ the RR-quality note


def test_rr_note_for_a_simulated_verity_sense_once_and_not_in_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A strap whose profile says its RR intervals are missing (the Polar Verity Sense):
    the note goes to stderr when it connects, once, even after a reconnect (the dropout at
    20 s), and stdout stays pure JSON."""
    code = main(
        [
            "record", "--sim", "--speed", "max", "--duration", "40", "--json",
            "--sim-option", "profile_id=polar_verity_sense",
            "--sim-option", "dropouts=[[20,4]]",
            "--data-dir", str(tmp_path),
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    notes = [x for x in err.splitlines() if x.startswith("note: ")]
    assert len(notes) == 1, err
    assert "Polar Verity Sense sends no RR intervals" in notes[0]
    assert "chest strap" in notes[0] and "Not suitable for HRV" in notes[0]
    events = [json.loads(line) for line in out.splitlines()]
    assert "gap" in {e["type"] for e in events}  # it did reconnect
    with SqliteStore(tmp_path / "sessions.sqlite3") as store:
        (info,) = store.list_sessions()
    assert info.device_profile == "polar_verity_sense"


def test_no_rr_note_for_a_chest_strap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["record", "--sim", "--speed", "max", "--duration", "10", "--data-dir", str(tmp_path)]
    assert main([*argv, "--sim-option", "profile_id=polar_h10"]) == 0
    assert "note: " not in capsys.readouterr().err


# ------------------------------------------------------------------ the status line


def test_record_status_shows_a_link_loss_with_the_attempt_and_the_tail() -> None:
    """monitor's status view, followed by the recording's tail."""
    recorder = Recorder(None, None, error=StoreError("disk full"))
    status = LiveStatus(device="HRM-Pro:42", connected=True, packets=12)
    view = _RecordStatusView(status, recorder, tty=False)
    assert view.text().endswith("gaps 0  NOT RECORDING")
    view.link = LinkState(phase="connected", max_attempts=6)
    status.gaps, status.connected = 1, False
    view.link.phase, view.link.attempt = "reconnecting", 2
    view.link.t_lost_s = time.monotonic() - 12.2
    assert view.text().endswith(
        "gaps 1  reconnecting… attempt 2 of 6, link down 12 s  NOT RECORDING"
    )
    # before the first connection: what the search is doing, without a tail
    first = LinkState(phase="connecting", attempt=3, max_attempts=6, device="TICKR (C0:FE)")
    searching = _RecordStatusView(LiveStatus(), recorder, tty=False)
    searching.link = first
    assert searching.text() == "connecting to TICKR (C0:FE)… attempt 3 of 6"
    assert _RecordStatusView(LiveStatus(), recorder, tty=False).text() == ""  # the simulator


async def test_record_status_is_redrawn_while_no_item_arrives(
    capsys: pytest.CaptureFixture[str],
) -> None:
    recorder = Recorder(None, None, error=StoreError("disk full"))
    status = LiveStatus(device="HRM-Pro:42", connected=False, gaps=1)
    view = _RecordStatusView(status, recorder, tty=True)
    view.link = LinkState(
        phase="reconnecting", attempt=1, max_attempts=6, t_lost_s=time.monotonic()
    )
    task = asyncio.create_task(view.keep_drawing())
    await asyncio.sleep(0.6)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 2 and all("reconnecting… attempt 1 of 6" in x for x in lines)


@pytest.mark.ble
async def test_record_strap_vanishes_status_then_saved_and_a_clear_error(
    fake_bluez: FakeBlueZ, bluez_bus: BusEnvironment, tmp_path: Path
) -> None:
    """Against the real BLE reader: ``--retries 1 --connect-timeout 0.5`` reach the source
    (2 attempts), the loss shows at once with the attempt, and the session is saved with
    ``stop: strap lost`` before the error (exit status 1)."""
    fake_bluez.set_time_scale(10.0)
    strap = fake_bluez.add_strap(FakeStrap(strap_address(0), "HRM-Pro:42", ScriptedStrap(4)))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vagus",
        "record",
        "--device",
        strap.address,
        "--retries",
        "1",
        "--connect-timeout",
        "0.5",
        "--data-dir",
        str(tmp_path),
        env=bluez_bus.env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    seen: list[str] = []
    try:
        assert proc.stderr is not None
        async with asyncio.timeout(30):
            while not seen or "gaps 0" not in seen[-1]:  # connected: the status line is up
                line = await proc.stderr.readline()
                assert line, "".join(seen)
                seen.append(line.decode())
            while len(strap.sent) < 3:  # streaming
                await asyncio.sleep(0.02)
        fake_bluez.disappear(strap.address)
        async with asyncio.timeout(30):
            out, rest = await proc.communicate()
        seen.append(rest.decode())
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    err = "".join(seen)
    lines = err.splitlines()
    assert proc.returncode == 1, err
    sid = out.decode().strip()
    first = next(x for x in lines if "gaps 1" in x)
    assert first.endswith(f"reconnecting… attempt 1 of 2, link down 0 s  REC {sid}"), first
    assert f"vagus record: saved session {sid}" in err
    assert lines[-1].startswith(f"vagus record: error: lost HRM-Pro:42 ({strap.address})")
    assert "could not reconnect: 2 attempts in " in lines[-1] and "Try: " in lines[-1]
    assert "Traceback" not in err
    with SqliteStore(tmp_path / "sessions.sqlite3") as store:
        info = store.get_session(sid)
        markers = [
            r.event.text
            for r in store.iter_input(sid)
            if isinstance(r, ControlRecord) and isinstance(r.event, Marker)
        ]
    assert info.device_profile == "garmin_hrm_pro" and info.ended_unix_s is not None
    assert markers == ["start", "stop: strap lost"]
