"""``vagus edit ID``: a session's title, notes, tags and participant after the fact."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from vagus.cli import main
from vagus.report.progress import CACHE_KEY
from vagus.store.base import RRRecord, recorded_as
from vagus.store.sqlite import SqliteStore


def _record(data: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    code = main(
        ["record", "--sim", "--speed", "max", "--data-dir", str(data), "--duration", "120", *extra]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    return out.strip()  # the session id


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _show(data: Path, capsys: pytest.CaptureFixture[str], sid: str) -> dict[str, Any]:
    code, out, err = _run(capsys, "show", sid, "--json", "--data-dir", str(data))
    assert code == 0, err
    obj: dict[str, Any] = json.loads(out)
    return obj


def _progress(data: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, list[dict[str, Any]]]:
    """``vagus progress --json``: participant -> its rows."""
    out_html = data / "progress.html"
    args = ["progress", "--json", "-q", "-o", str(out_html), "--data-dir", str(data)]
    code, out, err = _run(capsys, *args)
    assert code == 0, err
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in json.loads(out)["sessions"]:
        groups.setdefault(row["participant"], []).append(row)
    return groups


def test_title_notes_and_tags_round_trip_by_prefix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = _record(tmp_path, capsys, "--title", "morning", "--tag", "calm", "--tag", "test")
    before = _show(tmp_path, capsys, sid)
    with SqliteStore(tmp_path / "sessions.sqlite3") as store:
        cached = store.get_session(sid).summary
    assert cached  # `vagus show` cached the summary

    code, out, err = _run(
        capsys,
        "edit",
        sid[:4],
        "--title",
        "evening practice",
        "--notes",
        "felt calm",
        "--tag",
        "paced",
        "--tag",
        "calm",  # already there: kept once
        "--untag",
        "test",
        "--data-dir",
        str(tmp_path),
    )
    assert code == 0, err
    assert out.splitlines() == [
        f"session {sid}:",
        '  title: "morning" -> "evening practice"',
        '  notes: "" -> "felt calm"',
        '  tags: ["calm", "test"] -> ["calm", "paced"]',
    ]

    after = _show(tmp_path, capsys, sid)
    assert after["title"] == "evening practice" and after["notes"] == "felt calm"
    assert after["tags"] == ["calm", "paced"]
    # Nothing else changed: participants, records, the summary (and its cache).
    for key in ("participants", "records", "summary", "started_unix_s", "ended_unix_s"):
        assert after[key] == before[key], key
    with SqliteStore(tmp_path / "sessions.sqlite3") as store:
        assert store.get_session(sid).summary == cached

    # --json prints the session after the edit, with what changed; '' clears a title.
    code, out, err = _run(capsys, "edit", sid, "--title", "", "--json", "--data-dir", str(tmp_path))
    assert code == 0, err
    obj = json.loads(out)
    assert obj["id"] == sid and obj["title"] == "" and obj["tags"] == ["calm", "paced"]
    assert obj["beats"] == before["beats"] and obj["summary"] == before["summary"]
    assert obj["changed"] == {"title": {"old": "evening practice", "new": ""}}

    # Asking for what is already so changes nothing, and says so.
    code, out, _ = _run(capsys, "edit", sid, "--tag", "paced", "--data-dir", str(tmp_path))
    assert code == 0 and "nothing changed" in out


def test_ids_resolve_as_show_and_delete_resolve_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = iter(["abc00001", "abc00002"])
    monkeypatch.setattr("vagus.store.sqlite._new_id", lambda: next(ids))
    with SqliteStore(tmp_path / "sessions.sqlite3") as store:
        for _ in range(2):
            store.import_session([], started_unix_s=1e9, ended_unix_s=1e9 + 60)
    data = ["--data-dir", str(tmp_path)]
    for sid in ("abc", "zzz"):
        show_code, _, show_err = _run(capsys, "show", sid, *data)
        delete_code, _, delete_err = _run(capsys, "delete", sid, "--yes", *data)
        code, out, err = _run(capsys, "edit", sid, "--title", "x", *data)
        assert code == show_code == delete_code == 1 and out == ""
        assert err.replace("vagus edit:", "vagus delete:") == delete_err
        assert err.replace("vagus edit:", "vagus show:") in show_err
    assert (
        "matches several sessions (abc00001, abc00002)"
        in _run(capsys, "edit", "abc", "--title", "x", *data)[2]
    )
    code, out, err = _run(capsys, "edit", "abc00002", "--title", "second", *data)
    assert code == 0, err
    assert _show(tmp_path, capsys, "abc00002")["title"] == "second"
    assert _show(tmp_path, capsys, "abc00001")["title"] == ""


def test_an_unknown_tag_is_an_error_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = _record(tmp_path, capsys, "--title", "morning", "--tag", "calm")
    before = _show(tmp_path, capsys, sid)
    code, out, err = _run(
        capsys,
        "edit",
        sid,
        "--title",
        "changed",
        "--untag",
        "calm",
        "--untag",
        "nope",
        "--data-dir",
        str(tmp_path),
    )
    assert code == 1 and out == ""
    assert f"session {sid} has no tag 'nope'" in err and "nothing changed" in err
    assert "Traceback" not in err
    assert _show(tmp_path, capsys, sid) == before


def test_no_option_is_a_usage_error_naming_the_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = _record(tmp_path, capsys)
    code, out, err = _run(capsys, "edit", sid, "--data-dir", str(tmp_path))
    assert code == 2 and out == ""
    assert err.startswith("usage: vagus edit")
    for option in ("--title", "--notes", "--participant", "--tag", "--untag"):
        assert option in err.splitlines()[-1]
    # --tag T --untag T contradicts itself: a usage error too.
    code, _, err = _run(capsys, "edit", sid, "--tag", "a", "--untag", "a")
    assert code == 2 and "both --tag and --untag" in err
    with pytest.raises(SystemExit) as exc:
        main(["edit", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "vagus edit 3f2a --title" in text


def test_a_new_participant_shows_in_sessions_and_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Recorded without --participant ("me"), relabelled "ann": the records still say
    "me", yet sessions, report and progress show the session as ann's, with its beats."""
    data = ["--data-dir", str(tmp_path)]
    unnamed = _record(tmp_path, capsys, "--seed", "1")
    ann = _record(tmp_path, capsys, "--seed", "2", "--participant", "ann")
    groups = _progress(tmp_path, capsys)  # caches each session's values under "me"/"ann"
    assert {p: [r["id"] for r in rows] for p, rows in groups.items()} == {
        "me": [unnamed],
        "ann": [ann],
    }
    values_before = groups["me"][0]

    code, out, err = _run(capsys, "edit", unnamed[:6], "--participant", "ann", *data)
    assert code == 0, err
    assert '  participants: ["me"] -> ["ann"]' in out.splitlines()

    code, out, err = _run(capsys, "sessions", "--json", *data)
    assert code == 0, err
    assert {s["id"]: s["participants"] for s in json.loads(out)} == {
        unnamed: ["ann"],
        ann: ["ann"],
    }
    with SqliteStore(tmp_path / "sessions.sqlite3") as store:
        info = store.get_session(unnamed)
        # The raw records are not rewritten; the stale cache entry under "me" is gone.
        assert {r.participant for r in store.iter_input(unnamed) if hasattr(r, "participant")} == {
            "me"
        }
        assert "me" not in info.summary[CACHE_KEY]["participants"]

    groups = _progress(tmp_path, capsys)
    assert list(groups) == ["ann"]  # one section: no "(no participant)" any more
    assert [r["id"] for r in groups["ann"]] == [unnamed, ann]
    relabelled = groups["ann"][0]
    for key in ("resting_rmssd_ms", "mean_rmssd_60s_ms", "mean_coherence"):
        assert relabelled[key] == pytest.approx(values_before[key]), key
    assert relabelled["mean_coherence"] is not None

    # `vagus report` finds the beats under the new name; the old one is not a participant.
    out_html = str(tmp_path / "r.html")
    code, out, err = _run(capsys, "report", unnamed, "-q", "--json", "-o", out_html, *data)
    assert code == 0, err
    assert json.loads(out)["beats"] > 100
    code, _, err = _run(capsys, "report", unnamed, "-q", "--participant", "me", *data)
    assert code == 1 and "has no participant 'me'" in err

    # Relabelled back, it is unnamed again.
    assert _run(capsys, "edit", unnamed, "--participant", "me", *data)[0] == 0
    assert sorted(_progress(tmp_path, capsys)) == ["ann", "me"]


