"""The sans-I/O pipeline: plain functions, no event loop (feed input, assert events)."""

from __future__ import annotations

import json
import math
import random
from typing import TypeVar

import numpy as np
import pytest

from vagus import MalformedPacket
from vagus.core.events import (
    Beat,
    Contact,
    Event,
    Gap,
    Marker,
    Metrics,
    PacerChange,
    Spectrum,
    event_from_json,
)
from vagus.core.hrm import encode_heart_rate_measurement
from vagus.core.metrics import rmssd
from vagus.core.pipeline import Pipeline
from vagus.exceptions import InvalidInput

Packet = tuple[float, bytes]
T = TypeVar("T")


def rsa_ticks(duration_s: float, *, mean_ms: float = 900.0, amp_ms: float = 40.0) -> list[int]:
    """RR in 1/1024 s ticks of a clean 6/min RSA rhythm (no artifacts)."""
    ticks: list[int] = []
    t = 0.0
    while t < duration_s:
        rr_ms = mean_ms + amp_ms * math.sin(2 * math.pi * 0.1 * t)
        tick = round(rr_ms * 1.024)
        ticks.append(tick)
        t += tick / 1024
    return ticks


def packetize(
    ticks: list[int],
    *,
    latency_s: float = 0.05,
    jitter_s: float = 0.0,
    clock_rate: float = 1.0,
    seed: int = 1,
    contact: bool | None = True,
) -> list[tuple[float, bytes, list[int]]]:
    """Pack beats into one notification per second, as a strap does.

    Returns (t_arrival_s, payload, ticks in the packet). Arrival = notification time on
    the host clock (``clock_rate`` × strap time) + latency + uniform jitter.
    """
    rng = random.Random(seed)
    out: list[tuple[float, bytes, list[int]]] = []
    t_beat = 0.0
    pending: list[int] = []
    next_notify = 1.0
    for tick in ticks:
        t_beat += tick / 1024
        while t_beat > next_notify:
            arrival = next_notify * clock_rate + latency_s + rng.uniform(0, jitter_s)
            out.append(
                (arrival, encode_heart_rate_measurement(70, pending, contact=contact), pending)
            )
            pending = []
            next_notify += 1.0
        pending.append(tick)
    arrival = next_notify * clock_rate + latency_s
    out.append((arrival, encode_heart_rate_measurement(70, pending, contact=contact), pending))
    return out


def run_packets(packets: list[Packet]) -> list[Event]:
    p = Pipeline()
    for t, payload in packets:
        p.receive_packet(t, payload)
    p.close()
    return p.events_received()


def beats(events: list[Event]) -> list[Beat]:
    return [e for e in events if isinstance(e, Beat)]


def of_type(events: list[Event], cls: type[T]) -> list[T]:
    return [e for e in events if isinstance(e, cls)]


# --------------------------------------------------------------------------- timeline


def test_beat_times_from_rr_not_arrival() -> None:
    ticks = rsa_ticks(120)
    pk = packetize(ticks, jitter_s=0.3, seed=3)
    # One packet arrives 0.6 s late (a BLE retry); the next ones queue behind it.
    for i in range(40, 43):
        t, payload, content = pk[i]
        pk[i] = (max(t, pk[40][0] + 0.6 + 0.01 * (i - 40)), payload, content)
    # One packet carries the beats of the last 3 s (notifications held back by the strap).
    merged = pk[60][2] + pk[61][2] + pk[62][2]
    pk[60:63] = [(pk[62][0], encode_heart_rate_measurement(70, merged, contact=True), merged)]
    events = run_packets([(t, p) for t, p, _ in pk])
    assert not of_type(events, Gap)
    bt = beats(events)
    assert len(bt) == len(ticks)
    assert all(b.artifact is None for b in bt)
    times = np.array([b.t_s for b in bt])
    rr_s = np.array(ticks) / 1024
    np.testing.assert_allclose(np.diff(times), rr_s[1:], rtol=0, atol=1e-9)
    # The chain is anchored once: beat time = true time + a constant offset.
    true_times = np.cumsum(rr_s)
    offset = times - true_times
    assert np.ptp(offset) < 1e-9
    np.testing.assert_allclose([b.rr_ms for b in bt], rr_s * 1000)


