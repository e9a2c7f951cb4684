"""The real bleak code path (BleSource, scan) against the simulated BlueZ (BLE.md).

Nothing here is mocked: bleak's BlueZ backend talks D-Bus to ``support.fake_bluez``
(tests/support/fake_bluez.py) on a private dbus-daemon. The straps run faster than real
time where a test needs minutes of session, so timing knobs of the reader are scaled down
with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass

import pytest

from support.fake_bluez import (
    BusEnvironment,
    FakeBlueZ,
    FakeStrap,
    ScriptedStrap,
    SentPacket,
    strap_address,
    uuid16,
)
from vagus import Pipeline
from vagus.core.events import Beat, Gap
from vagus.core.hrm import parse_heart_rate_measurement
from vagus.exceptions import ConnectionLost, DeviceNotFound, InvalidInput, SourceError
from vagus.sources.base import BleSpec, DeviceInfo, LinkGap, Packet, SourceItem
from vagus.sources.ble import BleSource, release_bluez, scan

pytestmark = pytest.mark.ble

#: generous upper bound on any single test's wait; a hang fails instead of blocking
WAIT_S = 30.0


def add_strap(fake: FakeBlueZ, index: int, name: str, **kwargs: object) -> FakeStrap:
    return fake.add_strap(
        FakeStrap(strap_address(index), name, ScriptedStrap(seed=index), **kwargs)  # type: ignore[arg-type]
    )


async def test_scan_finds_straps_by_service_with_their_profiles(fake_bluez: FakeBlueZ) -> None:
    add_strap(fake_bluez, 0, "Polar H10 A1B2C3D4", rssi_dbm=-70)
    add_strap(fake_bluez, 1, "HRM-Pro:123456", rssi_dbm=-50)
    add_strap(fake_bluez, 2, "TICKR 1A2B", rssi_dbm=-60)
    # a device that does not advertise the Heart Rate Service must not be listed,
    # whatever its name says
    add_strap(fake_bluez, 3, "Polar H10 FFFFFFFF", advertise_uuids=(uuid16(0x110B),))

    found = await scan(0.6)

    assert [(s.name, s.profile_id) for s in found] == [
        ("HRM-Pro:123456", "garmin_hrm_pro"),  # strongest first
        ("TICKR 1A2B", "wahoo_tickr"),
        ("Polar H10 A1B2C3D4", "polar_h10"),
    ]
    assert [s.address for s in found] == [strap_address(i) for i in (1, 2, 0)]
    assert all(-75 <= s.rssi_dbm <= -45 for s in found)


async def test_scan_unknown_strap_gets_generic_profile(fake_bluez: FakeBlueZ) -> None:
    add_strap(fake_bluez, 0, "XYZ-HR 42")
    (strap,) = await scan(0.4)
    assert strap.profile_id == "generic"


async def collect_packets(source: BleSource, n: int) -> tuple[list[Packet], list[SourceItem]]:
    packets: list[Packet] = []
    others: list[SourceItem] = []
    async with asyncio.timeout(WAIT_S):
        async for item in source:
            if isinstance(item, Packet):
                packets.append(item)
                if len(packets) >= n:
                    break
            else:
                others.append(item)
    return packets, others


@pytest.mark.parametrize("use_start_notify", [True, False], ids=["StartNotify", "AcquireNotify"])
async def test_receive_every_payload_shape(fake_bluez: FakeBlueZ, use_start_notify: bool) -> None:
    fake_bluez.set_time_scale(80.0)  # 80 notifications per real second
    strap = add_strap(fake_bluez, 0, "Polar H10 A1B2C3D4", battery_pct=64)
    spec = BleSpec(address=strap.address, scan_timeout_s=5, use_start_notify=use_start_notify)

    async with BleSource(spec, settle_s=0.1) as source:
        packets, others = await collect_packets(source, 120)
        assert source.stats.settle_discarded >= 1

    info = others[0]
    assert isinstance(info, DeviceInfo)
    assert (info.device_id, info.name, info.profile_id) == (
        strap.address,
        "Polar H10 A1B2C3D4",
        "polar_h10",
    )
    assert (info.battery_pct, info.body_location) == (64, 1)
    assert not any(isinstance(i, LinkGap) for i in others)

    # exactly what the strap sent, in order, after the settling packets
    sent = [p.payload for p in strap.sent_in(1)]
    payloads = [p.payload for p in packets]
    skipped = sent.index(payloads[0])
    assert payloads == sent[skipped : skipped + len(payloads)]
    times = [p.t_arrival_s for p in packets]
    assert times == sorted(times)
    assert all(p.device_id == strap.address for p in packets)

    parsed = [parse_heart_rate_measurement(p) for p in payloads]
    assert {m.hr_uint16 for m in parsed} == {True, False}
    assert any(m.energy_kj is not None for m in parsed)
    assert max(len(m.rr_ticks) for m in parsed) >= 3
    assert {m.contact for m in parsed} == {True, False}

    await asyncio.sleep(0.1)
    assert not strap.connected  # leaving the source disconnected the strap


def check_delivered_once(strap: FakeStrap, packets: list[Packet], settle_s: float) -> None:
    """Each connection's packets exactly once, in order, minus the settling ones at its start.

    The packets discarded at the start of a connection must all have been sent within
    ``settle_s`` (plus 1 s of slack for a busy machine) of that connection's first one.
    """
    received = [p.payload for p in packets]
    pos = 0
    for connection in range(1, strap.connections + 1):
        sent = strap.sent_in(connection)
        payloads = [p.payload for p in sent]
        last = connection == strap.connections
        if pos == len(received):
            assert last, f"nothing received from connection {connection}"
            skipped = len(sent)  # cut short by the end of the test
        else:
            skipped = payloads.index(received[pos])
        if skipped:
            window_s = sent[skipped - 1].t_sent_s - sent[0].t_sent_s
            assert window_s <= settle_s + 1.0, f"connection {connection}: {skipped} discarded"
        expected = payloads[skipped:]
        if last:
            expected = expected[: len(received) - pos]
        assert received[pos : pos + len(expected)] == expected, f"connection {connection}"
        pos += len(expected)
    assert pos == len(received)


@dataclass(frozen=True, slots=True)
class StrapBeat:
    """One beat the strap detected, as its log tells: RR ticks and where it went."""

    t_s: float  #: strap clock: the cumulative RR (the strap's beat chain starts at 0)
    ticks: int
    packet: int  #: index in ``FakeStrap.air``


def strap_beats(strap: FakeStrap) -> list[StrapBeat]:
    """Every beat in every packet the strap's generator produced, on air or lost."""
    beats: list[StrapBeat] = []
    t_s = 0.0
    for k, air in enumerate(strap.air):
        for ticks in parse_heart_rate_measurement(air.payload).rr_ticks:
            t_s += ticks / 1024
            beats.append(StrapBeat(t_s, ticks, k))
    return beats


