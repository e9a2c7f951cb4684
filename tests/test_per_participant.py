"""Per participant everywhere (issue 9 §4, §7): a session of several participants is
replayed, summarised, exported and reported one participant at a time, each exactly as
that participant recorded alone with the same seed; never one blended pipeline.

Sessions are written through the store's API with the packets of
:class:`~vagus.sources.simulator.VirtualStrap` (the simulator's real 0x2A37 bytes), one
strap per participant with its own seed and resting heart rate; the session's markers
and pacer changes are stored once, interleaved by time, as a live recorder stores them.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from vagus.cli import main
from vagus.core.events import Event, Gap, Marker, PacerChange
from vagus.exceptions import InvalidInput
from vagus.formats import export as ex
from vagus.sources.base import Packet
from vagus.sources.simulator import StrapConfig, SubjectConfig, VirtualStrap
from vagus.store.base import (
    ControlRecord,
    GapRecord,
    InputRecord,
    PacketRecord,
    SessionInfo,
)
from vagus.store.recorder import SUMMARY_VERSION, participant_summary, session_summary
from vagus.store.replay import UnknownParticipant, replay, replay_records
from vagus.store.sqlite import SCHEMA_VERSION, SqliteStore

DB = "sessions.sqlite3"
STARTED = 1.75e9
CONTROLS: tuple[Marker | PacerChange, ...] = (
    Marker(20.0, "baseline"),
    PacerChange(60.0, 6.0, 0.4),
    Marker(150.0, "slower"),
    PacerChange(150.0, 5.5, 0.4),
    PacerChange(200.0, None),
)
NAMES = ("ann", "bob", "cyd", "dee", "eve")


def strap_records(
    name: str, seed: int, duration_s: float, *, dropouts: tuple[tuple[float, float], ...] = ()
) -> list[tuple[float, InputRecord]]:
    """(time, record) of one participant's strap, as a live recording stores them."""
    strap = VirtualStrap(
        SubjectConfig(resting_hr_bpm=58.0 + 7.0 * seed),
        StrapConfig(dropouts=dropouts, missed_rate=0.004, ectopic_rate=0.004),
        seed=seed,
    )
    for ev in CONTROLS:
        if isinstance(ev, PacerChange):
            strap.subject.set_pacer(ev.rate_bpm, ev.t_s)
    out: list[tuple[float, InputRecord]] = []
    t = 0.0
    while t < duration_s:
        t += 1.0
        for item in strap.packets_until(t):
            if isinstance(item, Packet):
                out.append((item.t_arrival_s, PacketRecord(item.t_arrival_s, item.payload, name)))
            else:
                out.append((item.t_s, GapRecord(item.t_s, item.reason, name)))
    return out


def session_input(
    streams: Sequence[list[tuple[float, InputRecord]]],
) -> list[InputRecord]:
    """The participants' records and the session's control records in time order (a
    control at ``t`` before the packets arriving at or after ``t``; participants in
    order at equal times), as one live session stores them."""
    keyed: list[tuple[float, int, int, InputRecord]] = [
        (ev.t_s, 0, 0, ControlRecord(ev)) for ev in CONTROLS
    ]
    for k, stream in enumerate(streams):
        keyed += [(t, 1, k, rec) for t, rec in stream]
    keyed.sort(key=lambda x: (x[0], x[1], x[2]))
    return [rec for *_, rec in keyed]


def store_session(
    store: SqliteStore, names: Sequence[str], records: Sequence[InputRecord], title: str
) -> SessionInfo:
    info = store.create_session(
        title=title, participants=names, source="sim", started_unix_s=STARTED
    )
    store.append_many(info.id, list(records))
    store.end_session(info.id, STARTED + 300.0)
    return store.get_session(info.id)


