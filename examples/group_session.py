"""A session as a library: two simulated participants, one pacer, one session clock.

Shows `vagus.session.Session`: each participant's strap packets go to its own pipeline
(participants never mix), a pacer change with a hold is session-wide, and every event
carries its participant. The simulated subjects breathe with the same core pacer the
session runs, so their heart rhythm follows it. Runs in about a second, no strap needed.
"""

from __future__ import annotations

import statistics

from vagus.core.events import Metrics, PacerChange, PacerState, Spectrum
from vagus.session import Session
from vagus.sources.base import LinkGap, Packet
from vagus.sources.simulator import SubjectConfig, VirtualStrap

DURATION_S = 180.0
PACER = PacerChange(0.0, 5.5, 0.4, "fixed", 1.0, 0.0)  # 5.5/min, 1 s hold after inhaling

straps = {
    "ann": VirtualStrap(SubjectConfig(resting_hr_bpm=62.0, resonance_bpm=5.5), seed=1),
    "bob": VirtualStrap(SubjectConfig(resting_hr_bpm=74.0, resonance_bpm=6.5), seed=2),
}
session = Session(participants=tuple(straps))
session.receive_control(PACER)
for strap in straps.values():
    strap.subject.follow_pacer(PACER)  # the subjects breathe with the session's pacer

# Everyone's packets in time order, as they would arrive live.
items = sorted(
    ((item.t_arrival_s if isinstance(item, Packet) else item.t_s, name, item)
     for name, strap in straps.items() for item in strap.packets_until(DURATION_S)),
    key=lambda x: (x[0], x[1]),
)  # fmt: skip
events = session.events_received()
for _, name, item in items:
    if isinstance(item, Packet):
        session.receive_packet(name, item.t_arrival_s, item.payload)
    elif isinstance(item, LinkGap):
        session.receive_gap(name, item.t_s, item.reason)
    events += session.events_received()
session.close()
events += session.events_received()

state = next(e.event for e in events if isinstance(e.event, PacerState))
print(
    f"pacer: {state.rate_bpm:g}/min, inhale fraction {state.inhale_fraction:g}, "
    f"hold after inhale {state.hold_in_s:g} s; phase at 100 s: {session.pacer_phase(100.0):.3f}"
)
for name in straps:
    hr = [e.event.hr_bpm for e in events if e.participant == name
          and isinstance(e.event, Metrics) and e.event.hr_bpm is not None]  # fmt: skip
    coh = [e.event.coherence_ratio for e in events if e.participant == name
           and isinstance(e.event, Spectrum) and e.event.coherence_ratio is not None]  # fmt: skip
    print(
        f"{name}: {len(hr)} metrics events, mean HR {statistics.fmean(hr):.1f} bpm, "
        f"median coherence ratio {statistics.median(coh):.2f}"
    )
print("one event as JSON:", next(e for e in events if e.participant == "bob").to_json())