def test_a_relabelling_that_would_mix_up_participants_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path)]
    with SqliteStore(tmp_path / "sessions.sqlite3") as store:
        dyad = store.import_session(
            [
                RRRecord(rr_ms=(800.0,) * 120, participant="client"),
                RRRecord(rr_ms=(1000.0,) * 120, participant="coach"),
            ],
            started_unix_s=1e9,
            ended_unix_s=1e9 + 240,
            participants=("client", "coach"),
        )
        # An import that listed only alice but holds bob's records too.
        mixed = store.import_session(
            [
                RRRecord(rr_ms=(800.0,) * 120, participant="alice"),
                RRRecord(rr_ms=(1000.0,) * 120, participant="bob"),
            ],
            started_unix_s=2e9,
            ended_unix_s=2e9 + 240,
            participants=("alice",),
        )

    code, _, err = _run(capsys, "edit", dyad.id, "--participant", "coach", *data)
    assert code == 1 and "'coach' is already another participant" in err
    for new in ("bob", "carol"):  # bob's beats, or alice's and bob's both unlisted
        code, _, err = _run(capsys, "edit", mixed.id, "--participant", new, *data)
        assert code == 1 and "nothing changed" in err and "Traceback" not in err
    assert _show(tmp_path, capsys, mixed.id)["participants"] == ["alice"]

    # The dyad's client relabelled: each keeps their own beats (HR 75 and 60).
    assert _run(capsys, "edit", dyad.id, "--participant", "anna", *data)[0] == 0
    from vagus.report.progress import progress_rows

    with SqliteStore(tmp_path / "sessions.sqlite3") as store:
        rows = {r.participant: r for r in progress_rows(store) if r.session_id == dyad.id}
    assert sorted(rows) == ["anna", "coach"]
    assert rows["anna"].mean_hr_bpm == pytest.approx(75.0, abs=0.5)
    assert rows["coach"].mean_hr_bpm == pytest.approx(60.0, abs=0.5)


