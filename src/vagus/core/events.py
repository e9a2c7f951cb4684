"""Pipeline events: small frozen dataclasses with a JSON form.

The JSON forms (``to_json()``) are the browser protocol and the line format of
``vagus monitor --json`` / ``vagus replay --json``: each is a dict with a ``"type"``
key. Every time is in seconds (``t_s``): beat time for a :class:`~vagus.core.pipeline.Pipeline`
fed alone (the clock of its input), the session clock for the events of a
:class:`vagus.session.Session` (whose wrapper adds ``"participant"``). Values that a
window does not yet support are ``None`` (JSON ``null``), never a number from too little
data.

Two kinds, two unions: :data:`ControlEvent` (input: :class:`Marker`, :class:`PacerChange`)
and :data:`ComputedEvent` (output: :class:`Beat`, :class:`Metrics`, :class:`Spectrum`,
:class:`Gap`, :class:`Contact`, :class:`PacerState`, :class:`ParticipantClock`,
:class:`Rsa`, :class:`Resonance`). A
pipeline passes control events through into its output, in order.

:func:`event_from_json` is strict: every field is checked for its type and range and a
bad one raises :class:`~vagus.exceptions.ProtocolError` naming it (the protocol's
parsers are fuzzed: ``tests/test_events_strict.py``).

Protocol version: :data:`PROTOCOL_VERSION` (additions such as the pacer's mode and holds,
whose defaults keep older forms readable, do not bump it).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Literal, TypeVar

from vagus.exceptions import ProtocolError

__all__ = [
    "ARTIFACT_CLASSES",
    "GUIDANCE_LEVEL_NAMES",
    "MAX_HOLD_S",
    "MIN_BREATHING_S",
    "PACER_MODES",
    "PACER_RATE_RANGE_BPM",
    "PROTOCOL_VERSION",
    "ArtifactClass",
    "Beat",
    "ComputedEvent",
    "Contact",
    "ControlEvent",
    "Event",
    "Gap",
    "Marker",
    "Metrics",
    "PacerChange",
    "PacerState",
    "ParticipantClock",
    "Resonance",
    "Rsa",
    "Spectrum",
    "check_control",
    "check_pacer_settings",
    "control_from_json",
    "event_from_json",
]

#: Version of the JSON event protocol; bumped on any incompatible change.
PROTOCOL_VERSION = 1

ArtifactClass = Literal["ectopic", "missed", "extra", "long", "short", "range"]
#: Artifact classes of Lipponen & Tarvainen (2019), plus ``range`` (outside 250-2500 ms).
ARTIFACT_CLASSES: tuple[str, ...] = ("ectopic", "missed", "extra", "long", "short", "range")


def _clean(value: Any) -> Any:
    """JSON-safe value: tuples to lists, NaN/inf to None, numpy scalars to Python."""
    if isinstance(value, tuple | list):
        return [_clean(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalar
        return _clean(value.item())
    return value


class _EventMixin:
    # No __dict__ on any event: each is a slots dataclass, and so is this base (an event
    # with a per-instance dict costs about 60 bytes more; the late-joiner state and a
    # replay's event lists hold many of them).
    __slots__ = ()

    type: ClassVar[str]

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON-ready dict with a ``"type"`` key."""
        out: dict[str, Any] = {"type": self.type}
        for f in fields(self):  # type: ignore[arg-type]
            out[f.name] = _clean(getattr(self, f.name))
        return out


@dataclass(frozen=True, slots=True)
class Beat(_EventMixin):
    """One heart beat, decided by the artifact corrector (at most two beats late).

    Attributes:
        t_s: beat time (s), from the cumulative RR chain, never from packet arrival.
        rr_ms: the RR interval as measured (ms), ending at this beat.
        artifact: None for a normal beat, else its class (see :data:`ARTIFACT_CLASSES`).
        nn_ms: the corrected (normal-to-normal) interval, or None when the beat was
            removed (an ``extra`` beat merged into its neighbour, or out of range).
        inserted: True for the beat the corrector inserted to split a ``missed`` beat.
    """

    type: ClassVar[str] = "beat"
    t_s: float
    rr_ms: float
    artifact: str | None = None
    nn_ms: float | None = None
    inserted: bool = False


