"""The ``vagus`` command line.

Each command lives in its own module of this package and exposes
``register(subparsers) -> None``, which adds its parser and sets ``func`` (a callable
taking the parsed ``argparse.Namespace`` and returning an exit code). Command modules
are imported lazily per command so ``vagus --help`` stays fast and bleak is only
imported on the BLE path.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from vagus import __version__
from vagus.exceptions import VagusError

__all__ = ["main", "missing_module_message"]

#: command name -> (module, one-line help). Order is the order in ``--help``.
COMMANDS: dict[str, tuple[str, str]] = {
    "monitor": ("vagus.cli.monitor", "connect to a strap (or --sim) and show live HRV"),
    "record": ("vagus.cli.record", "record a session headless (strap or --sim)"),
    "scan": ("vagus.cli.scan", "list heart-rate straps nearby"),
    "devices": ("vagus.cli.devices", "list the known strap profiles"),
    "analyze": ("vagus.cli.analyze", "summarise an RR-interval file"),
    "sessions": ("vagus.cli.sessions", "list recorded sessions"),
    "show": ("vagus.cli.sessions", "show one session"),
    "delete": ("vagus.cli.sessions", "delete a session"),
    "edit": ("vagus.cli.edit", "change a session's title, notes, participant or tags"),
    "replay": ("vagus.cli.replay", "replay a session through the pipeline"),
    "import": ("vagus.cli.transfer", "import an RR file as a session"),
    "export": ("vagus.cli.transfer", "export a session (kubios, csv, json, edf)"),
    "report": ("vagus.cli.report", "write an HTML report for a session"),
    "progress": ("vagus.cli.report", "write an HTML trend report across sessions"),
    "demo": ("vagus.cli.demo", "a live session with a simulated participant, in the browser"),
    "live": ("vagus.cli.live", "a live session with real straps, in the browser"),
    "serve": ("vagus.cli.serve", "a multi-session server with an admin link"),
    "relay": ("vagus.cli.relay", "stream a strap on this machine into a remote session"),
    "review": ("vagus.cli.review", "replay a stored session in the browser, with a timeline"),
    "bench": ("vagus.cli.bench", "benchmarks: pipeline, replay, import, record, serve, pacer, ble"),
}


def _build_parser(command: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vagus",
        description=(
            "Live heart-rate-variability biofeedback from a Bluetooth chest strap.\n"
            "Try `vagus demo` for a breathing session in the browser with a simulated\n"
            "participant, or `vagus monitor --sim` for live HRV in the terminal."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vagus {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    if command is not None:
        # Only the module of the command asked for is imported; it may register
        # several commands (sessions/show/delete).
        importlib.import_module(COMMANDS[command][0]).register(sub)
    else:
        for name, (_module, help_text) in COMMANDS.items():
            sub.add_parser(name, help=help_text)
    return parser


def missing_module_message(exc: ImportError) -> str:
    """What to tell a user whose command needs a Python package this environment lacks."""
    name = (exc.name or "").split(".")[0]
    if not name:
        return f"{exc}; reinstall vagus: python3 -m pip install --force-reinstall vagus"
    return (
        f"this command needs the Python package {name!r}, which cannot be imported here "
        f"({exc}). It is a dependency of vagus, so the install is incomplete: run "
        f"`python3 -m pip install vagus` (or `python3 -m pip install -e .` in a checkout) "
        f"in this environment, or `python3 -m pip install {name}`."
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vagus`` console script; returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args_list if not a.startswith("-")), None)
    if command not in COMMANDS:
        command = None
    try:
        parser = _build_parser(command)
    except ImportError as exc:  # the command's module needs a package this venv lacks
        print(f"vagus {command}: error: {missing_module_message(exc)}", file=sys.stderr)
        return 1
    args = parser.parse_args(args_list)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0 if not args_list else 2
    try:
        code: int = func(args)
    except VagusError as exc:
        print(f"vagus {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"vagus {args.command}: interrupted", file=sys.stderr)
        return 130
    except ImportError as exc:
        # A dependency missing or broken in this environment (a partial install, a venv
        # without vagus's requirements): say which and how to mend it, never a traceback.
        print(f"vagus {args.command}: error: {missing_module_message(exc)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`vagus sessions | head`): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    return code


if __name__ == "__main__":
    raise SystemExit(main())