def together_and_alone(
    tmp_path: Path, n: int, duration_s: float = 240.0
) -> tuple[SqliteStore, SessionInfo, dict[str, SessionInfo]]:
    """One session of ``n`` participants and, for each, the same participant alone."""
    names = NAMES[:n]
    # bob's strap drops out for 20 s: his gap is his alone, nobody else's.
    streams = [
        strap_records(name, seed, duration_s, dropouts=((100.0, 20.0),) if name == "bob" else ())
        for seed, name in enumerate(names, start=1)
    ]
    store = SqliteStore(tmp_path / DB)
    together = store_session(store, names, session_input(streams), "together")
    alone = {
        name: store_session(store, (name,), session_input([stream]), f"{name} alone")
        for name, stream in zip(names, streams, strict=True)
    }
    return store, together, alone


def events_of(store: SqliteStore, info: SessionInfo, participant: str | None) -> list[Event]:
    """A participant's stream (its events, the markers and pacer changes)."""
    steps = replay(store, info, participant=participant)
    who = participant if participant is not None else info.participants[0]
    return [ev for step in steps for ev in step.pipeline_events(who)]


def session_events(
    store: SqliteStore, info: SessionInfo, participant: str | None
) -> list[dict[str, object]]:
    """Everything the replayed session hands out, as live (JSON forms)."""
    steps = replay(store, info, participant=participant)
    return [ev.to_json() for step in steps for ev in step.events]


@pytest.mark.parametrize("n", [2, 5])
def test_each_participant_equals_that_participant_recorded_alone(tmp_path: Path, n: int) -> None:
    """Summaries, replay events, exports and report numbers of each participant of one
    session equal those of the same participant recorded alone with the same seed."""
    from vagus.report.model import replay_participants, replay_session, summarize_replay

    store, together, alone = together_and_alone(tmp_path, n)
    with store:
        names = list(alone)
        assert store.recorded_participants(together.id) == names
        # Summaries: one per participant, each that participant's own.
        whole = session_summary(store, together)
        assert whole["summary_version"] == SUMMARY_VERSION
        assert whole["participants"] == names
        assert whole["input_records"] == store.input_count(together.id)
        for name, info in alone.items():
            own = session_summary(store, info)
            assert participant_summary(whole, name) == participant_summary(own, name)
            assert participant_summary(whole, name)["beats"] > 150
            assert participant_summary(whole, name)["markers"] == 2  # session-wide: each
        hrs = [participant_summary(whole, p)["mean_hr_bpm"] for p in names]
        assert len({round(hr) for hr in hrs}) == n  # never one blended HR
        # Only bob's strap dropped out: nobody else has a gap (no false gaps).
        assert {p: participant_summary(whole, p)["gaps"] for p in names} == {
            p: int(p == "bob") for p in names
        }
        # The top-level figures are the first participant's (never a blend).
        first = session_summary(store, alone[names[0]])
        for key in ("mean_hr_bpm", "rmssd_ms", "beats", "gaps", "duration_s"):
            assert whole[key] == first[key]
        # The cache is current: a second read replays nothing and gives the same.
        again = store.get_session(together.id)
        assert again.summary["by_participant"] == whole["by_participant"]
        assert session_summary(store, again) == again.summary

        # Replay: each participant's events, alone and all together in one pass.
        everyone: dict[str, list[Event]] = {p: [] for p in names}
        for step in replay(store, together):
            for p in names:
                everyone[p].extend(step.pipeline_events(p))
        for name, info in alone.items():
            solo = events_of(store, info, None)
            assert solo and events_of(store, together, name) == solo
            assert everyone[name] == solo
            # One participant replayed from the session: the session's whole output
            # (pacer states, markers...) equals that participant's session alone.
            assert session_events(store, together, name) == session_events(store, info, None)
            gaps = [e for e in solo if isinstance(e, Gap)]
            assert bool(gaps) == (name == "bob")

        # Exports: every format's content equals the participant's alone.
        for name, info in alone.items():
            run = ex.run_session(store, together.id, participant=name, keep_input=True)
            solo_run = ex.run_session(store, info.id, keep_input=True)
            assert run.events == solo_run.events and run.summary == solo_run.summary
            assert run.input == solo_run.input
            for write in (ex.write_csv, ex.write_kubios_rr):
                a, b = io.StringIO(), io.StringIO()
                write(run, a)
                write(solo_run, b)
                text_a, text_b = a.getvalue(), b.getvalue()
                if write is ex.write_kubios_rr:  # its header names the session
                    text_a = text_a.replace(together.id, "ID").replace("together", "T")
                    text_b = text_b.replace(info.id, "ID").replace(f"{name} alone", "T")
                assert text_a == text_b
            doc = ex.session_document(run)
            solo_doc = ex.session_document(solo_run)
            assert doc["events"] == solo_doc["events"] and doc["input"] == solo_doc["input"]
            assert doc["session"]["participants"] == [name]

        # Report numbers: each participant's summary equals the alone report's.
        replays = replay_participants(store, together.id)
        assert [r.participant for r in replays] == names
        for r in replays:
            solo = replay_session(store, alone[r.participant].id)
            mine, theirs = summarize_replay(r), summarize_replay(solo)
            assert mine.trend_values() == theirs.trend_values()
            assert mine.nn == theirs.nn and mine.rr == theirs.rr
            assert (r.beat_nn_ms.tobytes(), r.t0_s) == (solo.beat_nn_ms.tobytes(), solo.t0_s)
            assert mine.gap_count == theirs.gap_count and mine.artifacts == theirs.artifacts
            assert r.markers == solo.markers and r.pacer_changes == solo.pacer_changes