Received = list[tuple[Packet, list[int]]]  # each packet and the indices of its beats


def check_beats_delivered_once(
    strap: FakeStrap, items: list[SourceItem], settle_s: float
) -> tuple[list[StrapBeat], list[Received]]:
    """Beat level: the RR the strap sent while the link was up, minus the settling packets
    at the start of each connection, are the RR received, each once and in order.

    Returns the strap's beats and, per connection, the packets received with the indices
    (in the strap's beats) of the beats each carried.
    """
    beats = strap_beats(strap)
    by_packet: dict[int, list[int]] = {}
    for i, beat in enumerate(beats):
        by_packet.setdefault(beat.packet, []).append(i)
    # the reader's packets between two LinkGaps came from one connection
    segments: list[list[Packet]] = [[]]
    for item in items:
        if isinstance(item, LinkGap):
            segments.append([])
        elif isinstance(item, Packet):
            segments[-1].append(item)
    assert len(segments) == strap.connections
    received: list[Received] = []
    for connection, segment in enumerate(segments, start=1):
        up = [k for k, a in enumerate(strap.air) if a.connection == connection and a.delivered]
        assert segment, f"nothing received from connection {connection}"
        skipped = [a.payload for a in (strap.air[k] for k in up)].index(segment[0].payload)
        kept = up[skipped : skipped + len(segment)]
        assert [p.payload for p in segment] == [strap.air[k].payload for k in kept]
        if connection < strap.connections:  # the last one was cut short by the test's end
            assert len(kept) == len(up) - skipped, f"connection {connection}"
        link = strap.link(connection)
        for k in up[:skipped]:  # settling: within settle_s (+1 s for a busy machine)
            assert strap.air[k].t_s - link.t_up_s <= settle_s + 1.0
        pairs = [(p, by_packet.get(k, [])) for p, k in zip(segment, kept, strict=True)]
        for packet, indices in pairs:
            ticks = parse_heart_rate_measurement(packet.payload).rr_ticks
            assert list(ticks) == [beats[i].ticks for i in indices], f"connection {connection}"
        received.append(pairs)
    flat = [i for pairs in received for _, indices in pairs for i in indices]
    assert flat == sorted(set(flat))  # in order, none twice
    # no beat from a link-down period: each lay in a packet lost on air or discarded
    for connection in range(1, strap.connections):
        t_down = strap.link(connection).t_down_strap_s
        t_up = strap.link(connection + 1).t_up_strap_s
        assert t_down is not None
        bad = [i for i in flat if t_down <= beats[i].t_s <= t_up]
        assert not bad, [(beats[i], strap.air[beats[i].packet], t_down, t_up) for i in bad]
        lost = [a for a in strap.air if t_down < a.t_strap_s < t_up]
        assert not any(a.delivered or a.connection for a in lost)  # may be none: ~1 s down
    return beats, received


