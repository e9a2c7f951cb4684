"""``vagus devices [--json] [--verbose]``: list the known strap profiles (``devices/*.toml``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from vagus.devices import DeviceProfile, load_profiles

__all__ = ["profile_to_json", "register"]


def register(subparsers: Any) -> None:
    """Add the ``devices`` command."""
    parser = subparsers.add_parser(
        "devices",
        help="list the known strap profiles",
        description=(
            "List the strap profiles vagus knows (devices/*.toml): how each is recognised "
            "by its advertised name, what it sends, and its known quirks. Any standard "
            "Bluetooth heart-rate strap works through the generic profile."
        ),
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per profile")
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="also print RR quality notes and quirks"
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="read profiles from this folder instead"
    )
    parser.set_defaults(func=run)


def profile_to_json(profile: DeviceProfile) -> dict[str, Any]:
    """The JSON form of a profile (every field, UUIDs as 128-bit strings)."""
    pmd = profile.pmd
    return {
        "id": profile.id,
        "display_name": profile.display_name,
        "vendor": profile.vendor,
        "sensor": profile.sensor,
        "name_patterns": list(profile.name_patterns),
        "gatt": {
            "services": list(profile.gatt.services),
            "heart_rate_measurement": profile.gatt.heart_rate_measurement,
            "body_sensor_location": profile.gatt.body_sensor_location,
            "battery_level": profile.gatt.battery_level,
        },
        "contact_supported": profile.contact_supported,
        "rr_available": profile.rr_available,
        "rr_reliable": profile.rr_reliable,
        "rr_quality": profile.rr_quality,
        "hr_value_reliable": profile.hr_value_reliable,
        "settle_s": profile.settle_s,
        "silent_timeout_s": profile.silent_timeout_s,
        "advertises_only_when_worn": profile.advertises_only_when_worn,
        "quirks": [
            {"id": q.id, "summary": q.summary, "hint": q.hint, "platforms": list(q.platforms)}
            for q in profile.quirks
        ],
        "pmd": None
        if pmd is None
        else {
            "service": pmd.service,
            "control_point": pmd.control_point,
            "data": pmd.data,
            "measurement_types": list(pmd.measurement_types),
            "ecg_sample_rate_hz": pmd.ecg_sample_rate_hz,
        },
        "notes": profile.notes,
        "file": str(profile.source_path) if profile.source_path else None,
    }


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _rr_label(p: DeviceProfile) -> str:
    if not p.rr_available:
        return "none"
    return "good" if p.rr_reliable else "poor"


def run(args: argparse.Namespace) -> int:
    """Print the profiles: a table, or one JSON object per line with ``--json``."""
    profiles = load_profiles(args.dir)
    if args.json:
        for p in profiles:
            print(json.dumps(profile_to_json(p), sort_keys=True))
        return 0
    header = ("id", "model", "sensor", "RR", "contact", "PMD", "names")
    rows = [
        (
            p.id,
            p.display_name,
            p.sensor,
            _rr_label(p),
            _yes(p.contact_supported),
            ",".join(p.pmd.measurement_types) if p.pmd else "-",
            " | ".join(p.name_patterns) if p.name_patterns else "(any other strap)",
        )
        for p in profiles
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    print(line(header))
    print(line(tuple("-" * w for w in widths)))
    for row in rows:
        print(line(row))
    if args.verbose:
        for p in profiles:
            print(f"\n{p.display_name} ({p.id})")
            print(f"  RR: {p.rr_quality}")
            if p.notes:
                print(f"  notes: {p.notes}")
            for q in p.quirks:
                where = f" [{', '.join(q.platforms)}]" if q.platforms else ""
                print(f"  quirk{where}: {q.summary}\n    hint: {q.hint}")
    else:
        print("\nRR: good = ECG beat-to-beat, fit for HRV; none = heart rate only.")
        print("Run `vagus devices --verbose` for RR quality notes, quirks and hints.")
    return 0