def test_a_wrong_participant_is_an_error_listing_the_participants(tmp_path: Path) -> None:
    store, together, _alone = together_and_alone(tmp_path, 2, duration_s=60.0)
    with store:
        with pytest.raises(UnknownParticipant, match=r"'ann', 'bob'") as caught:
            replay(store, together, participant="zed")
        assert caught.value.participants == ("ann", "bob")
        with pytest.raises(InvalidInput, match=r"2 participants \('ann', 'bob'\).*--participant"):
            ex.run_session(store, together.id)  # a file holds one participant
        with pytest.raises(UnknownParticipant, match="no participant 'zed'"):
            ex.run_session(store, together.id, participant="zed")


def test_records_under_an_unlisted_name_are_replayed_not_dropped() -> None:
    """A relabelled first participant keeps its records; a recorded name that no label
    claims is replayed under its own name rather than lost."""
    from vagus.store.replay import participant_names

    info = SessionInfo(id="x", started_unix_s=0.0, participants=("ann", "bob"))
    assert participant_names(info, ["me", "bob"]) == {"ann": "me", "bob": "bob"}
    assert participant_names(info, ["ann", "bob", "zoe"]) == {
        "ann": "ann",
        "bob": "bob",
        "zoe": "zoe",
    }
    records = [ControlRecord(Marker(0.5, "m")), GapRecord(1.0, "link_lost", "zoe")]
    steps = list(replay_records(records, {"ann": "ann", "zoe": "zoe"}))
    # The control is session-wide (in both streams); zoe's gap hers; then the end.
    assert [(s.participant, s.record is None) for s in steps] == [
        (None, False),
        ("zoe", False),
        (None, True),
    ]
    assert steps[0].pipeline_events("ann") == steps[0].pipeline_events("zoe") == [Marker(0.5, "m")]


