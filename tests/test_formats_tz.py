"""``vagus import --tz``: naive local times in a file are read in the named zone, stored as UTC.

VU-AMS R-peak times, Polar phone stamps, HRV Logger dates, Elite HRV file names and a
foreign Kubios header hold local wall-clock times with no zone. Without ``--tz`` they are
read in this machine's zone (tested by setting ``TZ``); times that state their offset
(HeartMath Unix ms, vagus's own exports) are not moved. Each stamp is turned into UTC
before stamps are compared, so a daylight-saving change inside a file moves no beat.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import zoneinfo
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vagus.cli import main
from vagus.formats.common import wall_clock
from vagus.formats.registry import read_rr_file
from vagus.store.open import open_store

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VU = DATA / "wearablehrv" / "test_vu.txt"
HEARTMATH = DATA / "wearablehrv" / "test_heartmath.csv"
RR = [812.0, 798.0, 845.0, 830.0, 790.0, 805.0, 820.0, 815.0] * 20


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared recordings are not next to the project)")
    return path


def utc(*args: int) -> float:
    return dt.datetime(*args, tzinfo=dt.UTC).timestamp()


def imported(
    capsys: pytest.CaptureFixture[str], data: Path, path: Path, *extra: str
) -> dict[str, object]:
    code = main(["import", str(path), "--data-dir", str(data), "--json", "-q", *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    result: dict[str, object] = json.loads(out)
    return result


@pytest.fixture
def machine_tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's local zone is Asia/Tokyo (UTC+9, no DST) for the test."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_vu_ams_with_explicit_zones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The first R peak is at 30-06-23/14:08:59.580 local time.
    ams = imported(capsys, tmp_path, need(VU), "--tz", "Europe/Amsterdam")  # CEST, UTC+2
    assert ams["started_unix_s"] == pytest.approx(utc(2023, 6, 30, 12, 8, 59, 580000), abs=1e-6)
    nyc = imported(capsys, tmp_path / "nyc", VU, "--tz", "America/New_York")  # EDT, UTC-4
    assert nyc["started_unix_s"] == pytest.approx(utc(2023, 6, 30, 18, 8, 59, 580000), abs=1e-6)
    store = open_store(tmp_path)
    try:
        info = store.get_session(str(ams["id"]))
        assert info.started_unix_s == pytest.approx(utc(2023, 6, 30, 12, 8, 59, 580000), abs=1e-6)
        assert "local time in Europe/Amsterdam" in info.notes
    finally:
        store.close()


def test_default_is_this_machines_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], machine_tz: None
) -> None:
    got = imported(capsys, tmp_path, need(VU))
    assert got["started_unix_s"] == pytest.approx(utc(2023, 6, 30, 5, 8, 59, 580000), abs=1e-6)


def test_polar_stamps(tmp_path: Path, capsys: pytest.CaptureFixture[str], machine_tz: None) -> None:
    f = tmp_path / "Polar_H10_RR.txt"
    t = dt.datetime(2024, 1, 15, 9, 30, 0)  # winter: Amsterdam is UTC+1
    rows = ["Phone timestamp;RR-interval [ms]"]
    for rr in RR:
        t += dt.timedelta(milliseconds=rr)
        rows.append(f"{t.isoformat(timespec='milliseconds')};{rr:g}")
    f.write_text("\n".join(rows) + "\n")
    ams = imported(capsys, tmp_path, f, "--tz", "Europe/Amsterdam")
    tokyo = imported(capsys, tmp_path / "tokyo", f)  # the machine's zone
    # The first stamp (09:30:00.812 local) is the first beat; t_s == 0 is one RR earlier.
    assert ams["started_unix_s"] == pytest.approx(utc(2024, 1, 15, 8, 30, 0), abs=0.01)
    assert tokyo["started_unix_s"] == pytest.approx(utc(2024, 1, 15, 0, 30, 0), abs=0.01)


def test_elite_hrv_name_and_hrv_logger_dates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elite = tmp_path / "2017-06-29 13-11-53.txt"
    elite.write_text("\n".join(f"{v:.0f}" for v in RR) + "\n")
    got = imported(capsys, tmp_path, elite, "--tz", "America/Los_Angeles")  # PDT, UTC-7
    assert got["started_unix_s"] == pytest.approx(utc(2017, 6, 29, 20, 11, 53), abs=1e-6)

    logger = tmp_path / "hrvlogger.csv"
    t = dt.datetime(2024, 7, 1, 8, 0, 0)
    rows = ["date, rr, since_start"]
    total = 0.0
    for rr in RR:
        t += dt.timedelta(milliseconds=rr)
        total += rr
        rows.append(f"{t.isoformat(timespec='milliseconds')},{rr:g},{total:g}")
    logger.write_text("\n".join(rows) + "\n")
    got = imported(capsys, tmp_path, logger, "--tz", "Australia/Sydney")  # AEST, UTC+10
    assert got["started_unix_s"] == pytest.approx(utc(2024, 6, 30, 22, 0, 0), abs=0.01)


def test_zoned_times_do_not_move(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = imported(capsys, tmp_path, need(HEARTMATH))  # Unix ms stamps: already UTC
    zoned = imported(capsys, tmp_path / "nz", HEARTMATH, "--tz", "Pacific/Auckland")
    assert plain["started_unix_s"] == zoned["started_unix_s"]
    kubios = tmp_path / "k.txt"
    kubios.write_text(
        "# SIGNAL/SERIES EXPORT - KUBIOS\n"
        "# Comment: RR intervals from elsewhere, started 2024-03-01T10:00:00\n"
        "# Columns: RR interval [ms]\n" + "\n".join(f"{v:g}" for v in RR) + "\n"
    )
    foreign = imported(capsys, tmp_path, kubios, "--tz", "Europe/London")  # GMT in March
    assert foreign["started_unix_s"] == pytest.approx(utc(2024, 3, 1, 10, 0, 0))
    foreign = imported(capsys, tmp_path / "in", kubios, "--tz", "Asia/Kolkata")  # UTC+5:30
    assert foreign["started_unix_s"] == pytest.approx(utc(2024, 3, 1, 4, 30, 0))


def test_unknown_zone_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["import", str(need(VU)), "--tz", "Mars/Olympus_Mons", "--data-dir", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown time zone 'Mars/Olympus_Mons'" in err and "IANA" in err


# ------------------------------------------------ daylight-saving changes (issue 13 §3)

AMS = zoneinfo.ZoneInfo("Europe/Amsterdam")
#: 32 minutes of beats across each change: spring 2024-03-31 02:00 CET -> 03:00 CEST,
#: autumn 2024-10-27 03:00 CEST -> 02:00 CET (both at 01:00 UTC).
SPRING_START = dt.datetime(2024, 3, 31, 0, 44, 0, tzinfo=dt.UTC)  # 01:44 local
AUTUMN_START = dt.datetime(2024, 10, 27, 0, 44, 0, tzinfo=dt.UTC)  # 02:44 local (CEST)
OVERNIGHT_S = 32 * 60.0


def overnight_rr() -> list[float]:
    out: list[float] = []
    k = 0
    while sum(out) < OVERNIGHT_S * 1000.0:
        out.append([812.0, 798.0, 845.0, 830.0, 790.0, 805.0][k % 6])
        k += 1
    return out


def local_beats(start: dt.datetime, rr: list[float]) -> list[dt.datetime]:
    """The phone's (or recorder's) local clock at each beat: naive Amsterdam time."""
    out = []
    t = start
    for v in rr:
        t += dt.timedelta(milliseconds=v)
        out.append(t.astimezone(AMS).replace(tzinfo=None))
    return out


def polar_overnight(path: Path, start: dt.datetime) -> Path:
    rr = overnight_rr()
    rows = ["Phone timestamp;RR-interval [ms]"]
    for when, v in zip(local_beats(start, rr), rr, strict=True):
        rows.append(f"{when.isoformat(timespec='milliseconds')};{v:g}")
    path.write_text("\n".join(rows) + "\n")
    return path


def vu_overnight(path: Path, start: dt.datetime) -> Path:
    rr = overnight_rr()
    rows = [
        "Subject Id: P1",
        "R-peak time\tibi_cumulative\tibi\tinterpolated\tLabelCode1",
        f"{start.astimezone(AMS).strftime('%d-%m-%y/%H:%M:%S.%f')[:-3]}\t0\t0\tO\t-9999",
    ]
    total = 0.0
    for when, v in zip(local_beats(start, rr), rr, strict=True):
        total += v
        stamp = when.strftime("%d-%m-%y/%H:%M:%S.%f")[:-3]
        rows.append(f"{stamp}\t{total:g}\t{v:g}\tO\t-9999")
    path.write_text("\n".join(rows) + "\n")
    return path


def hrv_logger_overnight(path: Path, start: dt.datetime) -> Path:
    rr = overnight_rr()
    rows = ["date, rr, since_start"]
    total = 0.0
    for when, v in zip(local_beats(start, rr), rr, strict=True):
        total += v
        rows.append(f"{when.isoformat(timespec='milliseconds')},{v:g},{total:g}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("start", [SPRING_START, AUTUMN_START], ids=["spring", "autumn"])
@pytest.mark.parametrize(
    ("write", "fmt"),
    [(polar_overnight, "polar"), (vu_overnight, "vu_ams"), (hrv_logger_overnight, "heartmath")],
)
def test_overnight_across_a_daylight_saving_change(
    tmp_path: Path,
    start: dt.datetime,
    write: Callable[[Path, dt.datetime], Path],
    fmt: str,
) -> None:
    """32 minutes across the change import as 32 minutes: no gap, the true UTC start.

    Before the fix Polar and VU-AMS subtracted the naive local stamps: in spring the
    file was 1 h 32 min with a 3,600 s "dropout" gap, in autumn a false "clock" gap
    (Polar) or "R-peak times must increase" (VU-AMS).
    """
    f = write(tmp_path / "overnight.txt", start)
    got = read_rr_file(f, fmt, tz=AMS)
    assert got.breaks == ()
    assert got.duration_s == pytest.approx(sum(got.rr_ms) / 1000.0, abs=1e-6)
    assert got.duration_s == pytest.approx(OVERNIGHT_S, abs=1.0)
    assert got.t_s is not None and got.t_s[-1] - got.t_s[0] < OVERNIGHT_S
    assert got.started_unix_s == pytest.approx(start.timestamp(), abs=0.01)


def test_overnight_import_stores_the_true_length(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = polar_overnight(tmp_path / "Polar_H10_RR.txt", SPRING_START)
    got = imported(capsys, tmp_path, f, "--tz", "Europe/Amsterdam")
    assert got["gaps"] == 0
    assert float(str(got["duration_s"])) == pytest.approx(OVERNIGHT_S, abs=1.0)


def test_repeated_hour_reads_the_later_reading_only_after_the_earlier() -> None:
    """An ambiguous local time is the first reading, unless the stamp before says later."""
    first_pass = dt.datetime(2024, 10, 27, 2, 30)
    early = wall_clock(first_pass, AMS)
    late = wall_clock(first_pass.replace(fold=1), AMS)
    assert late - early == 3600.0
    assert wall_clock(first_pass, AMS, near=early - 60.0) == early
    assert wall_clock(dt.datetime(2024, 10, 27, 2, 0), AMS, near=early + 29 * 60.0) == (
        late - 30 * 60.0
    )