async def test_ten_link_drops_in_five_minutes_every_beat_once(fake_bluez: FakeBlueZ) -> None:
    scale = 60.0  # 5 simulated minutes in about 5 s
    fake_bluez.set_time_scale(scale)
    notify_s = 1.0  # the ScriptedStrap's notification interval (strap s)
    # No contact losses here: every break in the beat chain must be one of the link drops.
    generator = ScriptedStrap(seed=0, rate_hz=1 / notify_s, contact_supported=False)
    strap = fake_bluez.add_strap(FakeStrap(strap_address(0), "Polar H10 A1B2C3D4", generator))
    spec = BleSpec(address=strap.address, scan_timeout_s=5, connect_timeout_s=5, max_retries=5)
    session_s, drops = 300.0, 10
    settle_s = 0.1  # real seconds, about 6 strap seconds at this scale

    async def drop_links() -> None:
        for k in range(1, drops + 1):
            t_drop = k * session_s / (drops + 1)
            while not (fake_bluez.strap_time_s() >= t_drop and strap.connected):
                await asyncio.sleep(0.01)
            fake_bluez.drop_link(strap.address)

    items: list[SourceItem] = []
    async with BleSource(
        spec, settle_s=settle_s, silent_timeout_s=2.0, backoff_initial_s=0.05
    ) as source:
        dropper = asyncio.create_task(drop_links())
        try:
            async with asyncio.timeout(WAIT_S):
                async for item in source:
                    items.append(item)
                    if fake_bluez.strap_time_s() >= session_s and dropper.done():
                        break
        finally:
            dropper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dropper
        stats = source.stats
    packets = [i for i in items if isinstance(i, Packet)]
    gaps = [i for i in items if isinstance(i, LinkGap)]
    infos = [i for i in items if isinstance(i, DeviceInfo)]

    assert len(gaps) == drops
    assert {g.reason for g in gaps} == {"link_lost"}
    assert strap.connections == drops + 1 == stats.connects
    assert len(infos) == drops + 1 and all(i.connected for i in infos)
    # each gap sits between the packets of two connections
    for gap in gaps:
        assert any(p.t_arrival_s < gap.t_s for p in packets)
        assert any(p.t_arrival_s > gap.t_s for p in packets)
    check_delivered_once(strap, packets, settle_s)
    assert stats.packets == len(packets)
    assert len(packets) > 0.4 * session_s  # most of the session arrived despite 10 drops

    beats, received = check_beats_delivered_once(strap, items, settle_s)
    per_packet = [pair for pairs in received for pair in pairs]
    received_ticks = [beats[i].ticks for _, indices in per_packet for i in indices]

    # Through the pipeline, on the strap clock (the RR are strap seconds; arrival times are
    # real ones, mapped by the fake's clock). Its drift check (lag change > 2 s) would read a
    # 33 ms stall of this loop as 2 s at 60x: allow stalls of 0.25 s. Link gaps do not
    # depend on it, the reader reports them.
    pipeline = Pipeline(gap_tolerance_s=max(2.0, 0.25 * scale))
    for item in items:
        if isinstance(item, Packet):
            pipeline.receive_packet(fake_bluez.strap_time_at(item.t_arrival_s), item.payload)
        elif isinstance(item, LinkGap):
            pipeline.receive_gap(fake_bluez.strap_time_at(item.t_s), reason=item.reason)
    pipeline.close()
    events = pipeline.events_received()
    measured = [e.rr_ms for e in events if isinstance(e, Beat) and not e.inserted]
    assert measured == [t * 1000 / 1024 for t in received_ticks]  # each beat once, in order
    chain_gaps = [e for e in events if isinstance(e, Gap)]
    assert [g.reason for g in chain_gaps] == ["link_lost"] * drops

    # Each chain is placed by the arrival of its first packet: the pipeline's beat times are
    # late by that packet's offset (arrival minus its last beat: up to one RR, plus the
    # delivery delay), so a gap's duration is off by at most the largest such offset.
    offsets = [
        fake_bluez.strap_time_at(p.t_arrival_s) - beats[indices[-1]].t_s
        for p, indices in per_packet
        if indices
    ]
    max_offset_s = max(offsets) + 0.05  # + rounding of the cumulative ticks
    rr_max_s = max(b.ticks for b in beats) / 1024
    for k, gap in enumerate(chain_gaps, start=1):
        assert gap.duration_s is not None and gap.duration_s >= 0.0
        before = [i for _, indices in received[k - 1] for i in indices][-1]
        after = next(i for _, indices in received[k] for i in indices)
        # the beats the reader did not get: lost on air or discarded while settling
        lost_s = beats[after].t_s - beats[after].ticks / 1024 - beats[before].t_s
        assert abs(gap.duration_s - lost_s) <= max_offset_s, (k, gap, lost_s)
        # Against the link-down time (strap clock, drop to Connected again): the gap covers
        # it (less the offset) and exceeds it by what the reader was blind to after the
        # reconnect (connection set-up and settle_s) plus the beats of unsent packets at
        # either end (at most two notification intervals each, one held back, and one RR).
        down = strap.link(k)
        assert down.t_down_strap_s is not None
        down_s = strap.link(k + 1).t_up_strap_s - down.t_down_strap_s
        blind_s = (
            fake_bluez.strap_time_at(infos[k].t_s)
            + settle_s * scale
            - strap.link(k + 1).t_up_strap_s
        )
        assert down_s - max_offset_s <= gap.duration_s, (k, gap, down_s)
        assert gap.duration_s <= down_s + blind_s + 4 * notify_s + rr_max_s + max_offset_s