# ---------------------------------------------------------------------------- the CLI


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_sessions_show_replay_export_per_participant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, together, alone = together_and_alone(tmp_path, 2, duration_s=120.0)
    store.close()
    d = ("--data-dir", str(tmp_path))
    sid = together.id
    code, out, _ = _run(capsys, "sessions", "--json", *d)
    assert code == 0
    rows = {r["id"]: r for r in json.loads(out)}
    both = rows[sid]["by_participant"]
    assert list(both) == ["ann", "bob"]
    for name, info in alone.items():
        assert both[name] == rows[info.id]["by_participant"][name]
    assert rows[sid]["mean_hr_bpm"] == both["ann"]["mean_hr_bpm"]
    with SqliteStore(tmp_path / DB) as store:
        both_cached = store.get_session(sid).summary["by_participant"]
    # The table: one line per participant of the session.
    code, out, _ = _run(capsys, "sessions", *d)
    lines = [line for line in out.splitlines() if line.startswith(sid)]
    assert len(lines) == 2 and " ann " in lines[0] and " bob " in lines[1]
    code, out, _ = _run(capsys, "show", sid, *d)
    assert code == 0 and "participant  ann" in out and "participant  bob" in out
    code, out, _ = _run(capsys, "show", sid, "--json", *d)
    assert json.loads(out)["by_participant"] == both

    # replay --participant: the events of that participant alone.
    code, out, _ = _run(
        capsys, "replay", sid, "--participant", "bob", "--speed", "max", "--json", *d
    )
    code2, solo, _ = _run(capsys, "replay", alone["bob"].id, "--speed", "max", "--json", *d)
    assert code == code2 == 0 and out == solo != ""
    # Without it: every participant, each event naming its participant; the session's
    # markers and pacer changes once (participant null).
    code, out, _ = _run(capsys, "replay", sid, "--speed", "max", "--json", *d)
    events = [json.loads(line) for line in out.splitlines()]
    assert {e["participant"] for e in events} == {"ann", "bob", None}
    markers = [e for e in events if e["type"] == "marker"]
    assert [m["text"] for m in markers] == ["baseline", "slower"]
    assert all(m["participant"] is None for m in markers)
    # ann's own events in the session equal ann's alone (each line as live: the
    # session's JSON, "participant" on every event).
    code, solo, _ = _run(capsys, "replay", alone["ann"].id, "--speed", "max", "--json", *d)
    solo_ann = [json.loads(line) for line in solo.splitlines()]
    assert [e for e in events if e["participant"] == "ann"] == [
        e for e in solo_ann if e["participant"] is not None
    ]
    assert [e for e in events if e["participant"] is None] == [
        e for e in solo_ann if e["participant"] is None
    ]
    assert {e["type"] for e in events if e["participant"] is None} == {
        "marker",
        "pacer",
        "pacer_state",
    }

    # export --participant; without it a session of two is a clear error.
    target = tmp_path / "bob.txt"
    code, _, _ = _run(
        capsys, "export", sid, "--format", "kubios", "--participant", "bob", "-o", str(target), *d
    )
    assert code == 0 and target.read_text(encoding="utf-8").count("\n") > 100
    code, _, err = _run(capsys, "export", sid, "--format", "csv", "-o", str(tmp_path / "x.csv"), *d)
    assert code == 1 and "'ann', 'bob'" in err and "--participant" in err
    assert not (tmp_path / "x.csv").exists()
    # Relabelling the first participant renames its cached figures (nothing replayed).
    code, _, _ = _run(capsys, "edit", sid, "--participant", "amy", *d)
    assert code == 0
    with SqliteStore(tmp_path / DB) as store:
        cached = store.get_session(sid).summary
    assert cached["participants"] == ["amy", "bob"]
    assert cached["by_participant"] == {"amy": both_cached["ann"], "bob": both_cached["bob"]}
    code, out, _ = _run(capsys, "sessions", "--json", *d)
    relabelled = {r["id"]: r for r in json.loads(out)}[sid]["by_participant"]
    assert relabelled == {"amy": both["ann"], "bob": both["bob"]}
    code, out, _ = _run(
        capsys, "replay", sid, "--participant", "amy", "--speed", "max", "--json", *d
    )
    code2, solo, _ = _run(capsys, "replay", alone["ann"].id, "--speed", "max", "--json", *d)
    assert out.replace('"participant": "amy"', '"participant": "ann"') == solo
    sid_args = (sid, "--participant", "ann", "--speed", "max")
    code, _, err = _run(capsys, "replay", *sid_args, *d)
    assert code == 1 and "'amy', 'bob'" in err
    for command in (
        ("replay", sid, "--participant", "zed", "--speed", "max"),
        ("export", sid, "--format", "csv", "--participant", "zed", "-o", "-"),
    ):
        code, _, err = _run(capsys, *command, *d)
        assert code == 1 and "no participant 'zed'" in err and "'amy', 'bob'" in err
        assert "Traceback" not in err


