"""One live session as the service hosts it: a :class:`~vagus.runner.Runner` on the bus.

The runner (the one live path: sources → :class:`~vagus.session.Session` → store writer
→ subscribers) owns the session, its local sources (simulated subjects, straps on this
machine) and its recording. A :class:`HostedSession` adds what the service needs around
it: relayed packets taken exactly once (sequence numbers, acknowledged once the store
has committed them), the practitioner's pacer and markers, the participants' link state,
the late joiners' :class:`~vagus.service.state.SessionState`, and every event published
on the bus under the session's id.

Times are on the session clock (the runner's). Relayed packets carry the sender's clock;
the runner maps it at the participant's first packet, and the offset is kept
(``on_offset``) so a session resumed after a server restart maps it the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from vagus.core.events import Marker, PacerChange
from vagus.core.plans import plan_state_of_marker
from vagus.exceptions import InvalidInput, VagusError
from vagus.runner import Participant, Runner
from vagus.service.bus import Bus, OutFrame, frame_prefix
from vagus.service.protocol import FrameError, PacketItem
from vagus.service.sources import parse_source
from vagus.service.state import SessionState

__all__ = ["COMMIT_PROBE_S", "EVENT_KINDS", "Committer", "HostedSession", "ParticipantLink"]

log = logging.getLogger("vagus.service")

#: How often the relayed packets' durable position is advanced (s): one store commit.
COMMIT_PROBE_S: Final = 1.0
#: The committer acknowledges this many sessions' relays, then lets the loop run.
ACK_CHUNK: Final = 50
#: A marker may be stamped this far in the past (s), no further.
MARKER_PAST_S: Final = 60.0
#: The event kinds sent to clients (the session's ``pacer`` control echo is not: its
#: ``pacer_state`` says it all).
EVENT_KINDS: Final = frozenset(
    {
        "beat",
        "metrics",
        "spectrum",
        "gap",
        "contact",
        "pacer_state",
        "marker",
        "status",
        "rsa",
        "resonance",
    }
)
#: Event kinds serialised straight from the event object (their JSON form is their type
#: and every field: :meth:`OutFrame.from_event`), the frames of every packet.
_OBJECT_KINDS: Final = frozenset({"beat", "metrics", "spectrum", "rsa"})
_PACER_KEYS: Final = ("mode", "rate_bpm", "inhale_fraction", "hold_in_s", "hold_out_s")


@dataclass
class ParticipantLink:
    """A participant's source and link state as the service sees it."""

    name: str
    source: str = "relay"
    connected: bool | None = None
    contact: bool | None = None
    battery_pct: int | None = None
    #: relay packets: the highest sequence number taken in (all below it too)
    received_upto: int = 0
    #: relay packets: the highest sequence number known committed to the store
    durable_upto: int = 0
    relay_clients: int = 0

    def info(self) -> dict[str, Any]:
        """The participant as ``hello.participants`` lists it."""
        kind = self.source.split(":", 1)[0]
        return {
            "name": self.name,
            "source": kind if kind in ("sim", "relay") else "strap",
            "connected": self.connected,
            "contact": self.contact,
            "battery_pct": self.battery_pct,
        }