def test_dropout_becomes_gap_with_duration() -> None:
    ticks = rsa_ticks(200)
    pk = packetize(ticks)
    lost = pk[100:106]  # six notifications lost
    kept = pk[:100] + pk[106:]
    events = run_packets([(t, p) for t, p, _ in kept])
    gaps = of_type(events, Gap)
    assert len(gaps) == 1
    gap = gaps[0]
    assert gap.reason == "dropout"
    lost_s = sum(sum(c) for _, _, c in lost) / 1024
    # The new chain is anchored to the arrival of the first packet after the gap: its
    # beats' phase against the 1 Hz notifications is unknown, so the duration is exact
    # to within one RR interval (plus arrival jitter, none here).
    assert gap.duration_s is not None
    assert abs(gap.duration_s - lost_s) < 1.0
    # No beat is invented: exactly the beats received.
    assert len(beats(events)) == len(ticks) - sum(len(c) for _, _, c in lost)
    before = [b for b in beats(events) if b.t_s <= gap.t_s]
    assert before[-1].t_s == pytest.approx(gap.t_s)


def test_receive_gap_emits_gap_at_resume() -> None:
    p = Pipeline()
    for _ in range(30):
        p.receive_rr(800.0)
    p.receive_gap(24.0, reason="link_lost")
    ev_mid = p.events_received()
    assert not of_type(ev_mid, Gap)  # duration unknown until beats resume
    p.receive_rr([800.0, 810.0], t_s=40.0)
    p.close()
    gaps = of_type(p.events_received(), Gap)
    assert len(gaps) == 1
    assert gaps[0].reason == "link_lost"
    assert gaps[0].t_s == pytest.approx(24.0)
    assert gaps[0].duration_s == pytest.approx(40.0 - 1.61 - 24.0)


def test_receive_gap_time_bounds_cumulative_resume() -> None:
    # Cumulative input has no clock: the declared gap time is where the chain resumes
    # at the earliest, so the gap is visible with its length, never a 0 s papering-over.
    p = Pipeline()
    p.receive_rr([800.0] * 100)  # last beat at 80 s
    p.receive_gap(200.0)
    p.receive_rr([800.0] * 10)
    p.close()
    events = p.events_received()
    (gap,) = of_type(events, Gap)
    assert gap.t_s == pytest.approx(80.0) and gap.duration_s == pytest.approx(120.0)
    assert of_type(events, Beat)[-1].t_s == pytest.approx(208.0)
    # A gap time before the last beat cannot move the chain back.
    p = Pipeline()
    p.receive_rr([800.0] * 100)
    p.receive_gap(20.0)
    p.receive_rr([800.0] * 10)
    p.close()
    (gap,) = of_type(p.events_received(), Gap)
    assert gap.duration_s == pytest.approx(0.0)


def test_gap_never_resumed_is_closed_with_unknown_duration() -> None:
    p = Pipeline()
    p.receive_rr([800.0] * 10)
    p.receive_gap(8.0)
    p.close()
    gaps = of_type(p.events_received(), Gap)
    assert len(gaps) == 1 and gaps[0].duration_s is None


def test_nonsense_rr_after_reconnect_breaks_chain_never_negative_gap() -> None:
    """A strap may send nonsense RR right after a reconnect (BLE.md): e.g. 65535 ticks
    (64 s). It produces no beat, and the gap never has a negative duration."""
    ticks = rsa_ticks(120)
    pk = packetize(ticks)
    p = Pipeline()
    for t, payload, _ in pk[:60]:
        p.receive_packet(t, payload)
    t_link_lost = pk[59][0]
    p.receive_gap(t_link_lost, reason="link_lost")
    # Reconnected 5 s later: the first packet carries one nonsense value and one real RR.
    t_back = t_link_lost + 5.0
    p.receive_packet(t_back, encode_heart_rate_measurement(70, [65535, 922], contact=True))
    for t, payload, _ in pk[66:]:
        p.receive_packet(t, payload)
    p.close()
    events = p.events_received()
    assert all(b.rr_ms <= 2500.0 for b in beats(events))
    gaps = of_type(events, Gap)
    assert [g.reason for g in gaps] == ["link_lost"]
    assert gaps[0].duration_s is not None and 0.0 <= gaps[0].duration_s < 6.0
    times = [b.t_s for b in beats(events)]
    assert times == sorted(times)


