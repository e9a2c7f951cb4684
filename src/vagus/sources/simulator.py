"""A virtual subject wearing a virtual strap: seeded, clock-free, real 0x2A37 bytes out.

SCIENCE.md, "A simulator good enough to test all this". Three layers:

:class:`VirtualSubject` (physiology, sans-I/O)
    Beats by integral pulse frequency modulation (IPFM; Bayly 1968, Mateo & Laguna 2000):
    the instantaneous rate ``r(t) = (1 + m(t)) / T0`` (``T0 = 60 / resting_hr_bpm`` s) is
    integrated and a beat falls at each integer crossing of the integral. The modulation is
    ``m(t) = RSA(t) + Mayer(t) + noise(t)``:

    - RSA: the response of a resonance curve with the subject's own resonance rate
      ``f_rf`` to the breathing signal. ``H(f) = 2ζ·j(f/f_rf) / (1 − (f/f_rf)² + 2ζ·j(f/f_rf))``
      has ``|H(f_rf)| = 1`` and ``arg H(f_rf) = 0``; ``arg H > 0`` (heart rate leads
      breathing) below ``f_rf`` and ``< 0`` (lags) above (Vaschillo et al. 2002; Lehrer
      et al. 2000). Breathing is the lung-volume signal ``b = 2v(φ) − 1`` (``φ`` in
      cycles, an inhale starting at every integer), ``v`` the breath shape of
      :mod:`vagus.core.pacer` (the one the pacer draws): for a paced breath the pacer's
      inhale fraction and holds, for the subject's own breaths an even inhale and exhale
      without holds, where ``b = −cos 2πφ``.
      *Approximation*: the response is the quasi-steady-state response to the breath's
      fundamental, applied to the whole shape: ``RSA(t) = rsa_gain · |H(f_b)| ·
      b(φ(t) + arg H(f_b) / 2π)``, with the nominal rate ``f_b`` of the current breath.
      It is exact for sinusoidal breathing at a constant rate and ignores the transient of
      the filter when the rate changes (a breath or two in a real subject) and the
      filter's effect on the shape's harmonics. ``rsa_gain`` is therefore the fractional
      rate modulation at resonance: heart rate swings about ``±rsa_gain · HR`` there.
    - Mayer waves: ``mayer_amplitude · sin(2π · mayer_hz · t + θ)``, θ seeded.
    - Noise: an Ornstein-Uhlenbeck (first-order low-pass) process with standard deviation
      ``noise`` and time constant ``noise_tau_s``.

    Breathing: each breath (an integer crossing of φ) is either *paced* (probability
    ``adherence`` while a pacer runs) or *own* (the spontaneous rate with a per-breath
    jitter). Paced breaths track the pacer's phase ψ with a first-order phase lock,
    ``dφ/dt = f_pacer + phase_lock_per_s · wrap(ψ − φ)``, so a subject who adheres breathes
    in phase with the pacer, holds and inhale:exhale ratio included. The pacer's phase ψ
    is the core pacer's (:class:`vagus.core.pacer.Pacer`, one implementation: the session,
    the views and the subject draw the same breath): a rate change keeps ψ and changes
    only its speed; a pacer switched on starts an inhale (ψ = 0, or the phase given to
    :meth:`VirtualSubject.set_pacer`).

    The model is integrated on a fixed grid of ``dt_s`` (1/32 s), the integral of the rate
    by the trapezoid rule and the beat time by linear interpolation within a step.

:class:`VirtualStrap` (the strap and the link, sans-I/O)
    Detects the subject's beats with artifacts (missed, extra, ectopic at per-beat rates),
    loses contact (flags bit 1 false if supported, RR absent or nonsense while lost), drops
    the link (no packets; a :class:`~vagus.sources.base.LinkGap` at the start of the dropout,
    a :class:`~vagus.sources.base.DeviceInfo` at the reconnect), sends nonsense RR in the
    first packet after each (re)connect, and packs the RR since the last notification into
    real Heart Rate Measurement payloads (Heart Rate Service §3.1) about once per second:
    uint8 or uint16 heart rate, the energy field about one packet in ten, at most 9 RR
    (uint8, no energy), 8 (energy or uint16) or 7 (both) per packet with the default MTU.
    :meth:`VirtualStrap.packets_until` is a pure generator: no clock, no I/O.

:class:`SimulatorSource` (the async :class:`~vagus.sources.base.Source`)
    Paces the strap's items against ``loop.time()`` (each item is due at
    ``t0 + t_item / speed``; sleeps are computed against that target, never stacked), or
    yields them as fast as the consumer reads with ``speed=None``. Arrival times in the
    items are simulated seconds from the start, so the same seed gives the same items at
    any speed. It reads the virtual strap as the BLE reader reads a real one: packets
    arriving in the settling time after each (re)connect are discarded (the strap's
    nonsense RR are among them), with the same settling time
    (:attr:`SimulatorSource.settle_s`).

Everything random draws from ``numpy.random.default_rng(seed)`` streams spawned per
concern (subject, artifacts, link schedule, packets), so the same seed and the same
:meth:`set_pacer` calls give the same bytes, however the generator is advanced.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from vagus.core.events import PacerChange, PacerState, check_control
from vagus.core.hrm import RR_TICKS_PER_S, encode_heart_rate_measurement
from vagus.core.pacer import SYMMETRIC, CycleShape, Pacer
from vagus.devices import load_profiles
from vagus.exceptions import InvalidInput
from vagus.sources.base import (
    BleSpec,
    Capabilities,
    DeviceInfo,
    LinkGap,
    LinkState,
    Packet,
    SimSpec,
    SourceItem,
)

__all__ = [
    "MAX_INTERVALS",
    "MAX_INTERVAL_S",
    "MAX_START_S",
    "SimulatorSource",
    "StrapConfig",
    "SubjectConfig",
    "VirtualStrap",
    "VirtualSubject",
    "check_options",
    "configs_from_options",
    "ipfm_rr_ms",
    "resonance_response",
]

_DT_S: Final = 1.0 / 32.0
#: The reader's own settling time, the floor of every profile's (``BleSpec.settle_s``).
_READER_SETTLE_S: Final = BleSpec().settle_s
_MAX_RR_TICKS: Final = 0xFFFF
#: Scheduled dropouts and contact losses: at most this many of each, ...
MAX_INTERVALS: Final = 1000
#: ... each starting within a week of simulated time ...
MAX_START_S: Final = 7 * 24 * 3600.0
#: ... and lasting at most an hour (the random ones: 0.5-1.5 × a mean of at most 1 h).
MAX_INTERVAL_S: Final = 3600.0
#: The subject is integrated ahead in steps of this much simulated time at most, with
#: the event loop run between them (a long dropout at --speed max never blocks it).
_CATCH_UP_STEP_S: Final = 30.0


def resonance_response(f_hz: float, f_rf_hz: float, zeta: float) -> complex:
    """The subject's RSA transfer function ``H(f) = 2ζ·jx / (1 − x² + 2ζ·jx)``, ``x = f/f_rf``.

    ``|H| = 1`` and ``arg H = 0`` at ``f = f_rf``; ``arg H > 0`` (heart rate leads
    breathing) below, ``< 0`` (lags) above. ``ζ`` sets the width of the curve.
    """
    x = f_hz / f_rf_hz
    return complex(0.0, 2.0 * zeta * x) / complex(1.0 - x * x, 2.0 * zeta * x)


# --------------------------------------------------------------------------- configuration


def _check(cond: bool, name: str, message: str) -> None:
    if not cond:
        raise InvalidInput(f"simulator option {name!r}: {message}")


@dataclass(frozen=True, slots=True)
class SubjectConfig:
    """The virtual subject (see the module docstring for the model).

    Attributes:
        resting_hr_bpm: mean heart rate, beats/min (``T0 = 60 / resting_hr_bpm``).
        resonance_bpm: the subject's resonance breathing rate, breaths/min.
        rsa_gain: fractional rate modulation at resonance (0.12: HR swings ±12 %).
        zeta: damping ζ of the resonance curve (smaller = sharper).
        spontaneous_bpm: the subject's own breathing rate, breaths/min.
        spontaneous_jitter: relative standard deviation of each own breath's rate.
        adherence: fraction of breaths taken with the pacer while one runs (0-1).
        phase_lock_per_s: gain of the phase lock to the pacer, 1/s.
        mayer_amplitude: fractional amplitude of the Mayer wave.
        mayer_hz: Mayer-wave frequency, Hz.
        noise: standard deviation of the low-pass rate noise (fraction of the rate).
        noise_tau_s: time constant of that noise, s.
    """

    resting_hr_bpm: float = 65.0
    resonance_bpm: float = 5.5
    rsa_gain: float = 0.12
    zeta: float = 0.3
    spontaneous_bpm: float = 14.0
    spontaneous_jitter: float = 0.08
    adherence: float = 0.95
    phase_lock_per_s: float = 0.3
    mayer_amplitude: float = 0.01
    mayer_hz: float = 0.1
    noise: float = 0.01
    noise_tau_s: float = 2.0

    def __post_init__(self) -> None:
        _check(25.0 <= self.resting_hr_bpm <= 220.0, "resting_hr_bpm", "must be 25-220")
        _check(1.0 <= self.resonance_bpm <= 20.0, "resonance_bpm", "must be 1-20 breaths/min")
        _check(0.0 <= self.rsa_gain <= 0.5, "rsa_gain", "must be 0-0.5")
        _check(0.01 <= self.zeta <= 5.0, "zeta", "must be 0.01-5")
        _check(2.0 <= self.spontaneous_bpm <= 40.0, "spontaneous_bpm", "must be 2-40")
        _check(0.0 <= self.spontaneous_jitter <= 0.5, "spontaneous_jitter", "must be 0-0.5")
        _check(0.0 <= self.adherence <= 1.0, "adherence", "must be 0-1")
        _check(0.0 <= self.phase_lock_per_s <= 5.0, "phase_lock_per_s", "must be 0-5")
        _check(0.0 <= self.mayer_amplitude <= 0.3, "mayer_amplitude", "must be 0-0.3")
        _check(0.01 <= self.mayer_hz <= 0.5, "mayer_hz", "must be 0.01-0.5 Hz")
        _check(0.0 <= self.noise <= 0.3, "noise", "must be 0-0.3")
        _check(0.05 <= self.noise_tau_s <= 60.0, "noise_tau_s", "must be 0.05-60 s")


Intervals = tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class StrapConfig:
    """The virtual strap and its link.

    Attributes:
        missed_rate, extra_rate, ectopic_rate: per-beat probabilities of a missed beat (two
            RR merged), an extra detection (one RR split) and an ectopic beat (premature,
            then a compensatory pause).
        contact_supported: set flags bit 2 and report contact in bit 1.
        contact_losses: scheduled contact losses, ``(start_s, duration_s)`` pairs.
        contact_losses_per_hour, contact_loss_mean_s: random contact losses (Poisson
            starts; durations uniform in 0.5-1.5 × the mean).
        dropouts: scheduled link dropouts, ``(start_s, duration_s)`` pairs.
        dropouts_per_hour, dropout_mean_s: random dropouts, as for contact losses.
        energy_fraction: fraction of packets carrying the energy field.
        uint16_fraction: fraction of packets sending heart rate as uint16.
        settling_nonsense: nonsense RR in the first packet after each (re)connect.
        notify_interval_s: mean interval between notifications.
        latency_max_s: arrival latency is uniform in 5 ms to this.
        profile_id: the device profile reported in :class:`DeviceInfo`.
        name: the advertised name reported in :class:`DeviceInfo` ("" = derived).
        battery_pct: the battery level reported in :class:`DeviceInfo`.
    """

    missed_rate: float = 0.002
    extra_rate: float = 0.001
    ectopic_rate: float = 0.003
    contact_supported: bool = True
    contact_losses: Intervals = ()
    contact_losses_per_hour: float = 0.0
    contact_loss_mean_s: float = 8.0
    dropouts: Intervals = ()
    dropouts_per_hour: float = 0.0
    dropout_mean_s: float = 5.0
    energy_fraction: float = 0.1
    uint16_fraction: float = 0.1
    settling_nonsense: bool = True
    notify_interval_s: float = 1.0
    latency_max_s: float = 0.05
    profile_id: str = "generic"
    name: str = ""
    battery_pct: int = 87

    def __post_init__(self) -> None:
        for n in ("missed_rate", "extra_rate", "ectopic_rate"):
            _check(0.0 <= getattr(self, n) <= 0.2, n, "must be 0-0.2 per beat")
        for n in ("energy_fraction", "uint16_fraction"):
            _check(0.0 <= getattr(self, n) <= 1.0, n, "must be 0-1")
        for n in ("contact_losses_per_hour", "dropouts_per_hour"):
            _check(0.0 <= getattr(self, n) <= 3600.0, n, "must be 0-3600")
        for n in ("contact_loss_mean_s", "dropout_mean_s"):
            _check(0.1 <= getattr(self, n) <= 3600.0, n, "must be 0.1-3600 s")
        for n in ("contact_losses", "dropouts"):
            _check_intervals(n, getattr(self, n))
        _check(0.2 <= self.notify_interval_s <= 5.0, "notify_interval_s", "must be 0.2-5 s")
        _check(
            0.005 <= self.latency_max_s < 0.5 * self.notify_interval_s,
            "latency_max_s",
            "must be from 0.005 s to half the notify interval",
        )
        _check(0 <= self.battery_pct <= 100, "battery_pct", "must be 0-100")
        _check(bool(self.profile_id), "profile_id", "must not be empty")


def _check_intervals(name: str, intervals: Intervals) -> None:
    """Scheduled intervals: at most :data:`MAX_INTERVALS` ``(start_s, duration_s)`` pairs,
    each starting at 0 to :data:`MAX_START_S` s and lasting more than 0 and at most
    :data:`MAX_INTERVAL_S` s, in time order without overlapping."""
    _check(
        len(intervals) <= MAX_INTERVALS,
        name,
        f"at most {MAX_INTERVALS} intervals, got {len(intervals)}",
    )
    end_s = 0.0
    for start_s, duration_s in intervals:
        pair = f"[{start_s:g}, {duration_s:g}]"
        _check(
            math.isfinite(start_s) and 0.0 <= start_s <= MAX_START_S,
            name,
            f"{pair}: the start must be 0-{MAX_START_S:g} s (one week)",
        )
        _check(
            math.isfinite(duration_s) and 0.0 < duration_s <= MAX_INTERVAL_S,
            name,
            f"{pair}: the duration must be more than 0 and at most {MAX_INTERVAL_S:g} s",
        )
        _check(
            start_s >= end_s,
            name,
            f"{pair}: the intervals must be in time order without overlapping; this one "
            f"starts before the previous one ends at {end_s:g} s",
        )
        end_s = start_s + duration_s


_SUBJECT_FIELDS: Final = tuple(f.name for f in dataclasses.fields(SubjectConfig))
_STRAP_FIELDS: Final = tuple(f.name for f in dataclasses.fields(StrapConfig))


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Coerce an option value to the type of the field's default (numbers may be strings)."""
    try:
        if isinstance(default, bool):
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                return value.lower() in ("true", "1")
            if isinstance(value, bool):
                return value
            raise TypeError
        if isinstance(default, int):
            if isinstance(value, bool):
                raise TypeError
            return int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise TypeError
            out = float(value)
            if not math.isfinite(out):
                raise ValueError
            return out
        if isinstance(default, str):
            if not isinstance(value, str):
                raise TypeError
            return value
        if isinstance(default, tuple):  # intervals
            if not isinstance(value, list | tuple) or len(value) > MAX_INTERVALS:
                raise ValueError
            if not all(isinstance(p, list | tuple) and len(p) == 2 for p in value):
                raise ValueError
            if any(isinstance(x, bool | str) for p in value for x in p):
                raise TypeError
            pairs = tuple((float(a), float(b)) for a, b in value)
            if not all(math.isfinite(a) and math.isfinite(b) for a, b in pairs):
                raise ValueError
            return pairs
    except (TypeError, ValueError, OverflowError):
        pass
    kind = (
        f"intervals [[start_s, duration_s], ...] (at most {MAX_INTERVALS})"
        if isinstance(default, tuple)
        else (type(default).__name__)
    )
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    raise InvalidInput(f"simulator option {name!r}: expected {kind}, got {shown}")