class HostedSession:
    """A live session served over websockets (see the module docstring).

    Args:
        participants: ``(name, source)`` pairs; source ``relay``, ``sim[:seed=N,...]``
            or a strap address or name.
        bus: where the frames go.
        writer: the store writer (None: nothing recorded).
        record: record the session.
        title: shown in the views and stored.
        sim_speed: speed of simulated subjects (1.0 real time).
        on_end: called when the session has ended.
        on_offset: called with ``(participant, offset_s)`` when a relay's clock is mapped.
    """

    def __init__(
        self,
        participants: list[tuple[str, str]],
        *,
        bus: Bus,
        writer: Any = None,
        record: bool = True,
        title: str | None = None,
        sim_speed: float | None = 1.0,
        on_end: Callable[[HostedSession], None] | None = None,
        on_offset: Callable[[str, float], None] | None = None,
        committer: Committer | None = None,
    ) -> None:
        self.id = ""
        self.committer = committer if committer is not None else Committer(None)
        self.title = title
        self.bus = bus
        self.writer = writer if record else None
        self._on_end = on_end
        self._on_offset = on_offset
        self.participants: dict[str, ParticipantLink] = {
            name: ParticipantLink(name, source) for name, source in participants
        }
        specs = []
        for name, source in participants:
            spec = None
            if source != "relay":
                try:
                    spec = parse_source(source, sim_speed=sim_speed).spec
                except VagusError as exc:
                    raise InvalidInput(f"participant {name!r}: {exc}") from None
            specs.append(Participant(name, spec))
        self.runner = Runner(specs, writer=self.writer, title=title or "", record=False)
        self.state = SessionState()
        self._unsubscribe_state: Callable[[], None] = lambda: None
        self._pending: list[dict[str, Any]] = []
        self._prefixes: dict[tuple[str, str], str] = {}
        self.runner.subscribe_batches(self._from_runner)
        self.created_unix_s = time.time()
        self.ended = False
        #: stopped with the server to be resumed when it starts again (not ended)
        self.suspended = False
        self._tasks: list[asyncio.Task[None]] = []
        self._ack_listeners: list[Callable[[str, int], None]] = []
        self.packets_taken = 0
        self.duplicates_skipped = 0

    # ------------------------------------------------------------------ lifetime

    async def start(
        self,
        *,
        resume: Any = None,
        elapsed_s: float = 0.0,
        offsets: dict[str, float] | None = None,
        counts: dict[str, int] | None = None,
    ) -> str:
        """Start the runner (recording, local sources); returns the session id.

        ``resume``: a session writer appending to an existing stored session (after a
        server restart), with the session clock ``elapsed_s`` on at the restart, the
        relays' clock ``offsets`` and the packets the store ``counts`` per participant.
        """
        runner = self.runner
        if resume is None and self.writer is not None:
            runner._record_at_start = True
        await runner.start()
        if resume is not None:
            # Continue the stored session (the runner's public API creates new ones):
            # its recorder, its clock, its relays' offsets.
            runner.markers = False
            runner._recording = resume
            runner._t0_loop -= elapsed_s
            runner._t0_mono -= elapsed_s
            for name, state in runner.participants.items():
                if name in (offsets or {}):
                    state.offset_s = (offsets or {})[name]
                elif state.spec is not None and state.offset_s == 0.0:
                    state.offset_s = elapsed_s  # an own-clock source continues the clock
            for name, n in (counts or {}).items():
                if name in self.participants:
                    link = self.participants[name]
                    link.received_upto = link.durable_upto = n
            self.created_unix_s = time.time() - elapsed_s
        rec = runner.recording
        self.id = rec.session_id if rec is not None and rec.session_id else secrets.token_hex(4)
        if rec is not None and rec.error is not None:
            log.warning("session %s: not recording: %s", self.id, rec.error)
        self._unsubscribe_state = self.bus.subscribe(self.id, self.state)
        for link in self.participants.values():
            if link.source == "relay":
                link.connected = False
        pending, self._pending = self._pending, []
        self._publish(pending)
        self.committer.add(self)
        return self.id

    async def _stop_tasks(self) -> None:
        self.committer.discard(self)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def suspend(self) -> None:
        """Stop without ending (the server stops; ``vagus serve`` resumes the session
        when it starts again): the stored session stays open, every record received
        is committed when the store writer closes."""
        if self.ended:
            return
        self.suspended = True  # the pages hear "not ended": they reconnect and resume
        await self._stop_tasks()
        self.runner._recording = None  # not finished: resumed later
        self.runner.markers = False
        with contextlib.suppress(InvalidInput):
            await self.runner.stop("server stopped")
        self.ended = True
        self.publish_status(None)
        self._unsubscribe_state()

    async def end(self, reason: str = "ended") -> None:
        """End the session: sources stopped, the session closed (its last events
        published), the recording finished and saved; clients get ``status`` ended."""
        if self.ended:
            return
        await self._stop_tasks()
        was_recording = self.recording
        try:
            result = await self.runner.stop(reason)
        except InvalidInput:
            result = None
        self.ended = True
        if result is not None and (result.saved or not was_recording):
            for name, link in self.participants.items():
                self._durable(name, link.received_upto)
        self.publish_status(None)
        self._unsubscribe_state()
        if self._on_end is not None:
            self._on_end(self)
        log.info("session %s %s", self.id, reason)

    # ------------------------------------------------------------------ clock, state

    def now_s(self) -> float:
        """The session clock now (s)."""
        return self.runner.now_s()

    @property
    def recording(self) -> bool:
        return bool(self.runner.recording_ok and not self.ended)

    def participants_info(self, only: str | None = None) -> list[dict[str, Any]]:
        return [p.info() for p in self.participants.values() if only is None or p.name == only]

    def pacer_settings(self) -> dict[str, Any]:
        """The pacer's current settings (mode, rate_bpm, inhale_fraction, holds)."""
        state = self.runner.session.pacer_state
        if state is None:
            return {
                "mode": "off",
                "rate_bpm": None,
                "inhale_fraction": 0.4,
                "hold_in_s": 0.0,
                "hold_out_s": 0.0,
            }
        return {k: getattr(state, k) for k in _PACER_KEYS}

    def _from_runner(self, events: Sequence[Any], statuses: list[dict[str, Any]]) -> None:
        """The runner's subscriber (events as objects, statuses as dicts): only queues
        (publishing never waits)."""
        if not self.id:
            self._pending.extend(ev.to_json() for ev in events)
            self._pending.extend(statuses)
            return
        out: list[OutFrame] = []
        prefixes = self._prefixes
        for ev in events:
            participant, event = ev[0], ev[1]
            kind = event.type
            if kind in _OBJECT_KINDS and participant is not None:
                # the frequent frames (every packet's beat and metrics): serialised from
                # the object, no dict (vagus bench serve --profile)
                key = (kind, participant)
                prefix = prefixes.get(key)
                if prefix is None:
                    prefix = prefixes[key] = frame_prefix(kind, self.id, participant)
                out.append(OutFrame.from_event(self.id, participant, event, prefix))
            elif kind in EVENT_KINDS:
                self._add_frames(out, ev.to_json())
        for status in statuses:
            self._add_frames(out, status)
        if out:
            self.bus.publish(self.id, out)

    def _publish(self, batch: list[dict[str, Any]]) -> None:
        out: list[OutFrame] = []
        for event in batch:
            self._add_frames(out, event)
        if out:
            self.bus.publish(self.id, out)

    def _add_frames(self, out: list[OutFrame], event: dict[str, Any]) -> None:
        """The frames of one event dict (fresh for this call: completed in place, not
        copied), appended to ``out``."""
        kind = event.get("type")
        if kind not in EVENT_KINDS:
            return
        who = event.get("participant")
        link = self.participants.get(who) if isinstance(who, str) else None
        if kind == "contact" and link is not None:
            link.contact = event.get("contact")
        elif kind == "status":
            event = dict(event)
            if link is not None:
                if event.get("connected") is not None and link.source != "relay":
                    link.connected = event["connected"]
                if event.get("battery_pct") is not None:
                    link.battery_pct = event["battery_pct"]
                event["connected"] = link.connected
                event["contact"] = link.contact
                event["battery_pct"] = link.battery_pct
            event["recording"] = self.recording
            event["ended"] = self.ended and not self.suspended
            event["t_s"] = round(float(event.get("t_s") or 0.0), 3)
        out.append(OutFrame.make(self.id, event, own=True))
        if kind == "marker" and (plan := plan_state_of_marker(event)) is not None:
            # a plan's phase, for the views that get no markers
            out.append(OutFrame.make(self.id, plan, own=True))

    def status_event(self, participant: str | None) -> dict[str, Any]:
        link = self.participants.get(participant) if participant is not None else None
        return {
            "type": "status",
            "participant": participant,
            "t_s": round(self.now_s(), 3),
            "connected": link.connected if link else None,
            "contact": link.contact if link else None,
            "battery_pct": link.battery_pct if link else None,
            "recording": self.recording,
            "ended": self.ended and not self.suspended,
        }

    def publish_status(self, participant: str | None) -> None:
        if self.id:
            self._publish([self.status_event(participant)])

    # ------------------------------------------------------------------ relayed input

    def take_packets(self, name: str, items: tuple[PacketItem, ...]) -> int:
        """Relayed packets of ``name``, exactly once: those already taken are skipped,
        a hole refused. Returns how many were new.

        Raises:
            FrameError: a packet after a hole (nothing from it on is taken).
        """
        link = self.participants[name]
        state = self.runner.participants[name]
        new = 0
        for item in items:
            if item.seq <= link.received_upto:
                self.duplicates_skipped += 1
                continue
            if item.seq != link.received_upto + 1:
                raise FrameError(
                    "bad_field",
                    f"packet seq {item.seq} after {link.received_upto}: send from "
                    f"{link.received_upto + 1} (packets are taken in order, exactly once)",
                )
            mapped = state.offset_s is not None
            try:
                if item.payload is not None:
                    self.runner.push_packet(name, item.t_s, item.payload)
                else:
                    self.runner.push_gap(name, item.t_s, item.gap or "link_lost")
            except InvalidInput as exc:
                raise FrameError("bad_field", f"packet seq {item.seq}: {exc}") from None
            if not mapped and state.offset_s is not None and self._on_offset is not None:
                self._on_offset(name, state.offset_s)
            link.received_upto = item.seq
            new += 1
        self.packets_taken += new
        if self.writer is None or self.runner.recording is None:
            self._durable(name, link.received_upto)
        return new

    def on_durable(self, listener: Callable[[str, int], None]) -> Callable[[], None]:
        """Call ``listener(participant, upto)`` when relayed packets become durable."""
        self._ack_listeners.append(listener)
        return lambda: self._ack_listeners.remove(listener)

    def _durable(self, name: str, upto: int) -> None:
        link = self.participants[name]
        if upto > link.durable_upto:
            link.durable_upto = upto
            for listener in tuple(self._ack_listeners):
                listener(name, upto)

    def pending_durable(self) -> dict[str, int]:
        """Relayed packets taken in and not yet known durable: participant -> upto."""
        if self.ended:
            return {}
        return {
            p.name: p.received_upto
            for p in self.participants.values()
            if p.received_upto > p.durable_upto
        }

    def made_durable(self, pending: dict[str, int]) -> None:
        """A store commit covered ``pending`` (from :meth:`pending_durable` before it)."""
        if self.writer is None or self.runner.recording is None or self.runner.recording_ok:
            for name, upto in pending.items():
                self._durable(name, upto)

    # ------------------------------------------------------------------ control

    def set_pacer(self, changes: dict[str, Any]) -> None:
        """Apply a practitioner's pacer change now (phase-continuous)."""
        current = self.pacer_settings()
        merged = {**current, **changes}
        if "mode" in changes:
            if changes["mode"] == "off":
                merged["rate_bpm"] = None
            elif merged.get("rate_bpm") is None:
                raise FrameError("bad_field", "the pacer needs a 'rate_bpm' (1-40) to be on")
        elif "rate_bpm" in changes:
            if changes["rate_bpm"] is None:
                merged["mode"] = "off"
            elif current.get("mode") == "off":
                merged["mode"] = "fixed"
        if merged["mode"] == "off":
            merged["mode"] = "fixed" if merged["rate_bpm"] is not None else "off"
        t_s = round(max(self.now_s(), self.runner.t_control_s, 0.0), 3)
        fields = {k: merged[k] for k in _PACER_KEYS}
        if "follow" in changes:
            if changes["follow"] not in self.participants:
                raise FrameError(
                    "bad_field",
                    f"'follow': no participant {changes['follow']!r} in this session "
                    f"({', '.join(self.participants)})",
                )
            fields["follow"] = changes["follow"]
        if "guidance" in changes:  # a level or "off"; left out: guidance as it is
            fields["guidance"] = changes["guidance"]
        try:
            self.runner.control(PacerChange(t_s=t_s, **fields))
        except InvalidInput as exc:
            raise FrameError("bad_field", str(exc)) from None

    def add_marker(self, text: str, t_s: float | None) -> None:
        """A marker at ``t_s`` (session clock; now if None or later than now)."""
        now = self.now_s()
        if t_s is not None and t_s < now - MARKER_PAST_S:
            raise FrameError(
                "bad_field",
                f"a marker may be at most {MARKER_PAST_S:g} s in the past "
                f"(t_s {t_s:g}, now {now:.1f}); check the clock offset",
            )
        stamp = round(max(0.0, min(now, t_s) if t_s is not None else now), 3)
        try:
            self.runner.control(Marker(stamp, text))
        except InvalidInput as exc:
            raise FrameError("bad_field", str(exc)) from None

    def set_link(
        self,
        name: str,
        *,
        connected: bool | None = None,
        battery_pct: int | None = None,
        battery_given: bool = False,
    ) -> None:
        """A relayed participant's link or battery changed: a ``status`` frame if it did."""
        link = self.participants[name]
        changed = False
        if connected is not None and connected != link.connected:
            link.connected = connected
            changed = True
        if battery_given and battery_pct != link.battery_pct:
            link.battery_pct = battery_pct
            changed = True
        if changed:
            self.publish_status(name)

    async def set_recording(self, on: bool) -> None:
        """Start or stop recording (the live session goes on); a ``status`` says so.
        Recording again after a stop makes a new stored session."""
        if self.ended or self.writer is None:
            self.publish_status(None)
            return
        try:
            if on:
                await self.runner.start_recording()
            else:
                await self.runner.stop_recording()
        except VagusError as exc:
            log.warning("session %s: recording %s failed: %s", self.id, on, exc)
        self.publish_status(None)

    def summary(self) -> dict[str, Any]:
        """For the admin API and the CLI."""
        return {
            "session": self.id,
            "title": self.title,
            "created_unix_s": self.created_unix_s,
            "ended": self.ended,
            "recording": self.recording,
            "participants": self.participants_info(),
            "now_s": round(self.now_s(), 3) if not self.ended else None,
        }


