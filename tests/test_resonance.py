"""The adaptive pacer (issue 12): RSA per breath, the resonance scan and the closed loop,
on simulated subjects in closed loop at max speed (vagus.bench.pacer.run_closed_loop:
the strap's packets go into a Session, its pacer states go back to the subject).

SCIENCE.md "Resonance frequency and the adaptive pacer". The subjects' resonance rates
are 4.5-6.5 breaths/min; "noisy" = 3 % artifacts, 20 % of breaths not with the pacer, a
10 s dropout and twice the heart-rate noise. Runs are cached per module (each is a
14-minute session simulated in well under a second of CPU).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from support.closed_loop import records_of_run
from vagus.bench.pacer import ClosedLoopRun, converged_at_s, noisy, replay_inputs, run_closed_loop
from vagus.core.events import PacerChange, PacerState, Resonance, Rsa
from vagus.core.pacer import PacerMode, PacerSettings
from vagus.core.resonance import AdaptiveConfig, AdaptiveMode, ScanConfig, ScanMode, scan_rates
from vagus.core.rsa import breath_phase
from vagus.exceptions import InvalidInput
from vagus.session import Session
from vagus.sources.simulator import StrapConfig, SubjectConfig

RATES = (4.5, 5.0, 5.5, 6.0, 6.5)
MINUTES = 14.0
TOL_BPM = 0.25


def _subject(truth: float, k: int, noise: str) -> tuple[SubjectConfig, StrapConfig]:
    # Other heart rates, gains and damping than the simulator's defaults, per subject.
    subject = SubjectConfig(
        resonance_bpm=truth,
        resting_hr_bpm=(56.0, 63.0, 71.0, 78.0, 66.0)[k],
        rsa_gain=(0.10, 0.14, 0.08, 0.12, 0.11)[k],
        zeta=(0.3, 0.35, 0.25, 0.3, 0.4)[k],
    )
    strap = StrapConfig()
    if noise == "noisy":
        subject, strap = noisy(dataclasses.replace(subject, noise=0.02), strap)
    return subject, strap


@functools.cache
def _run(mode: str, truth: float, noise: str) -> ClosedLoopRun:
    k = RATES.index(truth)
    subject, strap = _subject(truth, k, noise)
    start = 6.5 if mode == "scan" else 6.0
    return run_closed_loop(
        PacerChange(0.0, start, 0.4, mode), MINUTES * 60.0, subject=subject, strap=strap, seed=k + 1
    )


# ---------------------------------------------------------------------- RSA per breath


def _sine_rr(
    rate_bpm: float, phase_deg: float, duration_s: float, hr_bpm: float = 60.0, swing: float = 0.1
) -> list[tuple[float, float]]:
    """(beat time, RR ms) of a heart whose rate is hr·(1 + swing·(−cos(2π f t) shifted by
    phase)), i.e. leading the symmetric breath −cos 2πft by ``phase_deg``."""
    f = rate_bpm / 60.0
    shift = math.radians(phase_deg) / (2 * math.pi * f)
    beats: list[tuple[float, float]] = []
    t, last = 0.0, 0.0
    dt = 1e-3
    acc = 0.0
    while t < duration_s:
        r = hr_bpm / 60.0 * (1.0 - swing * math.cos(2 * math.pi * f * (t + shift)))
        acc += r * dt
        t += dt
        if acc >= 1.0:
            acc -= 1.0
            beats.append((t, (t - last) * 1000.0))
            last = t
    return beats[1:]


@pytest.mark.parametrize("phase_deg", [-40.0, 0.0, 25.0])
def test_rsa_per_pacer_cycle_gives_amplitude_and_phase(phase_deg: float) -> None:
    session = Session(("ann",))
    session.receive_control(PacerChange(0.0, 6.0, 0.5))
    for t, rr in _sine_rr(6.0, phase_deg, 120.0):
        session.receive_rr("ann", rr, t_s=t)
    rsa = [e.event for e in session.events_received() if isinstance(e.event, Rsa)]
    late = [r for r in rsa if r.start_s >= 30.0]
    assert len(late) >= 6  # a breath ends with the first beat of the next (decided later)
    for r in late:
        assert r.paced and r.clean and r.rate_bpm == 6.0
        assert r.t_s - r.start_s == pytest.approx(10.0)
        assert r.start_s % 10.0 == pytest.approx(0.0, abs=1e-6) or r.start_s % 10.0 > 9.999
        # HR swings ±10 % of 60 bpm: peak to trough about 12 bpm (beats sample the peak).
        assert r.amplitude_bpm is not None and 10.0 < r.amplitude_bpm < 12.5
        assert r.phase_deg == pytest.approx(phase_deg, abs=4.0)
        assert r.fit is not None and r.fit > 0.95
        assert r.mean_60s_bpm is not None
    assert session.events_received() == []


def test_rsa_unpaced_uses_the_spectral_peak() -> None:
    session = Session(("ann",))
    for t, rr in _sine_rr(9.0, 0.0, 200.0):  # a person breathing 9/min, no pacer
        session.receive_rr("ann", rr, t_s=t)
    rsa = [e.event for e in session.events_received() if isinstance(e.event, Rsa)]
    assert len(rsa) >= 10
    assert all(not r.paced and r.phase_deg is None for r in rsa)
    assert all(r.rate_bpm == pytest.approx(9.0, abs=0.4) for r in rsa[-5:])
    assert all(r.amplitude_bpm is not None and r.amplitude_bpm > 8.0 for r in rsa[-5:])


def test_breath_phase_of_shifted_shapes() -> None:
    frac = (np.arange(32) + 0.5) / 32
    vol = (1 - np.cos(2 * np.pi * frac)) / 2
    for shift_deg in (-60.0, -10.0, 0.0, 30.0, 90.0):
        hr = 70 + 5 * (1 - np.cos(2 * np.pi * frac + math.radians(shift_deg))) / 2
        got = breath_phase(hr + 3.0 * frac, vol, drift_bpm=3.0)  # with a drift removed
        assert got is not None
        assert got[0] == pytest.approx(shift_deg, abs=1e-6) and got[1] == pytest.approx(1.0)
    assert breath_phase(np.full(32, 70.0), vol) is None


def test_breaths_of_a_participant_do_not_depend_on_the_others() -> None:
    beats = {"ann": _sine_rr(5.5, 10.0, 150.0, 62.0), "bob": _sine_rr(5.5, -20.0, 150.0, 75.0)}

    def run(names: tuple[str, ...]) -> dict[str, list[Rsa]]:
        session = Session(names)
        session.receive_control(PacerChange(0.0, 5.5, 0.5, "fixed"))
        merged = sorted((t, n, rr) for n in names for t, rr in beats[n])
        for t, n, rr in merged:
            session.receive_rr(n, rr, t_s=t)
        session.close()
        out: dict[str, list[Rsa]] = {n: [] for n in names}
        for e in session.events_received():
            if isinstance(e.event, Rsa):
                assert e.participant is not None
                out[e.participant].append(e.event)
        return out

    both = run(("ann", "bob"))
    assert both["ann"] == run(("ann",))["ann"] and both["bob"] == run(("bob",))["bob"]
    assert (
        np.median([r.phase_deg for r in both["bob"][3:]])
        < 0
        < np.median([r.phase_deg for r in both["ann"][3:]])
    )


# ---------------------------------------------------------------------- scan


def test_scan_plan_and_config() -> None:
    assert scan_rates(ScanConfig()) == [6.5, 6.0, 5.5, 5.0, 4.5]
    assert scan_rates(ScanConfig(start_bpm=4.5, stop_bpm=6.0, step_bpm=0.5)) == [
        4.5,
        5.0,
        5.5,
        6.0,
    ]
    with pytest.raises(InvalidInput, match="step_s"):
        ScanConfig(step_s=1.0)
    with pytest.raises(InvalidInput, match="max_step_bpm"):
        AdaptiveConfig(max_step_bpm=0.0)


@pytest.mark.parametrize("truth", RATES)
def test_scan_finds_the_resonance_rate(truth: float) -> None:
    run = _run("scan", truth, "clean")
    final = [r for r in run.resonance() if r.final]
    assert len(final) == 1
    res = final[0]
    assert res.method == "scan" and res.rate_bpm is not None
    assert abs(res.rate_bpm - truth) <= TOL_BPM, res
    assert 0.0 <= res.confidence <= 1.0
    # The per-rate table covers the plan (and an extension beyond an edge that scored best).
    assert {6.5, 6.0, 5.5, 5.0, 4.5} <= set(res.rates_bpm)
    if truth in (4.5, 6.5):
        assert len(res.rates_bpm) == 6  # extended by one step beyond the edge
    # The phase falls with the rate: HR leads below resonance, lags above.
    phases = [p for p in res.phase_deg if p is not None]
    assert phases[0] > 0 > phases[-1]
    # After the scan the pacer goes on, fixed, at the rate found.
    states = run.pacer_states()
    assert states[-1].mode == "fixed" and states[-1].rate_bpm == res.rate_bpm
    steps = [s for s in states if s.mode == "scan"]
    assert [s.rate_bpm for s in steps][:5] == [6.5, 6.0, 5.5, 5.0, 4.5]
    assert all(110.0 < b.t_s - a.t_s < 135.0 for a, b in itertools.pairwise(steps[1:]))


@pytest.mark.parametrize("truth", [4.5, 6.0])
def test_scan_with_artifacts_non_adherence_and_a_dropout(truth: float) -> None:
    run = _run("scan", truth, "noisy")
    final = [r for r in run.resonance() if r.final]
    assert len(final) == 1 and final[0].rate_bpm is not None
    assert abs(final[0].rate_bpm - truth) <= TOL_BPM, final[0]


# ---------------------------------------------------------------------- adaptive


@pytest.mark.parametrize("noise", ["clean", "noisy"])
@pytest.mark.parametrize("truth", RATES)
def test_adaptive_converges_within_ten_minutes_and_stays(truth: float, noise: str) -> None:
    run = _run("adaptive", truth, noise)
    t_in = converged_at_s(run, truth, TOL_BPM)
    assert t_in is not None and t_in <= 600.0, [
        (round(s.t_s), s.rate_bpm) for s in run.pacer_states()
    ]
    # From then on to the end (14 min) every rate the loop chose is within the tolerance.
    for st in run.pacer_states():
        if st.t_s >= t_in:
            assert st.rate_bpm is not None and abs(st.rate_bpm - truth) <= TOL_BPM
    estimates = [r for r in run.resonance() if r.method == "adaptive"]
    assert estimates and all(not r.final for r in estimates)
    last = estimates[-1]
    assert last.rate_bpm is not None and abs(last.rate_bpm - truth) <= 0.35
    assert last.confidence > 0.3


@pytest.mark.parametrize("noise", ["clean", "noisy"])
def test_adaptive_steps_are_bounded_and_phase_continuous(noise: str) -> None:
    bound = AdaptiveConfig()
    for truth in (4.5, 6.5):
        states = _run("adaptive", truth, noise).pacer_states()
        assert len(states) > 4
        t_last = states[0].t_s
        for prev, st in itertools.pairwise(states):
            assert st.mode == "adaptive" and st.rate_bpm is not None and prev.rate_bpm is not None
            step = abs(st.rate_bpm - prev.rate_bpm)
            assert step <= bound.max_step_bpm + 1e-9
            assert step <= bound.max_bpm_per_min * (st.t_s - t_last) / 60.0 + 0.011  # rounding
            t_last = st.t_s
            # No phase jump: the previous state's phase carried to this time is this one's.
            assert prev.phase is not None and st.phase is not None
            carried = (prev.phase + (st.t_s - prev.t_s) * prev.rate_bpm / 60.0) % 1.0
            gap = abs(carried - st.phase)
            assert min(gap, 1.0 - gap) < 1e-6
            assert st.phase < 1e-6 or st.phase > 1 - 1e-6  # changes come at inhales
            assert AdaptiveConfig().min_bpm <= st.rate_bpm <= AdaptiveConfig().max_bpm


def test_replaying_an_adaptive_session_gives_the_same_pacer_events() -> None:
    run = _run("adaptive", 5.0, "noisy")
    replayed = replay_inputs(run.inputs)
    kinds = (PacerState, PacerChange, Resonance, Rsa)
    live = [e for e in run.events if isinstance(e.event, kinds)]
    again = [e for e in replayed if isinstance(e.event, kinds)]
    assert len([e for e in live if isinstance(e.event, PacerState)]) > 4
    assert again == live


def test_adaptive_pauses_when_the_person_does_not_follow_the_pacer() -> None:
    # Adherence 0: the subject breathes at its own 14/min; the loop must not move.
    subject = SubjectConfig(resonance_bpm=4.5, adherence=0.0)
    run = run_closed_loop(PacerChange(0.0, 6.0, 0.4, "adaptive"), 300.0, subject=subject, seed=3)
    assert [s.rate_bpm for s in run.pacer_states()] == [6.0]


# ---------------------------------------------------------------------- strategies


def test_strategy_changes_keep_holds_valid_and_a_bad_answer_changes_nothing() -> None:
    # A scan started at 1 breath/min with a 9 s hold: at 6.5/min the hold shrinks to fit.
    session = Session(("ann",))
    session.receive_control(PacerChange(0.0, 1.0, 0.5, "scan", 0.0, 9.0))
    session.receive_rr("ann", [1000.0] * 70, t_s=70.0)
    states = [e.event for e in session.events_received() if isinstance(e.event, PacerState)]
    assert states[-1].rate_bpm == 6.5 and states[-1].hold_out_s <= 60.0 / 6.5 - 1.0

    class Bad(PacerMode):
        wants_breaths = True

        def on_breath(self, t_s: float, settings: PacerSettings) -> PacerSettings | None:
            return PacerSettings("fixed", 50.0)  # out of range

    session = Session(("ann",), pacer_modes={"adaptive": Bad})
    session.receive_control(PacerChange(0.0, 6.0, 0.4, "adaptive"))
    session.receive_rr("ann", [1000.0] * 60, t_s=60.0)
    states = [e.event for e in session.events_received() if isinstance(e.event, PacerState)]
    assert [s.rate_bpm for s in states] == [6.0]


def test_modes_are_fresh_per_change_and_configurable() -> None:
    cfg = ScanConfig(start_bpm=6.0, stop_bpm=5.0, step_s=30.0, settle_s=5.0, max_extensions=0)
    session = Session(
        ("ann",), pacer_modes={"scan": lambda: ScanMode(cfg), "adaptive": AdaptiveMode}
    )
    session.receive_control(PacerChange(0.0, 6.0, 0.5, "scan"))
    for t, rr in _sine_rr(6.0, 0.0, 150.0):
        session.receive_rr("ann", rr, t_s=t)
    events = session.events_received()
    res = [e for e in events if isinstance(e.event, Resonance)]
    assert len(res) == 1 and res[0].participant == "ann"
    assert res[0].event.rates_bpm == (5.0, 5.5, 6.0)
    states = [e.event for e in events if isinstance(e.event, PacerState)]
    assert [s.rate_bpm for s in states][:3] == [6.0, 5.5, 5.0]
    assert states[-1].mode == "fixed"


# ---------------------------------------------------------------------- guidance


def test_guidance_fades_the_pacer_while_coherence_stays_high_and_brings_it_back() -> None:
    session = Session(("ann",), guidance="medium")
    session.receive_control(PacerChange(0.0, 6.0, 0.5))
    beats = _sine_rr(6.0, 0.0, 200.0)
    # Coherent breathing for 200 s, then an irregular rhythm (no breathing peak).
    rng = np.random.default_rng(5)
    t = beats[-1][0]
    irregular = []
    while t < 400.0:
        rr = float(rng.uniform(600.0, 1300.0))
        t += rr / 1000.0
        irregular.append((t, rr))
    states: list[PacerState] = []
    for t, rr in beats + irregular:
        session.receive_rr("ann", rr, t_s=t)
        states += [e.event for e in session.events_received() if isinstance(e.event, PacerState)]
    cues = [(round(s.t_s), s.guidance) for s in states]
    assert [c for _, c in cues] == ["full", "subtle", "full"], cues
    subtle, back = states[1], states[2]
    assert 60.0 <= subtle.t_s <= 200.0 and 200.0 < back.t_s < 300.0
    # Phase and speed go on: a cue change is not a pacer change.
    for prev, st in itertools.pairwise(states):
        assert st.rate_bpm == prev.rate_bpm == 6.0
        assert prev.phase is not None and st.phase is not None
        carried = (prev.phase + (st.t_s - prev.t_s) * 0.1) % 1.0
        assert min(abs(carried - st.phase), 1 - abs(carried - st.phase)) < 1e-6
    assert subtle.to_json()["guidance"] == "subtle" and "guidance" not in back.to_json()
    # Without guidance (the default) the pacer never fades.
    plain = Session(("ann",))
    plain.receive_control(PacerChange(0.0, 6.0, 0.5))
    for t, rr in beats:
        plain.receive_rr("ann", rr, t_s=t)
    assert all(
        e.event.guidance == "full"
        for e in plain.events_received()
        if isinstance(e.event, PacerState)
    )
    with pytest.raises(InvalidInput, match="levels"):
        Session(("ann",), guidance="extreme")


def test_in_a_group_the_loop_follows_the_chosen_participant() -> None:
    from vagus.sources.base import LinkGap, Packet
    from vagus.sources.simulator import VirtualStrap

    straps = {
        "ann": VirtualStrap(SubjectConfig(resonance_bpm=6.5, resting_hr_bpm=70.0), seed=7),
        "bob": VirtualStrap(SubjectConfig(resonance_bpm=4.5, resting_hr_bpm=60.0), seed=8),
    }
    session = Session(tuple(straps))
    change = PacerChange(0.0, 6.0, 0.4, "adaptive", follow="bob")
    session.receive_control(change)
    for strap in straps.values():
        strap.subject.follow_pacer(change)
    events = session.events_received()
    t = 0.0
    while t < 660.0:
        t += 1.0
        items = sorted(
            (
                (it.t_arrival_s if isinstance(it, Packet) else it.t_s, name, it)
                for name, strap in straps.items()
                for it in strap.packets_until(t)
            ),
            key=lambda x: (x[0], x[1]),
        )
        for _, name, it in items:
            if isinstance(it, Packet):
                try:
                    session.receive_packet(name, it.t_arrival_s, it.payload)
                except ValueError:
                    continue
            elif isinstance(it, LinkGap):
                session.receive_gap(name, it.t_s, it.reason)
            new = session.events_received()
            events += new
            for e in new:
                if isinstance(e.event, PacerState):
                    for strap in straps.values():
                        strap.subject.follow_pacer(e.event)
    rates = [e.event.rate_bpm for e in events if isinstance(e.event, PacerState)]
    assert rates[-1] is not None and abs(rates[-1] - 4.5) <= TOL_BPM, rates
    estimates = [e for e in events if isinstance(e.event, Resonance)]
    assert estimates and all(e.participant == "bob" for e in estimates)
    # Both participants' breaths are measured.
    assert {e.participant for e in events if isinstance(e.event, Rsa)} == {"ann", "bob"}


# ---------------------------------------------------------------------- stored sessions


def test_the_resonance_rate_found_comes_back_from_the_store(tmp_path: Path) -> None:
    from vagus.resonance_history import (
        latest_resonance_rate,
        resonance_history,
        session_resonance,
    )
    from vagus.store.open import open_store

    run = _run("scan", 5.0, "clean")
    records = records_of_run(run, "eve")
    store = open_store(tmp_path)
    try:
        assert latest_resonance_rate(store, "eve") is None
        info = store.import_session(
            records, started_unix_s=1.7e9, ended_unix_s=1.7e9 + 840.0, participants=("eve",)
        )
        live = next(r for r in run.resonance() if r.final)
        assert session_resonance(store, info) == {"eve": live}  # replayed: the same decision
        assert latest_resonance_rate(store, "eve") == live.rate_bpm
        assert latest_resonance_rate(store, "someone else") is None
        assert [(i.id, r.rate_bpm) for i, r in resonance_history(store, "eve")] == [
            (info.id, live.rate_bpm)
        ]
    finally:
        store.close()