def configs_from_options(options: Mapping[str, Any]) -> tuple[SubjectConfig, StrapConfig]:
    """Build the configurations from :attr:`SimSpec.options` (keys are the field names).

    Raises:
        InvalidInput: an unknown key (the message lists the valid ones) or a bad value.
    """
    valid = set(_SUBJECT_FIELDS) | set(_STRAP_FIELDS)
    unknown = sorted(set(options) - valid)
    if unknown:
        raise InvalidInput(
            f"unknown simulator option(s) {', '.join(map(repr, unknown))}; valid options: "
            f"subject: {', '.join(_SUBJECT_FIELDS)}; strap: {', '.join(_STRAP_FIELDS)}"
        )
    subject_defaults, strap_defaults = SubjectConfig(), StrapConfig()
    subject = {
        k: _coerce(k, v, getattr(subject_defaults, k))
        for k, v in options.items()
        if k in _SUBJECT_FIELDS
    }
    strap = {
        k: _coerce(k, v, getattr(strap_defaults, k))
        for k, v in options.items()
        if k in _STRAP_FIELDS
    }
    return SubjectConfig(**subject), StrapConfig(**strap)


def check_options(options: Mapping[str, Any]) -> tuple[SubjectConfig, StrapConfig]:
    """Check :attr:`SimSpec.options` as :class:`SimulatorSource` will use them: the
    configurations (:func:`configs_from_options`) and the device profile they name.

    Raises:
        InvalidInput: an unknown key, a bad value or an unknown profile, naming the option.
    """
    subject, strap = configs_from_options(options)
    profiles = {p.id: p for p in load_profiles()}
    if strap.profile_id not in profiles:
        raise InvalidInput(
            f"simulator option 'profile_id': unknown profile {strap.profile_id!r}; "
            f"known profiles: {', '.join(profiles)} (see `vagus devices`)"
        )
    return subject, strap


