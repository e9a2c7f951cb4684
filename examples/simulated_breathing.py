"""Paced breathing with a simulated subject: the pipeline finds the breathing rhythm.

A virtual subject (resonance rate 5.5 breaths/min) wears a virtual strap that sends real
Heart Rate Measurement bytes. The subject breathes spontaneously for 2 minutes, then
follows a pacer at 6 breaths/min for 3 minutes; the pipeline's coherence ratio and peak
frequency show the change. Runs as fast as the CPU allows (``speed=None``) through the
same async source interface a real strap uses::

    python examples/simulated_breathing.py
"""

from __future__ import annotations

import asyncio

from vagus import MalformedPacket, Pipeline
from vagus.core.events import PacerChange, Spectrum
from vagus.sources import LinkGap, Packet, SimSpec, open_source
from vagus.sources.simulator import SimulatorSource


async def main() -> int:
    pipeline = Pipeline()
    by_phase: dict[str, list[float]] = {"spontaneous": [], "paced 6/min": []}
    phase = "spontaneous"
    async with open_source(SimSpec(seed=7, speed=None, duration_s=300.0)) as source:
        assert isinstance(source, SimulatorSource)
        async for item in source:
            if isinstance(item, Packet):
                if phase == "spontaneous" and item.t_arrival_s >= 120.0:
                    phase = "paced 6/min"
                    source.set_pacer(6.0, item.t_arrival_s)
                    pipeline.receive_control(PacerChange(t_s=item.t_arrival_s, rate_bpm=6.0))
                try:
                    pipeline.receive_packet(item.t_arrival_s, item.payload)
                except MalformedPacket as exc:
                    print(f"skipped a malformed packet: {exc}")
            elif isinstance(item, LinkGap):
                pipeline.receive_gap(item.t_s, reason=item.reason)
            for event in pipeline.events_received():
                # Windows that straddle the switch belong to neither phase.
                settled = event.t_s < 120.0 or event.t_s >= 120.0 + 64.0
                if isinstance(event, Spectrum) and event.coherence_ratio is not None and settled:
                    by_phase["spontaneous" if event.t_s < 120.0 else "paced 6/min"].append(
                        event.coherence_ratio
                    )
    for name, values in by_phase.items():
        values.sort()
        median = values[len(values) // 2] if values else float("nan")
        print(f"{name:12s}: median coherence ratio {median:5.2f} over {len(values)} windows")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
