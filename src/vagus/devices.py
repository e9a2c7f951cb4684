"""Device profiles: what vagus knows about each strap model, as data (``devices/*.toml``).

One TOML file per strap model describes how to recognise it (patterns on the advertised
name), which GATT services and characteristics it uses, what it sends (contact bit, RR
quality), its known quirks with a hint for the user, an optional Polar Measurement Data
(PMD) capability, and the *behaviour fields* the code branches on (``settle_s``,
``silent_timeout_s``, ``rr_reliable``, …). Code branches on those fields, never on device
names (BrainFlow's board table is the model: capabilities as data).

Straps are found by the advertised Heart Rate Service UUID, never by name (BLE.md); the
name only picks a profile, and :func:`match_profile` falls back to the ``generic`` profile,
which serves any standard strap.

Where the files live: ``devices/`` at the top of the source tree is the one source of
truth. A source checkout or an editable install reads it there (found relative to this
module); a regular ``pip install .`` also installs the same files as data files into
``<prefix>/share/vagus/devices`` (``[tool.setuptools.data-files]`` in ``pyproject.toml``),
which is the fallback. ``VAGUS_DEVICES_DIR`` overrides both.

File format (every key is checked; unknown keys are errors, to catch typos)::

    schema = 1
    id = "polar_h10"                 # must equal the file name without .toml
    display_name = "Polar H10"
    vendor = "Polar"
    sensor = "chest_ecg"             # chest_ecg | optical_ppg | ecg_module
    name_patterns = ["Polar H10 *"]  # glob on the advertised name, or "re:<regex>"
    contact_supported = true         # the model sets flags bit 2 (packet flags still win)
    rr_available = true              # RR intervals in 0x2A37
    rr_reliable = true               # RR good enough for HRV (beat-to-beat, ECG-derived)
    rr_quality = "..."               # the note shown to the user
    hr_value_reliable = false        # the strap's own HR field can be trusted
    settle_s = 2.0                   # discard packets this long after each (re)connect
    silent_timeout_s = 5.0           # no packet this long = link presumed lost
    advertises_only_when_worn = true
    notes = "..."                    # optional

    [gatt]
    services = ["180d", "180f"]      # 16-bit short forms or full 128-bit UUIDs
    heart_rate_measurement = "2a37"
    body_sensor_location = "2a38"    # optional
    battery_level = "2a19"           # optional

    [pmd]                            # optional: Polar Measurement Data
    service = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
    control_point = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
    data = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"
    measurement_types = ["ecg", "acc"]
    ecg_sample_rate_hz = 130         # optional

    [[quirks]]
    id = "nonsense_rr_after_connect"
    summary = "..."
    hint = "..."
    platforms = ["linux"]            # optional; empty = all

UUIDs are normalised to lower-case 128-bit strings (16-bit forms expanded on the
Bluetooth base UUID ``0000xxxx-0000-1000-8000-00805f9b34fb``).
"""

from __future__ import annotations

import fnmatch
import os
import re
import site
import sys
import sysconfig
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from vagus.core.hrm import BLUETOOTH_BASE_UUID  # one definition, re-exported
from vagus.exceptions import DeviceProfileError

__all__ = [
    "BLUETOOTH_BASE_UUID",
    "PMD_MEASUREMENT_TYPES",
    "SENSOR_KINDS",
    "DeviceProfile",
    "GattProfile",
    "PmdCapability",
    "Quirk",
    "default_profiles_dir",
    "load_profile",
    "load_profiles",
    "match_profile",
    "normalise_uuid",
]

#: Kinds of sensor a profile may declare.
SENSOR_KINDS = ("chest_ecg", "optical_ppg", "ecg_module")

#: Polar Measurement Data types (BLE.md: ECG 0, PPG 1, ACC 2, PPI 3; more on newer sensors).
PMD_MEASUREMENT_TYPES = ("ecg", "ppg", "acc", "ppi", "gyro", "mag")

_PLATFORMS = ("linux", "windows", "macos")
_SCHEMA = 1
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_UUID16_RE = re.compile(r"^[0-9a-f]{4}$")
_UUID128_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_REGEX_PREFIX = "re:"


def normalise_uuid(text: str) -> str:
    """Return ``text`` as a lower-case 128-bit UUID string.

    Accepts a 16-bit short form (``"180D"``, ``"0x180d"``) or a full 128-bit UUID.

    Raises:
        ValueError: ``text`` is neither.
    """
    value = text.strip().lower()
    if value.startswith("0x"):
        value = value[2:]
    if _UUID16_RE.match(value):
        return BLUETOOTH_BASE_UUID.format(value)
    if _UUID128_RE.match(value):
        return value
    raise ValueError(
        f"{text!r} is not a UUID: use a 16-bit short form like '180d' or a full "
        "128-bit UUID like '0000180d-0000-1000-8000-00805f9b34fb'"
    )


