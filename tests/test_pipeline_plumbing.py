"""The pipeline's per-packet and per-beat shortcuts give what the general paths give.

The usual notifications (4 or 6 bytes: flags, uint8 heart rate, one or two RR values) are
read inline by ``Pipeline.receive_packet``; beats wait in lists until a spectrum is due and are then
copied into the spectrum history (dropping old beats when it is full).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from vagus import MalformedPacket
from vagus.core.events import Beat, Event, Spectrum
from vagus.core.hrm import encode_heart_rate_measurement, parse_heart_rate_measurement
from vagus.core.pipeline import Pipeline
from vagus.core.spectrum import coherence


def _json(events: list[Event]) -> list[dict[str, object]]:
    return [e.to_json() for e in events]


@pytest.mark.parametrize("n_rr", [1, 2])
@pytest.mark.parametrize("flags", range(256))
def test_a_short_notification_reads_as_parse_fields_reads_it(flags: int, n_rr: int) -> None:
    """Every flags byte of a 4- and a 6-byte payload (one or two RR values in the usual
    layout, read inline by the pipeline): the pipeline's events equal those of the
    same content sent with a uint16 heart rate (a layout that goes through parse_fields),
    and a payload parse_fields rejects is rejected by the pipeline too, changing nothing."""
    rr_ticks = [1000, 1010, 990, 1020, 3000, 1005, 995, 1002, 1010, 3100] * 3  # 2 too long
    hr = 0x4B
    p = Pipeline()
    q = Pipeline()
    saw_rr = False
    for i in range(0, len(rr_ticks), n_rr):
        ticks = rr_ticks[i : i + n_rr]
        payload = bytes([flags, hr, *(b for v in ticks for b in (v & 0xFF, v >> 8))])
        t = 1.0 + i
        try:
            m = parse_heart_rate_measurement(payload)
        except MalformedPacket:
            with pytest.raises(MalformedPacket):
                p.receive_packet(t, payload)
            assert p.packets == 0 and p.events_received() == []
            return
        saw_rr = saw_rr or bool(m.rr_ticks)
        p.receive_packet(t, payload)
        q.receive_packet(
            t,
            encode_heart_rate_measurement(
                m.hr_bpm,
                m.rr_ticks,
                contact=m.contact,
                energy_kj=m.energy_kj,
                hr_uint16=True,
                rr_present=bool(flags & 0x10),
            ),
        )
    p.close()
    q.close()
    got = _json(p.events_received())
    assert got == _json(q.events_received())
    assert p.packets == q.packets == len(rr_ticks) // n_rr
    # Beats whenever RR values were sent, unless the strap reports no contact.
    assert (p.beats_measured > 0) == (saw_rr and flags & 0x06 != 0x04)


def _rsa_rr(n: int, mean_ms: float) -> list[float]:
    t = 0.0
    out = []
    for _ in range(n):
        rr = mean_ms + 0.08 * mean_ms * math.sin(2 * math.pi * 0.1 * t)
        out.append(rr)
        t += rr / 1000.0
    return out


def test_spectrum_history_longer_than_its_capacity_between_two_spectra() -> None:
    """A spectrum interval holding more beats than the history keeps (2048): the beats
    copied at once give the same spectra as spectra every 5 s, and the coherence of the
    standalone function over the whole segment."""
    rr = _rsa_rr(9000, 450.0)  # 133 bpm: about 2,200 beats per 1000 s
    sparse = Pipeline(spectrum_interval_s=1000.0)
    dense = Pipeline()
    sparse.receive_rr(rr)
    dense.receive_rr(rr)
    got = [e for e in sparse.events_received() if isinstance(e, Spectrum)]
    events = dense.events_received()
    every_5_s = {e.t_s: e for e in events if isinstance(e, Spectrum)}
    assert [e.t_s for e in got] == [1000.0, 2000.0, 3000.0, 4000.0]
    beats = np.array([(e.t_s, e.nn_ms) for e in events if isinstance(e, Beat) and e.nn_ms])
    for e in got:
        assert e.coherence_ratio is not None and e.lf_ms2 is not None
        # The 64 s coherence spectrum is computed from the history alone: identical. The
        # 120 s Welch bands come from a tachogram updated since its last spectrum (a
        # different spline piece per update), equal to rounding.
        other = every_5_s[e.t_s]
        assert (e.coherence_ratio, e.peak_hz, e.psd_ms2_per_hz) == (
            other.coherence_ratio,
            other.peak_hz,
            other.psd_ms2_per_hz,
        )
        assert other.lf_ms2 is not None and other.hf_ms2 is not None
        assert e.lf_ms2 == pytest.approx(other.lf_ms2, rel=1e-9)
        assert e.hf_ms2 == pytest.approx(other.hf_ms2, rel=1e-9)
        ref = coherence(beats[:, 0], beats[:, 1], e.t_s)
        assert ref is not None
        assert e.coherence_ratio == pytest.approx(ref.coherence_ratio, rel=1e-12)
        assert e.peak_hz == pytest.approx(ref.peak_hz, rel=1e-12)
