"""``vagus scan``: list the heart-rate straps in range.

Straps are found by the Heart Rate Service UUID they advertise (0x180D), not by name;
the name only picks the device profile shown (BLE.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from vagus.cli._common import positive_float
from vagus.exceptions import VagusError

__all__ = ["register", "run"]

_NONE_FOUND_HINTS = """\
No heart-rate strap found. Things to try:
  - wear the strap and wet its electrodes: many straps (Polar H10, H9) only advertise
    while worn;
  - a strap serves one host at a time: close the vendor app, switch off the watch or
    bike computer it may be connected to;
  - on macOS, allow Bluetooth for your terminal (System Settings > Privacy & Security >
    Bluetooth);
  - scan longer: vagus scan --timeout 20"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="list heart-rate straps nearby",
        description="Scan for Bluetooth LE straps advertising the Heart Rate Service.",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=5.0,
        metavar="S",
        help="seconds to scan (default 5)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per strap; on an error, one object {"error": ...}',
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from vagus.sources.ble import scan  # bleak is imported only here

        found = asyncio.run(scan(args.timeout))
    except (VagusError, ImportError) as exc:
        if args.json:  # stdout stays machine-readable; the message also goes to stderr
            error = {"error": str(exc), "kind": type(exc).__name__}
            print(json.dumps(error), flush=True)
        raise
    if args.json:
        for strap in found:
            print(json.dumps(strap.to_json()), flush=True)
        return 0
    if not found:
        print(_NONE_FOUND_HINTS, file=sys.stderr)
        return 1
    rows = [("NAME", "ADDRESS", "RSSI", "PROFILE")]
    rows += [(s.name or "(no name)", s.address, f"{s.rssi_dbm} dBm", s.profile_name) for s in found]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(f"\nConnect with: vagus monitor --device {found[0].address}", file=sys.stderr)
    return 0