# --------------------------------------------------------------------------- the subject


class VirtualSubject:
    """IPFM heart with a breathing-driven resonance (see the module docstring). Sans-I/O.

    Time starts at 0 s. Advance it with :meth:`beats_until`; steer the breathing with
    :meth:`set_pacer`.
    """

    def __init__(self, config: SubjectConfig, rng: np.random.Generator) -> None:
        self.config = config
        self._rng = rng
        self._t0_s = 60.0 / config.resting_hr_bpm
        self._f_rf_hz = config.resonance_bpm / 60.0
        self._step = 0  # grid index: t = step * dt
        self._integral = 0.0  # IPFM integral (beats)
        self._rsa = (1.0, 0.0)  # |H|, arg H for the current breath
        self._phi = 0.0  # breathing phase, cycles
        self._breath_index = -1
        self._breath_paced = False
        self._breath_hz = config.spontaneous_bpm / 60.0
        self._pacer_hz: float | None = None
        self._pacer = Pacer()  # the core pacer the subject follows
        # The pacer's linear piece in force (Pacer.linear_at), re-read when it ends.
        self._piece: tuple[float, float, float, CycleShape, float] | None = None
        self._shape: CycleShape = SYMMETRIC  # the breath shape of the current breath
        # Pacer input not yet applied: (t_s, order, change or state, cycles or None).
        self._pending_pacer: list[tuple[float, int, PacerChange | PacerState, float | None]] = []
        self._pacer_inputs = 0
        self._noise = 0.0
        self._noise_block = np.empty(0)
        self._noise_pos = 0
        self._mayer_phase = float(rng.uniform(0.0, 2.0 * math.pi))
        self._beats_ahead: list[float] = []
        self._new_breath()
        self._rate_prev = self._rate(0.0, 0.0, 0.0, self._mayer_phase)

    # -- public

    @property
    def t_s(self) -> float:
        """How far the model has been integrated (s); beats up to here are known."""
        return self._step * _DT_S

    @property
    def breathing_phase_cycles(self) -> float:
        """The breathing phase φ at :attr:`t_s` (cycles; integer = start of an inhale)."""
        return self._phi

    @property
    def pacer_phase_cycles(self) -> float:
        """The pacer phase ψ at :attr:`t_s` (cycles since the pacer was switched on; 0
        while it is off), as the subject perceives it."""
        cycles = self._pacer.cycles_at(self.t_s)
        return 0.0 if cycles is None else cycles

    @property
    def pacer(self) -> Pacer:
        """The core pacer the subject follows (read it; steer it with :meth:`set_pacer`
        or :meth:`follow_pacer`)."""
        return self._pacer

    @property
    def lung_volume(self) -> float:
        """The subject's lung volume at :attr:`t_s` (0 empty to 1 full, the breath shape
        of :mod:`vagus.core.pacer`)."""
        return self._shape.volume(self._phi)

    def set_pacer(
        self,
        rate_bpm: float | None,
        t_s: float,
        *,
        phase_cycles: float | None = None,
        inhale_fraction: float = 0.5,
        hold_in_s: float = 0.0,
        hold_out_s: float = 0.0,
    ) -> None:
        """Change the pacer the subject follows at ``t_s`` (None: breathe spontaneously).

        The same as :meth:`follow_pacer` with ``PacerChange(t_s, rate_bpm,
        inhale_fraction, "fixed", hold_in_s, hold_out_s)``: an even inhale and exhale
        without holds unless given. ``phase_cycles`` sets the pacer's phase (cycles) at
        ``t_s`` instead of keeping it (joining a pacer already running at that phase).

        Raises:
            InvalidInput: the rate is not within 1-40 breaths/min, or another field out
                of range.
        """
        if rate_bpm is not None and not (1.0 <= rate_bpm <= 40.0):
            raise InvalidInput(f"pacer rate {rate_bpm!r} breaths/min is outside 1-40")
        change = PacerChange(t_s, rate_bpm, inhale_fraction, "fixed", hold_in_s, hold_out_s)
        self._queue_pacer(check_control(change), phase_cycles)

    def follow_pacer(self, event: PacerChange | PacerState) -> None:
        """Breathe with this pacer change (or actual pacer state, e.g. one a session
        emitted) from its time on: rate, inhale fraction, holds and mode as it says.

        A change in the past of the model (before :attr:`t_s`) takes effect at its own
        time on the pacer (so the pacer's phase is the session's) and on the breathing
        at the next grid step.

        Raises:
            InvalidInput: a field out of range (as the session checks it).
        """
        if isinstance(event, PacerState):
            self._queue_pacer(event, None)
        else:
            self._queue_pacer(check_control(event), None)

    def _queue_pacer(self, event: Any, cycles: float | None) -> None:
        self._pacer_inputs += 1
        self._pending_pacer.append((event.t_s, self._pacer_inputs, event, cycles))
        self._pending_pacer.sort(key=lambda x: (x[0], x[1]))

    def integrate_until(self, t_s: float) -> None:
        """Integrate the model up to ``t_s`` without handing out beats: the next
        :meth:`beats_until` returns them as if it had done the work itself (the same
        beats, the same random draws), so a long stretch can be done in parts."""
        while self.t_s < t_s:
            self._advance()

    def beats_until(self, t_s: float) -> list[float]:
        """Beat times (s) in ``(previous call, t_s]``, in order."""
        while self.t_s < t_s:
            self._advance()
        out = [t for t in self._beats_ahead if t <= t_s]
        self._beats_ahead = [t for t in self._beats_ahead if t > t_s]
        return out

    # -- model

    def _normal(self) -> float:
        if self._noise_pos >= len(self._noise_block):
            self._noise_block = self._rng.standard_normal(1024)
            self._noise_pos = 0
        value = float(self._noise_block[self._noise_pos])
        self._noise_pos += 1
        return value

    def _rate(self, t_s: float, phi: float, noise: float, mayer_phase: float) -> float:
        """Instantaneous beat rate r = (1 + m) / T0 (beats/s)."""
        c = self.config
        gain, arg = self._rsa
        # The breath b = 2v − 1, shifted by the response's phase (arg H / 2π cycles).
        m = c.rsa_gain * gain * (2.0 * self._shape.volume(phi + arg / (2.0 * math.pi)) - 1.0)
        m += c.mayer_amplitude * math.sin(2.0 * math.pi * c.mayer_hz * t_s + mayer_phase)
        m += noise
        return max(0.2, 1.0 + m) / self._t0_s

    def _new_breath(self) -> None:
        c = self.config
        self._breath_index += 1
        draw = float(self._rng.random())
        jitter = float(self._rng.standard_normal())
        self._breath_paced = self._pacer_hz is not None and draw < c.adherence
        if self._breath_paced and self._pacer_hz is not None:
            nominal = self._pacer_hz
        else:
            self._shape = SYMMETRIC
            nominal = c.spontaneous_bpm / 60.0 * max(0.5, 1.0 + c.spontaneous_jitter * jitter)
        self._breath_hz = nominal
        self._set_rsa(nominal)

    def _set_rsa(self, f_hz: float) -> None:
        h = resonance_response(f_hz, self._f_rf_hz, self.config.zeta)
        self._rsa = (abs(h), math.atan2(h.imag, h.real))

    def _apply_pacer_changes(self, t_s: float) -> None:
        while self._pending_pacer and self._pending_pacer[0][0] <= t_s + 1e-12:
            _, _, event, cycles = self._pending_pacer.pop(0)
            pacer = self._pacer
            if isinstance(event, PacerState):
                pacer.receive_state(event)
            else:
                pacer.receive_change(event, cycles=cycles)
            was_off = self._pacer_hz is None
            self._pacer_hz = pacer.rate_hz_at(t_s)
            self._piece = None
            if self._pacer_hz is None:
                self._breath_paced = False
            elif was_off:
                # The subject joins the pacer at once (or not, per adherence).
                self._new_breath()
            elif self._breath_paced:
                # Following the pacer already: follow its new rate at once.
                self._breath_hz = self._pacer_hz
                self._set_rsa(self._pacer_hz)

    def _advance(self) -> None:
        c = self.config
        t = self.t_s
        if self._pending_pacer:
            self._apply_pacer_changes(t)
        # Breathing phase: paced breaths lock onto the pacer phase ψ (the core pacer's, at
        # this grid time) and take its breath shape; own breaths run free.
        piece = self._piece
        if self._pacer_hz is not None and (piece is None or t >= piece[4]):
            # A deferred breath shape starts (as the session's does): read the new piece.
            self._pacer.advance_to(t)
            piece = self._piece = self._pacer.linear_at(t)
        if self._breath_paced and piece is not None:
            t0, c0, hz, self._shape, _ = piece
            psi = c0 + (t - t0) * hz
            err = psi - self._phi
            err -= math.floor(err + 0.5)  # wrap to [-0.5, 0.5)
            dphi = max(0.3 * hz, hz + c.phase_lock_per_s * err)
        else:
            dphi = self._breath_hz
        old_phi = self._phi
        self._phi += dphi * _DT_S
        if math.floor(self._phi) > math.floor(old_phi):
            self._new_breath()
        # Low-pass (Ornstein-Uhlenbeck) noise, exact discretisation.
        a = math.exp(-_DT_S / c.noise_tau_s)
        self._noise = a * self._noise + c.noise * math.sqrt(1.0 - a * a) * self._normal()
        self._step += 1
        t_new = self.t_s
        rate = self._rate(t_new, self._phi, self._noise, self._mayer_phase)
        old_int = self._integral
        new_int = old_int + 0.5 * (self._rate_prev + rate) * _DT_S
        self._rate_prev = rate
        k = math.floor(old_int) + 1
        while k <= new_int:
            self._beats_ahead.append(t + _DT_S * (k - old_int) / (new_int - old_int))
            k += 1
        self._integral = new_int


