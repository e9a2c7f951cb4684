"""Issue 13: every import format fuzzed "as a user's files would arrive".

The real example recordings in ``../shared/data`` and valid generated files of every
format are damaged the ways files are: bytes flipped, lines cut short, deleted or
doubled, the file cut off, numbers replaced by huge, negative, non-finite or unicode
digits, dates by extreme ones. Each read either succeeds with values a recording can
hold (checked here independently of the readers' own validation, and fed through the
pipeline as ``import`` does) or raises :class:`~vagus.exceptions.FileFormatError`; never
any other exception.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vagus.core.pipeline import Pipeline
from vagus.exceptions import FileFormatError
from vagus.formats.common import EARLIEST_DATE, FUTURE_SLACK_S, MAX_RR_MS, MAX_SPAN_S, ImportedRR
from vagus.formats.kubios import write_kubios
from vagus.formats.registry import read_rr_file
from vagus.store.recorder import feed_counting

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
#: Lines of a real file kept as a fuzzing seed (the reading time stays small).
SEED_LINES = 400
RR = [812.0, 798.0, 845.0, 830.0, 790.0, 805.0, 820.0, 815.0, 1210.0, 640.0] * 12
ELITE_NAME = "2017-06-29 13-11-53.txt"
AMS = dt.timezone(dt.timedelta(hours=1))

#: What a user's damaged value may become.
BAD_VALUES = [
    "99999999999999999",
    "1e308",
    "-1e308",
    "-5",
    "0",
    "-0",
    "1e-300",
    "nan",
    "inf",
    "-inf",
    "²",
    "١٢٣",  # Arabic-Indic digits
    "８００",  # fullwidth digits
    "9" * 400,
    "",
    " ",
    "0x1F",
    "1_000",
    "9999-12-31T23:59:59",
    "0001-01-01T00:00:00",
    "2024-02-30T10:00:00",
    "31-12-99/23:59:59.999",
    "01-01-00/00:00:00.000",
    "1688126658992000",
    "\u202e800",
    "true",
    "null",
    '"800"',
]


@dataclass(frozen=True)
class Seed:
    """A valid file to damage, and how it is read (fmt None: detected)."""

    name: str
    data: bytes
    fmt: str
    unit: str | None = None
    column: str | None = None


def _real(path: Path, lines: int = SEED_LINES) -> bytes | None:
    if not path.exists():
        return None
    with path.open("rb") as fh:
        return b"".join(fh.readline() for _ in range(lines))


def _times(rr: list[float]) -> list[float]:
    out, t = [], 0.0
    for v in rr:
        t += v / 1000.0
        out.append(t)
    return out


def _polar() -> bytes:
    t = dt.datetime(2024, 3, 1, 9, 30, 0)
    rows = ["Phone timestamp;RR-interval [ms]"]
    for v in RR:
        t += dt.timedelta(milliseconds=v)
        rows.append(f"{t.isoformat(timespec='milliseconds')};{v:g}")
    return ("\n".join(rows) + "\n").encode()


def _kubios() -> bytes:
    out = io.StringIO()
    write_kubios(
        out, _times(RR), RR, title="fuzz", device="h10", session_id="ab12", started_unix_s=1.7e9
    )
    return out.getvalue().encode()


def _csv_column() -> bytes:
    pairs = zip(_times(RR), RR, strict=True)
    rows = ["t;rr_ms;hr"] + [f"{t:.3f};{v:g};{60000 / v:.1f}" for t, v in pairs]
    return ("\n".join(rows) + "\n").encode()


def _vagus_csv() -> bytes:
    head = "type,t_s,time_utc,rr_ms,nn_ms,artifact,inserted,reason,text,rate_bpm,inhale_fraction"
    rows = [head, "pacer,0.1,2024-03-01T09:30:00.100Z,,,,,,,6,0.4"]
    for k, (t, v) in enumerate(zip(_times(RR), RR, strict=True)):
        stamp = dt.datetime.fromtimestamp(1_709_285_400 + t, dt.UTC).isoformat(
            timespec="milliseconds"
        )
        rows.append(f"beat,{t!r},{stamp},{v!r},{v!r},,false,,,,")
        if k == 40:
            rows.append(f"marker,{t + 0.1!r},,,,,,,half way,,")
        if k == 60:
            rows.append(f"gap,{t + 0.1!r},,,,,,link_lost,,,")
    return ("\n".join(rows) + "\n").encode()


def _json(version: int) -> bytes:
    session = {
        "id": "ab12",
        "started_unix_s": 1.7e9,
        "ended_unix_s": 1.7e9 + 200,
        "title": "fuzz",
        "participants": ["me"],
        "device_profile": "polar_h10",
        "tags": ["calm", "evening"],
        "notes": "",
    }
    doc: dict[str, Any] = {"format": "vagus-session", "version": version, "session": session}
    pacer = {"type": "pacer", "t_s": 0.2, "rate_bpm": 6.0, "inhale_fraction": 0.4}
    if version == 2:
        doc["input"] = [
            {"kind": "control", "event": pacer},
            {"kind": "rr", "rr_ms": RR[:60], "t_s": _times(RR)[:60], "participant": "me"},
            {"kind": "gap", "t_s": _times(RR)[59], "reason": "link_lost", "participant": "me"},
            {"kind": "rr", "rr_ms": RR[60:], "t_s": None, "participant": "me"},
        ]
    else:
        doc["events"] = [pacer] + [
            {"type": "beat", "t_s": t, "rr_ms": v, "artifact": None, "nn_ms": v, "inserted": False}
            for t, v in zip(_times(RR), RR, strict=True)
        ]
    return json.dumps(doc, indent=1).encode()


def _seeds() -> list[Seed]:
    out = [
        Seed("polar", _polar(), "polar"),
        Seed("kubios", _kubios(), "kubios"),
        Seed("elite", "".join(f"{v:.0f}\n" for v in RR).encode(), "elite_hrv"),
        Seed("csv_column", _csv_column(), "csv", column="rr_ms"),
        Seed("vagus_csv", _vagus_csv(), "vagus_csv"),
        Seed("json_v2", _json(2), "json"),
        Seed("json_v1", _json(1), "json"),
    ]
    real = [
        ("heartmath_real", DATA / "wearablehrv" / "test_heartmath.csv", "heartmath", None),
        ("vu_ams_real", DATA / "wearablehrv" / "test_vu.txt", "vu_ams", None),
        ("physionet_real", DATA / "physionet_nsr2db" / "nsr001_rr_secs.txt", "physionet", None),
        ("pyhrv_as_kubios", DATA / "pyhrv" / "SampleNNISeriesShort.txt", "kubios", "ms"),
    ]
    for name, path, fmt, unit in real:
        data = _real(path)
        if data is not None:
            out.append(Seed(name, data, fmt, unit=unit))
    return out


SEEDS = _seeds()

Mutation = tuple[str, int, int, int]

mutation = st.tuples(
    st.sampled_from(["flip", "cut_line", "drop_line", "double_line", "value", "truncate"]),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(0, len(BAD_VALUES) - 1),
)

_NUMBER = re.compile(rb"-?\d+(?:[.:/-]\d+)*(?:[eE][+-]?\d+)?")


def mutate(data: bytes, edits: list[Mutation]) -> bytes:
    """``data`` damaged by each edit: (kind, where, which, value index)."""
    for kind, where, which, value in edits:
        lines = data.split(b"\n")
        k = where % max(1, len(lines))
        if kind == "flip" and data:
            pos = (where * 7919 + which) % len(data)
            data = data[:pos] + bytes([which % 256]) + data[pos + 1 :]
        elif kind == "cut_line":
            lines[k] = lines[k][: which % (len(lines[k]) + 1)]
            data = b"\n".join(lines)
        elif kind == "drop_line":
            del lines[k]
            data = b"\n".join(lines)
        elif kind == "double_line":
            lines.insert(k, lines[k])
            data = b"\n".join(lines)
        elif kind == "value":
            hits = list(_NUMBER.finditer(lines[k]))
            if hits:
                m = hits[which % len(hits)]
                bad = BAD_VALUES[value].encode()
                lines[k] = lines[k][: m.start()] + bad + lines[k][m.end() :]
                data = b"\n".join(lines)
        elif kind == "truncate":
            data = data[: where % (len(data) + 1)]
    return data


def assert_valid(got: ImportedRR) -> None:
    """What the store may hold, checked here without the readers' own code."""
    assert got.beats > 0
    for v in got.rr_ms:
        assert isinstance(v, int | float) and math.isfinite(v) and 0 < v <= MAX_RR_MS
    if got.t_s is not None:
        assert all(math.isfinite(v) and abs(v) <= MAX_SPAN_S for v in got.t_s)
        assert all(b > a for a, b in zip(got.t_s, got.t_s[1:], strict=False))
    latest = time.time() + FUTURE_SLACK_S
    for when in (got.started_unix_s, got.ended_unix_s):
        if when is not None:
            assert EARLIEST_DATE.timestamp() <= when <= latest
    assert all(isinstance(t, str) and t.strip() for t in got.tags)
    # As `vagus import` does before storing: the pipeline takes every record.
    pipeline = Pipeline()
    for record in got.records():
        feed_counting(pipeline, record)
        pipeline.events_received()
    pipeline.close()


