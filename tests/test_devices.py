"""Device profiles (devices/*.toml): loading, validation messages, name matching, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vagus.cli import main
from vagus.devices import (
    DeviceProfile,
    load_profile,
    load_profiles,
    match_profile,
    normalise_uuid,
)
from vagus.exceptions import DeviceProfileError

DEVICES_DIR = Path(__file__).resolve().parents[1] / "devices"
HRS = "0000180d-0000-1000-8000-00805f9b34fb"
HRM = "00002a37-0000-1000-8000-00805f9b34fb"

REQUIRED_MODELS = {
    "generic",
    "polar_h10",
    "polar_h9",
    "polar_h7",
    "garmin_hrm_pro",
    "garmin_hrm_dual",
    "wahoo_tickr",
    "wahoo_tickr_x",
    "coospo_h808s",
    "decathlon_dual_hr",
    "suunto_smart_sensor",
    "movesense",
    "polar_verity_sense",
    "polar_oh1",
}


def test_all_shipped_profiles_load() -> None:
    profiles = load_profiles(DEVICES_DIR)
    ids = [p.id for p in profiles]
    assert len(ids) == len(set(ids))
    assert set(ids) >= REQUIRED_MODELS
    for p in profiles:
        assert p.source_path is not None and p.source_path.stem == p.id
        assert HRS in p.gatt.services, p.id
        assert p.gatt.heart_rate_measurement == HRM, p.id
        assert p.silent_timeout_s > 0 and p.settle_s >= 0
        assert p.rr_quality and p.quirks, p.id
        for q in p.quirks:
            assert q.summary and q.hint, (p.id, q.id)


def test_default_folder_is_the_repository_devices_folder() -> None:
    assert {p.id for p in load_profiles()} == {p.id for p in load_profiles(DEVICES_DIR)}


def test_optical_sensors_say_rr_is_not_usable() -> None:
    profiles = {p.id: p for p in load_profiles(DEVICES_DIR)}
    for pid in ("polar_verity_sense", "polar_oh1"):
        p = profiles[pid]
        assert p.sensor == "optical_ppg"
        assert not p.rr_reliable
        assert "smooth" in p.rr_quality.lower()
    for p in profiles.values():
        if p.sensor == "chest_ecg":
            assert p.rr_available and p.rr_reliable, p.id


def test_polar_h10_capabilities() -> None:
    h10 = match_profile("Polar H10 1A2B3C4D", load_profiles(DEVICES_DIR))
    assert h10.contact_supported and h10.advertises_only_when_worn
    assert not h10.hr_value_reliable  # the 1 Hz HR value overestimates (BLE.md)
    assert h10.pmd is not None
    assert h10.pmd.service == "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
    assert "ecg" in h10.pmd.measurement_types and h10.pmd.ecg_sample_rate_hz == 130
    assert {"advertises_only_when_worn", "link_drop_after_removal"} <= {q.id for q in h10.quirks}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Polar H10 1A2B3C4D", "polar_h10"),
        ("polar h10 1a2b3c4d", "polar_h10"),
        ("Polar H9 0A0B0C0D", "polar_h9"),
        ("Polar H7 12345678", "polar_h7"),
        ("HRM-Pro:123456", "garmin_hrm_pro"),
        ("HRM-Dual:654321", "garmin_hrm_dual"),
        ("TICKR 1A2B", "wahoo_tickr"),
        ("TICKR X 1234", "wahoo_tickr_x"),
        ("TICKR FIT 1234", "generic"),  # an optical armband: not the chest strap's profile
        ("H808S 02345", "coospo_h808s"),
        ("Decathlon Dual HR", "decathlon_dual_hr"),
        ("Suunto Smart Sensor", "suunto_smart_sensor"),
        ("Movesense 174630000192", "movesense"),
        ("Polar Sense B5D2E02A", "polar_verity_sense"),
        ("Polar OH1 8A2B3C4D", "polar_oh1"),
        ("Some Strap 42", "generic"),
        ("", "generic"),
        (None, "generic"),
    ],
)
def test_match_profile_by_name(name: str | None, expected: str) -> None:
    assert match_profile(name, load_profiles(DEVICES_DIR)).id == expected


def test_match_without_generic_profile_is_an_error() -> None:
    profiles = [p for p in load_profiles(DEVICES_DIR) if p.id != "generic"]
    assert match_profile("Polar H10 1", profiles).id == "polar_h10"
    with pytest.raises(DeviceProfileError, match="generic"):
        match_profile("Unknown", profiles)


def test_normalise_uuid() -> None:
    assert normalise_uuid("180D") == HRS
    assert normalise_uuid("0x2a37") == HRM
    assert normalise_uuid(HRS.upper()) == HRS
    with pytest.raises(ValueError):
        normalise_uuid("180")


# ----------------------------------------------------------------------- bad profiles


def _valid_text() -> str:
    return (DEVICES_DIR / "polar_h10.toml").read_text()


def _write(tmp_path: Path, text: str, stem: str = "polar_h10") -> Path:
    path = tmp_path / f"{stem}.toml"
    path.write_text(text)
    return path


def _replace_line(text: str, key: str, new_line: str | None) -> str:
    """Replace (or drop, if None) the first top-level/section line starting with ``key =``."""
    out, done = [], False
    for line in text.splitlines():
        if not done and line.startswith(f"{key} ="):
            done = True
            if new_line is not None:
                out.append(new_line)
            continue
        out.append(line)
    assert done, key
    return "\n".join(out) + "\n"


BAD_CASES = [
    ("missing id", lambda t: _replace_line(t, "id", None), "id"),
    ("id not the file name", lambda t: _replace_line(t, "id", 'id = "polar_h9"'), "id"),
    ("id not a slug", lambda t: _replace_line(t, "id", 'id = "Polar H10"'), "id"),
    ("schema", lambda t: _replace_line(t, "schema", "schema = 2"), "schema"),
    ("settle_s not a number", lambda t: _replace_line(t, "settle_s", 'settle_s = "2"'), "settle_s"),
    ("negative settle_s", lambda t: _replace_line(t, "settle_s", "settle_s = -1.0"), "settle_s"),
    (
        "zero silent timeout",
        lambda t: _replace_line(t, "silent_timeout_s", "silent_timeout_s = 0"),
        "silent_timeout_s",
    ),
    (
        "bool as string",
        lambda t: _replace_line(t, "contact_supported", 'contact_supported = "yes"'),
        "contact_supported",
    ),
    ("bad sensor kind", lambda t: _replace_line(t, "sensor", 'sensor = "wrist"'), "sensor"),
    (
        "patterns not a list",
        lambda t: _replace_line(t, "name_patterns", 'name_patterns = "Polar*"'),
        "name_patterns",
    ),
    (
        "bad regex",
        lambda t: _replace_line(t, "name_patterns", 'name_patterns = ["re:Polar (H10"]'),
        "name_patterns[0]",
    ),
    (
        "unknown top-level key",
        lambda t: t.replace("schema = 1", "schema = 1\nsetle_s = 2"),
        "setle_s",
    ),
    (
        "bad service uuid",
        lambda t: _replace_line(t, "services", 'services = ["180d", "xyz"]'),
        "gatt.services[1]",
    ),
    (
        "missing hrm characteristic",
        lambda t: _replace_line(t, "heart_rate_measurement", None),
        "gatt.heart_rate_measurement",
    ),
    (
        "bad pmd type",
        lambda t: _replace_line(t, "measurement_types", 'measurement_types = ["ecg", "emg"]'),
        "pmd.measurement_types",
    ),
    (
        "bad pmd uuid",
        lambda t: _replace_line(t, "control_point", 'control_point = "fb005c81"'),
        "pmd.control_point",
    ),
    (
        "quirk without hint",
        lambda t: t.replace("hint = ", "hunt = ", 1),
        "quirks[0].hint",
    ),
    (
        "quirk platform",
        lambda t: t.replace("\nhint = ", '\nplatforms = ["amiga"]\nhint = ', 1),
        "quirks[0].platforms",
    ),
    (
        "reliable RR without RR",
        lambda t: _replace_line(t, "rr_available", "rr_available = false"),
        "rr_reliable",
    ),
]


@pytest.mark.parametrize(("case", "mutate", "field"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_profile_names_file_and_field(
    tmp_path: Path, case: str, mutate: object, field: str
) -> None:
    assert callable(mutate)
    path = _write(tmp_path, mutate(_valid_text()))
    with pytest.raises(DeviceProfileError) as info:
        load_profile(path)
    message = str(info.value)
    assert str(path) in message, message
    assert f"field '{field}'" in message, message
    # The same error through load_profiles (the whole folder fails, naming the file).
    with pytest.raises(DeviceProfileError, match=r"polar_h10\.toml"):
        load_profiles(tmp_path)


def test_valid_copy_loads(tmp_path: Path) -> None:
    path = _write(tmp_path, _valid_text())
    profile = load_profile(path)
    assert isinstance(profile, DeviceProfile) and profile.id == "polar_h10"


def test_not_toml_names_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "id = [unclosed\n")
    with pytest.raises(DeviceProfileError, match="not valid TOML") as info:
        load_profile(path)
    assert str(path) in str(info.value)


def test_empty_or_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DeviceProfileError, match="no device profiles"):
        load_profiles(tmp_path)
    with pytest.raises(DeviceProfileError, match="does not exist"):
        load_profiles(tmp_path / "nope")


# ----------------------------------------------------------------------- the command


def test_cli_devices_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    for pid in REQUIRED_MODELS:
        assert pid in out
    assert "Polar H10 *" in out


def test_cli_devices_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["id"] for r in rows} == {p.id for p in load_profiles()}
    h10 = next(r for r in rows if r["id"] == "polar_h10")
    assert h10["pmd"]["measurement_types"] == ["ecg", "acc"]
    assert h10["gatt"]["heart_rate_measurement"] == HRM


def test_cli_devices_bad_folder_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, _replace_line(_valid_text(), "settle_s", "settle_s = -3"))
    assert main(["devices", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "settle_s" in err and "polar_h10.toml" in err