@dataclass(frozen=True, slots=True)
class Metrics(_EventMixin):
    """Time-domain metrics, emitted on every accepted (non-removed) beat.

    Windows are over beat time ending at ``t_s``. Formulas (SCIENCE.md "Time domain"):
    ``hr_bpm = 60000 / mean(NN)`` over the last 10 s; RMSSD = sqrt(mean(ΔNN²)) with
    ΔNN only between adjacent beats with no gap between them and *both inside the
    window* (the difference between the last beat before the window and the first in
    it is not counted, as in Kubios and neurokit2); SDNN = std(NN, ddof=1);
    pNN50 = 100 · #(|ΔNN| > 50 ms) / #ΔNN over the same ΔNN; artifact rate = % of
    measured beats in the window classified as artifacts.
    """

    type: ClassVar[str] = "metrics"
    t_s: float
    hr_bpm: float | None
    rmssd_30s_ms: float | None
    rmssd_60s_ms: float | None
    sdnn_60s_ms: float | None
    pnn50_60s: float | None
    artifact_rate_60s: float | None
    mean_nn_60s_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Spectrum(_EventMixin):
    """Frequency-domain results, every 5 s of beat time.

    ``coherence_ratio`` and ``peak_hz`` follow the pinned implementation of the
    published HeartMath formula (McCraty & Childre 2010) over the last 64 s;
    ``lf_ms2``, ``hf_ms2`` and ``lf_hf`` use Welch over the last 120 s (Task Force
    1996 bands; HF is 0.15-0.40 Hz and misses slow-breathing RSA). ``freqs_hz`` and
    ``psd_ms2_per_hz`` are the 64 s coherence spectrum for display: every 2nd bin of
    its periodogram, 0.0039 Hz apart, from 0 to 0.398 Hz (the last such bin below
    0.4 Hz; ``vagus.core.spectrum.DISPLAY_MAX_HZ``).

    A window whose total NN power (0.0033-0.40 Hz) is below
    ``vagus.core.spectrum.POWER_FLOOR_MS2`` (1e-4 ms², a flat or near-flat signal) has
    no spectrum (SCIENCE.md "Frequency domain"): ``peak_hz``, ``coherence_ratio`` (and
    the display spectrum) are None (empty) for the 64 s window, ``lf_ms2``, ``hf_ms2``
    and ``lf_hf`` for the 120 s window; ``lf_hf`` is also None when HF alone is below
    the floor.
    """

    type: ClassVar[str] = "spectrum"
    t_s: float
    peak_hz: float | None
    coherence_ratio: float | None
    lf_ms2: float | None
    hf_ms2: float | None
    lf_hf: float | None
    freqs_hz: tuple[float, ...] = field(default=())
    psd_ms2_per_hz: tuple[float, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Gap(_EventMixin):
    """A break in the beat chain: no beat is invented and no ΔNN is taken across it.

    Attributes:
        t_s: beat time of the last beat before the gap.
        duration_s: time from that beat to the first beat after the gap (the first
            new beat's time minus its RR), ``None`` while still unknown.
        reason: ``"dropout"`` (beats missing: the RR chain fell behind the arrival
            clock), ``"clock"`` (RR chain ran ahead of the arrival clock),
            ``"rr_out_of_range"`` (an RR longer than 2.5 s: no beat can be placed from
            it), ``"link_lost"``, ``"contact_lost"`` or what the source reported.
            Never negative: a new chain never starts before the last beat.
    """

    type: ClassVar[str] = "gap"
    t_s: float
    duration_s: float | None
    reason: str


@dataclass(frozen=True, slots=True)
class Contact(_EventMixin):
    """The strap's skin-contact state changed (only for straps that report contact)."""

    type: ClassVar[str] = "contact"
    t_s: float
    contact: bool | None


@dataclass(frozen=True, slots=True)
class Marker(_EventMixin):
    """A control event: a marker with free text, set by a practitioner or the user."""

    type: ClassVar[str] = "marker"
    t_s: float
    text: str


@dataclass(frozen=True, slots=True)
class PacerChange(_EventMixin):
    """A control event: the pacer's settings from ``t_s`` on (the whole new setting).

    Attributes:
        t_s: when the change takes effect (s, session clock).
        rate_bpm: breaths per minute (1-40), or None: the pacer is off (whatever the mode).
        inhale_fraction: the share of the breathing time (the cycle less its holds) spent
            inhaling, strictly between 0 and 1; with no holds, the share of the cycle.
        mode: ``"off"``, ``"fixed"``, ``"scan"`` (stepped resonance assessment, starting
            at ``rate_bpm``'s cycle) or ``"adaptive"`` (closed loop from ``rate_bpm``);
            :mod:`vagus.core.resonance` has their strategies.
        hold_in_s: breath held after the inhale (s, 0-30).
        hold_out_s: breath held after the exhale (s, 0-30). The holds together leave at
            least :data:`MIN_BREATHING_S` of each cycle for breathing.
        follow: the participant whose heart rhythm ``scan`` and ``adaptive`` follow in a
            session with several (None: keep the one followed so far, at first the first
            participant). Left out of the JSON form when None.
        guidance: coherence-adaptive guidance from ``t_s`` on: a challenge level
            (``"gentle"``, ``"medium"``, ``"challenging"``; :mod:`vagus.core.resonance`
            ``GUIDANCE_LEVELS``), ``"off"``, or None: keep it as it is (at first off).
            Left out of the JSON form when None.

    How a change keeps the pacer's phase continuous: :mod:`vagus.core.pacer`. Stored
    sessions written before ``mode`` and the holds existed read with their defaults
    (``"fixed"``, 0 s, 0 s).
    """

    type: ClassVar[str] = "pacer"
    t_s: float
    rate_bpm: float | None
    inhale_fraction: float = 0.4
    mode: str = "fixed"
    hold_in_s: float = 0.0
    hold_out_s: float = 0.0
    follow: str | None = None
    guidance: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form; ``follow`` and ``guidance`` only when set (older forms stay as
        they were)."""
        out = _EventMixin.to_json(self)
        if self.follow is None:
            del out["follow"]
        if self.guidance is None:
            del out["guidance"]
        return out


@dataclass(frozen=True, slots=True)
class PacerState(_EventMixin):
    """Computed: the pacer's actual state from ``t_s`` on, emitted at every change of it.

    A view draws the pacer from the latest one alone: the phase at a later time ``t`` is
    ``(phase + (t − t_s) · rate_bpm / 60) mod 1`` and the lung volume and stage at that
    phase follow :func:`vagus.core.pacer.breath_shape` of these fields. When the pacer is
    off, ``mode`` is ``"off"`` and ``rate_bpm`` and ``phase`` are None.

    Attributes:
        t_s: when this state starts (s, session clock).
        mode: as :class:`PacerChange`, ``"off"`` when the pacer is off.
        rate_bpm, inhale_fraction, hold_in_s, hold_out_s: the settings of the cycle that
            runs at ``t_s`` (see :mod:`vagus.core.pacer` for why these can differ from the
            last :class:`PacerChange` until the next inhale starts).
        phase: the pacer's phase at ``t_s``, 0 ≤ phase < 1 over the whole cycle
            (inhale, hold, exhale, hold; 0 = the start of an inhale), None when off.
        guidance: ``"full"`` (draw the pacer as usual) or ``"subtle"`` (coherence has
            stayed high: fade the pacer to a subtle cue; :mod:`vagus.core.resonance`
            ``Guidance``). Left out of the JSON form when ``"full"``.
        guidance_level: the guidance's challenge level while it is on (the last
            :class:`PacerChange` ``guidance``), None while it is off. Left out of the JSON
            form when None.
    """

    type: ClassVar[str] = "pacer_state"
    t_s: float
    mode: str
    rate_bpm: float | None
    inhale_fraction: float
    hold_in_s: float
    hold_out_s: float
    phase: float | None
    guidance: str = "full"
    guidance_level: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form; ``guidance`` only when not ``"full"``, ``guidance_level`` only
        when set."""
        out = _EventMixin.to_json(self)
        if self.guidance == "full":
            del out["guidance"]
        if self.guidance_level is None:
            del out["guidance_level"]
        return out


