"""The live runner (vagus.runner): sources -> Session -> store writer -> subscribers.

Real components throughout: simulated subjects, the real SQLite store through the
writer thread, the real Session; a relay's packets pushed in as the service pushes them.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import statistics
from pathlib import Path
from typing import Any

import pytest

from vagus.core.events import Beat, Marker, PacerChange, Spectrum
from vagus.core.hrm import encode_heart_rate_measurement
from vagus.exceptions import InvalidInput
from vagus.runner import Participant, Runner
from vagus.sources.base import SimSpec
from vagus.store.base import ControlRecord, GapRecord, PacketRecord
from vagus.store.sqlite import SqliteStore
from vagus.store.writer import StoreWriter


def _writer(data: Path) -> StoreWriter:
    writer = StoreWriter.for_data_dir(data)
    assert writer.start() is None
    return writer


def _close(writer: StoreWriter) -> None:
    writer.close().result()
    writer.join()


def _sim(seed: int, **options: Any) -> SimSpec:
    return SimSpec(seed=seed, speed=None, options=options)


async def test_two_simulated_participants_stored_together_control_once(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    runner = Runner(
        [Participant("ann", _sim(1)), Participant("bob", _sim(2, dropouts=[[30, 5]]))],
        writer=writer,
        title="pair",
        duration_s=60.0,
    )
    batches: list[list[dict[str, Any]]] = []
    runner.subscribe(batches.append)
    await runner.start()
    await asyncio.wait_for(runner.wait(), timeout=60)
    result = await runner.stop()
    _close(writer)
    assert result.reason == "duration reached" and result.failures == {}
    assert result.saved and result.recording is not None
    sid = result.recording.session_id
    assert sid is not None
    with SqliteStore(tmp_path / "sessions.sqlite3") as store:
        info = store.get_session(sid)
        records = list(store.iter_input(sid))
    assert info.participants == ("ann", "bob") and info.source == "sim"
    assert info.title == "pair" and info.ended_unix_s is not None
    # A simulated session's end is its start plus the simulated seconds it ran.
    assert result.t_end_s is not None
    assert info.ended_unix_s - info.started_unix_s == pytest.approx(result.t_end_s, abs=1e-3)
    whose = {r.participant for r in records if isinstance(r, PacketRecord | GapRecord)}
    assert whose == {"ann", "bob"}
    assert any(isinstance(r, GapRecord) and r.participant == "bob" for r in records)
    controls = [r.event for r in records if isinstance(r, ControlRecord)]
    assert [c.text for c in controls if isinstance(c, Marker)] == [
        "start",
        "stop: duration reached",
    ]  # once for the session, not once per participant
    # Each participant's input spans at most the duration from its own first packet.
    for name in ("ann", "bob"):
        times = [r.t_arrival_s for r in records if isinstance(r, PacketRecord)]
        mine = [
            r.t_arrival_s for r in records if isinstance(r, PacketRecord) and r.participant == name
        ]
        assert 58.0 <= mine[-1] - mine[0] <= 60.0 and times
    # The subscribers got every event as JSON, each with its participant.
    events = [e for batch in batches for e in batch if e["type"] != "status"]
    assert {e["participant"] for e in events if e["type"] == "beat"} == {"ann", "bob"}
    assert all(e["participant"] is None for e in events if e["type"] == "marker")
    status = [e for batch in batches for e in batch if e["type"] == "status"]
    assert {s["participant"] for s in status if s["connected"]} == {"ann", "bob"}
    assert any(s["participant"] == "bob" and not s["connected"] for s in status)  # dropout
    # The stored summary is per participant.
    assert set(result.summary["by_participant"]) == {"ann", "bob"}
    assert result.summary["by_participant"]["bob"]["gaps"] >= 1


async def test_a_pacer_change_reaches_the_simulated_subjects_that_follow_it() -> None:
    """``control(PacerChange)``: the simulated subjects breathe with it (the source
    declares ``follows_pacer``), so their spectra peak at the pacer's rate."""
    runner = Runner(
        [Participant("ann", _sim(3, adherence=1.0)), Participant("bob", _sim(4, adherence=1.0))],
        duration_s=200.0,
    )
    assert runner.recording is None
    peaks: dict[str, list[float]] = {"ann": [], "bob": []}
    paced_at: list[float] = []

    def on_events(pairs: list[tuple[str | None, Any]]) -> None:
        for who, event in pairs:
            if isinstance(event, Marker) and event.text == "start":
                paced_at.append(event.t_s)
            elif (
                isinstance(event, Spectrum)
                and who is not None
                and event.peak_hz is not None
                and paced_at
                and event.t_s > paced_at[0] + 100
            ):
                peaks[who].append(event.peak_hz)
        if paced_at and runner.pacer is None:
            runner.control(PacerChange(paced_at[0], 9.0))  # 0.15 Hz; they breathe 14/min

    runner.subscribe_events(on_events)
    await runner.start()
    await asyncio.wait_for(runner.wait(), timeout=60)
    await runner.stop()
    assert all(state.follows_pacer for state in runner.participants.values())
    for name in ("ann", "bob"):
        assert len(peaks[name]) >= 10
        assert statistics.median(peaks[name]) == pytest.approx(0.15, abs=0.01), name
    assert runner.session.pacer_phase(paced_at[0]) == 0.0  # an inhale starts at the change