async def test_strap_that_disappears_raises_connection_lost(fake_bluez: FakeBlueZ) -> None:
    fake_bluez.set_time_scale(10.0)
    strap = add_strap(fake_bluez, 0, "HRM-Pro:123456")
    spec = BleSpec(name="hrm-pro", scan_timeout_s=5, connect_timeout_s=0.5, max_retries=3)
    items: list[SourceItem] = []
    with pytest.raises(ConnectionLost) as excinfo:
        async with BleSource(spec, settle_s=0.0, backoff_initial_s=0.05) as source:
            async with asyncio.timeout(WAIT_S):
                async for item in source:
                    items.append(item)
                    if sum(isinstance(i, Packet) for i in items) == 5:
                        fake_bluez.disappear(strap.address)
    message = str(excinfo.value)
    # the budget is max_retries + 1 attempts, as for the first connection
    assert "HRM-Pro:123456" in message and "4 attempts" in message
    assert "wet" in message and "vagus scan" in message
    gaps = [i for i in items if isinstance(i, LinkGap)]
    assert len(gaps) == 1
    assert source.stats.failed_attempts == 4
    assert source.link_state.phase == "gave_up"


async def test_silent_strap_is_presumed_lost_and_reconnected(fake_bluez: FakeBlueZ) -> None:
    fake_bluez.set_time_scale(10.0)
    strap = add_strap(fake_bluez, 0, "TICKR 1A2B")
    spec = BleSpec(address=strap.address, scan_timeout_s=5, connect_timeout_s=2)
    items: list[SourceItem] = []
    async with BleSource(spec, settle_s=0.0, silent_timeout_s=0.5) as source:
        async with asyncio.timeout(WAIT_S):
            async for item in source:
                items.append(item)
                n_packets = sum(isinstance(i, Packet) for i in items)
                if n_packets == 3 and isinstance(item, Packet):
                    fake_bluez.set_silent(strap.address, True)
                if isinstance(item, LinkGap):
                    fake_bluez.set_silent(strap.address, False)
                if n_packets >= 10:
                    break
    gaps = [i for i in items if isinstance(i, LinkGap)]
    assert [g.reason for g in gaps] == ["silent"]
    assert strap.connections == 2


