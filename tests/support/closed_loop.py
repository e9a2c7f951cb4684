"""A simulated closed-loop run (``vagus.bench.pacer.run_closed_loop``) as stored input."""

from __future__ import annotations

from vagus.bench.pacer import ClosedLoopRun
from vagus.core.events import PacerChange
from vagus.store.base import ControlRecord, GapRecord, InputRecord, PacketRecord


def records_of_run(run: ClosedLoopRun, who: str) -> list[InputRecord]:
    """The run's inputs as the store's records, its packets and gaps ``who``'s."""
    records: list[InputRecord] = []
    for kind, t, value in run.inputs:
        if kind == "control":
            assert isinstance(value, PacerChange)
            records.append(ControlRecord(value))
        elif kind == "packet":
            assert isinstance(value, bytes)
            records.append(PacketRecord(t, value, who))
        else:
            records.append(GapRecord(t, str(value), who))
    return records