@dataclass(frozen=True, slots=True)
class ParticipantClock(_EventMixin):
    """Computed: a participant's source clock was mapped onto the session clock.

    Emitted once per participant, at its first input: session time = source time +
    ``offset_s``. Stored with the session, it makes a replay exact (pass it back as
    ``Session(clock_offsets=...)``). Its participant is carried by the session's wrapper
    (:class:`vagus.session.SessionEvent`).

    Attributes:
        t_s: the session time of that first input (s).
        offset_s: session time minus the participant's source time (s).
    """

    type: ClassVar[str] = "clock"
    t_s: float
    offset_s: float


@dataclass(frozen=True, slots=True)
class Rsa(_EventMixin):
    """Computed: the RSA amplitude of one breath (SCIENCE.md "RSA amplitude").

    Emitted per participant at the end of every breath: while the pacer runs a breath is
    one pacer cycle (inhale start to the next inhale start); while it is off, a stretch
    of one period of the heart rhythm's spectral peak (the latest coherence spectrum's
    ``peak_hz``, the person's own breathing rhythm). Heart rate of a beat is
    ``60000 / NN`` placed at the middle of its interval (``t − NN/2``).

    Attributes:
        t_s: end of the breath (s).
        start_s: start of the breath (s).
        rate_bpm: the breath's rate (the pacer's, or ``60 · peak_hz`` unpaced).
        paced: True when the breath is a pacer cycle.
        amplitude_bpm: peak-to-trough heart rate, ``max(HR) − min(HR)`` over the beats in
            the breath (None with fewer than 3 usable beats).
        amplitude_ms: the same in NN, ``max(NN) − min(NN)`` (ms).
        phase_deg: paced only: the phase of heart rate against the pacer's breathing
            (lung volume) at the breath's frequency, degrees in (−180, 180]; positive =
            heart rate leads breathing (below the resonance rate), 0 at resonance,
            negative = lags (above it) (Vaschillo et al. 2002). From the fundamental
            (one-cycle DFT) of linearly detrended HR and of the lung volume, both on a
            grid of 32 points over the cycle.
        fit: the share (0-1) of the detrended HR variance over the breath that the
            fundamental explains: low when the person did not breathe with the pacer.
        beats: usable (normal or corrected) beats in the breath.
        clean: no artifact, no gap and no missing stretch in the breath.
        mean_60s_bpm: mean ``amplitude_bpm`` of the breaths that ended in the last 60 s.
    """

    type: ClassVar[str] = "rsa"
    t_s: float
    start_s: float
    rate_bpm: float
    paced: bool
    amplitude_bpm: float | None
    amplitude_ms: float | None
    phase_deg: float | None
    fit: float | None
    beats: int
    clean: bool
    mean_60s_bpm: float | None


