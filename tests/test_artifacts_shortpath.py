"""The corrector's short path and lazily sorted Th1/Th2 windows decide exactly as the full
rules with windows kept sorted on every beat (vagus.core.artifacts, module doc "Cost").

The reference is the same class with the short path switched off (every beat through
``_decide``) and the sorted windows brought up to date after every beat; both get the same
series: artifacts of every class, out-of-range values (NaN, inf, 0, negative, too short,
too long), equal values (median and quartile ties), changes of level and segment ends,
with the paper's windows and with short ones (catch-up and re-sort both taken often)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vagus.core.artifacts import CATCH_UP_VALUES, Lipponen2019
from vagus.core.events import Beat


class _EveryBeatSorted(Lipponen2019):
    """Reference: no short path; the windows' sorted copies synced after every beat."""

    __slots__ = ()

    def push(self, t_s: float, rr_ms: float) -> tuple[Beat, ...]:
        self._pend_t.append(float(t_s))
        self._pend_rr.append(float(rr_ms))
        if len(self._pend_rr) < 3:
            return ()
        out: list[Beat] = []
        self._decide(out)
        self._sync_windows()
        return tuple(out)


def _series(n: int, seed: int) -> list[float | None]:
    """RR (ms) with artifacts, out-of-range values, ties and level changes; None = flush."""
    rng = np.random.default_rng(seed)
    out: list[float | None] = []
    level = 800.0
    for i in range(n):
        if rng.random() < 0.004:
            level = float(rng.uniform(450.0, 1500.0))
        v = level * (1.0 + 0.12 * math.sin(i / 2.5)) + float(rng.normal(0.0, 20.0))
        u = rng.random()
        if u < 0.04:
            v *= float(rng.choice([0.5, 2.0, 1.4, 0.7, 0.3, 0.1, 3.5, 0.04]))
        elif u < 0.046:
            v = float(rng.choice([math.nan, math.inf, -5.0, 0.0, 28.0, 200.0, 2600.0, 240.0]))
        elif u < 0.06:
            v = level  # exact repeats: ties in the median and the quartiles
        if rng.random() < 0.003:
            out.append(None)
        out.append(v)
    return out


def _run(corrector: Lipponen2019, series: list[float | None]) -> list[tuple[object, ...]]:
    got: list[tuple[object, ...]] = []
    t = 0.0
    for v in series:
        beats = corrector.flush() if v is None else None
        if v is not None:
            t += (v if math.isfinite(v) else 800.0) / 1000.0
            beats = corrector.push(t, v)
        assert isinstance(beats, tuple)
        got += [(b.t_s, b.rr_ms, b.artifact, b.nn_ms, b.inserted) for b in beats]
    got += [(b.t_s, b.rr_ms, b.artifact, b.nn_ms, b.inserted) for b in corrector.flush()]
    return got


def _same(a: list[tuple[object, ...]], b: list[tuple[object, ...]]) -> bool:
    """Equal beat for beat, float for float (NaN equal to NaN)."""
    return len(a) == len(b) and all(
        x == y or (isinstance(x, float) and isinstance(y, float) and x != x and y != y)
        for p, q in zip(a, b, strict=True)
        for x, y in zip(p, q, strict=True)
    )


@pytest.mark.parametrize(
    ("kwargs", "seed"),
    [
        ({}, 1),
        ({}, 2),
        ({"window_beats": 7, "median_beats": 5}, 3),
        ({"window_beats": 12, "median_beats": 8, "alpha": 3.0}, 4),
    ],
)
def test_short_path_decides_as_the_full_rules(kwargs: dict[str, float], seed: int) -> None:
    series = _series(6000, seed)
    fast = _run(Lipponen2019(**kwargs), series)  # type: ignore[arg-type]
    ref = _run(_EveryBeatSorted(**kwargs), series)  # type: ignore[arg-type]
    assert _same(fast, ref)
    classes = {c for _, _, c, _, _ in ref}
    # The series reaches every class, so every rule was compared.
    assert classes >= {None, "ectopic", "missed", "extra", "long", "short", "range"}


def test_sorted_windows_hold_the_window_after_catch_up_and_re_sort() -> None:
    corrector = Lipponen2019(window_beats=9)
    t = 0.0
    rng = np.random.default_rng(5)
    for lag in (1, CATCH_UP_VALUES, CATCH_UP_VALUES + 1, 30, 2, 9):
        for _ in range(lag):
            t += 0.8
            corrector.push(t, 800.0 + float(rng.normal(0.0, 15.0)))
        corrector._sync_windows()
        assert corrector._d_sorted == sorted(corrector._d_vals[-9:])
        assert corrector._m_sorted == sorted(corrector._m_vals[-9:])
        assert len(corrector._d_vals) <= 2 * 9 + CATCH_UP_VALUES


def test_push_returns_the_beats_decided_as_a_tuple() -> None:
    corrector = Lipponen2019()
    assert corrector.push(0.8, 800.0) == ()
    assert corrector.push(1.6, 800.0) == ()
    (beat,) = corrector.push(2.4, 800.0)
    assert beat == Beat(0.8, 800.0, None, 800.0, False) and type(beat) is Beat
    assert corrector.flush() == (Beat(1.6, 800.0, None, 800.0), Beat(2.4, 800.0, None, 800.0))