def read_damaged(tmp: Path, seed: Seed, data: bytes, detect: bool) -> None:
    name = ELITE_NAME if seed.fmt == "elite_hrv" else f"{seed.name}.txt"
    f = tmp / name
    f.write_bytes(data)
    try:
        got = read_rr_file(
            f,
            None if detect else seed.fmt,
            unit=seed.unit,
            column=seed.column,
            tz=AMS if seed.name == "polar" else None,
        )
    except FileFormatError as exc:
        assert str(exc), "an error says what was wrong"
        return
    assert_valid(got)


def test_every_seed_reads_as_it_is(tmp_path: Path) -> None:
    """The undamaged seeds are valid files (else the fuzzing would test nothing)."""
    assert len(SEEDS) >= 7
    for seed in SEEDS:
        f = tmp_path / (ELITE_NAME if seed.fmt == "elite_hrv" else f"{seed.name}.txt")
        f.write_bytes(seed.data)
        got = read_rr_file(f, seed.fmt, unit=seed.unit, column=seed.column)
        assert_valid(got)


_fuzz = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("seed", SEEDS, ids=[s.name for s in SEEDS])
@_fuzz
@given(edits=st.lists(mutation, min_size=1, max_size=4), detect=st.booleans())
def test_damaged_files_are_read_or_refused_cleanly(
    tmp_path: Path, seed: Seed, edits: list[Mutation], detect: bool
) -> None:
    read_damaged(tmp_path, seed, mutate(seed.data, edits), detect)


