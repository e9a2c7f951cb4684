"""Tests of the causal artifact classifier/corrector (SCIENCE.md "Artifacts (real time)").

The main check injects known artifacts into clean real RR series and measures what the
corrector finds. Injection (seeded, 1 % of the beats each, sites at least 6 beats apart so
that every injected artifact has clean beats around it):

- missed: two consecutive RR merged into one (their sum);
- extra: one RR split into two parts (first part 35-65 % of it);
- ectopic: RR_j shortened by 20-30 % and RR_j+1 lengthened by the same amount
  (compensatory pause).

Detection rule: an injected artifact counts as detected when the corrector gives a class
to one of its beats (the merged beat; either part of the split; either beat of the ectopic
pair or its immediate neighbour on either side). "Clean" beats are all beats that are not
part of an injection, including any irregularities the recording itself has.
RMSSD = sqrt(mean(diff(NN)^2)) with plain numpy, over the corrected NN (``nn_ms`` not None)
against the same formula over the original series.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vagus.core.artifacts import Lipponen2019, correct_rr
from vagus.core.events import ARTIFACT_CLASSES, Beat
from vagus.exceptions import InvalidInput

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

MIN_RR = 250.0
MAX_RR = 2500.0


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared recording {path} not found (expected ../shared/data next to the repo)")
    return path


def _pyhrv_long() -> np.ndarray:
    return np.loadtxt(_need(DATA / "pyhrv" / "SampleNNISeriesLong.txt"), comments="#")


def _vu_ecg() -> np.ndarray:
    lines = _need(DATA / "wearablehrv" / "test_vu.txt").read_text().splitlines()
    header = lines[1].split("\t")
    col = header.index("ibi")
    ibi = np.array([float(line.split("\t")[col]) for line in lines[2:] if line.strip()])
    return ibi[1:]  # the first row is the first R peak (ibi 0), not an interval


def _nsr001_2h() -> np.ndarray:
    values = np.loadtxt(_need(DATA / "physionet_nsr2db" / "nsr001_rr_secs.txt"))
    return values[1:7201] * 1000.0  # first line is the first beat's time, not an RR


SERIES = {"pyhrv_long": _pyhrv_long, "vu_ecg": _vu_ecg, "nsr001_2h": _nsr001_2h}


def _rmssd(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.diff(x) ** 2)))


def _inject(
    x: np.ndarray, seed: int, rate: float = 0.01, spacing: int = 6
) -> tuple[np.ndarray, list[tuple[str, int] | None]]:
    """Injected series and, per output beat, (kind, site id) or None for a clean beat."""
    rng = np.random.default_rng(seed)
    n = len(x)
    per_kind = round(rate * n)
    kinds = ["missed"] * per_kind + ["extra"] * per_kind + ["ectopic"] * per_kind
    rng.shuffle(kinds)
    taken = np.zeros(n, dtype=bool)
    sites: dict[int, str] = {}
    for kind in kinds:
        for _ in range(1000):
            p = int(rng.integers(spacing, n - spacing - 1))
            if not taken[p - spacing : p + spacing + 1].any():
                taken[p] = True
                sites[p] = kind
                break
    y: list[float] = []
    labels: list[tuple[str, int] | None] = []
    i = 0
    while i < n:
        kind = sites.get(i)
        if kind == "missed":
            y.append(x[i] + x[i + 1])
            labels.append(("missed", i))
            i += 2
        elif kind == "extra":
            f = rng.uniform(0.35, 0.65)
            y += [x[i] * f, x[i] * (1.0 - f)]
            labels += [("extra", i), ("extra", i)]
            i += 1
        elif kind == "ectopic":
            delta = x[i] * rng.uniform(0.20, 0.30)
            y += [x[i] - delta, x[i + 1] + delta]
            labels += [("ectopic", i), ("ectopic", i)]
            i += 2
        else:
            y.append(float(x[i]))
            labels.append(None)
            i += 1
    return np.asarray(y), labels


def _run(rr: Sequence[float], flush_after: Sequence[int] = ()) -> list[Beat]:
    """All beats out of a corrector fed ``rr`` (times = cumulative RR), with flushes."""
    corrector = Lipponen2019()
    beats: list[Beat] = []
    t = 0.0
    cuts = set(flush_after)
    for k, value in enumerate(rr):
        t += max(float(value), 0.0) / 1000.0
        beats += corrector.push(t, float(value))
        if k in cuts:
            beats += corrector.flush()
    beats += corrector.flush()
    return beats


def _check_contract(rr: Sequence[float], beats: list[Beat]) -> None:
    """The output contract of Lipponen2019 for input ``rr`` fed with cumulative times."""
    measured = [b for b in beats if not b.inserted]
    assert len(measured) == len(rr)
    t = 0.0
    for b, value in zip(measured, rr, strict=True):
        t += max(float(value), 0.0) / 1000.0
        assert b.t_s == t
        assert b.rr_ms == float(value)
    times = [b.t_s for b in beats]
    assert all(a <= b for a, b in itertools.pairwise(times))
    for k, b in enumerate(beats):
        assert b.artifact is None or b.artifact in ARTIFACT_CLASSES
        if b.artifact is None:
            assert b.nn_ms == b.rr_ms
        if not MIN_RR <= b.rr_ms <= MAX_RR:
            # out of range: never reaches nn_ms as-is; at most merged with the beat before
            assert b.artifact == "range"
            if b.nn_ms is not None:
                prev = beats[k - 1]
                assert prev.artifact == "range" and prev.nn_ms is None
                assert b.nn_ms == pytest.approx(prev.rr_ms + b.rr_ms)
        if b.nn_ms is not None:
            assert math.isfinite(b.nn_ms)
            assert MIN_RR / 2 <= b.nn_ms <= MAX_RR
        if b.inserted:
            nxt = beats[k + 1]
            assert not nxt.inserted
            assert b.artifact == nxt.artifact == "missed"
            assert b.rr_ms == nxt.rr_ms
            assert b.nn_ms == nxt.nn_ms == nxt.rr_ms / 2
            assert b.t_s == pytest.approx(nxt.t_s - nxt.rr_ms / 2000.0)
        elif b.artifact == "missed":
            assert k > 0 and beats[k - 1].inserted
        if b.nn_ms is None:
            assert b.artifact in ("extra", "range")
        if b.artifact == "extra" and b.nn_ms is None:
            # the extra beat is merged into the next one
            nxt = beats[k + 1]
            assert nxt.artifact == "extra"
            assert nxt.nn_ms == pytest.approx(b.rr_ms + nxt.rr_ms)


# ----------------------------------------------------------------- injection (real data)


@pytest.mark.parametrize("name", sorted(SERIES))
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_injected_artifacts_are_found_and_rmssd_restored(name: str, seed: int) -> None:
    x = SERIES[name]()
    y, labels = _inject(x, seed)
    classes, nn = correct_rr(y)
    assert len(classes) == len(y)

    sites: dict[tuple[str, int], list[int]] = {}
    for idx, label in enumerate(labels):
        if label is not None:
            sites.setdefault(label, []).append(idx)
    found = 0
    per_kind: dict[str, list[int]] = {}  # kind -> [found, injected], for the printout
    for (kind, _), idxs in sites.items():
        near = set(idxs)
        if kind == "ectopic":
            near |= {idxs[0] - 1, idxs[-1] + 1}
        found += any(classes[j] is not None for j in near)
        counts = per_kind.setdefault(kind, [0, 0])
        counts[0] += any(classes[j] is not None for j in near)
        counts[1] += 1
    detected = found / len(sites)

    clean = [j for j, label in enumerate(labels) if label is None]
    flagged = sum(classes[j] is not None for j in clean) / len(clean)

    rmssd_clean = _rmssd(x)
    rmssd_raw = _rmssd(y)
    rmssd_corr = _rmssd(nn)
    msg = (
        f"{name} seed {seed}: detected {detected:.1%} of {len(sites)}, clean flagged "
        f"{flagged:.2%}, RMSSD clean {rmssd_clean:.1f} injected {rmssd_raw:.1f} "
        f"corrected {rmssd_corr:.1f}"
    )
    by_kind = ", ".join(f"{k} {f / n:.1%}" for k, (f, n) in sorted(per_kind.items()))
    print(
        f"VALIDATION artifacts {name} seed {seed}: detected {detected:.1%} of {len(sites)} "
        f"({by_kind}), clean flagged {flagged:.2%} of {len(clean)}, RMSSD error after "
        f"correction {rmssd_corr / rmssd_clean - 1:+.2%} "
        f"(injected {rmssd_raw / rmssd_clean - 1:+.0%})"
    )
    assert detected >= 0.95, msg
    assert flagged <= 0.005, msg
    assert abs(rmssd_corr / rmssd_clean - 1.0) <= 0.10, msg
    # the injection really hurt RMSSD: the check above is not vacuous
    assert rmssd_raw > 1.5 * rmssd_clean, msg


def test_injected_series_keep_the_output_contract() -> None:
    y, _ = _inject(_pyhrv_long(), seed=7)
    _check_contract(y.tolist(), _run(y.tolist()))


def test_missed_beats_are_split_and_extra_beats_merged() -> None:
    x = _pyhrv_long()
    y, labels = _inject(x, seed=11)
    beats = _run(y.tolist())
    measured = [b for b in beats if not b.inserted]
    by_site: dict[tuple[str, int], list[int]] = {}
    for idx, label in enumerate(labels):
        if label is not None:
            by_site.setdefault(label, []).append(idx)
    n_missed = n_missed_ok = n_extra = n_extra_ok = 0
    for (kind, site), idxs in by_site.items():
        if kind == "missed":
            n_missed += 1
            n_missed_ok += measured[idxs[0]].artifact == "missed"
        elif kind == "extra":
            n_extra += 1
            first, second = measured[idxs[0]], measured[idxs[1]]
            merged = (first.nn_ms is None and second.nn_ms == pytest.approx(x[site])) or (
                second.nn_ms is None and first.nn_ms == pytest.approx(x[site])
            )
            n_extra_ok += merged
    print(
        f"VALIDATION artifacts pyhrv_long seed 11: missed split {n_missed_ok}/{n_missed} "
        f"({n_missed_ok / max(n_missed, 1):.1%}), extra merged {n_extra_ok}/{n_extra} "
        f"({n_extra_ok / max(n_extra, 1):.1%})"
    )
    assert n_missed_ok >= 0.9 * n_missed
    assert n_extra_ok >= 0.9 * n_extra


# ----------------------------------------------------------------- contract and timing


def test_decision_delay_is_at_most_two_beats() -> None:
    y, _ = _inject(_vu_ecg(), seed=3)
    corrector = Lipponen2019()
    emitted_measured = 0
    t = 0.0
    for j, value in enumerate(y.tolist()):
        t += value / 1000.0
        out = corrector.push(t, value)
        emitted_measured += sum(not b.inserted for b in out)
        # after pushing beat j, every beat up to j - 2 has been decided
        assert emitted_measured >= j - 1
        assert emitted_measured <= j + 1
    emitted_measured += sum(not b.inserted for b in corrector.flush())
    assert emitted_measured == len(y)


def test_every_beat_once_in_order_with_monotone_times() -> None:
    x = _nsr001_2h()
    y, _ = _inject(x, seed=5)
    rr = y.tolist()
    beats = _run(rr, flush_after=[100, 2000, 2001, 5000])
    _check_contract(rr, beats)


def test_clean_series_pass_through_unchanged() -> None:
    """A smooth rhythm with RSA (no artifact) is not touched: nn_ms == rr_ms everywhere."""
    t = np.arange(600)
    rr = 900.0 + 60.0 * np.sin(2 * np.pi * t / 4.5) + 25.0 * np.sin(2 * np.pi * t / 37.0)
    beats = _run(rr.tolist())
    assert [b.artifact for b in beats] == [None] * len(rr)
    assert [b.nn_ms for b in beats] == rr.tolist()


def test_range_values_are_flagged_and_never_used_as_nn() -> None:
    rng = np.random.default_rng(0)
    rr = (850.0 + 20.0 * rng.standard_normal(300)).tolist()
    rr[50] = 0.0  # nonsense
    rr[120] = 4000.0  # too long: a pause of several missed beats or a dropout
    rr[199] = 800.0  # a true 828 ms interval, split by a spurious R peak 28 ms later
    rr[200] = 28.0
    rr[250] = 28.0  # a spurious 28 ms interval on its own
    beats = _run(rr)
    _check_contract(rr, beats)
    measured = [b for b in beats if not b.inserted]
    for k in (50, 120, 200, 250):
        assert measured[k].artifact == "range"
        assert measured[k].nn_ms is None
    # the split beat is merged back: 800 + 28
    assert measured[199].artifact == "extra"
    assert measured[199].nn_ms == pytest.approx(828.0)
    nn = [b.nn_ms for b in beats if b.nn_ms is not None]
    assert all(700.0 < v < 1000.0 for v in nn)


def test_no_difference_is_taken_across_a_flush() -> None:
    """After a gap the heart rate may differ; the first beats of the new segment are normal,
    even a segment of two beats only (too short to be recognised as a new level)."""
    fast = [600.0 + 5.0 * (k % 3) for k in range(50)]
    slow = [1000.0, 1005.0]
    beats = _run(fast + slow + fast, flush_after=[49, 51])
    assert all(b.artifact is None for b in beats)
    # without the flushes the two-beat excursion is compared with the beats around it
    joined = _run(fast + slow + fast)
    assert any(b.artifact is not None for b in joined)


def test_deterministic() -> None:
    y, _ = _inject(_pyhrv_long(), seed=9)
    rr = y.tolist()
    assert _run(rr, flush_after=[1000]) == _run(rr, flush_after=[1000])
    classes_a, nn_a = correct_rr(y)
    classes_b, nn_b = correct_rr(rr)
    assert classes_a == classes_b
    assert np.array_equal(nn_a, nn_b)


def test_correct_rr_matches_the_streaming_corrector() -> None:
    y, _ = _inject(_vu_ecg(), seed=4)
    classes, nn = correct_rr(y)
    beats = _run(y.tolist())
    assert classes == [b.artifact for b in beats if not b.inserted]
    assert nn.tolist() == [b.nn_ms for b in beats if b.nn_ms is not None]


def test_bad_parameters_are_rejected() -> None:
    with pytest.raises(InvalidInput, match="alpha"):
        Lipponen2019(alpha=0.0)
    with pytest.raises(InvalidInput, match="min_rr_ms"):
        Lipponen2019(min_rr_ms=3000.0, max_rr_ms=2500.0)
    with pytest.raises(InvalidInput, match="window_beats"):
        Lipponen2019(window_beats=1)


# ----------------------------------------------------------------- fuzzing

_rr_value = st.one_of(
    st.floats(min_value=550.0, max_value=1100.0),  # plausible beats, to reach every branch
    st.floats(min_value=-1e4, max_value=1e9, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 28.0, 249.9, 250.0, 2500.0, 2500.1, 4000.0]),
)


@settings(max_examples=300, deadline=None)
@given(
    rr=st.lists(_rr_value, max_size=80),
    cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=4),
)
def test_arbitrary_finite_rr_never_raise_and_keep_the_contract(
    rr: list[float], cuts: list[int]
) -> None:
    beats = _run(rr, flush_after=cuts)
    _check_contract(rr, beats)


@settings(max_examples=200, deadline=None)
@given(
    base=st.floats(min_value=400.0, max_value=1500.0),
    noise=st.lists(st.floats(min_value=-0.3, max_value=0.3), min_size=5, max_size=60),
    scale=st.lists(st.sampled_from([0.5, 1.0, 1.0, 1.0, 2.0, 0.3, 0.7]), min_size=5, max_size=60),
)
def test_plausible_rhythms_with_artifacts_keep_the_contract(
    base: float, noise: list[float], scale: list[float]
) -> None:
    rr = [base * (1.0 + n) * s for n, s in zip(noise, scale, strict=False)]
    _check_contract(rr, _run(rr))
