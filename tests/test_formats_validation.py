"""Issue 13 §1: one validation layer every reader goes through, before anything is stored.

Values outside what a recording can hold (an RR of 1e17 ms or 1e308, a stamp in µs, a
date in the year 9999 or 1, a pacer rate of 1e308, tags that are no strings) are
FileFormatErrors naming the file and the line; nothing reaches the store, and the
commands that list the store keep working. The JSON round trip keeps a session's tags.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from vagus.cli import main
from vagus.core.events import Marker, PacerChange
from vagus.exceptions import FileFormatError
from vagus.formats.common import MAX_RR_MS, ImportedRR, date_range_text
from vagus.formats.registry import read_rr_file
from vagus.store.base import RRRecord
from vagus.store.open import open_store

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HEARTMATH = DATA / "wearablehrv" / "test_heartmath.csv"
VU = DATA / "wearablehrv" / "test_vu.txt"
RR = [812.0, 798.0, 845.0, 830.0, 790.0, 805.0, 820.0, 815.0] * 10
HUGE = "99999999999999999"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared recordings are not next to the project)")
    return path


def heartmath_rows(rr: list[str], start_ms: int = 1_688_126_658_992) -> str:
    rows = ["timestamp, rr, since_start"]
    t = start_ms
    total = 0.0
    for v in rr:
        t += 800
        total += 800
        rows.append(f"{t},{v},{total:g}")
    return "\n".join(rows) + "\n"


def polar_rows(stamps_and_rr: list[tuple[str, str]]) -> str:
    rows = ["Phone timestamp;RR-interval [ms]", *(f"{s};{v}" for s, v in stamps_and_rr)]
    return "\n".join(rows) + "\n"


def polar_stamps(n: int) -> list[str]:
    t = dt.datetime(2024, 3, 1, 9, 30, 0)
    out = []
    for _ in range(n):
        t += dt.timedelta(milliseconds=800)
        out.append(t.isoformat(timespec="milliseconds"))
    return out


def import_error(capsys: pytest.CaptureFixture[str], data: Path, path: Path) -> str:
    code = main(["import", str(path), "--data-dir", str(data), "-q"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err
    return err


# ------------------------------------------------------------- RR beyond any RR


@pytest.mark.parametrize("value", [HUGE, "1e308", "60001"])
def test_heartmath_rr_beyond_any_rr_names_the_line(tmp_path: Path, value: str) -> None:
    f = tmp_path / "hm.csv"
    rr = [f"{v:g}" for v in RR]
    rr[10] = value
    f.write_text(heartmath_rows(rr))
    with pytest.raises(FileFormatError, match=r"^hm\.csv: line 12: RR interval .*\(over 60 s\)"):
        read_rr_file(f)


def test_heartmath_row_1e308_with_its_since_start(tmp_path: Path) -> None:
    """The issue's row ``1688126676363,1e308,24572`` in the real file."""
    lines = need(HEARTMATH).read_text().splitlines()
    lines[10] = "1688126676363,1e308,24572"
    f = tmp_path / "hm.csv"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(FileFormatError, match=r"hm\.csv: line 11: RR interval 1e\+308 ms"):
        read_rr_file(f)


def test_polar_rr_beyond_any_rr_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "Polar_H10_RR.txt"
    pairs = [(s, f"{v:g}") for s, v in zip(polar_stamps(len(RR)), RR, strict=True)]
    pairs[5] = (pairs[5][0], HUGE)
    f.write_text(polar_rows(pairs))
    with pytest.raises(FileFormatError, match=r"line 7: RR interval 1e\+17 ms"):
        read_rr_file(f, "polar")