async def test_silent_strap_forever_spends_the_retry_budget(fake_bluez: FakeBlueZ) -> None:
    strap = add_strap(fake_bluez, 0, "TICKR 1A2B")
    fake_bluez.set_time_scale(10.0)
    spec = BleSpec(address=strap.address, scan_timeout_s=5, connect_timeout_s=2, max_retries=2)
    with pytest.raises(ConnectionLost, match="could not reconnect"):
        async with BleSource(
            spec, settle_s=0.0, silent_timeout_s=0.3, backoff_initial_s=0.05
        ) as source:
            async with asyncio.timeout(WAIT_S):
                async for item in source:
                    if isinstance(item, Packet):
                        fake_bluez.set_silent(strap.address, True)
    # the first connection, then max_retries + 1 = 3 reconnections that stayed silent
    assert strap.connections == 4


async def test_connect_to_strongest_and_cancel_disconnects(fake_bluez: FakeBlueZ) -> None:
    fake_bluez.set_time_scale(10.0)
    weak = add_strap(fake_bluez, 0, "Polar H10 00000001", rssi_dbm=-80)
    strong = add_strap(fake_bluez, 1, "Polar H10 00000002", rssi_dbm=-40)
    first_packet = asyncio.Event()

    async def run() -> None:
        async with BleSource(BleSpec(scan_timeout_s=5), settle_s=0.0) as source:
            async for item in source:
                if isinstance(item, Packet):
                    first_packet.set()

    task = asyncio.create_task(run())
    async with asyncio.timeout(WAIT_S):
        await first_packet.wait()
    assert strong.connected and not weak.connected
    task.cancel()  # what Ctrl-C does to the running command
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.1)
    assert not strong.connected


async def test_malformed_payload_is_passed_on_not_fatal(fake_bluez: FakeBlueZ) -> None:
    class Broken:
        """Alternates valid payloads with ones that break their own flags."""

        def __init__(self) -> None:
            self.inner = ScriptedStrap(seed=3)

        def packets_until(self, t_s: float) -> list[SentPacket]:
            out = []
            for i, item in enumerate(self.inner.packets_until(t_s)):
                payload = item.payload if i % 2 else b"\x10\x40\x01"  # odd RR byte count
                out.append(SentPacket(t_s, payload, 0))
            return out

    fake_bluez.set_time_scale(20.0)
    strap = fake_bluez.add_strap(FakeStrap(strap_address(0), "HRM", Broken()))
    async with BleSource(BleSpec(address=strap.address), settle_s=0.0) as source:
        packets, _ = await collect_packets(source, 6)
    assert b"\x10\x40\x01" in [p.payload for p in packets]


async def test_device_not_found_says_what_to_try(fake_bluez: FakeBlueZ) -> None:
    spec = BleSpec(name="Polar", scan_timeout_s=0.3)
    with pytest.raises(DeviceNotFound, match="wet its electrodes"):
        async with BleSource(spec):
            pass


async def test_no_bluez_on_the_bus_is_a_clear_error(bluez_bus: BusEnvironment) -> None:
    try:
        with pytest.raises(SourceError, match="BlueZ is not running"):
            await scan(0.2)
    finally:
        await release_bluez()


