"""Command-line details shared by the live commands and the store commands: ``--speed``,
``--device``/``--sim``, ``--data-dir`` errors, where the store is, Ctrl-C exit statuses,
the status line and the progress bar."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.processes import signal_when, sim_session, vagus_process
from vagus.cli import main
from vagus.cli._common import ProgressBar, parse_speed
from vagus.cli._live import LiveStatus
from vagus.cli.replay import parse_offset
from vagus.core.events import Marker
from vagus.store.base import ControlRecord
from vagus.store.sqlite import SqliteStore

# ------------------------------------------------------------------ --speed, --device/--sim


def test_speed_is_a_positive_number_or_max() -> None:
    assert parse_speed("max") is None and parse_speed("MAX") is None
    assert parse_speed("4") == 4.0 and parse_speed("0.5") == 0.5
    for bad in ("0", "-1", "inf", "nan", "fast", ""):
        with pytest.raises(Exception, match="positive number or max"):
            parse_speed(bad)


@pytest.mark.parametrize("command", [["monitor", "--sim"], ["record", "--sim"], ["replay", "abcd"]])
@pytest.mark.parametrize("speed", ["0", "-2"])
def test_a_zero_or_negative_speed_is_a_usage_error(
    command: list[str], speed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*command, "--speed", speed])
    assert exc.value.code == 2
    assert "--speed" in capsys.readouterr().err


def test_monitor_accepts_speed_max(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["monitor", "--sim", "--speed", "max", "--duration", "60", "--json"]) == 0
    beats = [line for line in capsys.readouterr().out.splitlines() if '"beat"' in line]
    assert len(beats) > 40


def test_monitor_device_and_sim_are_mutually_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["monitor", "--sim", "--device", "Polar"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


# ------------------------------------------------------------------ replay --from


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("05:30", 330.0),
        ("5:30", 330.0),
        ("0:00", 0.0),
        ("90:00", 5400.0),  # MM:SS: the minutes may pass 59
        ("1:05:30", 3930.0),
        ("2:00:00", 7200.0),
        ("5:59.5", 359.5),
        ("330", 330.0),
        ("12.5", 12.5),
        (" 05:00 ", 300.0),
    ],
)
def test_replay_from_accepts_mm_ss_h_mm_ss_and_seconds(text: str, seconds: float) -> None:
    assert parse_offset(text) == seconds


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("5:75", "seconds after a colon must be below 60"),
        ("5:60", "seconds after a colon must be below 60"),
        ("1:05:60", "seconds after a colon must be below 60"),
        ("1:60:00", "minutes in H:MM:SS must be below 60"),
        ("-5", "cannot be negative"),
        ("-1:00", "cannot be negative"),
        ("nan", "not a time"),
        ("inf", "not a time"),
        ("1::2", "not a time"),
        ("1:2:3:4", "not a time"),
        ("1.5:00", "not a time"),
        ("", "not a time"),
        ("five", "not a time"),
        ("9" * 400, "not a time"),  # float() would give inf
    ],
)
def test_replay_from_rejects_out_of_range_and_malformed_times(
    text: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["replay", "abcd", f"--from={text}"])
    assert exc.value.code == 2  # a usage error, before any store is opened
    err = capsys.readouterr().err
    assert "--from" in err and why in err and "MM:SS" in err and "H:MM:SS" in err
    assert "Traceback" not in err


def test_replay_help_documents_the_from_formats(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["replay", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "MM:SS, H:MM:SS or seconds" in help_text and "0-59" in help_text


# ------------------------------------------------------------------ the store's location


def test_sessions_and_show_say_where_the_store_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "sessions.sqlite3"
    assert main(["sessions", "--data-dir", str(tmp_path)]) == 0
    assert f"store: {db}" in capsys.readouterr().err  # even before there is one
    sid = sim_session(tmp_path, capsys, 60)
    for args in (["sessions"], ["sessions", "--json"], ["show", sid], ["show", sid, "--json"]):
        assert main([*args, "--data-dir", str(tmp_path)]) == 0
        out, err = capsys.readouterr()
        assert f"store: {db}" in err.splitlines()
        assert "store:" not in out
        if "--json" in args:
            json.loads(out)  # stdout stays pure JSON


def test_a_file_as_data_dir_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "passwd"
    a_file.write_text("root:x:0:0::/root:/bin/sh\n")
    for command in (["sessions"], ["show", "abc"], ["replay", "abc"], ["record", "--sim"]):
        with pytest.raises(SystemExit) as exc:
            main([*command, "--data-dir", str(a_file)])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "--data-dir" in err and "not a directory" in err
    assert a_file.read_text().startswith("root:")  # untouched


def test_an_unusable_data_dir_from_the_environment_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for where in (a_file, a_file / "below"):
        monkeypatch.setenv("VAGUS_DATA_DIR", str(where))
        assert main(["sessions"]) == 1
        err = capsys.readouterr().err
        assert "vagus sessions: error:" in err and str(where) in err
        assert main(["import", str(a_file), "--format", "plain", "--unit", "ms"]) == 1
        assert "error:" in capsys.readouterr().err


def test_a_file_as_data_dir_gives_no_traceback_in_a_real_process(tmp_path: Path) -> None:
    a_file = tmp_path / "passwd"
    a_file.write_text("")
    proc = subprocess.run(
        [sys.executable, "-m", "vagus", "sessions", "--data-dir", str(a_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "not a directory" in proc.stderr


# ------------------------------------------------------------------ Ctrl-C


def test_ctrl_c_ends_the_recording_with_a_stop_marker_and_status_130(tmp_path: Path) -> None:
    proc = vagus_process(tmp_path, "record", "--sim", "--speed", "5", "--seed", "1")
    # Ctrl-C once packets have arrived (the first seconds after connecting are settling).
    code, err = signal_when(proc, re.compile(r"packets [1-9]"))
    assert code == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err
    assert "saved session" in err
    with SqliteStore(tmp_path / "sessions.sqlite3") as store:
        (info,) = store.list_sessions()
        controls = [r.event for r in store.iter_input(info.id) if isinstance(r, ControlRecord)]
    assert isinstance(controls[0], Marker) and controls[0].text == "start"
    assert isinstance(controls[-1], Marker) and controls[-1].text == "stop: Ctrl-C"


def test_ctrl_c_during_replay_closes_cleanly_with_status_130(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = sim_session(tmp_path, capsys)
    proc = vagus_process(tmp_path, "replay", sid, "--speed", "2")
    code, err = signal_when(proc, "REPLAY")
    assert code == 130, err
    assert "Exception ignored" not in err and "Traceback" not in err
    assert "stopped (Ctrl-C)" in err


def test_ctrl_c_during_monitor_exits_with_status_130(tmp_path: Path) -> None:
    proc = vagus_process(tmp_path, "monitor", "--sim", "--speed", "5")
    code, err = signal_when(proc, "HR ")
    assert code == 130, err
    assert "stopped (Ctrl-C)" in err and "packets" in err and "Traceback" not in err


# ------------------------------------------------------------------ status line, progress


def test_status_line_battery_has_a_percent_sign_only_when_known() -> None:
    status = LiveStatus()
    assert "battery --  " in status.line() and "--%" not in status.line()
    status.battery_pct = 87
    assert "battery 87%" in status.line()


def test_replay_status_line_shows_no_battery_percent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = sim_session(tmp_path, capsys, 30)
    assert main(["replay", sid, "--speed", "100", "--data-dir", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "REPLAY" in err and "battery --" in err and "--%" not in err


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_is_quiet_off_a_terminal_and_draws_on_one() -> None:
    log = io.StringIO()
    bar = ProgressBar("work", total=1000, stream=log)
    for done in range(1, 1001):
        bar.update(done)
    bar.finish()
    assert log.getvalue() == ""

    tty = _TTY()
    bar = ProgressBar("work", total=1000, stream=tty)
    for done in range(1, 1001):
        bar.update(done)
    bar.finish()
    text = tty.getvalue()
    assert text.count("\r") < 50  # throttled
    assert text.rstrip().endswith("100.0 %") and text.endswith("\n")


def test_bench_pipeline_progress_does_not_flood_a_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rr_secs = tmp_path / "rr_secs.txt"
    rr_secs.write_text("225.8\n" + "0.8\n0.85\n0.9\n" * 60)
    assert main(["bench", "pipeline", str(rr_secs), "--sample", "0"]) == 0
    err = capsys.readouterr().err
    assert len(err.splitlines()) <= 2, err


def test_benches_share_one_default_record_finder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vagus.bench as bench
    import vagus.bench.pipeline as bench_pipeline
    import vagus.bench.replay as bench_replay

    assert not hasattr(bench_pipeline, "_find_default")
    assert not hasattr(bench_replay, "_find_default")
    record = tmp_path / bench.DEFAULT_RECORD
    record.parent.mkdir(parents=True)
    record.write_text("0.5\n0.8\n")
    monkeypatch.chdir(tmp_path)
    assert bench.find_default_record("pipeline") == record
    monkeypatch.setattr(bench, "_search_roots", lambda: [tmp_path / "elsewhere"])
    with pytest.raises(Exception, match="vagus bench replay PATH"):
        bench.find_default_record("replay")