class Committer:
    """One store commit a second for every hosted session, then their acks.

    A relay's packets are acknowledged once the store has committed them; one commit
    (``StoreWriter.commit()``, in the writer thread) covers every session of the
    process, so a server with thousands of relays commits once a second, not once per
    relay.
    """

    def __init__(self, writer: Any, interval_s: float = COMMIT_PROBE_S) -> None:
        self.writer = writer
        self.interval_s = interval_s
        self.sessions: set[HostedSession] = set()
        self._task: asyncio.Task[None] | None = None

    def add(self, hosted: HostedSession) -> None:
        self.sessions.add(hosted)
        if self._task is None:
            self._task = asyncio.create_task(self._loop())

    def discard(self, hosted: HostedSession) -> None:
        self.sessions.discard(hosted)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            pending = [(h, h.pending_durable()) for h in tuple(self.sessions)]
            pending = [(h, p) for h, p in pending if p]
            if not pending:
                continue
            if self.writer is not None:
                try:
                    await asyncio.wrap_future(self.writer.commit())
                except Exception as exc:  # the store failed: recording stops, no ack
                    log.warning("store commit failed: %s", exc)
                    continue
            for i, (hosted, p) in enumerate(pending):
                hosted.made_durable(p)
                if i % ACK_CHUNK == ACK_CHUNK - 1:
                    # thousands of relays' acks at once would hold every viewer's
                    # frames up behind their sends: let the loop send in between
                    await asyncio.sleep(0)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
