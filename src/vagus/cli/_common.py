"""Helpers shared by the command modules: argument types and terminal output."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

__all__ = ["ProgressBar", "positive_float", "status_line"]


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


class ProgressBar:
    """A progress bar on stderr for long work: ``label [#####.....]  50 %``.

    On a terminal the line is rewritten in place, at most ten times a second; on
    anything else (a log, a pipe) one plain line is written per stage, so logs stay
    short. Use :meth:`update` for counted work and call the bar as
    ``bar(stage, fraction)`` for work in named stages (the report's progress callback).
    """

    _WIDTH = 30

    def __init__(
        self,
        label: str,
        *,
        total: int | None = None,
        stream: TextIO | None = None,
        enabled: bool = True,
    ) -> None:
        self.label = label
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()
        self._stage: str | None = None
        self._next_draw = 0.0
        self._drawn = False

    def update(self, done: int, total: int | None = None) -> None:
        """Counted progress: ``done`` of ``total`` (or of the total given at creation)."""
        total = total if total is not None else self.total
        if not self.tty or not total or total <= 0:
            return
        self._draw(self.label, min(1.0, done / total), force=done >= total)

    def __call__(self, stage: str, fraction: float) -> None:
        """Staged progress: ``stage`` is a short description, ``fraction`` in [0, 1]."""
        if not self.enabled:
            return
        if stage != self._stage:
            if self._drawn:
                self.stream.write("\n")
                self._drawn = False
            self._stage = stage
            self._next_draw = 0.0
            if not self.tty:
                self.stream.write(f"{self.label}: {stage}…\n")
                self.stream.flush()
                return
        if self.tty:
            self._draw(f"{self.label}: {stage:<24}", fraction, force=fraction >= 1.0)

    def _draw(self, text: str, fraction: float, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now < self._next_draw:
            return
        self._next_draw = now + 0.1
        fraction = max(0.0, min(1.0, fraction))
        fill = round(fraction * self._WIDTH)
        bar = "#" * fill + "." * (self._WIDTH - fill)
        self.stream.write(f"\r\x1b[2K{text} [{bar}] {100 * fraction:5.1f} %")
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        """End the bar's line (on a terminal)."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
