"""``vagus sessions``, ``vagus show``, ``vagus delete`` (and the bench's smoke run)."""

from __future__ import annotations

import io
import json
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
    assert 230 <= rec["duration_s"] <= 240
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