@dataclass(frozen=True, slots=True)
class Quirk:
    """A known problem of a strap model or its stack, and what the user can do about it.

    Attributes:
        id: a short slug (``nonsense_rr_after_connect``).
        summary: what happens.
        hint: what to do, addressed to the user.
        platforms: the operating systems it affects (``linux``, ``windows``, ``macos``);
            empty = all.
    """

    id: str
    summary: str
    hint: str
    platforms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GattProfile:
    """The GATT services and characteristics used, as lower-case 128-bit UUIDs."""

    services: tuple[str, ...]
    heart_rate_measurement: str
    body_sensor_location: str | None = None
    battery_level: str | None = None


@dataclass(frozen=True, slots=True)
class PmdCapability:
    """Polar Measurement Data (vendor service): ECG/ACC/PPG/PPI streams (BLE.md, "later")."""

    service: str
    control_point: str
    data: str
    measurement_types: tuple[str, ...]
    ecg_sample_rate_hz: int | None = None


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """One strap model, validated from ``devices/<id>.toml`` (see the module docstring).

    Behaviour fields the code branches on:
        contact_supported: the model sets the contact-supported bit (flags bit 2); the
            flags of each packet remain authoritative.
        rr_available: RR intervals arrive in 0x2A37 at all.
        rr_reliable: the RR are beat-to-beat and accurate enough for HRV (ECG straps);
            False for optical sensors that smooth them.
        hr_value_reliable: the strap's own heart-rate field can be shown; vagus
            computes heart rate from RR regardless.
        settle_s: seconds of packets discarded after each (re)connect (nonsense RR).
        silent_timeout_s: no packet for this long means the link is presumed lost.
        advertises_only_when_worn: the strap is invisible until worn (scan hint).
    """

    id: str
    display_name: str
    vendor: str
    sensor: str
    name_patterns: tuple[str, ...]
    gatt: GattProfile
    contact_supported: bool
    rr_available: bool
    rr_reliable: bool
    rr_quality: str
    hr_value_reliable: bool
    settle_s: float
    silent_timeout_s: float
    advertises_only_when_worn: bool
    quirks: tuple[Quirk, ...] = ()
    pmd: PmdCapability | None = None
    notes: str = ""
    source_path: Path | None = field(default=None, compare=False)
    _compiled: tuple[tuple[re.Pattern[str], int], ...] = field(
        default=(), compare=False, repr=False
    )

    def match_specificity(self, name: str) -> int | None:
        """How specifically ``name`` matches this profile: None if it does not match.

        The specificity is the length of the longest matching pattern, so that
        ``"TICKR X *"`` wins over ``"TICKR *"`` for ``"TICKR X 1234"``.
        """
        best: int | None = None
        for pattern, weight in self._compiled:
            if pattern.search(name) and (best is None or weight > best):
                best = weight
        return best

    def matches(self, name: str) -> bool:
        """Whether the advertised ``name`` matches one of the profile's name patterns."""
        return self.match_specificity(name) is not None


# --------------------------------------------------------------------------- loading