def ipfm_rr_ms(
    duration_s: float,
    breathing_rate_bpm: float | None,
    *,
    seed: int = 0,
    subject: SubjectConfig | None = None,
    **overrides: Any,
) -> np.ndarray:
    """Clean RR intervals (ms, float) of the virtual subject, without a strap.

    The subject breathes with a pacer at ``breathing_rate_bpm`` from t = 0 (pacer phase 0
    at t = 0), or spontaneously if None. ``subject`` defaults to :class:`SubjectConfig` with
    ``adherence=1.0`` (every breath paced); ``overrides`` replace its fields by name.

    The subject is the same as that of ``VirtualStrap(seed=seed)`` with the same
    configuration and pacer (the same random stream).

    Returns:
        ``diff`` of the beat times in ``[0, duration_s]`` × 1000 (so one fewer than beats).

    Raises:
        InvalidInput: an unknown override or a value out of range.
    """
    config = subject if subject is not None else SubjectConfig(adherence=1.0)
    unknown = sorted(set(overrides) - set(_SUBJECT_FIELDS))
    if unknown:
        raise InvalidInput(
            f"unknown subject option(s) {', '.join(map(repr, unknown))}; "
            f"valid options: {', '.join(_SUBJECT_FIELDS)}"
        )
    if overrides:
        config = dataclasses.replace(config, **overrides)
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise InvalidInput(f"duration_s must be a positive number, got {duration_s!r}")
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    model = VirtualSubject(config, rng)
    if breathing_rate_bpm is not None:
        model.set_pacer(breathing_rate_bpm, 0.0)
    beats = np.asarray(model.beats_until(duration_s), dtype=float)
    return np.diff(beats) * 1000.0


