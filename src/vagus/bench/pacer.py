"""``vagus bench pacer``: the resonance scan and the adaptive loop on a simulated cohort.

Each virtual subject (:class:`~vagus.sources.simulator.VirtualStrap`: IPFM heart with its
own resonance rate, SCIENCE.md "A simulator good enough to test all this") breathes with
the session's pacer in closed loop: its strap's packets go into a
:class:`~vagus.session.Session` as fast as the CPU allows (no real time), and every
``pacer_state`` the session emits is handed back to the subject (as the runner forwards
it to a simulated source). The cohort crosses resonance rates with noise levels
("clean"; "noisy": 3 % artifacts, 20 % of breaths not with the pacer, a 10 s dropout,
more heart-rate noise).

Prints one row per subject and mode: true rate, found rate, error, and minutes to
converge (scan: its length; adaptive: the first time the pacer's rate came within
±0.25 breaths/min of the truth and stayed there to the end; "-" if it never did).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from vagus.core.events import PacerChange, PacerState, Resonance
from vagus.core.pacer import PacerMode
from vagus.session import Session, SessionEvent
from vagus.sources.base import LinkGap, Packet
from vagus.sources.simulator import StrapConfig, SubjectConfig, VirtualStrap

__all__ = [
    "ClosedLoopRun",
    "add_arguments",
    "converged_at_s",
    "noisy",
    "run",
    "run_closed_loop",
]

#: An input as fed: ("packet", t, payload), ("gap", t, reason) or ("control", t, change).
Input = tuple[str, float, object]


@dataclass
class ClosedLoopRun:
    """What one closed-loop simulation produced."""

    events: list[SessionEvent] = field(default_factory=list)
    inputs: list[Input] = field(default_factory=list)

    def pacer_states(self) -> list[PacerState]:
        """The session's pacer states in order."""
        return [e.event for e in self.events if isinstance(e.event, PacerState)]

    def resonance(self) -> list[Resonance]:
        """The resonance events in order."""
        return [e.event for e in self.events if isinstance(e.event, Resonance)]

    def rate_at(self, t_s: float) -> float | None:
        """The pacer's rate in force at ``t_s``."""
        rate = None
        for st in self.pacer_states():
            if st.t_s > t_s:
                break
            rate = st.rate_bpm
        return rate


def noisy(
    subject: SubjectConfig, strap: StrapConfig, dropout_at_s: float = 200.0
) -> tuple[SubjectConfig, StrapConfig]:
    """The "noisy" variant: 3 % artifacts, 20 % of breaths off the pacer, a 10 s dropout."""
    return (
        dataclasses.replace(subject, adherence=0.8),
        dataclasses.replace(
            strap,
            missed_rate=0.01,
            extra_rate=0.01,
            ectopic_rate=0.01,
            dropouts=((dropout_at_s, 10.0),),
        ),
    )


def run_closed_loop(
    change: PacerChange,
    duration_s: float,
    *,
    subject: SubjectConfig,
    strap: StrapConfig | None = None,
    seed: int = 0,
    step_s: float = 1.0,
    pacer_modes: Mapping[str, Callable[[], PacerMode]] | None = None,
) -> ClosedLoopRun:
    """Simulate one participant breathing with the session's pacer from ``change`` on.

    Every ``step_s`` of simulated time the strap's items go into the session; the pacer
    states it emits go back to the subject. Returns the events and the inputs as fed
    (for a replay).
    """
    vs = VirtualStrap(subject, strap, seed=seed)
    session = Session(("p",), pacer_modes=pacer_modes)
    out = ClosedLoopRun()
    session.receive_control(change)
    out.inputs.append(("control", change.t_s, change))
    vs.subject.follow_pacer(change)

    def collect() -> None:
        new = session.events_received()
        out.events.extend(new)
        for ev in new:
            if isinstance(ev.event, PacerState):
                vs.subject.follow_pacer(ev.event)

    collect()
    t = 0.0
    while t < duration_s:
        t = min(duration_s, t + step_s)
        for item in vs.packets_until(t):
            if isinstance(item, Packet):
                out.inputs.append(("packet", item.t_arrival_s, item.payload))
                # A malformed packet (the strap's settling nonsense) is skipped.
                with contextlib.suppress(ValueError):
                    session.receive_packet("p", item.t_arrival_s, item.payload)
            elif isinstance(item, LinkGap):
                out.inputs.append(("gap", item.t_s, item.reason))
                session.receive_gap("p", item.t_s, item.reason)
            collect()
    session.close()
    collect()
    return out


def replay_inputs(
    inputs: Sequence[Input], pacer_modes: Mapping[str, Callable[[], PacerMode]] | None = None
) -> list[SessionEvent]:
    """Feed recorded inputs to a new session (a replay) and return all its events."""
    session = Session(("p",), pacer_modes=pacer_modes)
    events: list[SessionEvent] = []
    for kind, t, value in inputs:
        if kind == "control":
            assert isinstance(value, PacerChange)
            session.receive_control(value)
        elif kind == "packet":
            assert isinstance(value, bytes)
            with contextlib.suppress(ValueError):
                session.receive_packet("p", t, value)
        else:
            session.receive_gap("p", t, str(value))
        events.extend(session.events_received())
    session.close()
    events.extend(session.events_received())
    return events