def test_anchor_never_before_last_beat() -> None:
    """RR that disagree with the arrival clock (they span more than the time since the
    last beat) cannot move the new chain back in time: the gap has duration 0."""
    p = Pipeline()
    p.receive_rr([800.0] * 20, t_s=16.0)
    p.receive_gap(16.0)
    p.receive_rr([2000.0, 2000.0], t_s=17.0)  # would start the chain at 13 s
    p.close()
    events = p.events_received()
    gap = of_type(events, Gap)[0]
    assert gap.duration_s == 0.0
    times = [b.t_s for b in beats(events)]
    assert times == sorted(times) and times[-1] == pytest.approx(20.0)


def test_rr_longer_than_range_is_a_gap_offline() -> None:
    """An RR over 2.5 s (nsr001 has three, up to 7.5 s) is a gap of that length in
    cumulative offline input, not a beat."""
    p = Pipeline()
    p.receive_rr([800.0] * 30 + [7476.5625] + [800.0] * 30)
    p.close()
    events = p.events_received()
    gaps = of_type(events, Gap)
    assert len(gaps) == 1 and gaps[0].reason == "rr_out_of_range"
    assert gaps[0].t_s == pytest.approx(24.0)
    assert gaps[0].duration_s == pytest.approx(7.4765625)
    bt = beats(events)
    assert len(bt) == 60 and all(b.rr_ms == 800.0 for b in bt)
    assert bt[30].t_s == pytest.approx(24.0 + 7.4765625 + 0.8)


def test_long_rr_inside_a_packet_splits_it() -> None:
    """Beats before the long value stay on the running chain; those after it start a
    new chain anchored at the packet's arrival."""
    ticks = rsa_ticks(60)
    pk = packetize(ticks)
    p = Pipeline()
    for t, payload, _ in pk[:40]:
        p.receive_packet(t, payload)
    t_last = pk[39][0]
    payload = encode_heart_rate_measurement(70, [900, 4000, 950], contact=True)
    p.receive_packet(t_last + 5.0, payload)
    p.close()
    events = p.events_received()
    gap = of_type(events, Gap)[0]
    assert gap.reason == "rr_out_of_range"
    bt = beats(events)
    assert bt[-1].t_s == pytest.approx(t_last + 5.0)
    assert bt[-1].rr_ms == pytest.approx(950 / 1.024)
    assert bt[-2].rr_ms == pytest.approx(900 / 1.024)
    assert gap.t_s == pytest.approx(bt[-2].t_s)
    assert gap.duration_s is not None and gap.duration_s >= 0.0


def _alternating(n: int, base: float) -> list[float]:
    return [base + (15.0 if i % 2 else -15.0) for i in range(n)]


def test_no_successive_difference_across_gap() -> None:
    a = _alternating(100, 800.0)
    b = _alternating(100, 1200.0)  # 400 ms jump across the gap
    p = Pipeline()
    p.receive_rr(a)
    p.receive_gap(80.0)
    p.receive_rr(b, t_s=80.0 + 60.0 + sum(b) / 1000)
    p.close()
    events = p.events_received()
    assert len(of_type(events, Gap)) == 1
    assert all(b.artifact is None for b in beats(events))
    values = [m.rmssd_60s_ms for m in of_type(events, Metrics) if m.rmssd_60s_ms is not None]
    values += [m.rmssd_30s_ms for m in of_type(events, Metrics) if m.rmssd_30s_ms is not None]
    assert values
    # Every ΔNN is ±30 ms; one ΔNN of 400 ms would lift RMSSD far above 30.
    np.testing.assert_allclose(values, 30.0, atol=1e-6)


def test_contact_lost_is_a_gap_and_its_rr_are_not_used() -> None:
    ticks = rsa_ticks(100)
    pk = packetize(ticks)
    no_contact = range(50, 55)
    packets: list[Packet] = []
    for i, (t, _payload, content) in enumerate(pk):
        contact = i not in no_contact
        packets.append((t, encode_heart_rate_measurement(70, content, contact=contact)))
    events = run_packets(packets)
    contacts = of_type(events, Contact)
    assert [c.contact for c in contacts] == [True, False, True]
    gaps = of_type(events, Gap)
    assert [g.reason for g in gaps] == ["contact_lost"]
    n_dropped = sum(len(pk[i][2]) for i in no_contact)
    assert len(beats(events)) == len(ticks) - n_dropped