def test_bench_ble_runs_and_matches_every_packet(capsys: pytest.CaptureFixture[str]) -> None:
    """A smoke run of ``vagus bench ble`` (fake BlueZ in a subprocess, D-Bus control).

    No timing is asserted here: the figures are the benchmark's to print.
    """
    import argparse
    import json
    import shutil

    from vagus.bench import ble as bench

    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon not installed (Debian package `dbus`)")
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    assert bench.run(parser.parse_args(["--straps", "3", "--duration", "2.5", "--json"])) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["straps"] == 3
    assert figures["packets_matched"] == figures["packets_sent"] >= 3
    assert figures["gaps"] == 0
    assert figures["latency_p50_ms"] is not None and figures["latency_p50_ms"] > 0


@pytest.mark.parametrize("faults", [2, 3], ids=["within-budget", "budget-spent"])
async def test_reconnect_retries_bluez_connect_failures(fake_bluez: FakeBlueZ, faults: int) -> None:
    """``org.bluez.Error.Failed`` on Connect ("Software caused connection abort", common
    on real BlueZ) is a failed attempt like any other: counted, backed off and retried
    within the same budget as the first connection (max_retries + 1 = 3 attempts here),
    never the end of the session at the first one."""
    fake_bluez.set_time_scale(10.0)
    strap = add_strap(fake_bluez, 0, "Polar H10 A1B2C3D4")
    spec = BleSpec(address=strap.address, scan_timeout_s=5, connect_timeout_s=3, max_retries=2)
    items: list[SourceItem] = []
    states: list[tuple[str, int, int]] = []
    source = BleSource(spec, settle_s=0.0, backoff_initial_s=0.05)
    with contextlib.ExitStack() as stack:
        if faults > spec.max_retries:
            raised = stack.enter_context(pytest.raises(ConnectionLost))
        async with source:
            async with asyncio.timeout(WAIT_S):
                async for item in source:
                    items.append(item)
                    n_packets = sum(isinstance(i, Packet) for i in items)
                    if n_packets == 5 and isinstance(item, Packet):
                        fake_bluez.fail_next_connects(strap.address, faults)
                        fake_bluez.drop_link(strap.address)
                    if isinstance(item, LinkGap):  # what a status line can show at once
                        state = source.link_state
                        states.append((state.phase, state.attempt, state.max_attempts))
                    if n_packets >= 10:
                        break
    gaps = [i for i in items if isinstance(i, LinkGap)]
    assert [g.reason for g in gaps] == ["link_lost"]
    assert states == [("reconnecting", 1, 3)]
    assert strap.failed_connects == faults
    if faults > spec.max_retries:
        message = str(raised.value)
        assert "could not reconnect: 3 attempts" in message
        assert "Software caused connection abort" in message and "Try: " in message
        assert source.stats.failed_attempts == 3 and strap.connections == 1
        return
    assert source.stats.failed_attempts == faults
    assert strap.connections == source.stats.connects == 2
    after = items[items.index(gaps[0]) + 1 :]
    assert isinstance(after[0], DeviceInfo) and after[0].connected
    assert sum(isinstance(i, Packet) for i in after) == 5  # and the session goes on
    assert source.link_state.phase == "connected"
    check_delivered_once(strap, [i for i in items if isinstance(i, Packet)], settle_s=0.0)


async def test_first_connection_has_the_same_budget(fake_bluez: FakeBlueZ) -> None:
    fake_bluez.set_time_scale(10.0)
    strap = add_strap(fake_bluez, 0, "TICKR 1A2B")
    fake_bluez.fail_next_connects(strap.address, 2)  # the third attempt is the last allowed
    spec = BleSpec(address=strap.address, scan_timeout_s=5, connect_timeout_s=3, max_retries=2)
    async with BleSource(spec, settle_s=0.0, backoff_initial_s=0.05) as source:
        packets, _ = await collect_packets(source, 2)
        assert source.stats.failed_attempts == 2 and source.stats.connects == 1
    assert strap.failed_connects == 2 and len(packets) == 2