def _payload(rr_ticks: int = 1024) -> bytes:
    return encode_heart_rate_measurement(60, rr_ticks=(rr_ticks,))


async def test_pushed_participant_packets_are_mapped_stored_and_checked(tmp_path: Path) -> None:
    """A relay's packets (pushed, on the relay's clock): mapped onto the session clock
    at the first one, stored with the participant, a malformed one counted and stored
    (replay skips it the same way); bad input is refused and changes nothing."""
    writer = _writer(tmp_path)
    runner = Runner([Participant("remote")], writer=writer, markers=False)
    await runner.start()
    await asyncio.sleep(0.05)
    t0 = 1_000_000.0  # the relay's clock
    assert runner.push_packet("remote", t0, _payload())
    state = runner.participants["remote"]
    assert state.offset_s is not None and state.kind == "relay"
    assert 0.0 < t0 + state.offset_s < 5.0  # now on the session clock
    for k in range(1, 10):
        assert runner.push_packet("remote", t0 + k, _payload())
    assert not runner.push_packet("remote", t0 + 10, b"\x10")  # truncated: malformed
    runner.push_gap("remote", t0 + 11)
    assert (state.packets, state.malformed, state.gaps) == (10, 1, 1)
    with pytest.raises(InvalidInput, match="no participant 'nobody'"):
        runner.push_packet("nobody", t0, _payload())
    with pytest.raises(InvalidInput, match="finite"):
        runner.push_packet("remote", math.nan, _payload())
    with pytest.raises(InvalidInput):
        runner.control(PacerChange(1.0, 99.0))  # out of range: refused, nothing stored
    runner.control(Marker(runner.now_s(), "note"))
    result = await runner.stop("ended")
    _close(writer)
    with pytest.raises(InvalidInput, match="ended"):
        runner.push_packet("remote", t0 + 12, _payload())
    assert result.recording is not None and result.recording.session_id is not None
    with SqliteStore(tmp_path / "sessions.sqlite3") as store:
        records = list(store.iter_input(result.recording.session_id))
    packets = [r for r in records if isinstance(r, PacketRecord)]
    assert len(packets) == 11 and {r.participant for r in packets} == {"remote"}
    offset = state.offset_s
    assert [r.t_arrival_s for r in packets] == [t0 + k + offset for k in range(11)]
    assert [r.event for r in records if isinstance(r, ControlRecord)] == [
        Marker(records[-1].event.t_s, "note")  # type: ignore[union-attr]
    ]
    assert result.summary["by_participant"]["remote"]["malformed_packets"] == 1


async def test_a_local_participant_takes_no_pushed_packets_and_names_are_unique() -> None:
    with pytest.raises(InvalidInput, match="differ"):
        Runner([Participant("a", _sim(1)), Participant("a", _sim(2))])
    with pytest.raises(InvalidInput, match="name"):
        Participant("  ")
    runner = Runner([Participant("sim", _sim(1))], duration_s=5.0)
    with pytest.raises(InvalidInput, match="local sim source"):
        runner.push_packet("sim", 1.0, _payload())
    with pytest.raises(InvalidInput, match="already"):
        runner.add_participant(Participant("sim"))