def test_clock_drift_50ppm_over_24h_makes_no_gap() -> None:
    ticks = rsa_ticks(24 * 3600.0)
    pk = packetize(ticks, jitter_s=0.3, clock_rate=1 + 50e-6, seed=7)
    p = Pipeline()
    n_gaps = 0
    for t, payload, _ in pk:
        p.receive_packet(t, payload)
        n_gaps += sum(isinstance(e, Gap) for e in p.events_received())
    p.close()
    n_gaps += sum(isinstance(e, Gap) for e in p.events_received())
    assert n_gaps == 0
    # ... while a real 3 s dropout in the same drifting stream is still found.
    kept = pk[:50_000] + pk[50_003:]
    p = Pipeline()
    found: list[Gap] = []
    for t, payload, _ in kept[49_000:51_000]:
        p.receive_packet(t, payload)
        found += of_type(p.events_received(), Gap)
    assert [g.reason for g in found] == ["dropout"]


def test_malformed_packet_raises_and_changes_nothing() -> None:
    ticks = rsa_ticks(90)
    pk = [(t, payload) for t, payload, _ in packetize(ticks)]
    reference = run_packets(pk)
    p = Pipeline()
    for i, (t, payload) in enumerate(pk):
        if i == 30:
            packets_before = p.packets
            for bad in (b"", bytes([0x10, 70, 1]), bytes([0x11, 70])):
                with pytest.raises(MalformedPacket):
                    p.receive_packet(t, bad)
            assert p.packets == packets_before
        p.receive_packet(t, payload)
    p.close()
    assert p.events_received() == reference


def test_invalid_rr_input_rejected() -> None:
    p = Pipeline()
    for bad in (float("nan"), -5.0, 0.0, float("inf")):
        with pytest.raises(InvalidInput):
            p.receive_rr(bad)
    with pytest.raises(InvalidInput):
        p.receive_packet(float("nan"), encode_heart_rate_measurement(60, [800]))
    p.receive_rr(800.0)
    p.close()
    with pytest.raises(InvalidInput):
        p.receive_rr(800.0)


@pytest.mark.parametrize(
    ("rr", "t_s", "message"),
    [
        ("800", None, "rr_ms must be a number or an iterable"),
        (None, None, "rr_ms must be a number or an iterable"),
        (["a"], None, "RR intervals must be numbers"),
        ([800.0, True], None, "RR intervals must be numbers"),
        ([800.0, float("nan")], None, "finite and > 0 ms"),
        (800.0, "12", "t_s must be a number"),
        (800.0, float("inf"), "t_s must be finite"),
    ],
)
def test_bad_rr_input_is_invalid_input_and_changes_nothing(
    rr: object, t_s: object, message: str
) -> None:
    p = Pipeline()
    p.receive_rr([800.0] * 5)
    before = p.events_received()
    with pytest.raises(InvalidInput, match=message):
        p.receive_rr(rr, t_s=t_s)  # type: ignore[arg-type]
    p.receive_rr([800.0] * 5)
    p.close()
    after = p.events_received()
    # Nothing of the bad call entered the chain: 10 beats, evenly spaced.
    beats = of_type(before + after, Beat)
    assert [round(b.t_s, 6) for b in beats] == [round(0.8 * k, 6) for k in range(1, 11)]


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.receive_rr(10**400),
        lambda p: p.receive_rr([800.0, 10**400]),
        lambda p: p.receive_rr(np.array(800.0)),  # a 0-d array: not iterable
        lambda p: p.receive_gap(10**400),
        lambda p: p.receive_packet(10**400, encode_heart_rate_measurement(60, [800])),
    ],
)
def test_numbers_beyond_float_and_0d_arrays_are_invalid_input(call: object) -> None:
    p = Pipeline()
    p.receive_rr([800.0] * 3)
    with pytest.raises(InvalidInput):
        call(p)  # type: ignore[operator]


def test_gap_time_bounds_resume_after_a_long_rr_too() -> None:
    rr = [800.0] * 500  # last beat at 400 s
    p = Pipeline()
    p.receive_rr(rr)
    p.receive_gap(1000.0)
    p.receive_rr([4000.0, *rr])  # the 4 s value is elapsed time, yet no earlier than 1000 s
    p.close()
    (gap,) = of_type(p.events_received(), Gap)
    assert gap.t_s == pytest.approx(400.0) and gap.duration_s == pytest.approx(600.0)