@dataclass(frozen=True, slots=True)
class Resonance(_EventMixin):
    """Computed: a resonance-rate estimate (SCIENCE.md "Resonance frequency and the
    adaptive pacer"), for the participant the pacer follows.

    ``method`` ``"scan"``: the stepped assessment's result, once at its end (``final``
    true). ``"adaptive"``: the closed loop's current estimate, at each of its decisions
    (``final`` false). The per-rate table lists each
    rate scored (breaths/min) with its mean peak-to-trough amplitude (bpm), pacer-band
    power (ms², ±0.015 Hz around the rate in the 64 s coherence spectrum), coherence
    ratio, HR-pacer phase (degrees, circular mean) and combined score; a value that could
    not be measured is null.

    Attributes:
        t_s: when the estimate was made (s).
        method: ``"scan"`` or ``"adaptive"``.
        rate_bpm: the resonance rate estimate (breaths/min), None if there is none.
        confidence: 0 (a guess) to 1 (consistent phase and amplitude).
        final: True for a finished scan or a loop switched off.
    """

    type: ClassVar[str] = "resonance"
    t_s: float
    method: str
    rate_bpm: float | None
    confidence: float
    final: bool
    rates_bpm: tuple[float, ...] = field(default=())
    amplitude_bpm: tuple[float | None, ...] = field(default=())
    power_ms2: tuple[float | None, ...] = field(default=())
    coherence: tuple[float | None, ...] = field(default=())
    phase_deg: tuple[float | None, ...] = field(default=())
    score: tuple[float | None, ...] = field(default=())


def _fast_init(cls: type) -> None:
    """Give a frozen slots dataclass a faster ``__init__`` with the same signature.

    The ``__init__`` that ``dataclass(frozen=True)`` generates sets each field with
    ``object.__setattr__(self, name, value)``; this one calls the slot descriptors'
    ``__set__`` directly (about half the cost: events are made on every beat). The
    class stays frozen (assignment still raises ``FrozenInstanceError``) and keeps its
    fields, defaults, equality, repr and JSON form. A class with a field the simple
    form cannot express (default factory, ``init=False``, keyword-only) keeps its
    generated ``__init__``.
    """
    if any(
        f.default_factory is not MISSING or not f.init or f.kw_only is True for f in fields(cls)
    ):
        return
    params: list[str] = []
    body: list[str] = []
    env: dict[str, Any] = {}
    for f in fields(cls):
        setter = f"_set_{f.name}"
        env[setter] = cls.__dict__[f.name].__set__
        if f.default is not MISSING:
            env[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        else:
            params.append(f.name)
        body.append(f"    {setter}(self, {f.name})")
    src = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body) + "\n"
    exec(src, env)  # generated from the field names, as dataclasses does
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[misc]


_CLASSES: tuple[type, ...] = (
    Beat,
    Metrics,
    Spectrum,
    Gap,
    Contact,
    PacerState,
    ParticipantClock,
    Rsa,
    Resonance,
    Marker,
    PacerChange,
)
for _cls in _CLASSES:
    _fast_init(_cls)
del _cls


_T = TypeVar("_T")


def _mutable_twin(cls: type) -> type:
    """A mutable class with the memory layout of the frozen slots dataclass ``cls``
    (same base, same ``__slots__`` in the same order): an instance of it, its slots set
    with plain attribute assignments, becomes a ``cls`` instance by ``__class__``
    assignment (see :func:`_fast_factory`)."""
    names = tuple(f.name for f in fields(cls))
    return type(f"_{cls.__name__}Twin", cls.__bases__, {"__slots__": names})