def test_csv_column_rr_beyond_any_rr_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    values = [f"{v:g}" for v in RR]
    values[3] = HUGE
    f.write_text("beat,rr_ms\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    with pytest.raises(FileFormatError, match=r"t\.csv: line 5: RR interval 1e\+17 ms"):
        read_rr_file(f, "csv", column="rr_ms")


def test_values_between_physiology_and_the_cap_are_kept(tmp_path: Path) -> None:
    """A 3 s pause is the corrector's ``range`` artifact, not a file error (as plain)."""
    f = tmp_path / "hm.csv"
    rr = [f"{v:g}" for v in RR]
    rr[10] = "3000"
    f.write_text(heartmath_rows(rr))
    assert read_rr_file(f).rr_ms[10] == 3000.0


# ------------------------------------------------------------- dates out of range


def test_heartmath_stamps_in_microseconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``sed -E '3,$ s/^([0-9]+),/\\1000,/'``: import fails naming line 3; sessions works."""
    lines = need(HEARTMATH).read_text().splitlines()
    lines[2:] = [re.sub(r"^([0-9]+),", r"\g<1>000,", ln) for ln in lines[2:]]
    f = tmp_path / "hm_us.csv"
    f.write_text("\n".join(lines) + "\n")
    data = tmp_path / "store"
    err = import_error(capsys, data, f)
    assert "hm_us.csv: line 3: timestamp 1688126658992000 looks like Unix microseconds" in err
    assert "divide the stamps by 1000" in err
    assert main(["sessions", "--data-dir", str(data)]) == 0
    capsys.readouterr()
    store = open_store(data)
    try:
        assert store.list_sessions() == []
    finally:
        store.close()


def test_the_plausible_dates_are_stated() -> None:
    assert date_range_text(dt.datetime(2026, 12, 2, 4, 0, tzinfo=dt.UTC).timestamp()) == (
        "1990-01-01 .. 2026-12-03"
    )


@pytest.mark.parametrize(
    ("stamp", "reason"),
    [
        ("1688126676363²", "neither Unix ms nor an ISO date-time"),
        ("9" * 400, "has 400 digits: Unix ms has 13"),
        ("0001-01-01T00:00:00", "outside the plausible dates"),
        ("9999-12-31T23:59:59", "outside the plausible dates"),
        ("0", "(Unix ms) = 1970-01-01T00:00:00 UTC is outside the plausible dates"),
        ("99999999999999999", "(after the year 9999) is outside the plausible dates"),
    ],
)
def test_heartmath_stamps_that_are_no_time(tmp_path: Path, stamp: str, reason: str) -> None:
    f = tmp_path / "hm.csv"
    text = heartmath_rows([f"{v:g}" for v in RR]).splitlines()
    text[4] = f"{stamp},800,4000"
    f.write_text("\n".join(text) + "\n")
    for tz in (None, dt.timezone(dt.timedelta(hours=14)), dt.timezone(dt.timedelta(hours=-12))):
        with pytest.raises(FileFormatError, match=rf"^hm\.csv: line 5: .*{re.escape(reason)}"):
            read_rr_file(f, "heartmath", tz=tz)


def test_polar_stamp_in_the_year_9999(tmp_path: Path) -> None:
    f = tmp_path / "Polar_H10_RR.txt"
    pairs = [(s, f"{v:g}") for s, v in zip(polar_stamps(len(RR)), RR, strict=True)]
    pairs[40] = ("9999-12-31T23:59:59.000", "800")
    f.write_text(polar_rows(pairs))
    with pytest.raises(FileFormatError, match=r"line 42: phone timestamp 9999-12-31"):
        read_rr_file(f, "polar")


def test_kubios_header_date_in_the_year_9999(tmp_path: Path) -> None:
    f = tmp_path / "k.txt"
    f.write_text(
        "# SIGNAL/SERIES EXPORT - KUBIOS\n"
        "# File: x\n"
        "# Comment: RR intervals exported by vagus 0.1 from session ab, started "
        "9999-12-31T00:00:00.000+00:00\n"
        "# Columns: time [s]\tRR interval [ms]\n"
        + "".join(f"{t:.3f}\t{v:g}\n" for t, v in zip(_cumsum_s(RR), RR, strict=True))
    )
    with pytest.raises(FileFormatError, match=r"^k\.txt: line 3: the header's start time"):
        read_rr_file(f)


def test_vu_ams_r_peak_in_2068(tmp_path: Path) -> None:
    """``dd-mm-yy`` reads 68 as 2068: beyond this machine's clock."""
    lines = need(VU).read_text().splitlines()
    lines[50] = re.sub(r"^30-06-23", "30-06-68", lines[50])
    f = tmp_path / "vu.txt"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(FileFormatError, match=r"^vu\.txt: line 51: R-peak time 2068-06-30"):
        read_rr_file(f, "vu_ams")


def test_elite_hrv_name_dated_9999(tmp_path: Path) -> None:
    f = tmp_path / "9999-12-31 10-00-00.txt"
    f.write_text("".join(f"{v:.0f}\n" for v in RR))
    with pytest.raises(FileFormatError, match="the start time in the file name 9999-12-31"):
        read_rr_file(f, "elite_hrv")


def test_vagus_csv_time_utc_in_the_year_9999(tmp_path: Path) -> None:
    f = tmp_path / "s.csv"
    head = "type,t_s,time_utc,rr_ms,nn_ms,artifact,inserted,reason,text,rate_bpm,inhale_fraction"
    f.write_text(f"{head}\nbeat,0.8,9999-01-01T00:00:00.800Z,800,800,,false,,,,\n")
    with pytest.raises(FileFormatError, match=r"^s\.csv: line 2: the session start 9999"):
        read_rr_file(f)


def test_vagus_csv_pacer_rate_out_of_range(tmp_path: Path) -> None:
    f = tmp_path / "s.csv"
    head = "type,t_s,time_utc,rr_ms,nn_ms,artifact,inserted,reason,text,rate_bpm,inhale_fraction"
    beats = "".join(f"beat,{0.8 * (i + 1):.1f},,800,800,,false,,,,\n" for i in range(30))
    f.write_text(f"{head}\npacer,0.5,,,,,,,,1e308,0.4\n{beats}")
    with pytest.raises(FileFormatError, match=r"^s\.csv: line 2: pacer rate 1e\+308"):
        read_rr_file(f)


def _cumsum_s(rr: list[float]) -> list[float]:
    out, t = [], 0.0
    for v in rr:
        t += v / 1000.0
        out.append(t)
    return out


# ------------------------------------------------------------------- JSON


def json_doc(**session: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"id": "ab12", "started_unix_s": 1.7e9, "participants": ["me"]}
    info.update(session)
    return {
        "format": "vagus-session",
        "version": 2,
        "session": info,
        "input": [{"kind": "rr", "rr_ms": RR, "t_s": None, "participant": "me"}],
    }


def write_json(tmp_path: Path, doc: dict[str, Any]) -> Path:
    f = tmp_path / "s.json"
    f.write_text(json.dumps(doc))
    return f


@pytest.mark.parametrize("started", [1e308, -1e12, 0, 4e9])
def test_json_start_out_of_range(tmp_path: Path, started: float) -> None:
    f = write_json(tmp_path, json_doc(started_unix_s=started))
    with pytest.raises(FileFormatError, match=r"s\.json: session: started_unix_s .* plausible"):
        read_rr_file(f)


def test_json_end_before_start(tmp_path: Path) -> None:
    f = write_json(tmp_path, json_doc(ended_unix_s=1.6e9))
    with pytest.raises(FileFormatError, match=r"ended_unix_s .* is before started_unix_s"):
        read_rr_file(f)


@pytest.mark.parametrize("rate", [1e308, -5, 0, 41, "6"])
def test_json_pacer_rate_as_pacer_n(tmp_path: Path, rate: object) -> None:
    doc = json_doc()
    pacer = {"type": "pacer", "t_s": 0.5, "rate_bpm": rate, "inhale_fraction": 0.4}
    doc["input"].insert(0, {"kind": "control", "event": pacer})
    f = write_json(tmp_path, doc)
    with pytest.raises(FileFormatError, match=r"s\.json: input\[0\]: pacer rate .* outside 1-40"):
        read_rr_file(f)


def test_json_pacer_rates_in_range_and_off_are_kept(tmp_path: Path) -> None:
    doc = json_doc()
    for k, rate in enumerate((1, 6.5, 40, None)):
        ev = {"type": "pacer", "t_s": 0.1 * (k + 1), "rate_bpm": rate, "inhale_fraction": 0.4}
        doc["input"].insert(k, {"kind": "control", "event": ev})
    got = read_rr_file(write_json(tmp_path, doc))
    assert [m.rate_bpm for m in got.markers if isinstance(m, PacerChange)] == [1, 6.5, 40, None]


@pytest.mark.parametrize("tags", ["a", [{"a": 1}], [""], [1], {"a": "b"}])
def test_json_tags_must_be_strings(tmp_path: Path, tags: object) -> None:
    f = write_json(tmp_path, json_doc(tags=tags))
    with pytest.raises(FileFormatError, match=r"s\.json: session: tags must be a list"):
        read_rr_file(f)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"kind": "rr", "rr_ms": [800, 1e17], "t_s": None}, "at most 60000 ms"),
        ({"kind": "rr", "rr_ms": [800, 800], "t_s": [1e18, 1e18 + 1]}, "beyond any session"),
        ({"kind": "gap", "t_s": 1e300, "reason": "x"}, "beyond any session"),
        ({"kind": "packet", "t_arrival_s": -1e300, "payload": "1000"}, "beyond any session"),
        ({"kind": "rr", "rr_ms": [800, 10**400], "t_s": None}, "must be finite"),
    ],
)
def test_json_input_records_out_of_range(
    tmp_path: Path, record: dict[str, Any], reason: str
) -> None:
    doc = json_doc()
    doc["input"].append(record)
    f = write_json(tmp_path, doc)
    with pytest.raises(FileFormatError, match=rf"s\.json: input\[1\]: .*{re.escape(reason)}"):
        read_rr_file(f)