async def test_a_raising_subscriber_is_removed_and_never_stops_the_session() -> None:
    runner = Runner([Participant("ann", _sim(5))], duration_s=30.0)
    good: list[dict[str, Any]] = []

    def bad(batch: list[dict[str, Any]]) -> None:
        raise RuntimeError("a bug in a view")

    runner.subscribe(bad)
    unsubscribe = runner.subscribe(good.extend)
    await runner.start()
    await asyncio.wait_for(runner.wait(), timeout=60)
    result = await runner.stop()
    assert len(runner.subscriber_errors) == 1
    assert isinstance(runner.subscriber_errors[0], RuntimeError)
    assert result.reason == "duration reached"
    assert any(e["type"] == "metrics" for e in good)
    unsubscribe()
    unsubscribe()  # twice is harmless


async def test_recording_starts_and_stops_while_the_session_goes_on(tmp_path: Path) -> None:
    """``record=False``: nothing stored until ``start_recording``; it records from then
    on (the current pacer first); ``stop_recording`` ends the stored session while the
    live session continues."""
    writer = _writer(tmp_path)
    runner = Runner([Participant("p")], writer=writer, record=False, markers=False)
    await runner.start()
    assert runner.recording is None
    t0 = 50.0
    for k in range(5):
        runner.push_packet("p", t0 + k, _payload())
    runner.control(PacerChange(runner.now_s(), 6.0))
    rec = await runner.start_recording(title="later")
    assert rec.recording and runner.recording_ok
    for k in range(5, 8):
        runner.push_packet("p", t0 + k, _payload())
    await runner.stop_recording()
    assert not runner.recording_ok
    runner.push_packet("p", t0 + 8, _payload())  # live, not stored
    await runner.stop()
    _close(writer)
    assert rec.session_id is not None
    with SqliteStore(tmp_path / "sessions.sqlite3") as store:
        info = store.get_session(rec.session_id)
        records = list(store.iter_input(rec.session_id))
    assert info.title == "later" and info.ended_unix_s is not None
    # the live summary counted input that was not stored: none is cached with it
    assert info.summary == {}
    assert isinstance(records[0], ControlRecord) and isinstance(records[0].event, PacerChange)
    assert records[0].event.rate_bpm == 6.0
    assert sum(isinstance(r, PacketRecord) for r in records) == 3


async def test_a_recorded_participant_replayed_through_the_runner_with_its_control(
    tmp_path: Path,
) -> None:
    """A replay source (``ReplaySpec(participant=...)``) is a participant like a strap:
    it hands out that participant's recorded packets and the session's recorded control
    events (``capabilities.yields_control``), so the runner computes exactly that
    participant's live events, pacer and markers included."""
    from vagus.exceptions import SourceError
    from vagus.sources.base import ReplaySpec

    writer = _writer(tmp_path)
    live = Runner(
        [Participant("ann", _sim(6)), Participant("bob", _sim(7, dropouts=[[20, 4]]))],
        writer=writer,
        duration_s=90.0,
    )
    seen: list[tuple[str | None, Any]] = []
    done = {"paced": False, "marked": False}

    def steer(pairs: list[tuple[str | None, Any]]) -> None:
        seen.extend(pairs)
        for _who, event in pairs:
            if not done["paced"] and isinstance(event, Marker) and event.text == "start":
                done["paced"] = True
                live.control(PacerChange(event.t_s, 7.0))
            elif not done["marked"] and isinstance(event, Beat) and event.t_s > 60:
                done["marked"] = True
                live.control(Marker(event.t_s, "halfway"))

    live.subscribe_events(steer)
    await live.start()
    await asyncio.wait_for(live.wait(), timeout=60)
    result = await live.stop()
    _close(writer)
    assert result.recording is not None and result.recording.session_id is not None
    sid = result.recording.session_id

    def mine(pairs: list[tuple[str | None, Any]], who: str) -> list[Any]:
        """The participant's own events, and the control events, in order."""
        return [e for p, e in pairs if p == who or isinstance(e, Marker | PacerChange)]

    for who in ("ann", "bob"):
        again = Runner(
            [Participant(who, ReplaySpec(sid, data_dir=tmp_path, speed=None, participant=who))],
            markers=False,
        )
        got: list[tuple[str | None, Any]] = []
        again.subscribe_events(got.extend)
        await again.start()
        await asyncio.wait_for(again.wait(), timeout=60)
        await again.stop()
        assert again.participants[who].failure is None
        assert mine(got, who) == mine(seen, who), who
        texts = [e.text for _, e in got if isinstance(e, Marker)]
        assert texts == ["start", "halfway", "stop: duration reached"]
        assert [e.rate_bpm for _, e in got if isinstance(e, PacerChange)] == [7.0]

    nobody = Runner([Participant("x", ReplaySpec(sid, data_dir=tmp_path, participant="zed"))])
    await nobody.start()
    await asyncio.wait_for(nobody.wait(), timeout=30)
    failed = (await nobody.stop()).failures["x"]
    assert isinstance(failed, SourceError) and "'zed'" in str(failed) and "ann, bob" in str(failed)


