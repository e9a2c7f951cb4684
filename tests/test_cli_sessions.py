"""``vagus sessions``, ``vagus show``, ``vagus delete`` (and the bench's smoke run): a
session being recorded, simulated sessions' times, read-only stores."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vagus.cli import main
from vagus.cli.sessions import format_duration
from vagus.core.events import Marker
from vagus.store.base import ControlRecord, RRRecord
from vagus.store.recorder import SUMMARY_VERSION
from vagus.store.sqlite import SqliteStore

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NSR001 = DATA / "physionet_nsr2db" / "nsr001_rr_secs.txt"


def _record(data: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    code = main(
        ["record", "--sim", "--speed", "max", "--data-dir", str(data), "--duration", "240", *extra]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    return out.strip()  # the session id


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_sessions_on_a_new_machine_says_there_are_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sessions", "--data-dir", str(tmp_path / "nothing")]) == 0
    assert "no sessions yet" in capsys.readouterr().err
    assert main(["sessions", "--json", "--data-dir", str(tmp_path / "nothing")]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert not (tmp_path / "nothing").exists()  # listing creates nothing


def test_sessions_lists_recorded_and_imported_sessions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = _record(tmp_path, capsys, "--title", "morning", "--participant", "ann", "--seed", "3")
    # An imported-like session written straight through the store, without a summary.
    with SqliteStore(tmp_path / "sessions.sqlite3") as store:
        imp = store.create_session(title="holter", source="import:plain", started_unix_s=1e9)
        rr = tuple(900.0 + 20.0 * ((i * 7) % 5) for i in range(400))
        store.append_many(imp.id, [RRRecord(rr), ControlRecord(Marker(t_s=30.0, text="hi"))])
        store.end_session(imp.id, 1e9 + 360)
        assert store.get_session(imp.id).summary == {}

    assert main(["sessions", "--json", "--data-dir", str(tmp_path)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [s["id"] for s in listed] == [imp.id, sid]  # oldest first
    for s in listed:
        assert {"id", "started", "duration_s", "beats", "title"} <= set(s)
    rec = listed[1]
    assert rec["title"] == "morning" and rec["participants"] == ["ann"]
    assert rec["status"] == "ended" and rec["source"] == "sim"
    # --duration 240 counts from the first packet; its beats began up to ~1 s before it.
    assert 238 <= rec["duration_s"] <= 242
    assert 200 < rec["beats"] < 300 and 50 < rec["mean_hr_bpm"] < 80
    assert rec["rmssd_ms"] > 0 and rec["mean_coherence"] > 0
    imported = listed[0]
    assert imported["beats"] == 400
    assert imported["duration_s"] == pytest.approx(sum(rr) / 1000.0)
    assert imported["mean_hr_bpm"] == pytest.approx(60000.0 / (sum(rr) / len(rr)), rel=0.01)
    # The summary computed for the listing was cached.
    with SqliteStore(tmp_path / "sessions.sqlite3") as store:
        assert store.get_session(imp.id).summary["summary_version"] == SUMMARY_VERSION

    assert main(["sessions", "--data-dir", str(tmp_path)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["ID", "DATE", "DURATION"]
    assert any(line.startswith(sid) and "ann" in line and "morning" in line for line in table)
    span = format_duration(sum(rr) / 1000.0)
    assert span == "06:16"
    assert any(line.startswith(imp.id) and span in line for line in table)


def test_show_by_prefix_as_text_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = _record(tmp_path, capsys, "--title", "evening", "--tag", "calm")
    assert main(["show", sid[:5], "--json", "--data-dir", str(tmp_path)]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["id"] == sid and obj["tags"] == ["calm"]
    assert obj["records"]["packets"] > 200 and obj["records"]["rr_beats"] == 0
    assert obj["device_profile"] == "generic"
    assert main(["show", sid, "--data-dir", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert f"session      {sid}" in text and "evening" in text and "mean HR" in text

    assert main(["show", "0000000000", "--data-dir", str(tmp_path)]) == 1
    assert "no session '0000000000'" in capsys.readouterr().err


def test_delete_asks_first_and_refuses_without_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = _record(tmp_path, capsys)
    args = ["delete", sid, "--data-dir", str(tmp_path)]

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(args) == 1
    assert "add --yes" in capsys.readouterr().err

    monkeypatch.setattr("sys.stdin", _TTY("n\n"))
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert "Delete session" in out and "not deleted" in err

    with SqliteStore(tmp_path / "sessions.sqlite3") as store:
        assert store.get_session(sid).id == sid

    monkeypatch.setattr("sys.stdin", _TTY("y\n"))
    assert main(args) == 0
    assert f"deleted session {sid}" in capsys.readouterr().err
    assert main(["sessions", "--json", "--data-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out) == []

    sid2 = _record(tmp_path, capsys)
    assert main(["delete", sid2, "--yes", "--data-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["show", sid2, "--data-dir", str(tmp_path)]) == 1


def test_data_dir_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAGUS_DATA_DIR", str(tmp_path / "env"))
    assert main(["record", "--sim", "--speed", "max", "--duration", "30"]) == 0
    sid = capsys.readouterr().out.strip()
    assert (tmp_path / "env" / "sessions.sqlite3").exists()
    assert main(["sessions", "--json"]) == 0
    assert [s["id"] for s in json.loads(capsys.readouterr().out)] == [sid]


def test_bench_replay_runs_on_a_short_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not NSR001.is_file():
        pytest.skip(f"real recordings not present at {DATA} (../shared/data)")
    short = tmp_path / "nsr001_head.txt"
    short.write_text("".join(NSR001.read_text().splitlines(keepends=True)[:3001]))
    assert main(["bench", "replay", str(short), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["beats"] == 3000
    assert figures["beats_per_s"] > 0 and figures["peak_rss_mb"] > 0
    assert figures["read_s"] < figures["replay_s"]


# ------------------------------------------------------------------ a session being recorded


def _start_recording(data: Path) -> tuple[subprocess.Popen[str], str]:
    """`vagus record --sim` in real time, once packets are being stored: (process, id)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "vagus", "record", "--sim", "--speed", "2", "--seed", "4"],
        env={**os.environ, "VAGUS_DATA_DIR": str(data)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen: list[str] = []
    sid = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if m := re.search(r"recording session (\w+)", line):
            sid = m.group(1)
        if re.search(r"packets [1-9]", line):
            return proc, sid
    proc.kill()
    proc.communicate()
    raise AssertionError("the recording did not start: " + "".join(seen))


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """Ctrl-C the recorder; (exit status, the rest of its stderr)."""
    proc.send_signal(signal.SIGINT)
    try:
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, err


def test_a_session_being_recorded_lists_as_recording_and_cannot_be_deleted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proc, sid = _start_recording(tmp_path)
    try:
        assert main(["sessions", "--data-dir", str(tmp_path)]) == 0
        row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(sid))
        assert row.endswith("(recording)") and "interrupted" not in row
        assert main(["sessions", "--json", "--data-dir", str(tmp_path)]) == 0
        (listed,) = json.loads(capsys.readouterr().out)
        assert (listed["status"], listed["ended"]) == ("recording", None)
        assert main(["show", sid, "--data-dir", str(tmp_path)]) == 0
        shown = capsys.readouterr().out
        assert "ended        not yet: recording now" in shown and "interrupted" not in shown
        # Refused even with --yes, before asking, and nothing is lost.
        assert main(["delete", sid, "--yes", "--data-dir", str(tmp_path)]) == 1
        err = capsys.readouterr().err
        assert f"session {sid} is being recorded right now" in err
        assert "stop the recording first" in err and "Traceback" not in err
    finally:
        code, err = _stop(proc)
    assert code == 130, err
    assert f"saved session {sid}" in err and "deleted" not in err
    assert main(["sessions", "--json", "--data-dir", str(tmp_path)]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["status"] == "ended" and listed["beats"] > 0
    assert main(["delete", sid, "--yes", "--data-dir", str(tmp_path)]) == 0  # now it may go


def test_a_session_deleted_under_the_recorder_is_reported_as_such(tmp_path: Path) -> None:
    proc, sid = _start_recording(tmp_path)
    try:
        # Another process deletes it behind `vagus delete`'s back (raw SQL).
        conn = sqlite3.connect(tmp_path / "sessions.sqlite3", timeout=10)
        with conn:
            conn.execute("DELETE FROM records WHERE session_id=?", (sid,))
            conn.execute("DELETE FROM sessions WHERE id=?", (sid,))
        conn.close()
        time.sleep(1.5)  # the recorder's next packet or commit finds it gone
    finally:
        code, err = _stop(proc)
    assert code == 1, err
    assert "NOT RECORDING" in err
    assert f"session {sid} was deleted by another process while it was being recorded" in err
    assert "recording stopped" in err and "nothing of it is kept" in err
    assert "are kept" not in err and "no such session" not in err and " in: " not in err
    assert "Traceback" not in err
    with SqliteStore(tmp_path / "sessions.sqlite3") as store:
        assert store.list_sessions() == []


# ------------------------------------------------------------------ simulated time


def test_a_simulated_session_spans_its_simulated_time_at_any_speed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t0 = time.time()
    sid = _record(tmp_path, capsys, "--duration", "600")  # at --speed max: about a second
    assert time.time() - t0 < 300
    assert main(["sessions", "--json", "--data-dir", str(tmp_path)]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["id"] == sid
    span = listed["ended_unix_s"] - listed["started_unix_s"]
    # The simulated clock runs from the start; the input begins after the strap settles.
    assert listed["duration_s"] <= span <= listed["duration_s"] + 5.0
    # 600 s of packets from the first one, after the 2-3 s of settling before it.
    assert 600 <= span <= 604
    with pytest.raises(SystemExit):
        main(["record", "--help"])
    assert "simulated clock" in capsys.readouterr().out


# ------------------------------------------------------------------ read-only stores


def _read_commands(data: Path, sid: str, out: Path) -> list[list[str]]:
    return [
        ["sessions"],
        ["sessions", "--json"],
        ["show", sid],
        ["show", sid, "--json"],
        ["replay", sid, "--speed", "max", "--json"],
        ["export", sid, "--format", "csv", "-o", str(out)],
    ]


Vagus = Callable[..., subprocess.CompletedProcess[str]]


def _check_read_only(run: Vagus, data: Path, sid: str, out: Path) -> None:
    """Reading commands work with a note; writing commands keep the clear error."""
    for args in _read_commands(data, sid, out):
        proc = run(*args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert f"note: the session store {data / 'sessions.sqlite3'} is read-only" in proc.stderr
        assert "nothing is changed" in proc.stderr
        if "--json" in args:
            assert proc.stdout.strip() and "read-only" not in proc.stdout
            for line in proc.stdout.splitlines():
                json.loads(line)  # stdout stays pure JSON
    assert out.read_text().count("\n") > 50
    deleted = run("delete", sid, "--yes")
    assert deleted.returncode == 1 and "not writable" in deleted.stderr
    recorded = run("record", "--sim", "--speed", "max", "--duration", "30")
    assert recorded.returncode == 1 and "NOT RECORDING" in recorded.stderr
    assert "not writable" in recorded.stderr
    for proc in (deleted, recorded):
        assert "Traceback" not in proc.stderr


def _vagus(data: Path, *prefix: str) -> Vagus:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*prefix, sys.executable, "-m", "vagus", *args, "--data-dir", str(data)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=100,
        )

    return run


def _vagus_in_process(data: Path, capsys: pytest.CaptureFixture[str]) -> Vagus:
    """As :func:`_vagus`, but ``vagus.cli.main`` in this process (no interpreter start-up
    per command) where no process-wide state (privileges) is at stake."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        code = main([*args, "--data-dir", str(data)])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)

    return run


def test_reading_commands_read_a_store_whose_side_files_cannot_be_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    sid = _record(data, capsys, "--duration", "120")
    before = (data / "sessions.sqlite3").read_bytes()
    # The WAL side files cannot be created (as in a read-only directory or mount); a link
    # into a missing directory stops root too, which chmod does not.
    (data / "sessions.sqlite3-shm").symlink_to(tmp_path / "no-such-directory" / "shm")
    _check_read_only(_vagus_in_process(data, capsys), data, sid, tmp_path / "out.csv")
    assert (data / "sessions.sqlite3").read_bytes() == before


@pytest.fixture
def unprivileged() -> Iterator[tuple[str, ...]]:
    """A command prefix under which directory permissions apply: none for a normal user;
    for root (CI containers), ``setpriv`` without the capabilities that bypass them."""
    if os.geteuid() != 0:
        yield ()
        return
    prefix = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--")
    if shutil.which("setpriv") is None:
        pytest.skip("running as root, whom chmod does not stop, and setpriv is not installed")
    probe = subprocess.run([*prefix, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"running as root, whom chmod does not stop; setpriv: {probe.stderr}")
    yield prefix


def test_reading_commands_work_in_a_read_only_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], unprivileged: tuple[str, ...]
) -> None:
    data = tmp_path / "data"
    sid = _record(data, capsys, "--duration", "120")
    before = (data / "sessions.sqlite3").read_bytes()
    data.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    try:
        run = _vagus(data, *unprivileged)
        _check_read_only(run, data, sid, tmp_path / "out.csv")
        assert sorted(p.name for p in data.iterdir()) == ["sessions.sqlite3"]
    finally:
        data.chmod(stat.S_IRWXU)
    assert (data / "sessions.sqlite3").read_bytes() == before
