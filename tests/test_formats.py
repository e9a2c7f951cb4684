"""Import formats: each parser on its real example, detection, and corrupt files.

The real files live in ``../shared/data`` (never copied into the repo); corrupt variants
are derived from them at run time in ``tmp_path``. Formats without a shared example
(Polar Sensor Logger, Elite HRV, Kubios) are built here from real RR values.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vagus.core.events import Gap, Marker
from vagus.core.pipeline import Pipeline
from vagus.exceptions import FileFormatError, InvalidInput
from vagus.formats.common import ImportedRR, beat_times_from_arrivals
from vagus.formats.registry import detect_format, read_rr_file
from vagus.store.base import ControlRecord, GapRecord, RRRecord, feed

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HEARTMATH = DATA / "wearablehrv" / "test_heartmath.csv"
VU = DATA / "wearablehrv" / "test_vu.txt"
NSR = DATA / "physionet_nsr2db" / "nsr001_rr_secs.txt"
PYHRV_SHORT = DATA / "pyhrv" / "SampleNNISeriesShort.txt"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared recordings are not next to the project)")
    return path


def rmssd(rr: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.diff(rr) ** 2)))


# ---------------------------------------------------------------- real files


def test_heartmath_real_file() -> None:
    rows = [ln.split(",") for ln in need(HEARTMATH).read_text().splitlines()[1:] if ln.strip()]
    stamps = np.array([float(r[0]) for r in rows]) / 1000.0
    rr = np.array([float(r[1]) for r in rows])
    got = read_rr_file(HEARTMATH)
    assert got.format == "heartmath"
    assert np.array_equal(np.asarray(got.rr_ms), rr)
    assert got.t_s is not None
    t = np.asarray(got.t_s)
    # Within a segment, beat times are the RR chain; every break is an arrival jump.
    bounds = {i for i, _ in got.breaks}
    for i in range(1, len(t)):
        if i not in bounds:
            assert t[i] - t[i - 1] == pytest.approx(rr[i] / 1000.0, abs=1e-9)
    assert got.breaks, "the sensor dropped beats: the file has gaps"
    for i, reason in got.breaks:
        assert reason == "dropout"
        assert stamps[i] - stamps[i - 1] > 2.0
    # The missing time shows up as gaps: the session spans the arrival clock.
    span_s = t[-1] - (t[0] - rr[0] / 1000.0)
    assert span_s == pytest.approx(stamps[-1] - stamps[0], abs=5.0)
    assert got.started_unix_s == pytest.approx(stamps[0] - rr[0] / 1000.0, abs=3.0)


def test_vu_ams_real_file_matches_reference_rmssd() -> None:
    got = read_rr_file(need(VU))
    assert got.format == "vu_ams"
    assert got.participant == "P37"
    assert got.beats == 3040
    assert got.breaks == ()
    assert got.t_s is not None
    # R-peak times kept: the first interval ends 0.936 s after the first R peak.
    assert got.t_s[0] == pytest.approx(0.936)
    start = dt.datetime(2023, 6, 30, 14, 8, 59, 580000)
    assert got.started_unix_s == pytest.approx(start.timestamp())
    # data/README.md reference values over the condition windows (local clock times).
    t = np.asarray(got.t_s)
    rr = np.asarray(got.rr_ms)
    for (a, b), want in (
        (("14:09:20", "14:14:20"), 95.003),
        (("14:29:25", "14:32:25"), 185.243),
    ):
        t_a = (dt.datetime.fromisoformat(f"2023-06-30T{a}") - start).total_seconds()
        t_b = (dt.datetime.fromisoformat(f"2023-06-30T{b}") - start).total_seconds()
        sel = (t >= t_a) & (t < t_b)
        assert rmssd(rr[sel]) == pytest.approx(want, abs=0.01)


def test_physionet_real_file_first_line_is_a_time() -> None:
    values = [float(v) for v in need(NSR).read_text().split()]
    got = read_rr_file(NSR)
    assert got.format == "physionet"
    assert got.beats == len(values) - 1 == 106_459
    assert got.rr_ms[0] == pytest.approx(values[1] * 1000.0)
    assert got.t_s is not None
    assert got.t_s[0] == pytest.approx(values[0] + values[1])
    assert got.t_s[-1] == pytest.approx(values[0] + math.fsum(values[1:]), abs=1e-6)
    assert got.started_unix_s is None


def test_plain_real_file_needs_a_unit_and_matches_reference() -> None:
    need(PYHRV_SHORT)
    with pytest.raises(FileFormatError, match=r"line 1: .*--unit"):
        read_rr_file(PYHRV_SHORT)
    got = read_rr_file(PYHRV_SHORT, unit="ms")
    assert got.format == "plain"
    rr = np.asarray(got.rr_ms)
    assert rr.size == 337
    assert float(np.std(rr, ddof=1)) == pytest.approx(95.690, abs=0.001)
    assert rmssd(rr) == pytest.approx(101.301, abs=0.001)
    with pytest.raises(FileFormatError, match=r"line 2: .*pass --unit ms"):
        read_rr_file(PYHRV_SHORT, "plain", unit="s")


def test_detection_on_each_real_file() -> None:
    assert detect_format(need(HEARTMATH)) == "heartmath"
    assert detect_format(need(VU)) == "vu_ams"
    assert detect_format(need(NSR)) == "physionet"
    assert detect_format(need(PYHRV_SHORT), unit="ms") == "plain"


# ------------------------------------------------------- formats built here


def polar_file(path: Path, rr_ms: list[float], *, drop: range | None = None) -> None:
    """A Polar Sensor Logger _RR.txt: beats in packets of 1-3 sharing the arrival stamp."""
    t0 = dt.datetime(2024, 3, 1, 9, 30, 0)
    lines = ["Phone timestamp;RR-interval [ms]"]
    t = 0.0
    i = 0
    rng = np.random.default_rng(7)
    while i < len(rr_ms):
        k = int(rng.integers(1, 4))
        group = list(range(i, min(i + k, len(rr_ms))))
        for j in group:
            t += rr_ms[j] / 1000.0
        arrival = t + float(rng.uniform(0.02, 0.3)) + (1.5 if i % 97 == 0 else 0.0)
        stamp = (t0 + dt.timedelta(seconds=arrival)).isoformat(timespec="milliseconds")
        for j in group:
            if drop is None or j not in drop:
                lines.append(f"{stamp};{rr_ms[j]:.0f}")
        i += k
    path.write_text("\n".join(lines) + "\n")


def pyhrv_rr() -> list[float]:
    return [float(v) for v in need(PYHRV_SHORT).read_text().split() if v.isdigit()]


def test_polar_sensor_logger(tmp_path: Path) -> None:
    rr = pyhrv_rr()
    f = tmp_path / "Polar_H10_ABC123_20240301_093000_RR.txt"
    polar_file(f, rr, drop=range(100, 112))
    assert detect_format(f) == "polar"
    got = read_rr_file(f)
    kept = rr[:100] + rr[112:]
    assert list(got.rr_ms) == kept
    # The 12 dropped beats (about 10 s) are one gap; late bursts (1.5 s) are not gaps.
    assert got.breaks == ((100, "dropout"),)
    assert got.t_s is not None
    missing_s = sum(rr[100:112]) / 1000.0
    gap_s = got.t_s[100] - rr[112] / 1000.0 - got.t_s[99]
    assert gap_s == pytest.approx(missing_s, abs=0.4)
    want_start = dt.datetime(2024, 3, 1, 9, 30, 0).timestamp()
    assert got.started_unix_s == pytest.approx(want_start, abs=0.4)


def test_polar_gaps_reach_the_pipeline(tmp_path: Path) -> None:
    rr = pyhrv_rr()
    f = tmp_path / "x_RR.txt"
    polar_file(f, rr, drop=range(150, 160))
    got = read_rr_file(f)
    records = got.records()
    assert any(isinstance(r, GapRecord) for r in records)
    p = Pipeline()
    for r in records:
        feed(p, r)
    p.close()
    gaps = [e for e in p.events_received() if isinstance(e, Gap)]
    assert len(gaps) == 1 and gaps[0].duration_s is not None and gaps[0].duration_s > 5


def test_elite_hrv_named_file(tmp_path: Path) -> None:
    rr = pyhrv_rr()
    f = tmp_path / "2017-06-29 13-11-53.txt"
    f.write_text("".join(f"{v:.0f}\n" for v in rr))
    assert detect_format(f) == "elite_hrv"
    got = read_rr_file(f)
    assert list(got.rr_ms) == rr
    assert got.started_unix_s == dt.datetime(2017, 6, 29, 13, 11, 53).timestamp()
    # The same content under another name is ambiguous: no guessing.
    g = tmp_path / "rr.txt"
    g.write_text(f.read_text())
    with pytest.raises(FileFormatError, match="--format"):
        detect_format(g)


def test_kubios_one_column_needs_unit_two_columns_keep_times(tmp_path: Path) -> None:
    rr = pyhrv_rr()
    one = tmp_path / "kubios.txt"
    one.write_text(
        "# SIGNAL/SERIES EXPORT - KUBIOS\n# File:\tx\n# Comment:\tn/a\n"
        + "".join(f"{v:.3f}\n" for v in rr)
    )
    assert detect_format(one) == "kubios"
    with pytest.raises(FileFormatError, match="--unit"):
        read_rr_file(one)
    assert list(read_rr_file(one, unit="ms").rr_ms) == rr
    two = tmp_path / "kubios2.txt"
    t = np.cumsum(rr) / 1000.0
    t[50:] += 7.0  # a 7 s gap before beat 50
    two.write_text(
        "# Kubios HRV RR\n# Columns: time [s]\tRR interval [s]\n"
        + "".join(f"{a:.6f}\t{b / 1000:.4f}\n" for a, b in zip(t, rr, strict=True))
    )
    got = read_rr_file(two)
    assert got.rr_ms == pytest.approx(rr)
    assert got.breaks == ((50, "dropout"),)
    with pytest.raises(FileFormatError, match="header says RR in s"):
        read_rr_file(two, unit="ms")


def test_csv_named_column(tmp_path: Path) -> None:
    rr = pyhrv_rr()
    f = tmp_path / "table.csv"
    f.write_text("time;RR [ms];hr\n" + "".join(f"{i};{v:.0f};60\n" for i, v in enumerate(rr)))
    with pytest.raises(FileFormatError, match="--column"):
        detect_format(f)
    got = read_rr_file(f, column="RR [ms]")
    assert got.format == "csv" and list(got.rr_ms) == rr
    with pytest.raises(FileFormatError, match="no column 'rr'"):
        read_rr_file(f, column="rr")
    with pytest.raises(FileFormatError, match="does not name its unit"):
        read_rr_file(f, column="hr")


def test_unit_that_contradicts_the_format() -> None:
    with pytest.raises(InvalidInput, match="drop --unit"):
        read_rr_file(need(HEARTMATH), unit="s")


def test_vu_ams_segment_starts_and_labels(tmp_path: Path) -> None:
    lines = need(VU).read_text().splitlines()
    # Line 1003 (row 1000: beat 999 once the zero is dropped) starts a new segment;
    # line 503 (beat 499) carries label code 3.
    f = lines[1002].split("\t")
    f[2] = "0"
    lines[1002] = "\t".join(f)
    g = lines[502].split("\t")
    g[4] = "3"
    lines[502] = "\t".join(g)
    out = tmp_path / "vu.txt"
    out.write_text("\n".join(lines) + "\n")
    got = read_rr_file(out)
    assert got.beats == 3039
    assert got.breaks == ((999, "file_gap"),)
    assert [m.text for m in got.markers] == ["LabelCode1=3"]
    assert got.t_s is not None
    assert got.markers[0].t_s == got.t_s[499]
    h = list(lines)
    h[10], h[11] = h[11], h[10]
    out.write_text("\n".join(h) + "\n")
    with pytest.raises(FileFormatError, match="line 12: R-peak times must increase"):
        read_rr_file(out)


# ------------------------------------------------------------- corrupt files


def corrupt(tmp_path: Path, src: Path, edit: dict[int, str | None], name: str) -> Path:
    """Copy ``src`` with 1-based line numbers replaced (None: cut the file after it)."""
    lines = src.read_text().splitlines()
    for n, text in sorted(edit.items()):
        if text is None:
            lines = [*lines[: n - 1], lines[n - 1][: len(lines[n - 1]) // 2]]
            break
        lines[n - 1] = text
    out = tmp_path / name
    out.write_text("\n".join(lines) + "\n")
    return out


def test_truncated_last_line_names_it(tmp_path: Path) -> None:
    n = len(need(VU).read_text().splitlines())
    f = corrupt(tmp_path, VU, {n: None}, "vu.txt")
    with pytest.raises(FileFormatError, match=rf"line {n}: .*truncated"):
        read_rr_file(f)


def test_letters_in_a_number_name_the_line(tmp_path: Path) -> None:
    f = corrupt(tmp_path, need(HEARTMATH), {100: "1688126700000,9x5,99999"}, "hm.csv")
    with pytest.raises(FileFormatError, match=r"line 100: RR '9x5' is not a number"):
        read_rr_file(f)
    g = corrupt(tmp_path, need(NSR), {500: "0.7O3125"}, "nsr.txt")
    with pytest.raises(FileFormatError, match="line 500"):
        read_rr_file(g)


def test_wrong_delimiter_names_the_line(tmp_path: Path) -> None:
    rr = pyhrv_rr()
    f = tmp_path / "p_RR.txt"
    polar_file(f, rr)
    lines = f.read_text().splitlines()
    lines[9] = lines[9].replace(";", ",")
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(FileFormatError, match=r"line 10: .*delimiter"):
        read_rr_file(f)
    text = need(HEARTMATH).read_text().replace(",", ";")
    g = tmp_path / "hm.csv"
    g.write_text(text)
    with pytest.raises(FileFormatError, match="line 1"):
        read_rr_file(g)
    with pytest.raises(FileFormatError, match="line 1: expected the header"):
        read_rr_file(g, "heartmath")


@pytest.mark.parametrize("fmt", [None, "heartmath", "vu_ams", "polar", "kubios", "physionet"])
def test_empty_and_binary_files(tmp_path: Path, fmt: str | None) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(FileFormatError, match="line 1: the file is empty"):
        read_rr_file(empty, fmt)
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"RR\n" + bytes(range(256)) * 4)
    with pytest.raises(FileFormatError, match=r"line 2: binary data"):
        read_rr_file(binary, fmt)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Phone timestamp;RR-interval [ms]\nf\xe9vrier;812\n".encode("latin-1"))
    with pytest.raises(FileFormatError, match="line 2: not UTF-8"):
        read_rr_file(latin, fmt)


def test_rr_not_positive_names_the_line(tmp_path: Path) -> None:
    f = corrupt(tmp_path, need(HEARTMATH), {7: "1688126700000,-3,99999"}, "neg.csv")
    with pytest.raises(FileFormatError, match=r"line 7: RR interval -3 ms is not > 0"):
        read_rr_file(f)


def test_unknown_file(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("Dear diary\nToday I breathed.\n")
    with pytest.raises(FileFormatError, match="line 1: not a recognised RR file"):
        read_rr_file(f)


# ----------------------------------------------------------------- records


def test_records_keep_markers_and_gaps_in_time_order() -> None:
    rr = tuple([800.0] * 3000)
    t = tuple(float(v) for v in np.cumsum(rr) / 1000.0 + np.r_[np.zeros(1500), np.full(1500, 9)])
    imp = ImportedRR(
        format="test",
        rr_ms=rr,
        t_s=t,
        breaks=((1500, "dropout"),),
        markers=(Marker(t_s=100.0, text="a"), Marker(t_s=1300.0, text="b")),
    )
    records = imp.records()
    times: list[float] = []
    for r in records:
        if isinstance(r, RRRecord):
            assert r.t_s is not None and len(r.rr_ms) <= 1024
            times.extend(r.t_s)
        elif isinstance(r, ControlRecord):
            times.append(r.event.t_s)
        else:
            assert isinstance(r, GapRecord) and r.t_s == t[1499]
    assert times == sorted(times)
    assert sum(len(r.rr_ms) for r in records if isinstance(r, RRRecord)) == 3000


def test_arrival_bursts_are_not_gaps() -> None:
    rng = np.random.default_rng(3)
    rr = rng.normal(900, 40, 2000)
    beat = np.cumsum(rr) / 1000.0
    # Latency 50-300 ms, and a 3 s late burst every 200 beats.
    latency = rng.uniform(0.05, 0.3, rr.size)
    latency[::200] += 3.0
    arrival = 1000.0 + beat + latency
    t, breaks, t0 = beat_times_from_arrivals(rr, arrival)
    assert breaks == []
    assert t0 == pytest.approx(1000.0, abs=0.06)
    assert np.allclose(t, beat, atol=0.06)


# -------------------------------------------------------------------- fuzzing

_FUZZ_FORMATS = [None, "plain", "kubios", "heartmath", "vu_ams", "physionet", "polar", "elite_hrv"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(alphabet="0123456789.,;\t -:eE#TxRr\n", max_size=300),
    head=st.sampled_from(
        [
            "",
            "timestamp, rr, since_start\n",
            "Phone timestamp;RR-interval [ms]\n",
            "Subject Id: P1\nR-peak time\tibi_cumulative\tibi\n",
            "# SIGNAL/SERIES EXPORT - KUBIOS\n",
        ]
    ),
    fmt=st.sampled_from(_FUZZ_FORMATS),
    unit=st.sampled_from([None, "ms", "s"]),
)
def test_fuzzed_files_are_read_or_rejected_cleanly(
    tmp_path: Path, text: str, head: str, fmt: str | None, unit: str | None
) -> None:
    f = tmp_path / "fuzz.txt"
    f.write_text(head + text)
    try:
        got = read_rr_file(f, fmt, unit=unit)
    except (FileFormatError, InvalidInput):
        return
    assert got.beats > 0
    assert all(v > 0 and math.isfinite(v) for v in got.rr_ms)
    p = Pipeline()
    for r in got.records():
        feed(p, r)
    p.close()