async def test_first_connection_timeout_says_what_to_try(fake_bluez: FakeBlueZ) -> None:
    """A stack stuck at "connecting" (BLE.md: Windows 11): each attempt ends at
    connect_timeout_s, and when the budget is spent the error says what to try."""
    strap = add_strap(fake_bluez, 0, "Polar H10 A1B2C3D4")
    fake_bluez.fail_next_connects(strap.address, 2, hang=True)
    spec = BleSpec(address=strap.address, scan_timeout_s=5, connect_timeout_s=1.0, max_retries=1)
    source = BleSource(spec, backoff_initial_s=0.05)
    with pytest.raises(SourceError) as excinfo:
        async with source:
            pytest.fail("connected despite a Connect that never answers")
    assert not isinstance(excinfo.value, ConnectionLost | DeviceNotFound)
    message = str(excinfo.value)
    assert message.startswith(f"could not connect to Polar H10 A1B2C3D4 ({strap.address}) (")
    assert "2 attempts in " in message and "last: timed out" in message
    assert "Try: wear the strap and wet its electrodes" in message
    assert "not connected to another device or app" in message and "vagus scan" in message
    assert source.stats.failed_attempts == 2 and strap.failed_connects == 2
    assert source.link_state.phase == "gave_up"
    await asyncio.sleep(0.1)
    assert not strap.connected


async def test_simulator_strap_read_through_bleak_equals_the_simulator(
    fake_bluez: FakeBlueZ,
) -> None:
    """The simulated BlueZ's strap driven by the simulator's VirtualStrap (as in
    ``python tests/support/fake_bluez.py`` and ``vagus bench ble``), read by the real
    BleSource for three simulated minutes at 60x: the packets received are the
    simulator's own packets, byte for byte, but for those discarded while settling."""
    from support.fake_bluez import make_generator
    from vagus.sources.simulator import VirtualStrap

    seed, scale, session_s, settle_s = 11, 60.0, 180.0, 0.1
    generator = make_generator(seed)
    assert isinstance(generator, VirtualStrap)  # what the standalone fake runs
    fake_bluez.set_time_scale(scale)
    strap = fake_bluez.add_strap(FakeStrap(strap_address(0), "Polar H10 5EED000B", generator))
    spec = BleSpec(address=strap.address, scan_timeout_s=5)
    packets: list[Packet] = []
    async with BleSource(spec, settle_s=settle_s) as source:
        async with asyncio.timeout(WAIT_S):
            async for item in source:
                assert not isinstance(item, LinkGap)
                if isinstance(item, Packet):
                    packets.append(item)
                if fake_bluez.strap_time_s() >= session_s:
                    break
        discarded = source.stats.settle_discarded

    # the simulator on its own, same seed: what the strap should have sent
    reference = [
        p.payload
        for p in VirtualStrap(seed=seed).packets_until(session_s + 10)
        if isinstance(p, Packet)
    ]
    air = [a.payload for a in strap.air]
    assert air == reference[: len(air)]
    # received: every packet sent on the one connection, in order, after the settling ones
    delivered = [a for a in strap.air if a.delivered]
    assert all(a.connection == 1 for a in delivered)
    received = [p.payload for p in packets]
    assert received == [a.payload for a in delivered[discarded : discarded + len(received)]]
    t_up_s = strap.link(1).t_up_s
    assert all(a.t_s - t_up_s <= settle_s + 1.0 for a in delivered[:discarded])
    start = air.index(received[0])
    assert received == reference[start : start + len(received)]
    assert len(received) >= 0.8 * session_s  # about one packet per simulated second


def test_one_documented_budget_for_connecting_and_reconnecting() -> None:
    spec = BleSpec()
    assert spec.max_attempts == spec.max_retries + 1 == 6
    assert [spec.backoff_s(k) for k in range(7)] == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0]
    # hours of retrying (a huge --retries) stay at the cap, never overflow 2**k
    assert BleSpec(max_retries=10**6).backoff_s(5000) == 15.0
    # 6 attempts of at most 15 s, and the waits between them: under two minutes
    assert spec.give_up_after_s == 6 * 15.0 + 15.5
    short = BleSpec(connect_timeout_s=0.5, max_retries=1, backoff_initial_s=0.05)
    assert short.give_up_after_s == 2 * 0.5 + 0.05
    for bad in ({"max_retries": -1}, {"connect_timeout_s": 0}, {"scan_timeout_s": math.nan}):
        with pytest.raises(InvalidInput, match="BleSpec"):
            BleSpec(**bad)  # type: ignore[arg-type]