# --------------------------------------------------------------------------- the strap


class _Schedule:
    """Fixed intervals plus Poisson-random ones, generated lazily in time order."""

    def __init__(
        self, fixed: Intervals, per_hour: float, mean_s: float, rng: np.random.Generator
    ) -> None:
        self._fixed = sorted((s, s + d) for s, d in fixed)
        self._per_hour = per_hour
        self._mean_s = mean_s
        self._rng = rng
        self._random: list[tuple[float, float]] = []
        self._random_horizon = 0.0
        self._merged: list[tuple[float, float]] = []
        self._merged_horizon = -1.0

    def _extend_random(self, t_s: float) -> None:
        if self._per_hour <= 0:
            self._random_horizon = math.inf
            return
        while self._random_horizon <= t_s:
            gap = float(self._rng.exponential(3600.0 / self._per_hour))
            start = self._random_horizon + gap
            duration = self._mean_s * float(self._rng.uniform(0.5, 1.5))
            self._random.append((start, start + duration))
            self._random_horizon = start + duration

    def intervals_until(self, t_s: float) -> list[tuple[float, float]]:
        """Merged (start, end) intervals that start at or before ``t_s``, in order."""
        if t_s > self._merged_horizon:
            self._extend_random(t_s + 3600.0)
            self._merged_horizon = t_s + 3600.0
            raw = sorted(self._fixed + self._random)
            merged: list[tuple[float, float]] = []
            for s, e in raw:
                if merged and s <= merged[-1][1]:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], e))
                else:
                    merged.append((s, e))
            self._merged = merged
        return [iv for iv in self._merged if iv[0] <= t_s]

    def active(self, t_s: float) -> tuple[float, float] | None:
        """The interval containing ``t_s`` (start <= t < end), if any."""
        for s, e in self.intervals_until(t_s):
            if s <= t_s < e:
                return (s, e)
        return None

    def next_start_after(self, t_s: float, horizon_s: float) -> tuple[float, float] | None:
        """The first interval starting in ``(t_s, horizon_s]``."""
        for s, e in self.intervals_until(horizon_s):
            if t_s < s <= horizon_s:
                return (s, e)
        return None