def converged_at_s(run: ClosedLoopRun, truth_bpm: float, tol_bpm: float = 0.25) -> float | None:
    """The first time the pacer's rate was within ``tol_bpm`` of the truth and stayed so
    (every later state too); None if it did not end there."""
    states = [s for s in run.pacer_states() if s.rate_bpm is not None]
    t_in: float | None = None
    for st in states:
        assert st.rate_bpm is not None
        inside = abs(st.rate_bpm - truth_bpm) <= tol_bpm + 1e-9
        if inside and t_in is None:
            t_in = st.t_s
        elif not inside:
            t_in = None
    return t_in


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bench's options."""
    parser.description = (
        "Run the resonance scan and the adaptive pacer on simulated subjects with known "
        "resonance rates, in closed loop (each subject breathes with the session's pacer), "
        "as fast as the CPU allows, and print per subject: true rate, found rate, error, "
        "confidence and minutes to converge (scan: its length; adaptive: the first time "
        "the pacer came within ±0.25 breaths/min of the truth and stayed there). 'noisy' "
        "subjects have 3 % artifacts, 20 % of breaths off the pacer, a 10 s dropout and "
        "more heart-rate noise."
    )
    parser.epilog = "example: vagus bench pacer --rates 4.5,5.5 --modes adaptive --minutes 12"
    parser.add_argument(
        "--rates",
        default="4.5,5.0,5.5,6.0,6.5",
        help="true resonance rates of the cohort, breaths/min (default: %(default)s)",
    )
    parser.add_argument(
        "--noise",
        default="clean,noisy",
        help="noise levels: clean and/or noisy (default: %(default)s)",
    )
    parser.add_argument(
        "--modes", default="scan,adaptive", help="scan and/or adaptive (default: %(default)s)"
    )
    parser.add_argument(
        "--minutes", type=float, default=14.0, help="simulated minutes per run (default: 14)"
    )
    parser.add_argument("--seed", type=int, default=1, help="first seed (default: 1)")


def run(args: argparse.Namespace) -> int:
    """Run the cohort and print the table."""
    try:
        rates = [float(x) for x in str(args.rates).split(",") if x.strip()]
    except ValueError:
        raise SystemExit(
            f"vagus bench pacer: --rates {args.rates!r}: give rates in breaths/min separated "
            "by commas, e.g. --rates 4.5,5.5"
        ) from None
    if not rates or any(not 1.0 <= r <= 20.0 for r in rates):
        raise SystemExit("vagus bench pacer: --rates must be 1-20 breaths/min each, e.g. 4.5,5.5")
    if not 1.0 <= float(args.minutes) <= 120.0:
        raise SystemExit("vagus bench pacer: --minutes must be 1-120 (simulated minutes per run)")
    noises = [x.strip() for x in str(args.noise).split(",") if x.strip()]
    modes = [x.strip() for x in str(args.modes).split(",") if x.strip()]
    for n in noises:
        if n not in ("clean", "noisy"):
            raise SystemExit(f"vagus bench pacer: unknown noise level {n!r} (clean, noisy)")
    for m in modes:
        if m not in ("scan", "adaptive"):
            raise SystemExit(f"vagus bench pacer: unknown mode {m!r} (scan, adaptive)")
    duration_s = float(args.minutes) * 60.0
    print(f"{'mode':9} {'noise':6} {'true':>5} {'found':>6} {'error':>6} {'conf':>5} "
          f"{'minutes':>8}")  # fmt: skip
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    errors: list[float] = []
    seed = int(args.seed)
    for mode in modes:
        for noise in noises:
            for k, truth in enumerate(rates):
                subject = SubjectConfig(
                    resonance_bpm=truth, resting_hr_bpm=58.0 + 4.0 * k, noise=0.01
                )
                strap = StrapConfig()
                if noise == "noisy":
                    subject, strap = noisy(dataclasses.replace(subject, noise=0.02), strap)
                start = 6.5 if mode == "scan" else 6.0
                change = PacerChange(0.0, start, 0.4, mode)
                result = run_closed_loop(
                    change, duration_s, subject=subject, strap=strap, seed=seed + k
                )
                res = result.resonance()
                if mode == "scan":
                    final = [r for r in res if r.final]
                    found = final[-1].rate_bpm if final else None
                    conf = final[-1].confidence if final else None
                    minutes = final[-1].t_s / 60.0 if final else None
                else:
                    found = result.rate_at(duration_s)
                    conf = res[-1].confidence if res else None
                    t_conv = converged_at_s(result, truth)
                    minutes = t_conv / 60.0 if t_conv is not None else None
                err = (found - truth) if found is not None else math.nan
                if found is not None:
                    errors.append(abs(err))
                print(
                    f"{mode:9} {noise:6} {truth:5.2f} "
                    f"{'-' if found is None else f'{found:.2f}':>6} "
                    f"{'-' if found is None else f'{err:+.2f}':>6} "
                    f"{'-' if conf is None else f'{conf:.2f}':>5} "
                    f"{'-' if minutes is None else f'{minutes:.1f}':>8}"
                )
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    within = sum(e <= 0.25 for e in errors)
    print(
        f"within ±0.25 breaths/min: {within}/{len(errors)}; "
        f"max |error| {max(errors) if errors else math.nan:.2f}; "
        f"{wall:.1f} s wall, {cpu:.1f} s CPU for {len(errors)} runs of {args.minutes:g} min"
    )
    return 0