def test_report_has_a_section_per_participant_and_one_pacer_track(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`vagus report` of a session of two: the markers and pacer once (table and shared
    track), then each participant's section with the numbers of its report alone."""
    import re

    from vagus.report.model import replay_session, summarize_replay

    store, together, alone = together_and_alone(tmp_path, 2, duration_s=150.0)
    with store:
        solo = {
            name: summarize_replay(replay_session(store, info.id)) for name, info in alone.items()
        }
    d = ("--data-dir", str(tmp_path), "-q")
    out = tmp_path / "both.html"
    code, text, _ = _run(capsys, "report", together.id, "-o", str(out), "--json", *d)
    assert code == 0
    result = json.loads(text)
    assert [p["participant"] for p in result["participants"]] == ["ann", "bob"]
    doc = out.read_text(encoding="utf-8")
    sections = re.findall(
        r'<section class="participant" id="([^"]+)" data-participant="([^"]+)">', doc
    )
    assert [name for _, name in sections] == ["ann", "bob"]
    assert doc.count("Pacer rate and markers over the session") == 1  # the shared track
    assert doc.count("<td>marker [1]</td>") == 1  # the markers table, once
    for slug, name in sections:
        assert f'id="tachogram-{slug}"' in doc and f"Tachogram · {name}" in doc
        mine = next(p for p in result["participants"] if p["participant"] == name)
        theirs = solo[name]
        assert (mine["beats"], mine["rmssd_ms"], mine["gaps"]) == (
            theirs.nn.beats_measured,
            theirs.nn.rmssd_ms,
            theirs.gap_count,
        )
        assert mine["mean_coherence"] == theirs.realtime_means["coherence_ratio"]
        part = doc.split(f'id="numbers-{slug}"', 1)[1].split("</section>", 1)[0]
        rmssd = f"{theirs.nn.rmssd_ms:,.3f}"
        assert f"<td>RMSSD (ms)</td><td class='num'>{rmssd}</td>" in part
    # A participant the session does not have: an error listing those it has.
    code, _, err = _run(capsys, "report", together.id, "--participant", "zed", *d)
    assert code == 1 and "'ann', 'bob'" in err


# ------------------------------------------------------------------------ old stores


def _old_store(path: Path) -> tuple[str, int]:
    """A store as vagus 0.x (schema version 3) wrote it, built with plain SQL: a session
    of two participants whose cached summary (version 2) blended them into one."""
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        PRAGMA application_id = 1986094963;
        PRAGMA journal_mode = WAL;
        CREATE TABLE schema_version (version INTEGER NOT NULL);
        INSERT INTO schema_version VALUES (3);
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY, started_unix_s REAL NOT NULL, ended_unix_s REAL,
            title TEXT NOT NULL DEFAULT '', participants TEXT NOT NULL DEFAULT '["me"]',
            device_profile TEXT NOT NULL DEFAULT 'generic', source TEXT NOT NULL DEFAULT 'ble',
            tags TEXT NOT NULL DEFAULT '[]', notes TEXT NOT NULL DEFAULT '',
            summary TEXT NOT NULL DEFAULT '{}', heartbeat_unix_s REAL, content_sha256 TEXT);
        CREATE TABLE records (
            seq INTEGER PRIMARY KEY, session_id TEXT NOT NULL REFERENCES sessions(id),
            kind INTEGER NOT NULL, t_s REAL, participant TEXT NOT NULL DEFAULT 'me',
            data BLOB, times BLOB, text TEXT);
        CREATE INDEX records_by_session ON records(session_id, seq);
        CREATE INDEX sessions_by_content ON sessions(content_sha256);
        CREATE VIEW packets AS SELECT seq, session_id, t_s AS t_arrival_s, participant,
            data AS payload FROM records WHERE kind = 1;
        CREATE VIEW gaps AS SELECT seq, session_id, t_s, participant, text AS reason
            FROM records WHERE kind = 2;
        CREATE VIEW control_events AS SELECT seq, session_id, t_s, text AS event_json
            FROM records WHERE kind = 3;
        CREATE VIEW rr_chunks AS SELECT seq, session_id, participant, length(data) / 8 AS
            beats, data AS rr_ms_f64, times AS t_s_f64 FROM records WHERE kind = 4;
        """
    )
    records = session_input([strap_records("client", 1, 120.0), strap_records("coach", 2, 120.0)])
    rows = []
    for r in records:
        if isinstance(r, PacketRecord):
            rows.append((1, r.t_arrival_s, r.participant, r.payload, None))
        elif isinstance(r, GapRecord):
            rows.append((2, r.t_s, r.participant, None, r.reason))
        elif isinstance(r, ControlRecord):
            rows.append((3, r.event.t_s, "", None, json.dumps(r.event.to_json())))
    blended = {"summary_version": 2, "input_records": len(rows), "beats": 1, "gaps": 99}
    conn.execute(
        "INSERT INTO sessions (id, started_unix_s, ended_unix_s, title, participants, "
        "source, summary) VALUES ('0ld5e551', ?, ?, 'dyad', '[\"client\", \"coach\"]', "
        "'sim', ?)",
        (STARTED, STARTED + 120.0, json.dumps(blended)),
    )
    conn.executemany(
        "INSERT INTO records (session_id, kind, t_s, participant, data, text) "
        "VALUES ('0ld5e551', ?, ?, ?, ?, ?)",
        rows,
    )
    conn.commit()
    conn.close()
    return "0ld5e551", len(rows)


def test_a_store_written_by_the_current_release_reads_per_participant(tmp_path: Path) -> None:
    """An old store opens (migrated to this schema if needed), its stale blended summary
    is recomputed per participant, and each participant replays as recorded alone."""
    sid, n = _old_store(tmp_path / DB)
    with SqliteStore(tmp_path / DB) as store:
        assert store.schema_version == SCHEMA_VERSION
        info = store.get_session(sid)
        assert info.summary["gaps"] == 99  # the old cache, not trusted
        summary = session_summary(store, info)
        assert summary["input_records"] == n and summary["participants"] == ["client", "coach"]
        assert {p: participant_summary(summary, p)["gaps"] for p in ("client", "coach")} == {
            "client": 0,
            "coach": 0,
        }
        client = [ev for step in replay(store, info, participant="client") for ev in step.events]
        alone = list(
            replay_records(session_input([strap_records("client", 1, 120.0)]), {"client": "client"})
        )
        assert client == [ev for step in alone for ev in step.events]
        # The recomputed summary is cached in the old file, in the new form.
        assert store.get_session(sid).summary["by_participant"] == summary["by_participant"]


def test_the_old_store_gets_clock_offsets_and_reads_as_before_read_only(tmp_path: Path) -> None:
    """Schema 3 -> 4: the old sessions have no clock offsets (replayed on their source
    clocks, as before); a read-only old store is read as it is, not migrated; offsets
    kept per participant survive a reopen; a hand-edited offsets column is malformed."""
    from vagus.store.base import MalformedSession

    sid, _n = _old_store(tmp_path / DB)
    with SqliteStore(tmp_path / DB, read_only=True) as store:
        assert store.schema_version == 3
        info = store.get_session(sid)
        assert info.clock_offsets == {} and info.participants == ("client", "coach")
        assert store.recorded_participants(sid) == ["client", "coach"]
    with SqliteStore(tmp_path / DB) as store:
        assert store.schema_version == SCHEMA_VERSION == 4
        assert store.get_session(sid).clock_offsets == {}
        store.set_clock_offset(sid, "client", 0.0)
        store.set_clock_offset(sid, 'co"ach', -12.5)
        with pytest.raises(InvalidInput, match="finite"):
            store.set_clock_offset(sid, "client", float("nan"))
    with SqliteStore(tmp_path / DB) as store:
        assert store.get_session(sid).clock_offsets == {"client": 0.0, 'co"ach': -12.5}
        store._conn.execute("UPDATE sessions SET clock_offsets='[1]' WHERE id=?", (sid,))
        with pytest.raises(MalformedSession, match="clock_offsets"):
            store.get_session(sid)
        assert [p.column for p in store.malformed_sessions()] == ["clock_offsets"]


def test_participant_names_a_session_cannot_take_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Import checks the name as a live session does; a session stored before names were
    checked lists with the reason (and how to fix it), never a traceback."""
    rr = tmp_path / "rr.txt"
    rr.write_text("\n".join(["800", "810", "790"] * 40) + "\n", encoding="utf-8")
    d = ("--data-dir", str(tmp_path))
    code, _, err = _run(capsys, "import", str(rr), "--format", "plain", "--unit", "ms",
                        "--participant", "x" * 65, "-q", *d)  # fmt: skip
    assert code == 1 and "--participant: a participant name has at most 64" in err
    with SqliteStore(tmp_path / DB) as store:
        assert store.list_sessions() == []  # nothing imported
        bad = store.create_session(participants=("tab\there",), started_unix_s=STARTED)
        store.append_many(bad.id, [GapRecord(1.0, "link_lost", "tab\there")])
    code, out, err = _run(capsys, "sessions", "--json", *d)
    (row,) = json.loads(out)
    assert code == 0 and "cannot be replayed" in row["summary"]["error"]
    assert "vagus edit ID --participant NAME" in err and "Traceback" not in err


