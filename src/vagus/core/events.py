"""Pipeline events: small frozen dataclasses with a JSON form.

The JSON forms (``to_json()``) are the browser protocol and the line format of
``vagus monitor --json`` / ``vagus replay --json``: each is a dict with a ``"type"``
key. Every time is beat time in seconds (``t_s``) on the clock of the source
(monotonic arrival clock live, recording clock on replay). Values that a window
does not yet support are ``None`` (JSON ``null``), never a number from too little data.

Protocol version: :data:`PROTOCOL_VERSION`.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Literal

__all__ = [
    "ARTIFACT_CLASSES",
    "PROTOCOL_VERSION",
    "ArtifactClass",
    "Beat",
    "Contact",
    "ControlEvent",
    "Event",
    "Gap",
    "Marker",
    "Metrics",
    "PacerChange",
    "Spectrum",
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
    """A control event: the pacer's rate (breaths/min) and inhale fraction changed."""

    type: ClassVar[str] = "pacer"
    t_s: float
    rate_bpm: float | None
    inhale_fraction: float = 0.4


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


for _cls in (Beat, Metrics, Spectrum, Gap, Contact, Marker, PacerChange):
    _fast_init(_cls)
del _cls

ControlEvent = Marker | PacerChange
Event = Beat | Metrics | Spectrum | Gap | Contact | Marker | PacerChange

_BY_TYPE: dict[str, Any] = {
    cls.type: cls for cls in (Beat, Metrics, Spectrum, Gap, Contact, Marker, PacerChange)
}


def event_from_json(obj: dict[str, Any]) -> Event:
    """Rebuild an event from its ``to_json()`` form.

    Raises:
        ValueError: unknown ``type`` or missing/unknown fields.
    """
    kind = obj.get("type")
    cls = _BY_TYPE.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown event type {kind!r}; expected one of {sorted(_BY_TYPE)}")
    names = {f.name for f in fields(cls)}
    extra = set(obj) - names - {"type"}
    if extra:
        raise ValueError(f"unknown fields for {kind!r} event: {sorted(extra)}")
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in obj.items() if k != "type"}
    try:
        return cls(**kwargs)  # type: ignore[no-any-return]
    except TypeError as exc:
        raise ValueError(f"bad {kind!r} event: {exc}") from None