@pytest.mark.parametrize("seed", SEEDS, ids=[s.name for s in SEEDS])
@_fuzz
@given(
    line=st.integers(0, 10**6),
    value=st.one_of(
        st.sampled_from(BAD_VALUES),
        st.floats().map(repr),
        st.integers(-(10**30), 10**30).map(str),
        st.text(alphabet=st.characters(categories=["Nd", "No", "Zs", "Pd"]), max_size=6),
    ),
)
def test_one_bad_value_is_refused_or_valid(
    tmp_path: Path, seed: Seed, line: int, value: str
) -> None:
    """One number anywhere in the file replaced: the commonest damage of a hand edit."""
    lines = seed.data.split(b"\n")
    k = line % len(lines)
    hits = list(_NUMBER.finditer(lines[k]))
    if hits:
        m = hits[line % len(hits)]
        lines[k] = lines[k][: m.start()] + value.encode() + lines[k][m.end() :]
    read_damaged(tmp_path, seed, b"\n".join(lines), detect=False)


@_fuzz
@given(
    stamp=st.one_of(
        st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 30)),
        st.datetimes(min_value=dt.datetime(2020, 3, 28), max_value=dt.datetime(2020, 3, 30)),
    ),
    zone=st.sampled_from([None, "Europe/Amsterdam", "Pacific/Kiritimati", "Etc/GMT+12"]),
)
def test_extreme_dates_in_every_dated_format(
    tmp_path: Path, stamp: dt.datetime, zone: str | None
) -> None:
    """A date anywhere from year 1 to 9999, in a zone far east, far west or with DST."""
    import zoneinfo

    tz = zoneinfo.ZoneInfo(zone) if zone else None
    cases: list[tuple[str, Callable[[], str], str]] = [
        (
            "polar.txt",
            lambda: (
                "Phone timestamp;RR-interval [ms]\n"
                + "".join(
                    f"{(stamp + dt.timedelta(seconds=0.8 * i)).isoformat()};800\n"
                    for i in range(20)
                )
            ),
            "polar",
        ),
        (
            "hm.csv",
            lambda: (
                "date, rr, since_start\n"
                + "".join(f"{stamp.isoformat()},800,{800 * (i + 1)}\n" for i in range(20))
            ),
            "heartmath",
        ),
        (
            "k.txt",
            lambda: (
                "# SIGNAL/SERIES EXPORT - KUBIOS\n"
                f"# Comment: RR intervals from elsewhere, started {stamp.isoformat()}\n"
                "# Columns: RR interval [ms]\n" + "800\n" * 20
            ),
            "kubios",
        ),
        (
            "vu.txt",
            lambda: (
                "Subject Id: P1\nR-peak time\tibi\n"
                + "".join(
                    f"{(stamp + dt.timedelta(seconds=0.8 * i)).strftime('%d-%m-%y/%H:%M:%S.%f')}"
                    f"\t{0 if i == 0 else 800}\n"
                    for i in range(20)
                )
            ),
            "vu_ams",
        ),
        (
            f"{stamp.year:04d}-{stamp.month:02d}-{stamp.day:02d} "
            f"{stamp.hour:02d}-{stamp.minute:02d}-{stamp.second:02d}.txt",
            lambda: "800\n" * 20,
            "elite_hrv",
        ),
    ]
    for name, text, fmt in cases:
        f = tmp_path / name
        f.write_text(text())
        try:
            got = read_rr_file(f, fmt, tz=tz)
        except FileFormatError:
            continue
        assert_valid(got)