def test_numpy_scalars_are_numbers() -> None:
    a, b = Pipeline(), Pipeline()
    for k in range(200):
        a.receive_rr(np.int64(800 + k % 7), t_s=np.float32(0.0) + 0.8 * (k + 1))
        b.receive_rr(float(800 + k % 7), t_s=float(np.float32(0.0) + 0.8 * (k + 1)))
    a.close()
    b.close()
    assert a.events_received() == b.events_received()


@pytest.mark.parametrize(("t", "payload"), [(1.0, None), ("1.0", b"\x00\x40"), (1.0, "\x00@")])
def test_bad_packet_arguments_are_invalid_input(t: object, payload: object) -> None:
    p = Pipeline()
    with pytest.raises(InvalidInput, match="receive_packet takes"):
        p.receive_packet(t, payload)  # type: ignore[arg-type]
    assert p.packets == 0 and p.events_received() == []


# --------------------------------------------------------------------------- metrics


def test_every_metric_none_until_its_window_has_data() -> None:
    p = Pipeline()
    rr = _alternating(200, 1000.0)  # 1 beat per second
    p.receive_rr(rr)
    p.close()
    metrics = of_type(p.events_received(), Metrics)
    assert metrics

    def first_t(name: str) -> float:
        ts = [m.t_s for m in metrics if getattr(m, name) is not None]
        # Once valid, stays valid on a steady stream.
        assert ts == [m.t_s for m in metrics if m.t_s >= ts[0]]
        return ts[0]

    assert 3.0 <= first_t("hr_bpm") <= 10.0
    assert 0.75 * 30 <= first_t("rmssd_30s_ms") <= 31.0
    for name in ("rmssd_60s_ms", "sdnn_60s_ms", "pnn50_60s", "mean_nn_60s_ms"):
        assert 0.75 * 60 <= first_t(name) <= 61.0
    assert 0.75 * 60 <= first_t("artifact_rate_60s") <= 61.0
    last = metrics[-1]
    assert last.hr_bpm == pytest.approx(60.0, rel=1e-3)
    assert last.rmssd_30s_ms == pytest.approx(30.0)
    assert last.pnn50_60s == 0.0
    assert last.artifact_rate_60s == 0.0


def test_metrics_window_values_match_offline_formulas() -> None:
    rng = np.random.default_rng(5)
    rr = (850 + 40 * np.sin(np.arange(300) * 0.6) + rng.normal(0, 8, 300)).round(1)
    p = Pipeline()
    p.receive_rr(rr.tolist())
    p.close()
    events = p.events_received()
    bt = beats(events)
    assert all(b.artifact is None for b in bt)
    t = np.array([b.t_s for b in bt])
    nn = np.array([b.nn_ms for b in bt], dtype=float)
    m = of_type(events, Metrics)[-1]
    w60 = t > t[-1] - 60.0
    w30 = t > t[-1] - 30.0
    assert m.sdnn_60s_ms == pytest.approx(float(np.std(nn[w60], ddof=1)), rel=1e-9)
    # Only ΔNN between two beats both inside the window (Kubios, neurokit2).
    d60 = np.diff(nn[w60])
    assert m.rmssd_60s_ms == pytest.approx(float(np.sqrt(np.mean(d60**2))), rel=1e-9)
    assert m.pnn50_60s == pytest.approx(100 * np.mean(np.abs(d60) > 50))
    d30 = np.diff(nn[w30])
    assert m.rmssd_30s_ms == pytest.approx(float(np.sqrt(np.mean(d30**2))), rel=1e-9)
    assert m.rmssd_60s_ms == pytest.approx(rmssd(nn[w60]), rel=1e-9)


