"""``--pacer MODE[:RATE]``, ``--plan NAME|FILE`` and ``--guidance LEVEL`` for ``vagus demo``
and ``vagus live``.

The options are parsed by :mod:`vagus.plans` (errors say what to write instead). A rate
left out (``--pacer fixed``, ``--pacer adaptive``, a plan phase without ``rate_bpm``)
is the first participant's latest resonance rate from the store
(:func:`vagus.resonance_history.latest_resonance_rate`: the rate found by their last
scan or confident adaptive session), else 6 breaths/min. ``--pacer`` sets the pacer when
the session starts; ``--plan`` sends, from the start, each phase's marker and pacer change
when the session clock reaches it (control events: stored and replayed like a
practitioner's; the practitioner can still change the pacer in between). ``--guidance``
turns coherence-adaptive guidance on with the pacer change the session starts with (the
``guidance`` of that :class:`~vagus.core.events.PacerChange`: stored, replayed); a plan's
phases keep it unless one sets its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
from pathlib import Path
from typing import Any

from vagus.core.events import Marker, PacerChange
from vagus.core.plans import Plan
from vagus.exceptions import InvalidInput, VagusError
from vagus.plans import (
    GUIDANCE_OPTION_HELP,
    PACER_OPTION_HELP,
    PLAN_OPTION_HELP,
    guidance_from_option,
    load_plan,
    pacer_change_from_option,
)

__all__ = ["PacerPlan", "add_pacer_plan_arguments", "pacer_plan_from_args"]


def add_pacer_plan_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--pacer``, ``--plan`` and ``--guidance``."""
    parser.add_argument(
        "--pacer",
        default=None,
        metavar="MODE[:RATE]",
        help=PACER_OPTION_HELP
        + "; without a rate: the participant's latest resonance rate if one is stored "
        "(overrides --rate). E.g. --pacer scan, --pacer adaptive, --pacer fixed:5.5",
    )
    parser.add_argument(
        "--plan",
        default=None,
        metavar="NAME|FILE",
        help=PLAN_OPTION_HELP
        + ". The phases' markers and pacer changes are stored with the session; e.g. "
        "--plan '10-minute practice'",
    )
    parser.add_argument(
        "--guidance",
        default=None,
        metavar="LEVEL",
        help=GUIDANCE_OPTION_HELP + ". E.g. --guidance medium (the dashboard can change it)",
    )


class PacerPlan:
    """What ``--pacer``/``--plan`` asked for, checked before the server starts."""

    def __init__(
        self,
        pacer: str | None,
        plan: Plan | None,
        data_dir: Path | None,
        guidance: str | None = None,
    ) -> None:
        self.pacer = pacer
        self.plan = plan
        self.data_dir = data_dir
        #: the guidance level to start with (None: off)
        self.guidance = guidance
        self._task: asyncio.Task[None] | None = None

    def _needs_stored_rate(self) -> bool:
        if self.plan is not None:
            return any(
                ph.pacer in ("fixed", "adaptive") and ph.rate_bpm is None for ph in self.plan.phases
            )
        if self.pacer is None:
            return False
        mode, _, rate = self.pacer.strip().lower().partition(":")
        return mode in ("fixed", "adaptive") and not rate

    def default_rate_bpm(self, participant: str) -> float | None:
        """The participant's latest stored resonance rate, when a rate was left out."""
        if not self._needs_stored_rate():
            return None
        from vagus.resonance_history import latest_resonance_rate
        from vagus.store.open import open_store

        try:
            store = open_store(self.data_dir, create=False)
        except VagusError:
            return None  # no store yet: no stored rate
        try:
            return latest_resonance_rate(store, participant)
        except VagusError:
            return None
        finally:
            store.close()

    def start(
        self, hosted: Any, participant: str, *, rate_bpm: float | None = None
    ) -> PacerChange | None:
        """Set the pacer (``--pacer``) or start the plan (``--plan``) on a started session
        (:class:`vagus.service.host.HostedSession`), with ``--guidance`` in its first pacer
        change. ``rate_bpm``: the fixed rate to start with when neither option is given
        (None or 0: the pacer stays off). Returns the pacer change applied at the start
        (None when there is none)."""
        default = self.default_rate_bpm(participant)
        if self.plan is not None:
            controls = self.plan.controls(hosted.now_s(), default_rate_bpm=default)
            k, first = next((k, c) for k, c in enumerate(controls) if isinstance(c, PacerChange))
            if self.guidance is not None and first.guidance is None:
                first = dataclasses.replace(first, guidance=self.guidance)
                controls[k] = first
            self._task = asyncio.get_running_loop().create_task(_run_plan(hosted, controls))
            return first
        if self.pacer is not None:
            change = pacer_change_from_option(self.pacer, default_rate_bpm=default)
        elif rate_bpm:
            change = PacerChange(0.0, float(rate_bpm), 0.4, "fixed")
        elif self.guidance is not None:
            change = PacerChange(0.0, None, 0.4, "off")  # guidance waits for a pacer
        else:
            return None
        if self.guidance is not None:
            change = dataclasses.replace(change, guidance=self.guidance)
        hosted.set_pacer(_fields(change))
        return change


def _fields(change: PacerChange) -> dict[str, Any]:
    """The fields of ``hosted.set_pacer`` that make ``change`` (stamped with the
    session's time now)."""
    fields: dict[str, Any] = {"mode": "off"}
    if change.rate_bpm is not None:
        fields = {
            "mode": change.mode,
            "rate_bpm": change.rate_bpm,
            "inhale_fraction": change.inhale_fraction,
        }
    if change.guidance is not None:
        fields["guidance"] = change.guidance
    return fields


async def _run_plan(hosted: Any, controls: list[Marker | PacerChange]) -> None:
    """Send each control when the session clock reaches its time (now-stamped, so they
    stay in order with the practitioner's own changes)."""
    for ev in controls:
        while not hosted.ended and (wait := ev.t_s - hosted.now_s()) > 0:
            await asyncio.sleep(min(wait, 1.0))
        if hosted.ended:
            return
        with contextlib.suppress(VagusError):
            if isinstance(ev, Marker):
                hosted.add_marker(ev.text, None)
            else:
                hosted.set_pacer(_fields(ev))


def pacer_plan_from_args(args: argparse.Namespace) -> PacerPlan:
    """Check ``--pacer``/``--plan`` (before anything starts).

    Raises:
        InvalidInput: a bad value, or both ``--pacer`` and ``--plan`` (a plan sets the
            pacer itself).
    """
    if args.pacer is not None and args.plan is not None:
        raise InvalidInput(
            "give --pacer or --plan, not both: a plan sets the pacer in each of its phases"
        )
    if args.pacer is not None:
        pacer_change_from_option(args.pacer)  # raises with the accepted forms
    plan = load_plan(args.plan) if args.plan is not None else None
    guidance = guidance_from_option(args.guidance) if args.guidance is not None else None
    return PacerPlan(args.pacer, plan, args.data_dir, guidance)