class _Fields:
    """Typed access to one TOML table; every error names the file and the field."""

    def __init__(self, path: Path, table: Mapping[str, Any], prefix: str = "") -> None:
        self.path = path
        self.table = table
        self.prefix = prefix
        self.used: set[str] = set()

    def error(self, key: str, message: str) -> DeviceProfileError:
        return DeviceProfileError(
            f"device profile {self.path}: field '{self.prefix}{key}': {message}"
        )

    def _get(self, key: str, required: bool) -> Any:
        self.used.add(key)
        if key not in self.table:
            if required:
                raise self.error(key, "missing (required)")
            return None
        return self.table[key]

    def str_(self, key: str, *, required: bool = True, default: str = "") -> str:
        value = self._get(key, required)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        return value

    def opt_str(self, key: str) -> str | None:
        value = self._get(key, False)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        return value

    def bool_(self, key: str) -> bool:
        value = self._get(key, True)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def float_(self, key: str, *, minimum: float, allow_equal: bool = True) -> float:
        value = self._get(key, True)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {value!r}")
        out = float(value)
        ok = out >= minimum if allow_equal else out > minimum
        if not ok or out != out or out == float("inf"):
            op = ">=" if allow_equal else ">"
            raise self.error(key, f"expected a finite number {op} {minimum}, got {value!r}")
        return out

    def opt_int(self, key: str, *, minimum: int) -> int | None:
        value = self._get(key, False)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(key, f"expected an integer >= {minimum}, got {value!r}")
        return value

    def str_list(self, key: str, *, required: bool = True) -> tuple[str, ...]:
        value = self._get(key, required)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.error(key, f"expected a list of non-empty strings, got {value!r}")
        return tuple(value)

    def uuid(self, key: str, *, required: bool = True) -> str | None:
        value = self.opt_str(key) if not required else self.str_(key)
        if value is None:
            return None
        try:
            return normalise_uuid(value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def table_(self, key: str, *, required: bool) -> _Fields | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.error(key, f"expected a table, got {value!r}")
        return _Fields(self.path, value, f"{self.prefix}{key}.")

    def check_unknown(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.error(
                unknown[0],
                f"unknown field (valid fields here: {', '.join(sorted(self.used))})",
            )


def _compile_pattern(f: _Fields, index: int, pattern: str) -> tuple[re.Pattern[str], int]:
    key = f"name_patterns[{index}]"
    if pattern.startswith(_REGEX_PREFIX):
        source = pattern[len(_REGEX_PREFIX) :]
        try:
            return re.compile(source, re.IGNORECASE), len(source)
        except re.error as exc:
            raise f.error(key, f"invalid regular expression {source!r}: {exc}") from None
    # A glob matches the whole advertised name, case-insensitively.
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE), len(pattern)


def _parse_quirks(f: _Fields) -> tuple[Quirk, ...]:
    raw = f._get("quirks", False)
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(q, dict) for q in raw):
        raise f.error("quirks", "expected an array of tables ([[quirks]])")
    quirks = []
    seen: set[str] = set()
    for i, table in enumerate(raw):
        q = _Fields(f.path, table, f"quirks[{i}].")
        qid = q.str_("id")
        if not _ID_RE.match(qid):
            raise q.error("id", f"expected a lower-case slug like 'nonsense_rr', got {qid!r}")
        if qid in seen:
            raise q.error("id", f"duplicate quirk id {qid!r}")
        seen.add(qid)
        platforms = q.str_list("platforms", required=False)
        for p in platforms:
            if p not in _PLATFORMS:
                raise q.error("platforms", f"unknown platform {p!r}; expected {_PLATFORMS}")
        quirks.append(Quirk(qid, q.str_("summary"), q.str_("hint"), platforms))
        q.check_unknown()
    return tuple(quirks)


def _parse_pmd(f: _Fields) -> PmdCapability | None:
    p = f.table_("pmd", required=False)
    if p is None:
        return None
    types = p.str_list("measurement_types")
    if not types:
        raise p.error("measurement_types", "expected at least one measurement type")
    for t in types:
        if t not in PMD_MEASUREMENT_TYPES:
            raise p.error(
                "measurement_types", f"unknown type {t!r}; expected some of {PMD_MEASUREMENT_TYPES}"
            )
    service, control, data = p.uuid("service"), p.uuid("control_point"), p.uuid("data")
    assert service is not None and control is not None and data is not None
    pmd = PmdCapability(service, control, data, types, p.opt_int("ecg_sample_rate_hz", minimum=1))
    p.check_unknown()
    return pmd


def _parse_gatt(f: _Fields) -> GattProfile:
    g = f.table_("gatt", required=True)
    assert g is not None
    raw_services = g.str_list("services")
    if not raw_services:
        raise g.error("services", "expected at least one service UUID")
    services = []
    for i, s in enumerate(raw_services):
        try:
            services.append(normalise_uuid(s))
        except ValueError as exc:
            raise g.error(f"services[{i}]", str(exc)) from None
    hrm = g.uuid("heart_rate_measurement")
    assert hrm is not None
    gatt = GattProfile(
        tuple(services),
        hrm,
        g.uuid("body_sensor_location", required=False),
        g.uuid("battery_level", required=False),
    )
    g.check_unknown()
    return gatt