async def test_the_session_clock_runs_smoothly_with_real_time_simulators() -> None:
    """With simulated subjects in real time (``vagus demo``), ``now_s()`` follows the
    loop's clock between packets (a view syncs its pacer to it); at ``--speed max`` it
    is the latest input's time."""
    runner = Runner([Participant("ann", SimSpec(seed=1, speed=1.0))])
    assert runner.clock_speed == 1.0
    await runner.start()
    samples = []
    for _ in range(5):
        samples.append(runner.now_s())
        await asyncio.sleep(0.02)
    await runner.stop()
    assert all(a < b for a, b in itertools.pairwise(samples)), samples

    fast = Runner([Participant("ann", _sim(1))], duration_s=20.0)
    assert fast.clock_speed is None
    await fast.start()
    await asyncio.wait_for(fast.wait(), timeout=60)
    last = fast.participants["ann"].t_last_s
    assert last is not None and fast.now_s() == last
    await fast.stop()


async def test_a_session_left_open_is_resumed_with_the_same_clock(tmp_path: Path) -> None:
    """``stop(end_recording=False)`` leaves the stored session open and committed (a
    server stopping for a restart); ``resume()`` continues it: the relay's packets map
    onto the session clock as before, no second start marker."""
    writer = _writer(tmp_path)
    first = Runner([Participant("r")], writer=writer)
    await first.start()
    t0 = 5_000.0  # the relay's clock
    for k in range(5):
        first.push_packet("r", t0 + k, _payload())
    offset = first.participants["r"].offset_s
    assert offset is not None
    result = await first.stop("server restart", end_recording=False)
    rec = result.recording
    assert rec is not None and rec.session_id is not None and not rec.finished
    with SqliteStore(tmp_path / "sessions.sqlite3") as store:
        info = store.get_session(rec.session_id)
        assert info.ended_unix_s is None  # left open...
        assert store.input_count(rec.session_id) == 6  # ...with everything committed

    second = Runner([Participant("r")], writer=writer)
    second.resume(rec, elapsed_s=5.0, clock_offsets={"r": offset})
    with pytest.raises(InvalidInput, match="elapsed_s"):
        Runner([Participant("x")]).resume(rec, elapsed_s=-1.0)
    await second.start()
    assert second.now_s() >= 5.0  # the clock goes on
    for k in range(5, 8):
        second.push_packet("r", t0 + k, _payload())
    await second.stop()
    _close(writer)
    with SqliteStore(tmp_path / "sessions.sqlite3") as store:
        info = store.get_session(rec.session_id)
        records = list(store.iter_input(rec.session_id))
    assert info.ended_unix_s is not None
    packets = [r for r in records if isinstance(r, PacketRecord)]
    assert [r.t_arrival_s for r in packets] == [t0 + k + offset for k in range(8)]
    markers = [r.event.text for r in records if isinstance(r, ControlRecord)]  # type: ignore[union-attr]
    assert markers == ["start"]  # once; no stop marker for the restart