#: Nonsense RR (ticks) seen in the first packet after a (re)connect (BLE.md quirks).
_SETTLING_NONSENSE: Final[tuple[tuple[int, ...], ...]] = ((0,), (28,), (65535,), (28, 0), (0, 9000))


class VirtualStrap:
    """The strap on the virtual subject, and its link. Sans-I/O; time starts at 0 s.

    Call :meth:`items_until` (or :meth:`packets_until`) with increasing times; each call
    returns the items due in ``(previous call, t_s]`` in time order. The subject is
    reachable as :attr:`subject` (to steer its breathing with ``set_pacer``).
    """

    def __init__(
        self,
        subject: SubjectConfig | None = None,
        strap: StrapConfig | None = None,
        *,
        seed: int = 0,
        device_id: str | None = None,
    ) -> None:
        self.config = strap if strap is not None else StrapConfig()
        seeds = np.random.SeedSequence(seed).spawn(4)
        rng_subject, rng_artifact, rng_link, rng_packet = (np.random.default_rng(s) for s in seeds)
        self.subject = VirtualSubject(
            subject if subject is not None else SubjectConfig(), rng_subject
        )
        self.device_id = device_id if device_id is not None else f"sim-{seed}"
        self.name = self.config.name or f"Vagus Simulated Strap {seed % 0x10000:04X}"
        self._rng_artifact = rng_artifact
        self._rng_packet = rng_packet
        c = self.config
        self._contact = _Schedule(
            c.contact_losses, c.contact_losses_per_hour, c.contact_loss_mean_s, rng_link
        )
        self._dropouts = _Schedule(c.dropouts, c.dropouts_per_hour, c.dropout_mean_s, rng_link)
        self._t_done = -math.inf  # items up to here have been returned
        self._pending_info: float | None = 0.0  # a DeviceInfo due at this time
        self._connected_at = 0.0
        self._first_packet = True
        self._notify_t = 0.0
        self._arrival_t = 0.0
        self._schedule_notify(0.0, first=True)
        # Beat detection state.
        self._prev_true_t: float | None = None
        self._last_tick: int | None = None  # tick time of the last detected beat
        self._pending_rr: list[tuple[float, int]] = []  # (beat time s, rr ticks)
        self._last_rr_ticks = int(60.0 / self.subject.config.resting_hr_bpm * RR_TICKS_PER_S)
        self._recent_rr: list[int] = []
        self._energy_kj = 0.0
        self._contact_now = True

    # -- scheduling

    def _schedule_notify(self, after_s: float, *, first: bool) -> None:
        c = self.config
        if first:
            step = c.notify_interval_s * float(self._rng_packet.uniform(0.2, 1.0))
        else:
            step = c.notify_interval_s * (1.0 + 0.01 * float(self._rng_packet.standard_normal()))
        self._notify_t = after_s + step
        self._arrival_t = self._notify_t + float(self._rng_packet.uniform(0.005, c.latency_max_s))

    @property
    def next_item_time_s(self) -> float:
        """The time of the next item :meth:`items_until` will return."""
        if self._pending_info is not None:
            return self._pending_info
        drop = self._dropouts.next_start_after(self._t_done_or_connect(), self._arrival_t)
        return drop[0] if drop is not None else self._arrival_t

    def sense_horizon_s(self, t_s: float) -> float:
        """How far the subject may be integrated ahead for the items due up to ``t_s``:
        never past the next notification (its packet reads the beats up to there)."""
        return min(t_s, self._notify_t)

    def _t_done_or_connect(self) -> float:
        return max(self._t_done, self._connected_at - 1e-9)

    # -- public

    def items_until(self, t_s: float) -> list[SourceItem]:
        """Everything due in ``(previous call, t_s]``: packets, link gaps, device info."""
        out: list[SourceItem] = []
        while True:
            if self._pending_info is not None:
                if self._pending_info > t_s:
                    break
                out.append(self._device_info(self._pending_info))
                self._t_done = self._pending_info
                self._pending_info = None
                continue
            drop = self._dropouts.next_start_after(self._t_done_or_connect(), self._arrival_t)
            if drop is not None:
                start, end = drop
                if start > t_s:
                    break
                out.append(LinkGap(start, "link_lost", self.device_id))
                self._link_lost(start, end)
                continue
            if self._arrival_t > t_s:
                break
            packet = self._make_packet()
            out.append(packet)
            self._t_done = packet.t_arrival_s
            self._schedule_notify(self._notify_t, first=False)
        # Nothing else is due before t_s (dropout starts are searched after this).
        self._t_done = max(self._t_done, min(t_s, self._arrival_t - 1e-9))
        return out

    def packets_until(self, t_s: float) -> list[Packet | LinkGap]:
        """:meth:`items_until` without the :class:`DeviceInfo` items."""
        return [i for i in self.items_until(t_s) if isinstance(i, Packet | LinkGap)]

    # -- internals

    def _device_info(self, t_s: float) -> DeviceInfo:
        return DeviceInfo(
            t_s=t_s,
            device_id=self.device_id,
            name=self.name,
            profile_id=self.config.profile_id,
            battery_pct=self.config.battery_pct,
            body_location=1,  # chest (Body Sensor Location 0x2A38)
            connected=True,
        )

    def _link_lost(self, start_s: float, end_s: float) -> None:
        """The link drops at ``start_s`` and is back at ``end_s``; nothing is buffered."""
        self._sense_until(start_s)
        self._pending_rr.clear()
        self._t_done = start_s
        self._connected_at = end_s
        self._pending_info = end_s
        self._first_packet = True
        self._schedule_notify(end_s, first=True)

    def _sense_until(self, t_s: float) -> None:
        """Detect the subject's beats up to ``t_s`` (artifacts, contact) into the queue."""
        c = self.config
        rng = self._rng_artifact
        for t_true in self.subject.beats_until(t_s):
            prev = self._prev_true_t
            self._prev_true_t = t_true
            draw = float(rng.random())
            u = float(rng.uniform(0.3, 0.7))
            detections: list[float] = []
            if prev is not None and draw < c.missed_rate:
                pass  # missed: no detection, the next RR spans two beats
            elif prev is not None and draw < c.missed_rate + c.extra_rate:
                detections = [prev + u * (t_true - prev), t_true]  # extra detection
            elif prev is not None and draw < c.missed_rate + c.extra_rate + c.ectopic_rate:
                # Premature (ectopic) beat; the next one comes on time: compensatory pause.
                detections = [prev + (0.3 + u * 0.5) * (t_true - prev)]
            else:
                detections = [t_true]
            for t_det in detections:
                self._detect(t_det)

    def _detect(self, t_s: float) -> None:
        if self._contact.active(t_s) is not None:
            self._last_tick = None  # no contact: the chain breaks
            return
        tick = round(t_s * RR_TICKS_PER_S)
        if self._last_tick is not None:
            rr = min(_MAX_RR_TICKS, tick - self._last_tick)
            if t_s >= self._connected_at:
                self._pending_rr.append((t_s, rr))
            self._last_rr_ticks = rr
            self._recent_rr = [*self._recent_rr[-3:], rr]
        self._last_tick = tick

    def _make_packet(self) -> Packet:
        c = self.config
        rng = self._rng_packet
        t_n = self._notify_t
        self._sense_until(t_n)
        contact_lost = self._contact.active(t_n) is not None
        uint16 = float(rng.random()) < c.uint16_fraction
        with_energy = float(rng.random()) < c.energy_fraction
        nonsense_pick = int(rng.integers(len(_SETTLING_NONSENSE)))
        junk_draw = float(rng.random())
        junk_scale = float(rng.uniform(0.5, 1.5))
        self._energy_kj = min(float(0xFFFF), self._energy_kj + 0.1 * c.notify_interval_s)
        limit = 9 - int(uint16) - int(with_energy)
        rr: list[int]
        if self._first_packet and c.settling_nonsense:
            rr = list(_SETTLING_NONSENSE[nonsense_pick])
            self._pending_rr.clear()
        elif contact_lost:
            # No skin contact: nothing, or a believable but false value (BLE.md quirks).
            rr = (
                []
                if junk_draw < 0.5
                else [min(_MAX_RR_TICKS, int(self._last_rr_ticks * junk_scale))]
            )
            self._pending_rr.clear()
        else:
            rr = [ticks for _, ticks in self._pending_rr[:limit]]
            del self._pending_rr[:limit]
        self._first_packet = False
        mean_rr = sum(self._recent_rr) / len(self._recent_rr) if self._recent_rr else 0.0
        hr = round(60.0 * RR_TICKS_PER_S / mean_rr) if mean_rr > 0 else 0
        hr = max(0, min(hr, 255))
        payload = encode_heart_rate_measurement(
            hr,
            rr,
            contact=(not contact_lost) if c.contact_supported else None,
            energy_kj=int(self._energy_kj) if with_energy else None,
            hr_uint16=uint16,
        )
        return Packet(self._arrival_t, payload, self.device_id)