def test_the_report_package_imports_one_way() -> None:
    """No import cycle in vagus.report (issue 9 §6): each module imports only modules
    before it in _common -> model -> plots -> session / progress (lazy imports too), and
    none imports another module's private names."""
    import ast

    import vagus.report

    order = ["_common", "model", "plots", "session", "progress"]
    root = Path(vagus.report.__file__).parent
    for name in order:
        tree = ast.parse((root / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            if node.module == "vagus.report":
                used = [a.name for a in node.names]
            elif node.module.startswith("vagus.report."):
                used = [node.module.rsplit(".", 1)[1]]
                privates = [a.name for a in node.names if a.name.startswith("_")]
                assert not privates, (name, privates)
            else:
                continue
            for dep in used:
                assert dep in order and order.index(dep) < order.index(name), (name, dep)
                assert (name, dep) != ("progress", "session")


def test_one_high_coherence_threshold_and_one_session_summary_class() -> None:
    """Issue 9 §6: the high-coherence threshold is defined once (core.spectrum) and the
    name SessionSummary names one class (the report's; the store's fold is
    RunningSummary)."""
    import ast

    import vagus

    thresholds: list[str] = []
    summaries: list[str] = []
    for path in sorted(Path(vagus.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    for n in ast.walk(t):
                        if isinstance(n, ast.Name | ast.Attribute):
                            name = n.id if isinstance(n, ast.Name) else n.attr
                            if "HIGH_COHERENCE" in name:
                                thresholds.append(f"{path.name}:{name}")
            elif isinstance(node, ast.ClassDef) and node.name == "SessionSummary":
                summaries.append(path.name)
    assert thresholds == ["spectrum.py:HIGH_COHERENCE_RATIO"]
    assert summaries == ["model.py"]
