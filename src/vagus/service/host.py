"""One live session as the service hosts it: participants, pacer, recording, fan-out.

A :class:`HostedSession` owns the session's engine (the sans-I/O session core fed on the
session clock), the sources that run on the server (simulated subjects, straps), the
recording (through the shared :class:`~vagus.store.writer.StoreWriter`, off the event
loop), the late joiners' :class:`~vagus.service.state.SessionState`, and publishes every
event on the bus. Relayed packets arrive through :meth:`HostedSession.take_packets`,
exactly once (sequence numbers; acknowledged when committed).

The **session clock** is seconds since the session was created. Every participant's
source clock is mapped onto it at that participant's first input (``offset_s``), and
records are stored on the session clock, so a replay of the store gives the live events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from vagus.core.events import Marker, PacerChange
from vagus.exceptions import InvalidInput, VagusError
from vagus.service.bus import Bus, OutFrame
from vagus.service.engine import Engine
from vagus.service.protocol import FrameError, PacketItem
from vagus.service.sources import LocalSource, parse_source
from vagus.service.state import SessionState
from vagus.store.base import ControlRecord, GapRecord, InputRecord, PacketRecord

__all__ = ["COMMIT_PROBE_S", "HostedSession", "ParticipantLink"]

log = logging.getLogger("vagus.service")

#: How often the relayed packets' durable position is advanced (s): one store commit.
COMMIT_PROBE_S: Final = 1.0
#: A marker may be stamped this far in the past (s), no further.
MARKER_PAST_S: Final = 60.0


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
    #: session time = source time + offset_s (set at the participant's first input)
    offset_s: float | None = None
    relay_clients: int = 0

    def info(self) -> dict[str, Any]:
        """The participant as ``hello.participants`` lists it."""
        return {
            "name": self.name,
            "source": self.source.split(":", 1)[0]
            if self.source.startswith("sim")
            else (self.source if self.source == "relay" else "strap"),
            "connected": self.connected,
            "contact": self.contact,
            "battery_pct": self.battery_pct,
        }


@dataclass
class _Probe:
    future: asyncio.Future[Any]
    upto: dict[str, int] = field(default_factory=dict)


class HostedSession:
    """A live session served over websockets (see the module docstring).

    Args:
        session_id: the session's id (the store's, when recorded).
        title: shown in the views.
        participants: ``(name, source)`` pairs; source ``relay``, ``sim[:seed=N,...]``
            or a strap address or name.
        bus: where the frames go.
        recorder: the store session to write to (a
            :class:`~vagus.store.writer.SessionWriter`), or None not to record.
        commit: a function returning a future that completes once everything queued to
            the store before it is committed (``None``: no store, acknowledge at once).
        created_unix_s: when the session was created (its session clock's zero), for a
            session resumed after a restart.
        sim_speed: speed of simulated subjects (1.0 real time).
    """

    def __init__(
        self,
        session_id: str,
        *,
        title: str | None,
        participants: list[tuple[str, str]],
        bus: Bus,
        recorder: Any = None,
        commit: Callable[[], Any] | None = None,
        created_unix_s: float | None = None,
        sim_speed: float | None = 1.0,
        on_end: Callable[[HostedSession], None] | None = None,
        on_offset: Callable[[str, float], None] | None = None,
    ) -> None:
        self.id = session_id
        self.title = title
        self.bus = bus
        self.recorder = recorder
        self._commit = commit
        self._on_end = on_end
        self._on_offset = on_offset
        now_unix = time.time()
        self.created_unix_s = created_unix_s if created_unix_s is not None else now_unix
        # session clock: monotonic, zero at creation (back-dated for a resumed session)
        self._t0 = time.monotonic() - max(0.0, now_unix - self.created_unix_s)
        self.participants: dict[str, ParticipantLink] = {}
        for name, source in participants:
            self.participants[name] = ParticipantLink(name, source)
        self.engine = Engine(tuple(self.participants))
        self.state = SessionState()
        self._unsubscribe_state = bus.subscribe(session_id, self.state)
        self.ended = False
        self.sim_speed = sim_speed
        self._tasks: list[asyncio.Task[None]] = []
        self._local: dict[str, LocalSource] = {}
        self._probe: _Probe | None = None
        self._ack_listeners: list[Callable[[str, int], None]] = []
        self.packets_taken = 0
        self.duplicates_skipped = 0

    # ------------------------------------------------------------------ clock, state

    def now_s(self) -> float:
        """The session clock now (s)."""
        return time.monotonic() - self._t0

    @property
    def recording(self) -> bool:
        return bool(self.recorder is not None and self.recorder.recording and not self.ended)

    def participants_info(self, only: str | None = None) -> list[dict[str, Any]]:
        return [p.info() for p in self.participants.values() if only is None or p.name == only]

    def publish(self, events: list[dict[str, Any]]) -> None:
        """Put events (JSON forms) on the bus (and so into the late joiners' state)."""
        if events:
            self.bus.publish(self.id, [OutFrame.make(self.id, e) for e in events])

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
            "ended": self.ended,
        }

    def publish_status(self, participant: str | None) -> None:
        self.publish([self.status_event(participant)])

    # ------------------------------------------------------------------ input

    def _record(self, record: InputRecord) -> None:
        if self.recorder is not None and not self.ended:
            self.recorder.write(record)

    def _map(self, link: ParticipantLink, t_source_s: float) -> float:
        if link.offset_s is None:
            link.offset_s = self.now_s() - t_source_s
            if self._on_offset is not None and link.source == "relay":
                self._on_offset(link.name, link.offset_s)
        return t_source_s + link.offset_s

    def feed_packet(self, name: str, t_source_s: float, payload: bytes) -> None:
        """A packet from ``name``'s source (its own clock): recorded, computed, published."""
        link = self.participants[name]
        t_s = self._map(link, t_source_s)
        self._record(PacketRecord(t_s, payload, participant=name))
        self._note_contact(link, self.engine.receive_packet(name, t_s, payload))

    def feed_gap(self, name: str, t_source_s: float, reason: str) -> None:
        """The link to ``name``'s strap was lost at ``t_source_s`` (its own clock)."""
        link = self.participants[name]
        t_s = self._map(link, t_source_s)
        self._record(GapRecord(t_s, reason, participant=name))
        self._note_contact(link, self.engine.receive_gap(name, t_s, reason))

    def _note_contact(self, link: ParticipantLink, events: list[dict[str, Any]]) -> None:
        for e in events:
            if e["type"] == "contact":
                link.contact = e["contact"]
        self.publish(events)

    def take_packets(self, name: str, items: tuple[PacketItem, ...]) -> int:
        """Relayed packets of ``name``, exactly once: those already taken are skipped,
        a hole refused. Returns how many were new.

        Raises:
            FrameError: a packet after a hole (nothing from it on is taken).
        """
        link = self.participants[name]
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
            if item.payload is not None:
                self.feed_packet(name, item.t_s, item.payload)
            else:
                self.feed_gap(name, item.t_s, item.gap or "link_lost")
            link.received_upto = item.seq
            new += 1
        self.packets_taken += new
        if self._commit is None or self.recorder is None:
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

    async def _commit_loop(self) -> None:
        """Once a second: one store commit; then acknowledge what it made durable."""
        while not self.ended:
            await asyncio.sleep(COMMIT_PROBE_S)
            pending = {
                p.name: p.received_upto
                for p in self.participants.values()
                if p.received_upto > p.durable_upto
            }
            if not pending or self._commit is None:
                continue
            try:
                await asyncio.wrap_future(self._commit())
            except Exception as exc:  # the store failed: recording stops, no ack
                log.warning("session %s: store commit failed: %s", self.id, exc)
                continue
            if self.recorder is not None and self.recorder.recording:
                for name, upto in pending.items():
                    self._durable(name, upto)

    def set_pacer(self, changes: dict[str, Any]) -> None:
        """Apply a practitioner's pacer change now (phase-continuous)."""
        current = self.engine.pacer_settings()
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
        t_s = round(self.now_s(), 3)
        try:
            event = self.engine.pacer_change(t_s, merged)
        except InvalidInput as exc:
            raise FrameError("bad_field", str(exc)) from None
        self._control(event)

    def add_marker(self, text: str, t_s: float | None) -> None:
        """A marker at ``t_s`` (session clock; now if None or later than now)."""
        now = self.now_s()
        if t_s is not None and t_s < now - MARKER_PAST_S:
            raise FrameError(
                "bad_field",
                f"a marker may be at most {MARKER_PAST_S:g} s in the past "
                f"(t_s {t_s:g}, now {now:.1f}); check the clock offset",
            )
        stamp = round(min(now, t_s) if t_s is not None else now, 3)
        self._control(Marker(stamp, text))

    def _control(self, event: Marker | PacerChange) -> None:
        self._record(ControlRecord(event))
        events = self.engine.receive_control(event)
        if isinstance(event, PacerChange):
            for name, local in self._local.items():
                link = self.participants[name]
                if local.follows_pacer and link.offset_s is not None:
                    local.follow_pacer(event, link.offset_s)
        self.publish(events)

    def set_link(
        self,
        name: str,
        *,
        connected: bool | None = None,
        battery_pct: int | None = None,
        battery_given: bool = False,
    ) -> None:
        """A participant's link or battery changed: a ``status`` frame if it did."""
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

    # ------------------------------------------------------------------ lifetime

    async def start(self) -> None:
        """Start the sources that run on the server and the commit loop."""
        for name, link in self.participants.items():
            if link.source == "relay":
                link.connected = False
                continue
            try:
                local = parse_source(link.source, sim_speed=self.sim_speed)
            except VagusError as exc:
                raise InvalidInput(f"participant {name!r}: {exc}") from None
            self._local[name] = local
            self._tasks.append(asyncio.create_task(self._run_local(name, local)))
        self._tasks.append(asyncio.create_task(self._commit_loop()))

    async def _run_local(self, name: str, local: LocalSource) -> None:
        link = self.participants[name]

        def on_item(kind: str, t_s: float, value: Any) -> None:
            if self.ended:
                return
            if kind == "packet":
                if link.offset_s is None and local.follows_pacer:
                    self._map(link, t_s)
                    pacer = self.engine.current_pacer()
                    if pacer is not None:
                        local.follow_pacer(pacer, link.offset_s or 0.0)
                self.feed_packet(name, t_s, value)
            elif kind == "gap":
                self.feed_gap(name, t_s, value)
            elif kind == "device":
                connected, battery = value
                self.set_link(name, connected=connected, battery_pct=battery, battery_given=True)

        try:
            await local.run(on_item)
        except asyncio.CancelledError:
            raise
        except VagusError as exc:
            log.warning("participant %s: %s", name, exc)
            self.set_link(name, connected=False)

    async def _stop_inputs(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def suspend(self) -> None:
        """Stop without ending: the server stops, the session stays open in the store and
        is resumed when the server starts again (``vagus serve``). Everything received
        is committed when the store writer closes."""
        if self.ended:
            return
        await self._stop_inputs()
        self.publish(self.engine.close())
        self.ended = True
        self.publish_status(None)
        self._unsubscribe_state()

    async def end(self, reason: str = "ended") -> None:
        """End the session: sources stopped, the engine closed (its last events
        published), recording finished and saved; clients get ``status`` ended."""
        if self.ended:
            return
        await self._stop_inputs()
        self.publish(self.engine.close())
        was_recording = self.recording
        self.ended = True
        if self.recorder is not None and was_recording:
            future = self.recorder.finish()
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(future)
        for name, link in self.participants.items():
            if link.received_upto > link.durable_upto and (
                self.recorder is None or not self.recorder.error
            ):
                self._durable(name, link.received_upto)
        self.publish_status(None)
        self._unsubscribe_state()
        if self._on_end is not None:
            self._on_end(self)
        log.info("session %s %s", self.id, reason)

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


def finite(x: float) -> bool:
    return math.isfinite(x)