# --------------------------------------------------------------------------- the source


def _item_time(item: SourceItem) -> float:
    return item.t_arrival_s if isinstance(item, Packet) else item.t_s


class SimulatorSource:
    """The simulator behind the one source interface (:class:`vagus.sources.base.Source`).

    ``SimSpec.options`` keys are the fields of :class:`SubjectConfig` and
    :class:`StrapConfig`. Yields a :class:`DeviceInfo` first, then packets, link gaps and
    device info on reconnect, until ``spec.duration_s`` of simulated time (or forever).
    Item times are simulated seconds from the start.

    Settling (BLE.md quirks: nonsense RR right after connecting): like
    :class:`~vagus.sources.ble.BleSource`, packets that arrive less than :attr:`settle_s`
    after a (re)connect (the time of its :class:`DeviceInfo`) are discarded, never
    yielded, and counted in :attr:`settle_discarded`. The settling time is the one the BLE
    reader uses for the same strap: ``max(BleSpec.settle_s, profile.settle_s)`` of the
    strap's device profile (``profile_id``), unless ``settle_s`` is given here. The
    virtual strap sends its nonsense in the first notification after a connect, which
    comes within ``notify_interval_s + latency_max_s`` (1.05 s by default), inside every
    profile's settling time (2-5 s); a strap configured to notify more slowly than that,
    like such a real strap, can get it past the settling time, and the pipeline then
    breaks the chain there.

    Args:
        spec: the subject, strap, seed, speed and duration.
        settle_s: override of the settling time (s), e.g. 0 to see the strap's raw output.

    Raises:
        InvalidInput: an unknown option or a bad value (at construction).
    """

    #: Declared (sources/base.py): the subject follows the pacer (:meth:`follow_pacer`);
    #: item times are simulated seconds from the start; no link state to report.
    capabilities = Capabilities(follows_pacer=True)
    link_state: LinkState | None = None

    def __init__(self, spec: SimSpec, *, settle_s: float | None = None) -> None:
        self.spec = spec
        if spec.speed is not None and not (math.isfinite(spec.speed) and spec.speed > 0):
            raise InvalidInput(
                f"simulator speed must be a positive number or None, got {spec.speed!r}"
            )
        if spec.duration_s is not None and not spec.duration_s > 0:
            raise InvalidInput(f"simulator duration_s must be positive, got {spec.duration_s!r}")
        if settle_s is not None and not (math.isfinite(settle_s) and settle_s >= 0):
            raise InvalidInput(f"simulator settle_s must be >= 0 s, got {settle_s!r}")
        if isinstance(spec.seed, bool) or not (isinstance(spec.seed, int) and spec.seed >= 0):
            raise InvalidInput(f"simulator seed must be a whole number >= 0, got {spec.seed!r}")
        subject, strap = check_options(spec.options)
        profile = next(p for p in load_profiles() if p.id == strap.profile_id)
        self.strap = VirtualStrap(subject, strap, seed=spec.seed)
        #: Packets arriving this long after each (re)connect are discarded (s).
        self.settle_s: float = (
            settle_s if settle_s is not None else max(_READER_SETTLE_S, profile.settle_s)
        )
        #: Packets discarded in the settling time so far.
        self.settle_discarded = 0
        self._t_s = 0.0
        self._t_connected_s = 0.0
        self._closed = False

    @property
    def t_s(self) -> float:
        """Simulated time of the last item yielded (s)."""
        return self._t_s

    def set_pacer(
        self, rate_bpm: float | None, t_s: float | None = None, *, phase_cycles: float | None = None
    ) -> None:
        """Close the loop: the subject breathes with this pacer from ``t_s`` (default: now).

        See :meth:`VirtualSubject.set_pacer`.
        """
        self.strap.subject.set_pacer(
            rate_bpm, self._t_s if t_s is None else t_s, phase_cycles=phase_cycles
        )

    def follow_pacer(self, change: PacerChange | PacerState) -> None:
        """The subject breathes with the pacer of ``change`` from its time (simulated s):
        rate, inhale fraction, holds (:meth:`VirtualSubject.follow_pacer`)."""
        self.strap.subject.follow_pacer(change)

    async def __aenter__(self) -> SimulatorSource:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._closed = True

    def __aiter__(self) -> AsyncIterator[SourceItem]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[SourceItem]:
        loop = asyncio.get_running_loop()
        speed = self.spec.speed
        end_s = self.spec.duration_s
        t0_loop = loop.time() - self._t_s / speed if speed is not None else 0.0
        subject = self.strap.subject
        while not self._closed:
            t_next = self.strap.next_item_time_s
            if end_s is not None and t_next > end_s:
                return
            # A long stretch without items (a dropout) is integrated in bounded steps with
            # the loop run between them, so signals and other tasks are never held up;
            # paced, never past the simulated now (a pacer change is not in its past).
            target = self.strap.sense_horizon_s(t_next)
            if speed is not None:
                target = min(target, (loop.time() - t0_loop) * speed)
            while subject.t_s < target - _CATCH_UP_STEP_S:
                subject.integrate_until(subject.t_s + _CATCH_UP_STEP_S)
                await asyncio.sleep(0)
                if self._closed:
                    return
            for item in self.strap.items_until(t_next):
                t_item = _item_time(item)
                if isinstance(item, DeviceInfo) and item.connected:
                    self._t_connected_s = t_item  # (re)connected: the settling time starts
                elif isinstance(item, Packet) and t_item < self._t_connected_s + self.settle_s:
                    self.settle_discarded += 1  # as BleSource does: never reaches a consumer
                    continue
                if speed is not None:
                    # Sleep against the target time, not by stacked intervals.
                    delay = t0_loop + t_item / speed - loop.time()
                    await asyncio.sleep(max(0.0, delay))
                else:
                    await asyncio.sleep(0)
                if self._closed:
                    return
                self._t_s = t_item
                yield item
