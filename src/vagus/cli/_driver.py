"""The terminal around a live :class:`~vagus.runner.Runner`, shared by ``vagus record``
and ``vagus monitor``: the status lines (one per participant), ``--json`` output, typed
lines as markers and pacer changes, the notes on connecting, and Ctrl-C / SIGTERM.

The session's rules (start and stop markers, duration, the pacer forwarded to simulated
subjects, what is stored) are the runner's; this module only shows them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from vagus.cli._common import end_status, note, stop_on_signals
from vagus.cli._live import (
    ControlLines,
    LiveStatus,
    RRNotes,
    StatusBoard,
    StatusView,
    stdin_lines,
)
from vagus.core.events import Event
from vagus.runner import ParticipantState, Runner, RunResult
from vagus.sources.base import SimSpec

__all__ = ["SIGNAL_NAMES", "LiveOutcome", "LiveTerminal"]

SIGNAL_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


@dataclass
class LiveOutcome:
    """How a live command's session ended."""

    result: RunResult
    #: the signal that ended it (Ctrl-C: SIGINT), if any
    stopped_by: signal.Signals | None
    #: the reader of --json output went away (``| head``)
    broken_pipe: bool


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


class LiveTerminal:
    """Runs a :class:`Runner` with a view on the terminal until it ends or a signal.

    Args:
        command: ``record`` or ``monitor`` (for notes: ``vagus record: ...``).
        runner: the session (not started).
        args: the command's arguments (``--markers-from-stdin``).
        json_out: print every event as a JSON line on ``out``.
        out: where the JSON lines go.
        show_status: draw the status lines on stderr.
        tail: text after the last status line (``REC <id>``).
        stop_on_broken_pipe: end the session when the reader of ``out`` goes away
            (``monitor``); else stop printing and go on (``record`` keeps recording).
        on_connect: called when a participant's strap connects (a note).
    """

    def __init__(
        self,
        command: str,
        runner: Runner,
        args: argparse.Namespace,
        *,
        json_out: bool,
        out: TextIO,
        show_status: bool,
        tail: Callable[[], str] | None = None,
        stop_on_broken_pipe: bool = False,
        on_connect: Callable[[ParticipantState], None] | None = None,
        refused: str = "ignored",
    ) -> None:
        self.command = command
        self.runner = runner
        self.args = args
        self.json_out = json_out
        self.out = out
        self.show_status = show_status
        self.stop_on_broken_pipe = stop_on_broken_pipe
        self.on_connect = on_connect
        self.broken_pipe = False
        specs = [state.spec for state in runner.participants.values()]
        speeds = [s.speed for s in specs if isinstance(s, SimSpec)]
        speed: float | None = speeds[0] if speeds else 1.0
        # live: flush per batch; a simulation at max speed: at the end
        self.flush_each = not (speeds and len(speeds) == len(specs) and speed is None)
        tty = sys.stderr.isatty()
        self.statuses = {name: LiveStatus(speed=speed) for name in runner.participants}
        self.views = {name: StatusView(st, None, tty=tty) for name, st in self.statuses.items()}
        self.board = StatusBoard(list(self.views.items()), tty=tty, tail=tail)
        self.controls = ControlLines(command, list(self.statuses.values()), runner.control)
        self.controls.refused = refused
        self.rr_notes = RRNotes()
        self._connections: dict[str, int] = {}
        self._stop = asyncio.Event()
        runner.subscribe_events(self._on_events)

    # ----------------------------------------------------------------- events

    def _sync(self, name: str, state: ParticipantState) -> None:
        status = self.statuses[name]
        status.device = state.device
        status.battery_pct = state.battery_pct
        status.connected = state.connected
        status.packets, status.malformed, status.gaps = state.packets, state.malformed, state.gaps
        status.malformed_examples = state.malformed_examples
        if state.t_last_s is not None and (
            status.t_start_s is None or state.t_last_s != status.t_last_s
        ):
            status.at(state.t_last_s)

    def _on_events(self, pairs: list[tuple[str | None, Event]]) -> None:
        statuses = self.statuses
        for participant, event in pairs:
            if participant is None:
                for status in statuses.values():
                    status.absorb(event)
            elif participant in statuses:
                statuses[participant].absorb(event)
        if self.json_out and pairs:
            self._print(pairs)
        force = False
        for name, state in self.runner.participants.items():
            if name not in statuses:
                continue  # added by someone else; not shown here
            gaps_before = statuses[name].gaps
            self._sync(name, state)
            if state.gaps != gaps_before:
                force = True  # the loss shows at once, with the attempt under way
            if state.device and self._connections.get(name, 0) != state.connections:
                self._connections[name] = state.connections  # (re)connected
                if self.on_connect is not None:
                    self.on_connect(state)
                if state.connected and state.profile_id:
                    self.rr_notes.connected(state.profile_id)
                force = True
        if self.controls.t_start_s is None and self.runner.t_start_s is not None:
            self.controls.start(self.runner.t_start_s)  # lines typed before: now
        if self.show_status:
            self.board.draw(force=force)

    def _print(self, pairs: list[tuple[str | None, Event]]) -> None:
        """The events as JSON lines: the session's JSON form of each (the event's, with its
        ``participant``: null for session-wide ones), as ``vagus replay --json`` prints
        them."""
        if self.broken_pipe:
            return
        text = "".join(json.dumps({**ev.to_json(), "participant": who}) + "\n" for who, ev in pairs)
        try:
            self.out.write(text)
            if self.flush_each:
                self.out.flush()
        except BrokenPipeError:
            # The reader of the events went away (`| head`).
            self.broken_pipe = True
            _silence_stdout()
            if self.stop_on_broken_pipe:
                self._stop.set()

    # ----------------------------------------------------------------- the run

    async def run(self, *, hint: str | None = None) -> LiveOutcome:
        """Start the runner, show it until it ends (or Ctrl-C / SIGTERM), stop it."""
        runner = self.runner
        loop = asyncio.get_running_loop()
        stopped_by: list[signal.Signals] = []
        handled = stop_on_signals(loop, self._stop, stopped_by)
        stdin = stdin_lines(self.args, self.controls, self.board if self.show_status else None)
        redraw: asyncio.Future[None] | None = None
        try:
            await runner.start()
            for name, state in runner.participants.items():
                if name in self.views:
                    self.views[name].link = state.link_state
            if stdin is not None:
                stdin.start(loop)
                if hint:
                    note(hint)
            if any(st.kind == "ble" for st in runner.participants.values()):
                note(f"vagus {self.command}: searching for a strap…")
            if self.show_status:
                redraw = asyncio.ensure_future(self.board.keep_drawing())
            done = asyncio.ensure_future(runner.wait())
            stop = asyncio.ensure_future(self._stop.wait())
            try:
                await asyncio.wait({done, stop}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (done, stop):
                    task.cancel()
                await asyncio.gather(done, stop, return_exceptions=True)
        finally:
            if stdin is not None:
                stdin.close()
            for sig in handled:
                loop.remove_signal_handler(sig)
            if redraw is not None:
                redraw.cancel()
                await asyncio.gather(redraw, return_exceptions=True)
        signal_name = ""
        if stopped_by:
            signal_name = SIGNAL_NAMES.get(stopped_by[0], stopped_by[0].name)
            note(f"vagus {self.command}: stopped ({signal_name}); ending the session")
        result = await runner.stop(signal_name or None)
        if self.json_out and not self.broken_pipe:
            try:
                self.out.flush()
            except BrokenPipeError:
                self.broken_pipe = True
                _silence_stdout()
        if self.show_status:
            lines = self.board.lines()
            if lines:
                self.board.draw(force=True)
            end_status()
        return LiveOutcome(result, stopped_by[0] if stopped_by else None, self.broken_pipe)