def test_spectrum_every_5_s_of_beat_time() -> None:
    p = Pipeline()
    p.receive_rr([900.0 + 40 * math.sin(2 * math.pi * 0.1 * i * 0.9) for i in range(300)])
    p.close()
    spectra = of_type(p.events_received(), Spectrum)
    times = [s.t_s for s in spectra]
    assert times[0] == 5.0
    np.testing.assert_allclose(np.diff(times), 5.0)
    for s in spectra:
        if s.t_s < 64.0 - 2.5:
            assert s.coherence_ratio is None and s.peak_hz is None and s.psd_ms2_per_hz == ()
        if s.t_s < 120.0 - 2.5:
            assert s.lf_ms2 is None and s.hf_ms2 is None and s.lf_hf is None
    assert spectra[-1].coherence_ratio is not None and spectra[-1].lf_ms2 is not None
    assert len(spectra[-1].freqs_hz) == len(spectra[-1].psd_ms2_per_hz) > 0


def test_spectrum_interval_configurable() -> None:
    p = Pipeline(spectrum_interval_s=2.0)
    p.receive_rr([1000.0] * 20)
    p.close()
    assert [s.t_s for s in of_type(p.events_received(), Spectrum)][:3] == [2.0, 4.0, 6.0]


# --------------------------------------------------------------------------- JSON & order


def _session() -> list[Event]:
    ticks = rsa_ticks(150)
    pk = packetize(ticks, jitter_s=0.3)
    p = Pipeline()
    for i, (t, payload, _) in enumerate(pk):
        if i == 20:
            p.receive_control(Marker(t_s=t, text="eyes closed"))
        if i == 40:
            p.receive_control(PacerChange(t_s=t, rate_bpm=6.0, inhale_fraction=0.4))
        if i in range(60, 64):
            continue  # dropout
        p.receive_packet(t, payload)
    p.close()
    return p.events_received()


def test_json_forms_round_trip_without_nan() -> None:
    events = _session()
    kinds = {type(e) for e in events}
    assert {Beat, Metrics, Spectrum, Gap, Contact, Marker, PacerChange} <= kinds
    for e in events:
        obj = e.to_json()
        assert obj["type"] == e.type
        text = json.dumps(obj, allow_nan=False)
        assert event_from_json(json.loads(text)) == e


def test_event_from_json_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        event_from_json({"type": "nope"})
    with pytest.raises(ValueError):
        event_from_json({"type": "gap", "t_s": 1.0, "duration_s": 2.0, "reason": "x", "z": 1})


def test_determinism_same_input_same_events() -> None:
    assert _session() == _session()


def test_markers_passed_through_in_order() -> None:
    p = Pipeline()
    p.receive_rr([800.0] * 5)
    marker = Marker(t_s=3.0, text="start")
    p.receive_control(marker)
    pacer = PacerChange(t_s=3.5, rate_bpm=5.5)
    p.receive_control(pacer)
    p.receive_rr([800.0] * 5)
    p.close()
    events = p.events_received()
    controls = [e for e in events if isinstance(e, Marker | PacerChange)]
    assert controls == [marker, pacer]
    assert events.index(marker) < events.index(pacer)
    with pytest.raises(InvalidInput):
        Pipeline().receive_control(Beat(t_s=1.0, rr_ms=800.0))  # type: ignore[arg-type]


def test_live_lf_hf_equal_offline_welch_on_each_segment() -> None:
    """The pipeline keeps the 4 Hz spline tachogram incrementally; its LF/HF equal
    welch_lf_hf computed from scratch on the segment's beats (to rounding), also
    after a gap restarts the segment."""
    from vagus.core.spectrum import welch_lf_hf

    rng = random.Random(5)
    ticks = [max(300, t + rng.randint(-40, 40)) for t in rsa_ticks(900, amp_ms=60.0)]
    pk = packetize(ticks)
    kept = pk[:400] + pk[410:]  # a dropout: two segments
    p = Pipeline()
    segment: list[tuple[float, float]] = []
    checked = 0
    for t, payload, _ in kept:
        p.receive_packet(t, payload)
        for e in p.events_received():
            if isinstance(e, Gap):
                segment = []
            elif isinstance(e, Beat) and e.nn_ms is not None:
                segment.append((e.t_s, e.nn_ms))
            elif isinstance(e, Spectrum) and e.lf_ms2 is not None:
                arr = np.array(segment)
                ref = welch_lf_hf(arr[:, 0], arr[:, 1], e.t_s)
                assert ref is not None
                assert e.lf_ms2 == pytest.approx(ref.lf_ms2, rel=1e-9)
                assert e.hf_ms2 == pytest.approx(ref.hf_ms2, rel=1e-9)
                checked += 1
    assert checked > 100
