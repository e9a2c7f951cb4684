"""The simulated subject and strap (vagus.sources.simulator).

Physiology checks use the subject's own definition (SCIENCE.md): the RSA response follows
H(f) = 2ζ·jx / (1 − x² + 2ζ·jx), x = f/f_rf. The breathing-rate checks go through the real
pipeline (vagus.Pipeline) fed with the strap's real 0x2A37 bytes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pytest

from vagus import Pipeline
from vagus.core.events import Beat, Gap, Spectrum
from vagus.core.hrm import RR_TICKS_PER_S, parse_heart_rate_measurement
from vagus.exceptions import InvalidInput
from vagus.sources import BleSpec, DeviceInfo, LinkGap, Packet, SimSpec, open_source
from vagus.sources.simulator import (
    SimulatorSource,
    StrapConfig,
    SubjectConfig,
    VirtualStrap,
    VirtualSubject,
    configs_from_options,
    ipfm_rr_ms,
    resonance_response,
)


def _payloads(items: Sequence[object]) -> list[bytes]:
    return [i.payload for i in items if isinstance(i, Packet)]


def _feed(pipeline: Pipeline, items: Sequence[object]) -> None:
    for item in items:
        if isinstance(item, Packet):
            pipeline.receive_packet(item.t_arrival_s, item.payload)
        elif isinstance(item, LinkGap):
            pipeline.receive_gap(item.t_s, reason=item.reason)


def _peaks_bpm(events: Sequence[object], after_s: float) -> np.ndarray:
    return np.array(
        [
            e.peak_hz * 60.0
            for e in events
            if isinstance(e, Spectrum) and e.t_s >= after_s and e.peak_hz is not None
        ]
    )


# ----------------------------------------------------------------------- determinism


def test_same_seed_same_bytes_different_seed_different() -> None:
    def run(seed: int) -> list[object]:
        strap = VirtualStrap(strap=StrapConfig(dropouts_per_hour=30.0), seed=seed)
        strap.subject.set_pacer(6.0, 20.0)
        return list(strap.packets_until(120.0))

    a, b, c = run(7), run(7), run(8)
    assert a == b
    assert _payloads(a) == _payloads(b)
    assert _payloads(a) != _payloads(c)


def test_output_does_not_depend_on_how_the_generator_is_advanced() -> None:
    config = StrapConfig(dropouts=((40.0, 4.0),), contact_losses=((70.0, 5.0),))
    whole = VirtualStrap(strap=config, seed=3).items_until(150.0)
    stepped = VirtualStrap(strap=config, seed=3)
    pieces: list[object] = []
    t = 0.0
    while t < 150.0:
        t = min(150.0, t + 0.37)
        pieces.extend(stepped.items_until(t))
    assert pieces == whole


# ----------------------------------------------------------------------- the packets


def test_every_payload_parses_and_covers_the_format() -> None:
    config = StrapConfig(
        contact_losses=((100.0, 8.0), (400.0, 5.0)),
        dropouts=((250.0, 6.0),),
        energy_fraction=0.1,
        uint16_fraction=0.2,
    )
    strap = VirtualStrap(SubjectConfig(resting_hr_bpm=95.0), config, seed=11)
    items = strap.items_until(600.0)
    assert isinstance(items[0], DeviceInfo) and items[0].profile_id == "generic"
    packets = [i for i in items if isinstance(i, Packet)]
    parsed = [parse_heart_rate_measurement(p.payload) for p in packets]
    assert 560 < len(packets) < 620  # about one notification per second
    arrivals = [p.t_arrival_s for p in packets]
    assert arrivals == sorted(arrivals)
    gaps = np.diff(arrivals)
    assert 0.9 < float(np.median(gaps)) < 1.1
    assert any(m.hr_uint16 for m in parsed) and any(not m.hr_uint16 for m in parsed)
    n_energy = sum(m.energy_kj is not None for m in parsed)
    assert 0.04 * len(parsed) < n_energy < 0.2 * len(parsed)
    energies = [m.energy_kj for m in parsed if m.energy_kj is not None]
    assert energies == sorted(energies)  # cumulative
    counts = Counter(len(m.rr_ticks) for m in parsed)
    assert counts[2] > 0 and counts[1] > 0 and counts[0] > 0  # several RR in some packets
    for m in parsed:
        assert len(m.rr_ticks) <= 9 - int(m.hr_uint16) - int(m.energy_kj is not None)
    assert {m.contact for m in parsed} == {True, False}
    for p, m in zip(packets, parsed, strict=True):
        lost = 100.0 < p.t_arrival_s < 108.0 or 400.0 < p.t_arrival_s < 405.0
        edge = any(abs(p.t_arrival_s - e) < 0.1 for e in (100.0, 108.0, 400.0, 405.0))
        if not edge:
            assert m.contact is (not lost), p.t_arrival_s


def test_rr_ticks_follow_the_subject_beats() -> None:
    config = StrapConfig(missed_rate=0.0, extra_rate=0.0, ectopic_rate=0.0, settling_nonsense=False)
    strap = VirtualStrap(strap=config, seed=5)
    packets = strap.packets_until(60.0)
    rr = [
        t
        for p in packets
        if isinstance(p, Packet)
        for t in parse_heart_rate_measurement(p.payload).rr_ticks
    ]
    # Compare with the same subject (same seed stream) without a strap.
    reference = VirtualStrap(strap=config, seed=5).subject.beats_until(60.0)
    ticks = np.round(np.asarray(reference) * RR_TICKS_PER_S).astype(int)
    expected = np.diff(ticks)
    # The strap sends the beats whose notification came by 60 s: a prefix of the reference.
    assert len(rr) >= len(expected) - 2
    assert rr == expected[: len(rr)].tolist()


def test_settling_nonsense_after_connect() -> None:
    on = VirtualStrap(strap=StrapConfig(dropouts=((30.0, 5.0),)), seed=2).packets_until(60.0)
    first_after = [_first_packet_after(on, 0.0), _first_packet_after(on, 35.0)]
    for p in first_after:
        rr = parse_heart_rate_measurement(p.payload).rr_ms
        assert rr and any(v < 250.0 or v > 2500.0 for v in rr), rr
    off = VirtualStrap(
        strap=StrapConfig(dropouts=((30.0, 5.0),), settling_nonsense=False), seed=2
    ).packets_until(60.0)
    for t in (0.0, 35.0):
        p = _first_packet_after(off, t)
        assert all(300.0 < v < 2000.0 for v in parse_heart_rate_measurement(p.payload).rr_ms)


def _first_packet_after(items: Sequence[object], t_s: float) -> Packet:
    return next(i for i in items if isinstance(i, Packet) and i.t_arrival_s > t_s)


def test_dropouts_give_a_link_gap_and_no_packets() -> None:
    dropouts = ((50.0, 7.0), (120.0, 3.0))
    items = VirtualStrap(strap=StrapConfig(dropouts=dropouts), seed=4).items_until(180.0)
    gaps = [i for i in items if isinstance(i, LinkGap)]
    assert [g.t_s for g in gaps] == [50.0, 120.0]
    infos = [i.t_s for i in items if isinstance(i, DeviceInfo)]
    assert infos == [0.0, 57.0, 123.0]  # connect, then each reconnect
    for start, duration in dropouts:
        assert not [
            p for p in items if isinstance(p, Packet) and start <= p.t_arrival_s <= start + duration
        ]
        # Packets resume within a notification interval of the reconnect.
        assert _first_packet_after(items, start).t_arrival_s < start + duration + 1.2
    times = [i.t_arrival_s if isinstance(i, Packet) else i.t_s for i in items]
    assert times == sorted(times)


def test_random_dropouts_and_contact_losses_happen_at_their_rates() -> None:
    config = StrapConfig(dropouts_per_hour=60.0, dropout_mean_s=3.0, contact_losses_per_hour=60.0)
    items = VirtualStrap(strap=config, seed=9).items_until(1800.0)
    n_gaps = sum(isinstance(i, LinkGap) for i in items)
    assert 15 <= n_gaps <= 50  # Poisson, mean 30
    contact = [parse_heart_rate_measurement(p.payload).contact for p in _packets(items)]
    assert contact.count(False) > 30


def _packets(items: Sequence[object]) -> list[Packet]:
    return [i for i in items if isinstance(i, Packet)]


def test_no_contact_bit_when_unsupported() -> None:
    config = StrapConfig(contact_supported=False, contact_losses=((10.0, 5.0),))
    items = VirtualStrap(strap=config, seed=1).items_until(30.0)
    assert {parse_heart_rate_measurement(p.payload).contact for p in _packets(items)} == {None}


@pytest.mark.parametrize(
    ("kind", "rates"),
    [
        ("missed", {"missed_rate": 0.05}),
        ("extra", {"extra_rate": 0.05}),
        ("ectopic", {"ectopic_rate": 0.05}),
    ],
)
def test_artifacts_at_their_rates(kind: str, rates: dict[str, float]) -> None:
    config = StrapConfig(
        settling_nonsense=False,
        missed_rate=rates.get("missed_rate", 0.0),
        extra_rate=rates.get("extra_rate", 0.0),
        ectopic_rate=rates.get("ectopic_rate", 0.0),
    )
    subject = SubjectConfig(rsa_gain=0.02, mayer_amplitude=0.0, noise=0.005)
    items = VirtualStrap(subject, config, seed=21).items_until(900.0)
    rr = np.array(
        [v for p in _packets(items) for v in parse_heart_rate_measurement(p.payload).rr_ms]
    )
    med = float(np.median(rr))
    n_beats = len(rr)
    if kind == "missed":
        long = np.sum(rr > 1.6 * med)
        assert 0.025 * n_beats < long < 0.08 * n_beats
        assert np.sum(rr < 0.8 * med) == 0
    elif kind == "extra":
        short = np.sum(rr < 0.75 * med)  # a split RR gives two short ones
        assert 0.05 * n_beats < short < 0.16 * n_beats
        assert np.sum(rr > 1.3 * med) == 0
    else:
        short_idx = np.flatnonzero(rr < 0.85 * med)
        assert 0.025 * n_beats < len(short_idx) < 0.08 * n_beats
        # Each premature beat is followed by a compensatory pause.
        following = rr[short_idx[short_idx + 1 < n_beats] + 1]
        assert np.mean(following > 1.1 * med) > 0.9


# ----------------------------------------------------------------------- physiology


def test_ipfm_mean_heart_rate_is_the_resting_rate() -> None:
    for hr in (50.0, 65.0, 90.0):
        rr = ipfm_rr_ms(300.0, 6.0, seed=1, resting_hr_bpm=hr)
        assert np.all(np.isfinite(rr)) and np.all(rr > 0)
        assert abs(60000.0 / float(np.mean(rr)) - hr) < 0.02 * hr


def _rsa_fit(rate_bpm: float, config: SubjectConfig, seed: int = 1) -> tuple[float, float]:
    """Peak-to-trough HR (bpm, mean per breath) and HR-breathing phase (deg, + = HR leads).

    The subject breathes with a pacer at phase 0 at t = 0 (adherence 1), so breathing is
    b(t) = −cos(2π f t). HR = 60/RR is placed at the middle of each RR interval.
    """
    subject = VirtualSubject(config, np.random.default_rng(seed))
    subject.set_pacer(rate_bpm, 0.0)
    beats = np.asarray(subject.beats_until(300.0))
    rr_s = np.diff(beats)
    t_mid = (beats[1:] + beats[:-1]) / 2.0
    hr = 60.0 / rr_s
    period_s = 60.0 / rate_bpm
    cycle = np.floor(t_mid / period_s).astype(int)
    amps = [np.ptp(hr[cycle == k]) for k in range(3, int(t_mid[-1] // period_s))]
    f_hz = rate_bpm / 60.0
    keep = t_mid > 30.0
    w = 2.0 * np.pi * f_hz * t_mid[keep]
    design = np.column_stack([np.ones(keep.sum()), np.cos(w), np.sin(w)])
    _, a, b = np.linalg.lstsq(design, hr[keep], rcond=None)[0]
    theta_hr = math.atan2(-b, a)  # HR ≈ A cos(w + θ)
    rel = (theta_hr - math.pi + math.pi) % (2.0 * math.pi) - math.pi  # breathing: cos(w + π)
    return float(np.mean(amps)), math.degrees(rel)


@pytest.mark.parametrize("resonance_bpm", [5.0, 5.5, 6.5])
def test_rsa_amplitude_is_largest_at_the_resonance_rate(resonance_bpm: float) -> None:
    config = SubjectConfig(resonance_bpm=resonance_bpm, adherence=1.0)
    at_rf, _ = _rsa_fit(resonance_bpm, config)
    below, _ = _rsa_fit(resonance_bpm - 1.0, config)
    above, _ = _rsa_fit(resonance_bpm + 1.0, config)
    assert at_rf > 1.05 * below and at_rf > 1.05 * above, (below, at_rf, above)
    spontaneous, _ = _rsa_fit(14.0, config)
    assert spontaneous < 0.5 * at_rf


def test_hr_breathing_phase_zero_at_resonance_lead_below_lag_above() -> None:
    config = SubjectConfig(resonance_bpm=5.5, adherence=1.0, noise=0.0, mayer_amplitude=0.0)
    f_rf = 5.5 / 60.0
    for rate in (4.5, 5.5, 6.5):
        _, phase_deg = _rsa_fit(rate, config)
        h = resonance_response(rate / 60.0, f_rf, config.zeta)
        expected = math.degrees(math.atan2(h.imag, h.real))
        assert abs(phase_deg - expected) < 5.0, (rate, phase_deg, expected)
    _, at_rf = _rsa_fit(5.5, config)
    _, below = _rsa_fit(4.5, config)
    _, above = _rsa_fit(6.5, config)
    assert abs(at_rf) < 5.0
    assert below > 15.0  # heart rate leads breathing below resonance
    assert above < -15.0  # and lags above it
    # With noise and Mayer waves on, the sign pattern holds.
    noisy = SubjectConfig(resonance_bpm=5.5, adherence=1.0)
    assert abs(_rsa_fit(5.5, noisy)[1]) < 10.0
    assert _rsa_fit(4.5, noisy)[1] > 15.0 and _rsa_fit(6.5, noisy)[1] < -15.0


def test_resonance_response_shape() -> None:
    f_rf = 0.1
    assert resonance_response(f_rf, f_rf, 0.3) == pytest.approx(1.0)
    for zeta in (0.2, 0.5):
        gains = [abs(resonance_response(f, f_rf, zeta)) for f in np.linspace(0.03, 0.3, 55)]
        assert max(gains) == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("pacer_bpm", [4.5, 6.0, 7.0])
def test_pipeline_recovers_the_breathing_rate(pacer_bpm: float) -> None:
    strap = VirtualStrap(seed=int(pacer_bpm * 10))
    strap.subject.set_pacer(pacer_bpm, 0.0)
    pipeline = Pipeline()
    _feed(pipeline, strap.packets_until(200.0))
    pipeline.close()
    peaks = _peaks_bpm(pipeline.events_received(), after_s=70.0)
    assert len(peaks) >= 20
    assert abs(float(np.median(peaks)) - pacer_bpm) < 0.1, peaks
    # Single 64 s windows hold only ~5 breaths at 4.5/min, and the subject's Mayer wave
    # (0.1 Hz) pulls a slow peak up a little: most windows within 0.1, all within 0.2.
    assert np.mean(np.abs(peaks - pacer_bpm) < 0.1) >= 0.6, peaks
    assert np.max(np.abs(peaks - pacer_bpm)) < 0.2, peaks


def test_subject_does_not_follow_the_pacer_without_adherence() -> None:
    strap = VirtualStrap(SubjectConfig(adherence=0.0, spontaneous_bpm=12.0), seed=3)
    strap.subject.set_pacer(6.0, 0.0)
    pipeline = Pipeline()
    _feed(pipeline, strap.packets_until(200.0))
    peaks = _peaks_bpm(pipeline.events_received(), after_s=70.0)
    assert abs(float(np.median(peaks)) - 12.0) < 1.5, peaks


def test_pacer_phase_is_continuous_across_rate_changes() -> None:
    subject = VirtualSubject(SubjectConfig(), np.random.default_rng(0))
    subject.set_pacer(6.0, 0.0)
    subject.set_pacer(5.0, 30.0)
    subject.beats_until(60.0)
    expected = 6.0 / 60.0 * 30.0 + 5.0 / 60.0 * 30.0  # 5.5 cycles, no jump
    assert subject.pacer_phase_cycles == pytest.approx(expected, abs=0.01)
    # A subject who adheres breathes in phase with it.
    diff = subject.breathing_phase_cycles - subject.pacer_phase_cycles
    assert abs(diff - round(diff)) < 0.05


# ----------------------------------------------------------------------- the async source


async def _collect(spec: SimSpec) -> list[object]:
    async with open_source(spec) as source:
        return [item async for item in source]


def _settled(items: Sequence[object], settle_s: float) -> list[object]:
    """``items`` read as the BLE reader reads a strap: packets arriving within ``settle_s``
    of the last (re)connect (a connected DeviceInfo) left out."""
    out: list[object] = []
    t_connected = -math.inf
    for item in items:
        if isinstance(item, DeviceInfo) and item.connected:
            t_connected = item.t_s
        elif isinstance(item, Packet) and item.t_arrival_s < t_connected + settle_s:
            continue
        out.append(item)
    return out


async def test_async_source_yields_what_the_generator_makes_after_settling() -> None:
    options = {"dropouts": [[20.0, 4.0]], "contact_losses": [[40.0, 3.0]]}
    items = await _collect(SimSpec(seed=5, speed=None, duration_s=90.0, options=options))
    assert isinstance(items[0], DeviceInfo)
    subject, strap_config = configs_from_options(options)
    raw = VirtualStrap(subject, strap_config, seed=5).items_until(90.0)
    assert items == _settled(raw, 2.0)  # the generic profile's settling time
    assert any(isinstance(i, LinkGap) for i in items)
    assert [i.t_s for i in items if isinstance(i, DeviceInfo)] == [0.0, 24.0]
    # the first packet after each connect (the nonsense one) is among those left out
    for t in (0.0, 24.0):
        first = _first_packet_after(raw, t)
        assert first.t_arrival_s < t + 2.0
        assert first not in items
        assert _first_packet_after(items, t).t_arrival_s >= t + 2.0


async def test_settling_time_is_the_ble_readers_for_the_strap_profile() -> None:
    from vagus.devices import load_profiles

    profiles = {p.id: p for p in load_profiles()}
    for profile_id in ("generic", "polar_h10", "polar_oh1", "coospo_h808s"):
        source = SimulatorSource(SimSpec(options={"profile_id": profile_id}))
        # BleSource: max(BleSpec.settle_s, profile.settle_s)
        assert source.settle_s == max(BleSpec().settle_s, profiles[profile_id].settle_s)
    assert SimulatorSource(SimSpec(options={"profile_id": "polar_oh1"})).settle_s == 5.0

    spec = SimSpec(seed=3, speed=None, duration_s=60.0, options={"dropouts": [[30.0, 2.0]]})
    raw_source = SimulatorSource(spec, settle_s=0.0)
    async with raw_source:
        raw = [item async for item in raw_source]
    assert raw_source.settle_discarded == 0
    assert raw == VirtualStrap(seed=3, strap=StrapConfig(dropouts=((30.0, 2.0),))).items_until(60.0)
    slow = SimulatorSource(spec, settle_s=4.5)
    async with slow:
        settled = [item async for item in slow]
    assert settled == _settled(raw, 4.5)
    assert slow.settle_discarded == len(raw) - len(settled) >= 6  # ~4 per connect
    with pytest.raises(InvalidInput, match="settle_s"):
        SimulatorSource(SimSpec(), settle_s=-1.0)


async def test_reconnect_nonsense_never_reaches_the_pipeline() -> None:
    """A session with dropouts through the simulator source (the `--sim` path): the
    strap's nonsense RR after each reconnect is discarded by the settling rule, so the
    pipeline places no beat from it and every gap has a non-negative duration."""
    options = {
        "dropouts": [[60.0, 5.0], [200.0, 0.5], [201.5, 3.0]],
        "dropouts_per_hour": 40.0,
        "dropout_mean_s": 4.0,
    }
    spec = SimSpec(seed=17, speed=None, duration_s=900.0, options=options)
    source = SimulatorSource(spec)
    pipeline = Pipeline()
    n_link_gaps = 0
    n_resumed = 0  # link gaps after which beats resumed before the next one
    resuming = False
    async with source:
        async for item in source:
            if isinstance(item, LinkGap):
                n_link_gaps += 1
                resuming = True
            elif (
                isinstance(item, Packet)
                and resuming
                and parse_heart_rate_measurement(item.payload).rr_ticks
            ):
                n_resumed += 1
                resuming = False
            _feed(pipeline, [item])
    events = pipeline.events_received()
    beats = [e for e in events if isinstance(e, Beat)]
    gaps = [e for e in events if isinstance(e, Gap)]
    assert n_link_gaps >= 8  # the scheduled three and random ones
    assert source.settle_discarded >= n_link_gaps + 1  # at least the nonsense packets
    assert len(beats) > 700
    # nonsense ticks are 0, 28, 9000, 65535 (0, 27, 8789, 63999 ms): none made a beat
    assert not [b for b in beats if b.rr_ms > 2500.0 or b.rr_ms < 100.0]
    assert not [g for g in gaps if g.reason == "rr_out_of_range"]
    assert all(g.duration_s is not None and g.duration_s >= 0.0 for g in gaps), gaps
    # one gap per link loss; losses with no beat between them make one gap together
    assert [g.reason for g in gaps] == ["link_lost"] * n_resumed
    assert n_link_gaps - 3 <= n_resumed < n_link_gaps

    # The same strap read without settling does put its nonsense into the pipeline:
    # this test would catch the rule going missing.
    raw = Pipeline()
    _feed(raw, VirtualStrap(*configs_from_options(options), seed=17).items_until(900.0))
    raw_events = raw.events_received()
    assert any(isinstance(e, Gap) and e.reason == "rr_out_of_range" for e in raw_events) or any(
        isinstance(e, Beat) and e.rr_ms < 100.0 for e in raw_events
    )


async def test_async_source_paced_gives_the_same_items() -> None:
    fast = await _collect(SimSpec(seed=2, speed=None, duration_s=8.0))
    paced = await _collect(SimSpec(seed=2, speed=40.0, duration_s=8.0))
    assert paced == fast


async def test_closed_loop_the_subject_follows_the_pacer_it_is_given() -> None:
    source = SimulatorSource(SimSpec(seed=12, speed=None, duration_s=260.0))
    pipeline = Pipeline()
    switched = False
    async with source:
        source.set_pacer(6.5)
        async for item in source:
            _feed(pipeline, [item])
            if not switched and source.t_s >= 110.0:
                source.set_pacer(5.0)  # at the current simulated time
                switched = True
    events = pipeline.events_received()
    early = _peaks_bpm([e for e in events if isinstance(e, Spectrum) and e.t_s < 110.0], 70.0)
    late = _peaks_bpm(events, after_s=190.0)
    assert abs(float(np.median(early)) - 6.5) < 0.1, early
    assert abs(float(np.median(late)) - 5.0) < 0.1, late


def test_options_map_onto_the_configs() -> None:
    subject, strap = configs_from_options(
        {"resting_hr_bpm": "80", "adherence": 0.5, "dropouts": [[1, 2]], "contact_supported": False}
    )
    assert subject.resting_hr_bpm == 80.0 and subject.adherence == 0.5
    assert strap.dropouts == ((1.0, 2.0),) and strap.contact_supported is False


def test_unknown_option_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidInput) as info:
        SimulatorSource(SimSpec(options={"resting_hr": 70}))
    message = str(info.value)
    assert "'resting_hr'" in message
    assert "resting_hr_bpm" in message and "missed_rate" in message


@pytest.mark.parametrize(
    "options",
    [
        {"adherence": 1.5},
        {"resting_hr_bpm": "fast"},
        {"missed_rate": -0.1},
        {"dropouts": [[10.0]]},
        {"contact_supported": "maybe"},
        {"resonance_bpm": float("nan")},
    ],
)
def test_bad_option_values_are_clear_errors(options: dict[str, object]) -> None:
    key = next(iter(options))
    with pytest.raises(InvalidInput, match=key):
        SimulatorSource(SimSpec(options=options))


async def test_a_chosen_profile_is_reported_and_an_unknown_one_rejected() -> None:
    spec = SimSpec(seed=1, speed=None, duration_s=3.0, options={"profile_id": "polar_h10"})
    async with open_source(spec) as source:
        async for item in source:
            assert isinstance(item, DeviceInfo) and item.profile_id == "polar_h10"
            break  # leaving early closes cleanly
    with pytest.raises(InvalidInput, match="polar_h99"):
        SimulatorSource(SimSpec(options={"profile_id": "polar_h99"}))


def test_ipfm_rejects_unknown_overrides() -> None:
    with pytest.raises(InvalidInput, match="resting_hr_bpm"):
        ipfm_rr_ms(60.0, 6.0, seed=0, resting_hr=70.0)


def test_bad_pacer_rate_is_rejected() -> None:
    source = SimulatorSource(SimSpec())
    with pytest.raises(InvalidInput, match="pacer rate"):
        source.set_pacer(0.0)