def test_json_round_trip_keeps_tags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "store"
    store = open_store(data)
    try:
        info = store.create_session(
            title="tagged", source="import:test", started_unix_s=1.7e9, tags=["calm", "evening"]
        )
        store.append_many(info.id, [RRRecord(rr_ms=tuple(RR), t_s=None)])
        store.end_session(info.id)
    finally:
        store.close()
    out = tmp_path / "s.json"
    code = main(["export", info.id, "--format", "json", "-o", str(out), "--data-dir", str(data)])
    assert code == 0
    capsys.readouterr()
    assert read_rr_file(out).tags == ("calm", "evening")
    other = tmp_path / "other"
    assert main(["import", str(out), "--data-dir", str(other), "--json", "-q"]) == 0
    sid = json.loads(capsys.readouterr().out)["id"]
    store = open_store(other)
    try:
        assert store.get_session(sid).tags == ("calm", "evening")
    finally:
        store.close()


# ------------------------------------------------------ the layer itself


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"rr_ms": (800.0, 1e17)}, "RR value 2: RR interval 1e+17 ms"),
        ({"rr_ms": (800.0, math.nan)}, "RR value 2: RR interval nan is not a finite number"),
        ({"rr_ms": (800.0, -1.0)}, "RR value 2: RR interval -1 ms"),
        ({"rr_ms": (800.0, 800.0), "t_s": (0.8, math.inf)}, "beat time inf"),
        ({"rr_ms": (800.0, 800.0), "t_s": (0.8, 0.8)}, "beat times must increase"),
        ({"rr_ms": (800.0, 800.0), "t_s": (1e18, 1e18 + 1)}, "more than 400 days"),
        ({"rr_ms": (800.0,) * 2, "t_s": (0.8, 410 * 86_400.0)}, "more than 400 days"),
        (
            {"started_unix_s": 1e308},
            "the start Unix time 1e+308 s (after the year 9999) is outside",
        ),
        ({"started_unix_s": -1e12}, "the start"),
        ({"started_unix_s": math.nan}, "the start"),
        ({"ended_unix_s": 253402214400.0}, "the end 9999-12-31T00:00:00 UTC is outside"),
        ({"started_unix_s": 1.7e9, "ended_unix_s": 1.6e9}, "the end is before the start"),
        ({"markers": (PacerChange(t_s=1.0, rate_bpm=-5.0),)}, "pacer rate -5.0"),
        ({"markers": (PacerChange(t_s=1.0, rate_bpm=6.0, inhale_fraction=2),)}, "inhale"),
        ({"markers": (Marker(t_s=math.nan, text="x"),)}, "marker time nan"),
        ({"tags": ("ok", "")}, "tag '' is not a tag"),
    ],
)
def test_every_imported_rr_is_validated(fields: dict[str, Any], reason: str) -> None:
    """Whatever a reader builds goes through the check: ImportedRR refuses it itself."""
    values: dict[str, Any] = {"format": "test", "rr_ms": (800.0, 810.0), "source": "/x/f.txt"}
    values.update(fields)
    with pytest.raises(FileFormatError) as exc:
        ImportedRR(**values)
    assert str(exc.value).startswith("f.txt: ")
    assert reason in str(exc.value)


def test_validation_names_the_line_the_reader_recorded() -> None:
    with pytest.raises(FileFormatError, match=r"^f\.txt: line 17: RR interval 1e\+17 ms"):
        ImportedRR(format="t", rr_ms=(800.0, 1e17), source="f.txt", rr_lines=(16, 17))


def test_a_session_up_to_now_is_fine() -> None:
    got = ImportedRR(
        format="t",
        rr_ms=(800.0, MAX_RR_MS),
        started_unix_s=dt.datetime.now(dt.UTC).timestamp() - 61.0,
        tags=("a",),
    )
    assert got.beats == 2
