"""Helpers shared by the command modules: argument types and terminal output."""

from __future__ import annotations

import argparse
import sys

__all__ = ["positive_float", "status_line"]


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def status_line(text: str) -> None:
    """Rewrite the current terminal line (a live one-line status); plain lines if not a TTY."""
    if sys.stderr.isatty():
        sys.stderr.write("\r\x1b[2K" + text)
    else:
        sys.stderr.write(text + "\n")
    sys.stderr.flush()
