"""``vagus bench {pipeline,ble,replay,record,import}``: benchmarks that print their figures.

Each sub-command lives in ``vagus.bench.<name>`` with ``add_arguments(parser)`` and
``run(args) -> int``. The module is imported only when its sub-command is parsed (the BLE
bench pulls in bleak, the pipeline bench neurokit2), so ``vagus bench --help`` stays fast
and a missing bench module gives a clear message instead of breaking the others.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from typing import Any

from vagus.exceptions import InvalidInput

__all__ = ["BENCHES", "register"]

#: sub-command -> (module, one-line help)
BENCHES: dict[str, tuple[str, str]] = {
    "pipeline": (
        "vagus.bench.pipeline",
        "µs per beat of the full pipeline on a 24 h Holter record, vs neurokit2",
    ),
    "ble": ("vagus.bench.ble", "BLE reader throughput and latency against the simulated BlueZ"),
    "replay": ("vagus.bench.replay", "replay speed of a recorded session"),
    "record": (
        "vagus.bench.record",
        "N simulated participants recorded in real time: event-loop lag, records/s, CPU",
    ),
    "serve": (
        "vagus.bench.serve",
        "N relays and viewers over loopback websockets: packet-to-viewer latency, CPU, memory",
    ),
    "pacer": (
        "vagus.bench.pacer",
        "resonance scan and adaptive pacer on a simulated cohort: true vs found rate",
    ),
    "import": (
        "vagus.bench.importer",
        "analyze and import of a generated 10-million-beat RR file: beats/s, peak memory",
    ),
}


def _load(name: str) -> Any:
    module_name = BENCHES[name][0]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise InvalidInput(
            f"the {name!r} benchmark is not available in this installation "
            f"(module {module_name} is missing)"
        ) from None


class _LazyBenchParser(argparse.ArgumentParser):
    """A sub-command parser that imports its bench module and lets it add its arguments
    only when this sub-command is actually parsed."""

    bench_name: str | None = None
    _loaded = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self.bench_name is not None and not self._loaded:
            self._loaded = True
            try:
                module = _load(self.bench_name)
            except InvalidInput as exc:
                error = exc

                def missing(_args: argparse.Namespace) -> int:
                    raise error

                self.set_defaults(func=missing)
                return super().parse_known_args([], namespace)
            module.add_arguments(self)
            self.set_defaults(func=module.run)
        return super().parse_known_args(args, namespace)


def register(subparsers: Any) -> None:
    """Add ``bench`` and its sub-commands."""
    parser = subparsers.add_parser(
        "bench",
        help="benchmarks: pipeline, ble, replay, record, import",
        description="Benchmarks that print their figures (speed targets live here, not in tests).",
    )
    sub = parser.add_subparsers(dest="bench", metavar="BENCH", parser_class=_LazyBenchParser)
    for name, (_module, help_text) in BENCHES.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.bench_name = name
    parser.set_defaults(func=lambda _args: _no_bench(parser))


def _no_bench(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