def _fast_factory(cls: type[_T], twin: type) -> Callable[..., _T]:
    """A constructor for the frozen slots dataclass ``cls``, with ``cls(...)``'s
    positional parameters and defaults, for the pipeline's hot path (a Beat and a
    Metrics event on every beat).

    Even :func:`_fast_init` sets each field through a slot descriptor call (about a
    microsecond per field on this project's machine); here the fields are stored with
    plain attribute assignments on an instance of ``twin`` (:func:`_mutable_twin`: same
    base, same ``__slots__`` in the same order, hence the same memory layout), which
    then becomes a ``cls`` instance by ``__class__`` assignment. The instance is made by
    calling ``twin()`` (cheaper than ``object.__new__(twin)``, a call through the
    ``__new__`` wrapper and its safety checks). The result is an ordinary ``cls``:
    frozen, equal to and indistinguishable from ``cls(...)`` with the same arguments
    (``tests/test_events_factory.py``). A Metrics event costs about a third.
    """
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    params: list[str] = []
    env: dict[str, Any] = {"_twin": twin, "_cls": cls}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.default is not MISSING:
            env[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        else:
            params.append(f.name)
    body = [f"    o.{name} = {name}" for name in names]
    src = (
        f"def new_{cls.__name__.lower()}({', '.join(params)}):\n"
        "    o = _twin()\n" + "\n".join(body) + "\n    o.__class__ = _cls\n    return o\n"
    )
    exec(src, env)  # generated from the field names, as dataclasses does
    factory: Callable[..., _T] = env[f"new_{cls.__name__.lower()}"]
    return factory


#: The mutable twin of :class:`Beat`, for code that inlines :data:`_new_beat` on its
#: hottest path (the artifact corrector's normal beat: ``o = _BeatTwin()``, the five
#: fields assigned in order, ``o.__class__ = Beat``), saving the call.
_BeatTwin = _mutable_twin(Beat)
#: Fast constructors (same parameters as the classes) for the pipeline's hot path.
_new_beat = _fast_factory(Beat, _BeatTwin)
_new_metrics = _fast_factory(Metrics, _mutable_twin(Metrics))
_new_spectrum = _fast_factory(Spectrum, _mutable_twin(Spectrum))

#: Control input: what a practitioner, a user or a script sends into a session.
ControlEvent = Marker | PacerChange
#: Computed output: what the pipeline and the session hand out.
ComputedEvent = (
    Beat | Metrics | Spectrum | Gap | Contact | PacerState | ParticipantClock | Rsa | Resonance
)
Event = ComputedEvent | ControlEvent

_BY_TYPE: dict[str, Any] = {cls.type: cls for cls in _CLASSES}  # type: ignore[attr-defined]

# ------------------------------------------------------------------ the strict protocol

#: The pacer's modes (:class:`PacerChange`, :class:`PacerState`).
PACER_MODES: tuple[str, ...] = ("off", "fixed", "scan", "adaptive")
#: The challenge levels of coherence-adaptive guidance (their thresholds:
#: ``vagus.core.resonance.GUIDANCE_LEVELS``).
GUIDANCE_LEVEL_NAMES: tuple[str, ...] = ("gentle", "medium", "challenging")
#: The pacer's rate range, breaths/min (as ``pacer N`` during a recording).
PACER_RATE_RANGE_BPM: tuple[float, float] = (1.0, 40.0)
#: The longest hold after an inhale or after an exhale, s.
MAX_HOLD_S = 30.0
#: The holds leave at least this much of each cycle for inhaling and exhaling, s.
MIN_BREATHING_S = 1.0
#: Event times (s) lie within ±this (as ``vagus.core.pipeline.MAX_ABS_TIME_S``).
MAX_ABS_TIME_S = 1e10
#: RR and NN intervals in events: at most a minute (ms), as imports accept.
MAX_INTERVAL_MS = 60_000.0
#: Bound of other non-negative quantities (ms², ratios): anything larger is not a result.
_MAX_QUANTITY = 1e15
#: Longest text of a marker or a gap reason (characters).
MAX_TEXT_CHARS = 100_000
#: Longest display spectrum (bins).
MAX_SPECTRUM_BINS = 10_000


def _fail(kind: str, name: str, what: str, value: Any) -> ProtocolError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return ProtocolError(f"{kind!r} event: {name!r} must be {what}, got {shown}", field=name)


def _number(kind: str, name: str, value: Any, lo: float, hi: float, what: str) -> float:
    """``value`` as a float if it is an int or float (not a bool) within ``[lo, hi]``."""
    if type(value) is float:
        v: float = value
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(kind, name, what, value)
    else:
        try:
            v = float(value)
        except OverflowError:
            raise _fail(kind, name, what, value) from None
    if not lo <= v <= hi:  # also refuses NaN
        raise _fail(kind, name, what, value)
    return v


def _time_field(kind: str, name: str, value: Any) -> float:
    return _number(
        kind, name, value, -MAX_ABS_TIME_S, MAX_ABS_TIME_S, f"a time within ±{MAX_ABS_TIME_S:.0e} s"
    )


def _optional(check: Any) -> Any:
    def optional(kind: str, name: str, value: Any) -> Any:
        return None if value is None else check(kind, name, value)

    return optional


def _ranged(lo: float, hi: float, what: str) -> Any:
    def ranged(kind: str, name: str, value: Any) -> float:
        return _number(kind, name, value, lo, hi, what)

    return ranged


def _above_zero(hi: float, what: str) -> Any:
    def above_zero(kind: str, name: str, value: Any) -> float:
        v = _number(kind, name, value, 0.0, hi, what)
        if v == 0.0:
            raise _fail(kind, name, what, value)
        return v

    return above_zero


def _text_field(kind: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS:
        raise _fail(kind, name, f"a string of at most {MAX_TEXT_CHARS} characters", value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _fail(kind, name, "valid Unicode text (no lone surrogate)", value) from None
    return value


def _bool_field(kind: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(kind, name, "true or false", value)
    return value


def _optional_bool(kind: str, name: str, value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise _fail(kind, name, "true, false or null", value)
    return value


def _artifact_field(kind: str, name: str, value: Any) -> str | None:
    if value is not None and value not in ARTIFACT_CLASSES:
        raise _fail(kind, name, f"null or one of {list(ARTIFACT_CLASSES)}", value)
    return value  # type: ignore[no-any-return]


def _mode_field(kind: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or value not in PACER_MODES:
        raise _fail(kind, name, f"one of {list(PACER_MODES)}", value)
    return value


def _choice(*options: str) -> Any:
    def choice(kind: str, name: str, value: Any) -> str:
        if not isinstance(value, str) or value not in options:
            raise _fail(kind, name, f"one of {list(options)}", value)
        return value

    return choice


def _count_field(kind: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**9:
        raise _fail(kind, name, "a whole number from 0 to 1e9", value)
    return value


def _follow_field(kind: str, name: str, value: Any) -> str | None:
    """Null, or a participant's name (1-64 printable characters)."""
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > 64
        or not value.isprintable()
    ):
        raise _fail(kind, name, "null or a participant's name (1-64 printable characters)", value)
    return value


def _optional_number_list(lo: float, hi: float, what: str) -> Any:
    def number_list(kind: str, name: str, value: Any) -> tuple[float | None, ...]:
        if not isinstance(value, list | tuple) or len(value) > MAX_SPECTRUM_BINS:
            raise _fail(kind, name, f"a list of at most {MAX_SPECTRUM_BINS} numbers", value)
        return tuple(None if v is None else _number(kind, name, v, lo, hi, what) for v in value)

    return number_list


def _number_list(lo: float, hi: float, what: str) -> Any:
    def number_list(kind: str, name: str, value: Any) -> tuple[float, ...]:
        if not isinstance(value, list | tuple) or len(value) > MAX_SPECTRUM_BINS:
            raise _fail(kind, name, f"a list of at most {MAX_SPECTRUM_BINS} numbers", value)
        return tuple(_number(kind, name, v, lo, hi, what) for v in value)

    return number_list


def _rate_field(kind: str, name: str, value: Any) -> float | None:
    """A pacer rate: null (off) or 1-40 breaths/min (the message reads as ``pacer N``'s)."""
    if value is None:
        return None
    lo, hi = PACER_RATE_RANGE_BPM
    try:
        return _number(kind, name, value, lo, hi, "")
    except ProtocolError:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise ProtocolError(
            f"pacer rate {shown} breaths/min is outside {lo:g}-{hi:g}: {name!r} of a "
            f"{kind!r} event must be a number in that range, or null for the pacer off",
            field=name,
        ) from None


_FRACTION = _ranged(0.0, 1.0, "a number strictly between 0 and 1")
_HOLD = _ranged(0.0, MAX_HOLD_S, f"a number of seconds from 0 to {MAX_HOLD_S:g}")
_STATE_HOLD = _ranged(0.0, 60.0, "a number of seconds from 0 to 60")
_INTERVAL = _above_zero(MAX_INTERVAL_MS, f"a number of ms above 0, at most {MAX_INTERVAL_MS:g}")
_QUANTITY = _optional(_ranged(0.0, _MAX_QUANTITY, "null or a finite number >= 0"))
_PERCENT = _optional(_ranged(0.0, 100.0, "null or a percentage from 0 to 100"))
_HZ = _ranged(0.0, 100.0, "a frequency from 0 to 100 Hz")

#: Per event type: a check for each field (returns the value as the event holds it).
_CHECKS: dict[str, dict[str, Any]] = {
    "beat": {
        "t_s": _time_field,
        "rr_ms": _INTERVAL,
        "artifact": _artifact_field,
        "nn_ms": _optional(_INTERVAL),
        "inserted": _bool_field,
    },
    "metrics": {
        "t_s": _time_field,
        "hr_bpm": _optional(_above_zero(60_000.0, "null or a heart rate above 0 beats/min")),
        "rmssd_30s_ms": _QUANTITY,
        "rmssd_60s_ms": _QUANTITY,
        "sdnn_60s_ms": _QUANTITY,
        "pnn50_60s": _PERCENT,
        "artifact_rate_60s": _PERCENT,
        "mean_nn_60s_ms": _optional(_INTERVAL),
    },
    "spectrum": {
        "t_s": _time_field,
        "peak_hz": _optional(_HZ),
        "coherence_ratio": _QUANTITY,
        "lf_ms2": _QUANTITY,
        "hf_ms2": _QUANTITY,
        "lf_hf": _QUANTITY,
        "freqs_hz": _number_list(0.0, 100.0, "a list of frequencies from 0 to 100 Hz"),
        "psd_ms2_per_hz": _number_list(0.0, _MAX_QUANTITY, "a list of finite numbers >= 0"),
    },
    "gap": {
        "t_s": _time_field,
        "duration_s": _optional(_ranged(0.0, 2 * MAX_ABS_TIME_S, "null or a duration >= 0 s")),
        "reason": _text_field,
    },
    "contact": {"t_s": _time_field, "contact": _optional_bool},
    "marker": {"t_s": _time_field, "text": _text_field},
    "pacer": {
        "t_s": _time_field,
        "rate_bpm": _rate_field,
        "inhale_fraction": _FRACTION,
        "mode": _mode_field,
        "hold_in_s": _HOLD,
        "hold_out_s": _HOLD,
        "follow": _follow_field,
        "guidance": _optional(_choice("off", *GUIDANCE_LEVEL_NAMES)),
    },
    "pacer_state": {
        "t_s": _time_field,
        "mode": _mode_field,
        "rate_bpm": _rate_field,
        "inhale_fraction": _FRACTION,
        # The cycle running when a rate change came keeps its shape: its holds scale with
        # the new period (up to the 60 s cycle at 1 breath/min; vagus.core.pacer).
        "hold_in_s": _STATE_HOLD,
        "hold_out_s": _STATE_HOLD,
        "phase": _optional(_ranged(0.0, 1.0, "null (off) or a number from 0 to below 1")),
        "guidance": _choice("full", "subtle"),
        "guidance_level": _optional(_choice(*GUIDANCE_LEVEL_NAMES)),
    },
    "rsa": {
        "t_s": _time_field,
        "start_s": _time_field,
        "rate_bpm": _ranged(0.0, 600.0, "a breathing rate from 0 to 600 breaths/min"),
        "paced": _bool_field,
        "amplitude_bpm": _optional(_ranged(0.0, 1000.0, "null or a heart rate span 0-1000")),
        "amplitude_ms": _optional(_ranged(0.0, MAX_INTERVAL_MS, "null or 0-60000 ms")),
        "phase_deg": _optional(_ranged(-180.0, 180.0, "null or degrees from -180 to 180")),
        "fit": _optional(_ranged(0.0, 1.0, "null or a share from 0 to 1")),
        "beats": _count_field,
        "clean": _bool_field,
        "mean_60s_bpm": _optional(_ranged(0.0, 1000.0, "null or a heart rate span 0-1000")),
    },
    "resonance": {
        "t_s": _time_field,
        "method": _choice("scan", "adaptive"),
        "rate_bpm": _rate_field,
        "confidence": _ranged(0.0, 1.0, "a confidence from 0 to 1"),
        "final": _bool_field,
        "rates_bpm": _number_list(1.0, 40.0, "a list of rates from 1 to 40 breaths/min"),
        "amplitude_bpm": _optional_number_list(0.0, 1000.0, "null or a number 0-1000"),
        "power_ms2": _optional_number_list(0.0, _MAX_QUANTITY, "null or a finite number >= 0"),
        "coherence": _optional_number_list(0.0, _MAX_QUANTITY, "null or a finite number >= 0"),
        "phase_deg": _optional_number_list(-180.0, 180.0, "null or degrees -180 to 180"),
        "score": _optional_number_list(-1e6, 1e6, "null or a score within ±1e6"),
    },
    "clock": {
        "t_s": _time_field,
        "offset_s": _ranged(
            -2 * MAX_ABS_TIME_S, 2 * MAX_ABS_TIME_S, f"a number of seconds within ±{2e10:.0e}"
        ),
    },
}


def check_pacer_settings(
    kind: str,
    rate_bpm: float | None,
    inhale_fraction: float,
    hold_in_s: float,
    hold_out_s: float,
    *,
    min_breathing_s: float = MIN_BREATHING_S,
) -> None:
    """Raise :class:`ProtocolError` unless the settings draw a breath.

    ``inhale_fraction`` strictly between 0 and 1; with a rate, the holds together leave at
    least ``min_breathing_s`` (:data:`MIN_BREATHING_S` for a change; a pacer state, whose
    running cycle may be scaled by a rate change, needs only some) of the cycle
    (``60 / rate_bpm`` s) for breathing. (Field types and ranges are checked before this.)
    """
    if inhale_fraction in (0.0, 1.0):
        raise _fail(kind, "inhale_fraction", "a number strictly between 0 and 1", inhale_fraction)
    if rate_bpm is not None:
        cycle_s = 60.0 / rate_bpm
        if hold_in_s + hold_out_s > cycle_s - min_breathing_s or (
            hold_in_s + hold_out_s >= cycle_s
        ):
            need = f"at least {min_breathing_s:g} s" if min_breathing_s > 0 else "some time"
            raise ProtocolError(
                f"{kind!r} event: the holds 'hold_in_s' + 'hold_out_s' ({hold_in_s:g} s + "
                f"{hold_out_s:g} s) leave {cycle_s - hold_in_s - hold_out_s:.3g} s of the "
                f"{cycle_s:g} s cycle at {rate_bpm:g} breaths/min for breathing, which needs "
                f"{need}: shorten the holds or lower the rate",
                field="hold_out_s" if hold_out_s > 0 else "hold_in_s",
            )


def event_from_json(obj: Any) -> Event:
    """Rebuild an event from its ``to_json()`` form, checking every field.

    Every field must be present (those with a default may be left out: older forms
    stay readable) and of its type: numbers are JSON numbers (a bool is not a number),
    finite and within the field's range (times within ±:data:`MAX_ABS_TIME_S`, intervals
    within 0-:data:`MAX_INTERVAL_MS` ms, rates 1-40 breaths/min, fractions 0-1,
    percentages 0-100, holds 0-:data:`MAX_HOLD_S` s), texts strings (marker text, gap
    reason), spectra lists of numbers of equal length. Integers become floats.

    Raises:
        ProtocolError: (an :class:`~vagus.exceptions.InvalidInput` and a ``ValueError``)
            not a dict, an unknown ``type``, a missing or unknown field, or a field of the
            wrong type or out of range; :attr:`~vagus.exceptions.ProtocolError.field`
            names it.
    """
    if not isinstance(obj, dict):
        raise ProtocolError(f"an event must be a JSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    cls = _BY_TYPE.get(kind) if isinstance(kind, str) else None
    if cls is None or not isinstance(kind, str):
        shown = repr(kind) if len(repr(kind)) <= 60 else repr(kind)[:57] + "..."
        raise ProtocolError(
            f"unknown event type {shown}; expected one of {sorted(_BY_TYPE)}", field="type"
        )
    checks = _CHECKS[kind]
    extra = [k for k in obj if k != "type" and k not in checks]
    if extra:
        shown = ", ".join(repr(k)[:40] for k in sorted(map(str, extra))[:5])
        raise ProtocolError(
            f"{kind!r} event: unknown field(s) {shown}; its fields are {list(checks)}",
            field=str(extra[0]),
        )
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        name = f.name
        if name in obj:
            kwargs[name] = checks[name](kind, name, obj[name])
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ProtocolError(f"{kind!r} event: field {name!r} is missing", field=name)
    if kind == "spectrum":
        n_freqs = len(kwargs.get("freqs_hz", ()))
        n_psd = len(kwargs.get("psd_ms2_per_hz", ()))
        if n_freqs != n_psd:
            raise ProtocolError(
                f"'spectrum' event: 'psd_ms2_per_hz' has {n_psd} values for {n_freqs} "
                "frequencies in 'freqs_hz'; they must have equal length",
                field="psd_ms2_per_hz",
            )
    elif kind == "resonance":
        n = len(kwargs.get("rates_bpm", ()))
        for name in ("amplitude_bpm", "power_ms2", "coherence", "phase_deg", "score"):
            if len(kwargs.get(name, ())) != n:
                raise ProtocolError(
                    f"'resonance' event: {name!r} has {len(kwargs.get(name, ()))} values for "
                    f"{n} rates in 'rates_bpm'; the table's columns must have equal length",
                    field=name,
                )
    elif kind in ("pacer", "pacer_state"):
        rate = kwargs["rate_bpm"]
        check_pacer_settings(
            kind,
            rate if kwargs.get("mode", "fixed") != "off" else None,
            kwargs.get("inhale_fraction", 0.4),
            kwargs.get("hold_in_s", 0.0),
            kwargs.get("hold_out_s", 0.0),
            min_breathing_s=MIN_BREATHING_S if kind == "pacer" else 0.0,
        )
        if kind == "pacer_state":
            off = kwargs["mode"] == "off"
            if off != (rate is None) or off != (kwargs["phase"] is None):
                raise ProtocolError(
                    "'pacer_state' event: 'mode' is 'off' exactly when 'rate_bpm' and "
                    f"'phase' are null; got mode {kwargs['mode']!r}, rate_bpm {rate!r}, "
                    f"phase {kwargs['phase']!r}",
                    field="mode",
                )
            if kwargs["phase"] == 1.0:
                raise _fail(kind, "phase", "null (off) or a number from 0 to below 1", 1.0)
    return cls(**kwargs)  # type: ignore[no-any-return]


def control_from_json(obj: Any) -> ControlEvent:
    """:func:`event_from_json` for control input: a marker or a pacer change only.

    Raises:
        ProtocolError: as :func:`event_from_json`, or a computed event's ``type``.
    """
    kind = obj.get("type") if isinstance(obj, dict) else None
    if isinstance(kind, str) and kind in _BY_TYPE and kind not in ("marker", "pacer"):
        raise ProtocolError(
            f"a {kind!r} event is computed, not control input: send a 'marker' or a 'pacer'",
            field="type",
        )
    return event_from_json(obj)  # type: ignore[return-value]


def check_control(event: object) -> ControlEvent:
    """A control event as a session accepts it: its fields checked as :func:`event_from_json`
    checks their JSON form (numpy scalars and other real numbers become floats).

    Raises:
        ProtocolError: not a :class:`Marker` or :class:`PacerChange`, or a field of the
            wrong type or out of range (named).
    """
    if not isinstance(event, Marker | PacerChange):
        raise ProtocolError(
            f"not a control event (a Marker or a PacerChange): {event!r:.60}", field=None
        )
    obj: dict[str, Any] = {"type": event.type}
    for f in fields(event):
        value = getattr(event, f.name)
        if not isinstance(value, bool | int | float | str | None) and hasattr(value, "item"):
            value = value.item()  # a numpy scalar
        elif isinstance(value, numbers.Real) and not isinstance(value, bool | int | float):
            value = float(value)  # a Fraction, a Decimal-like real
        obj[f.name] = value
    return event_from_json(obj)  # type: ignore[return-value]
