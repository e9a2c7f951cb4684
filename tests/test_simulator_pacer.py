"""The simulated subject breathes with the core pacer (vagus.core.pacer): one phase
function for the session, the views and the subject; holds and the inhale:exhale ratio
are honoured breath by breath."""

from __future__ import annotations

import numpy as np
import pytest

from vagus import Pipeline
from vagus.core.events import PacerChange, Spectrum
from vagus.session import Session
from vagus.sources.base import LinkGap, Packet
from vagus.sources.simulator import SubjectConfig, VirtualStrap, VirtualSubject

DT_S = 1.0 / 32.0


def _steady_subject() -> VirtualSubject:
    config = SubjectConfig(adherence=1.0, noise=0.0, mayer_amplitude=0.0)
    return VirtualSubject(config, np.random.default_rng(4))


def _volumes(subject: VirtualSubject, t_end: float) -> np.ndarray:
    """The subject's lung volume at every grid step up to ``t_end``."""
    out = []
    k = round(subject.t_s / DT_S)
    while subject.t_s < t_end:
        k += 1
        subject.integrate_until(k * DT_S)
        out.append(subject.lung_volume)
    return np.asarray(out)


def test_the_subject_breathes_the_pacers_holds_and_ratio() -> None:
    # 4 breaths/min = 15 s: 4 s in, 3 s held full, 6 s out, 2 s held empty.
    subject = _steady_subject()
    subject.follow_pacer(PacerChange(0.0, 4.0, 0.4, "fixed", 3.0, 2.0))
    _volumes(subject, 30.0)  # the phase lock settles
    vol = _volumes(subject, 30.0 + 8 * 15.0)
    n_cycles = 8
    full = float(np.sum(vol == 1.0)) * DT_S / n_cycles
    empty = float(np.sum(vol == 0.0)) * DT_S / n_cycles
    assert full == pytest.approx(3.0, abs=0.15)
    assert empty == pytest.approx(2.0, abs=0.15)
    rising = float(np.sum(np.diff(vol) > 0)) * DT_S / n_cycles
    falling = float(np.sum(np.diff(vol) < 0)) * DT_S / n_cycles
    assert rising == pytest.approx(4.0, abs=0.2)
    assert falling == pytest.approx(6.0, abs=0.2)
    # Breathing in phase with the pacer: inhaling while the pacer says inhale.
    breath = subject.pacer.breath_at(subject.t_s)
    assert breath is not None
    diff = subject.breathing_phase_cycles - subject.pacer_phase_cycles
    assert abs(diff - round(diff)) < 0.02


def test_without_a_pacer_the_breath_is_even_and_without_holds() -> None:
    subject = VirtualSubject(
        SubjectConfig(spontaneous_jitter=0.0, noise=0.0), np.random.default_rng(1)
    )
    vol = _volumes(subject, 60.0)
    for level in (0.0, 1.0):  # never held: no two grid steps in a row full or empty
        assert not np.any((vol[1:] == level) & (vol[:-1] == level))
    rising = np.sum(np.diff(vol) > 0)
    falling = np.sum(np.diff(vol) < 0)
    assert abs(int(rising) - int(falling)) <= 0.03 * len(vol)


def test_the_subjects_pacer_is_the_sessions_pacer() -> None:
    changes = [
        PacerChange(2.0, 6.0, 0.4),
        PacerChange(23.3, 5.0, 0.5, "fixed", 2.0, 0.0),  # mid-cycle: shape at next inhale
        PacerChange(61.7, 5.5, 0.5, "fixed", 2.0, 1.0),
    ]
    session = Session(participants=("sim",))
    subject = _steady_subject()
    for change in changes:
        session.receive_control(change)
        subject.follow_pacer(change)
    subject.integrate_until(120.0)
    session.receive_rr("sim", [1000.0] * 120)  # the session's time passes 120 s
    for t in np.arange(0.0, 120.0, 0.37):
        assert subject.pacer.phase_at(float(t)) == session.pacer_phase(float(t))
        assert subject.pacer.breath_at(float(t)) == session.pacer.breath_at(float(t))
    assert subject.pacer.history() == session.pacer.history()


def test_a_strap_following_a_pacer_with_holds_shows_its_rate_in_the_spectrum() -> None:
    strap = VirtualStrap(seed=5)
    strap.subject.follow_pacer(PacerChange(0.0, 5.0, 0.4, "fixed", 1.5, 1.5))
    pipeline = Pipeline()
    for item in strap.packets_until(200.0):
        if isinstance(item, Packet):
            pipeline.receive_packet(item.t_arrival_s, item.payload)
        elif isinstance(item, LinkGap):
            pipeline.receive_gap(item.t_s, item.reason)
    peaks = [
        e.peak_hz * 60.0
        for e in pipeline.events_received()
        if isinstance(e, Spectrum) and e.t_s >= 70.0 and e.peak_hz is not None
    ]
    assert len(peaks) >= 20
    assert abs(float(np.median(peaks)) - 5.0) < 0.15, peaks