@pytest.mark.parametrize(
    ("participants", "who", "recorded", "expected"),
    [
        (("ann",), "ann", {"me"}, "me"),  # relabelled: the one unlisted name
        (("ann",), "ann", {"ann", "bob"}, "ann"),  # its own name first
        (("ann",), "ann", {"me", "bob"}, "ann"),  # ambiguous: nothing borrowed
        (("ann", "coach"), "coach", {"me"}, "coach"),  # only the first participant
        (("ann",), "ann", set(), "ann"),  # no records yet
    ],
)
def test_recorded_as(
    participants: tuple[str, ...], who: str, recorded: set[str], expected: str
) -> None:
    assert recorded_as(participants, who, recorded) == expected


def test_a_read_only_store_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    sid = _record(data, capsys)
    before = (data / "sessions.sqlite3").read_bytes()
    # The WAL side files cannot be created (as in a read-only directory or mount); a link
    # into a missing directory stops root too, which chmod does not.
    (data / "sessions.sqlite3-shm").symlink_to(tmp_path / "no-such-directory" / "shm")
    code, out, err = _run(capsys, "edit", sid, "--title", "x", "--data-dir", str(data))
    assert code == 1 and out == ""
    assert err.startswith("vagus edit: error: ") and "not writable" in err
    assert "Traceback" not in err
    assert (data / "sessions.sqlite3").read_bytes() == before


def test_a_session_being_recorded_can_be_edited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "vagus", "record", "--sim", "--speed", "2", "--seed", "4"],
        env={**os.environ, "VAGUS_DATA_DIR": str(tmp_path)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        sid = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not sid:
            line = proc.stderr.readline()
            assert line, "the recording did not start"
            if m := re.search(r"recording session (\w+)", line):
                sid = m.group(1)
        while time.monotonic() < deadline:  # until packets are being stored
            if re.search(r"packets [1-9]", proc.stderr.readline()):
                break
        data = ["--data-dir", str(tmp_path)]
        assert _show(tmp_path, capsys, sid)["status"] == "recording"
        code, _, err = _run(
            capsys, "edit", sid, "--title", "live", "--tag", "paced", "--participant", "ann", *data
        )
        assert code == 0, err
        time.sleep(1.5)  # the recorder goes on writing after the edit
        assert _show(tmp_path, capsys, sid)["status"] == "recording"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _out, rec_err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 130, rec_err
    assert f"saved session {sid}" in rec_err and "NOT RECORDING" not in rec_err
    after = _show(tmp_path, capsys, sid)
    assert after["status"] == "ended" and after["beats"] > 0
    assert (after["title"], after["tags"], after["participants"]) == ("live", ["paced"], ["ann"])
    assert list(_progress(tmp_path, capsys)) == ["ann"]