def load_profile(path: Path) -> DeviceProfile:
    """Load and validate one profile file.

    Raises:
        DeviceProfileError: the file cannot be read, is not TOML, or a field is missing,
            of the wrong type, out of range or unknown; the message names file and field.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise DeviceProfileError(f"device profile {path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise DeviceProfileError(f"device profile {path}: not valid TOML: {exc}") from None
    f = _Fields(path, data)
    schema = f._get("schema", True)
    if schema != _SCHEMA:
        raise f.error("schema", f"expected {_SCHEMA}, got {schema!r}")
    pid = f.str_("id")
    if not _ID_RE.match(pid):
        raise f.error("id", f"expected a lower-case slug like 'polar_h10', got {pid!r}")
    if pid != path.stem:
        raise f.error("id", f"{pid!r} must equal the file name without .toml ({path.stem!r})")
    sensor = f.str_("sensor")
    if sensor not in SENSOR_KINDS:
        raise f.error("sensor", f"expected one of {SENSOR_KINDS}, got {sensor!r}")
    patterns = f.str_list("name_patterns")
    compiled = tuple(_compile_pattern(f, i, p) for i, p in enumerate(patterns))
    rr_available = f.bool_("rr_available")
    rr_reliable = f.bool_("rr_reliable")
    if rr_reliable and not rr_available:
        raise f.error("rr_reliable", "cannot be true when rr_available is false")
    profile = DeviceProfile(
        id=pid,
        display_name=f.str_("display_name"),
        vendor=f.str_("vendor"),
        sensor=sensor,
        name_patterns=patterns,
        gatt=_parse_gatt(f),
        contact_supported=f.bool_("contact_supported"),
        rr_available=rr_available,
        rr_reliable=rr_reliable,
        rr_quality=f.str_("rr_quality"),
        hr_value_reliable=f.bool_("hr_value_reliable"),
        settle_s=f.float_("settle_s", minimum=0.0),
        silent_timeout_s=f.float_("silent_timeout_s", minimum=0.0, allow_equal=False),
        advertises_only_when_worn=f.bool_("advertises_only_when_worn"),
        quirks=_parse_quirks(f),
        pmd=_parse_pmd(f),
        notes=f.str_("notes", required=False),
        source_path=path,
        _compiled=compiled,
    )
    f.check_unknown()
    return profile


def _candidate_dirs() -> list[Path]:
    here = Path(__file__).resolve()
    dirs = [here.parents[2] / "devices"]  # <repo>/src/vagus/devices.py -> <repo>/devices
    share = Path("share") / "vagus" / "devices"
    roots: list[str] = [sysconfig.get_path("data"), sys.prefix, sys.base_prefix]
    user_base = site.getuserbase()
    if user_base:
        roots.append(user_base)
    dirs.extend(Path(r) / share for r in roots if r)
    return dirs


def default_profiles_dir() -> Path:
    """The folder the shipped profiles are read from (see the module docstring).

    Raises:
        DeviceProfileError: no profile folder can be found.
    """
    env = os.environ.get("VAGUS_DEVICES_DIR")
    if env:
        return Path(env)
    candidates = _candidate_dirs()
    for d in candidates:
        if d.is_dir() and any(d.glob("*.toml")):
            return d
    raise DeviceProfileError(
        "no device profile folder found (looked in "
        + ", ".join(str(d) for d in candidates)
        + "); reinstall vagus or set VAGUS_DEVICES_DIR to a folder of *.toml profiles"
    )


def _load_dir(directory: Path) -> tuple[DeviceProfile, ...]:
    if not directory.is_dir():
        raise DeviceProfileError(f"device profile folder {directory} does not exist")
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise DeviceProfileError(f"no device profiles (*.toml) in {directory}")
    return tuple(load_profile(p) for p in files)


@lru_cache(maxsize=4)
def _load_default(directory: Path) -> tuple[DeviceProfile, ...]:
    return _load_dir(directory)


def load_profiles(directory: Path | None = None) -> tuple[DeviceProfile, ...]:
    """Load and validate every ``*.toml`` profile in ``directory``, sorted by file name.

    Args:
        directory: the folder; default :func:`default_profiles_dir` (the shipped ones).

    Raises:
        DeviceProfileError: a profile is invalid (the message names file and field), or
            the folder holds none.
    """
    if directory is None:
        # The shipped profiles do not change while running: read them once.
        return _load_default(default_profiles_dir().resolve())
    return _load_dir(Path(directory))


def match_profile(
    name: str | None, profiles: Iterable[DeviceProfile] | None = None
) -> DeviceProfile:
    """The profile for a strap advertising ``name``; the ``generic`` profile if none matches.

    When several profiles match, the most specific pattern (the longest) wins, then the
    profile id in alphabetical order, so the choice is deterministic.

    Args:
        name: the advertised name (None or empty when the strap sends none).
        profiles: the candidates; default :func:`load_profiles`.

    Raises:
        DeviceProfileError: nothing matches and there is no profile with id ``generic``.
    """
    candidates = tuple(load_profiles() if profiles is None else profiles)
    best: DeviceProfile | None = None
    best_score = -1
    if name:
        for p in sorted(candidates, key=lambda p: p.id):
            score = p.match_specificity(name.strip())
            if score is not None and score > best_score:
                best, best_score = p, score
    if best is not None:
        return best
    for p in candidates:
        if p.id == "generic":
            return p
    raise DeviceProfileError(
        f"no device profile matches {name!r} and there is no 'generic' profile to fall back on"
    )
