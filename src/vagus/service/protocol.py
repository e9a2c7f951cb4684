"""The wire protocol (version 1): client frames validated, server frames built.

The contract is ``docs/protocol.md``; its machine-readable form is the JSON Schema
``vagus/schema/protocol.schema.json`` (:func:`load_schema`). This module is sans-I/O:
:func:`parse_client_frame` turns one websocket text message into a typed command or
raises :class:`FrameError` (with the ``code`` the ``error`` frame carries);
:func:`encode` builds a server frame. The validation here is hand-written for speed
(a relay's ``packets`` frame is parsed on every packet) and tested to accept exactly
what the schema accepts.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final, Literal, get_args

import orjson

from vagus.core.events import GUIDANCE_LEVEL_NAMES, PACER_MODES
from vagus.exceptions import InvalidInput

__all__ = [
    "ERROR_CODES",
    "MAX_MESSAGE_BYTES",
    "MAX_PACKETS_PER_FRAME",
    "PROTOCOL_VERSION",
    "ClientFrame",
    "EndCmd",
    "FrameError",
    "MarkerCmd",
    "PacerCmd",
    "PacketItem",
    "PacketsCmd",
    "PingCmd",
    "RecordingCmd",
    "ReviewCmd",
    "StatusCmd",
    "dumps",
    "encode",
    "load_schema",
    "parse_client_frame",
]

#: The protocol version: ``v`` in every frame. Bumped on any incompatible change.
PROTOCOL_VERSION: Final = 1
#: Largest client message handled (bytes); larger ones get ``error`` code ``too_large``.
MAX_MESSAGE_BYTES: Final = 128 * 1024
#: Most packets in one ``packets`` frame.
MAX_PACKETS_PER_FRAME: Final = 500
#: Longest marker text (characters).
MAX_MARKER_CHARS: Final = 500
#: Largest packet sequence number (JavaScript's largest exact integer).
MAX_SEQ: Final = 2**53 - 1
#: Source times are below this (s), as the pipeline requires.
MAX_T_S: Final = 1e10

ErrorCode = Literal[
    "bad_json",
    "too_large",
    "rate_limited",
    "version",
    "unknown_type",
    "bad_field",
    "forbidden",
    "conflict",
    "ended",
    "internal",
]
#: Every error code (the ``code`` of an ``error`` frame).
ERROR_CODES: Final[tuple[str, ...]] = get_args(ErrorCode)

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SESSION = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2}){2,64}")
_GAP_REASON = re.compile(r"[a-z_]{1,32}")
_REVIEW_ACTIONS: Final = ("play", "pause", "seek", "speed")


class FrameError(InvalidInput):
    """A client frame was refused; becomes an ``error`` frame (the connection lives on).

    Attributes:
        code: one of :data:`ERROR_CODES`.
        re: the client's ``seq`` of the refused frame, when it had a valid one.
    """

    def __init__(self, code: ErrorCode, message: str, re: int | None = None) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.re = re


@dataclass(frozen=True, slots=True)
class PingCmd:
    seq: int | None
    client_time: float | None


@dataclass(frozen=True, slots=True)
class PacerCmd:
    """Set the pacer now; ``changes`` holds only the fields the client sent."""

    seq: int | None
    changes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MarkerCmd:
    seq: int | None
    text: str
    t_s: float | None


@dataclass(frozen=True, slots=True)
class PacketItem:
    """One relayed packet (``payload``) or link gap (``gap``), with the sender's seq."""

    seq: int
    t_s: float
    payload: bytes | None
    gap: str | None


@dataclass(frozen=True, slots=True)
class PacketsCmd:
    seq: int | None
    participant: str | None
    items: tuple[PacketItem, ...]


@dataclass(frozen=True, slots=True)
class StatusCmd:
    seq: int | None
    participant: str | None
    battery_pct: int | None
    battery_given: bool
    connected: bool | None


@dataclass(frozen=True, slots=True)
class EndCmd:
    seq: int | None


@dataclass(frozen=True, slots=True)
class RecordingCmd:
    """Start (``on``) or stop recording; the live session goes on either way."""

    seq: int | None
    on: bool


@dataclass(frozen=True, slots=True)
class ReviewCmd:
    seq: int | None
    action: Literal["play", "pause", "seek", "speed"]
    t_s: float | None
    speed: float | None


ClientFrame = (
    PingCmd | PacerCmd | MarkerCmd | PacketsCmd | StatusCmd | EndCmd | RecordingCmd | ReviewCmd
)

#: Fields each client frame type allows besides the envelope.
_FIELDS: Final[dict[str, frozenset[str]]] = {
    "ping": frozenset({"client_time"}),
    "pacer": frozenset(
        {"mode", "rate_bpm", "inhale_fraction", "hold_in_s", "hold_out_s", "follow", "guidance"}
    ),
    "marker": frozenset({"text", "t_s"}),
    "packets": frozenset({"packets", "participant"}),
    "status": frozenset({"battery_pct", "connected", "participant"}),
    "end": frozenset(),
    "recording": frozenset({"on"}),
    "review": frozenset({"action", "t_s", "speed"}),
}
_ENVELOPE: Final = frozenset({"type", "v", "session", "seq"})


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _number(
    obj: dict[str, Any],
    key: str,
    lo: float,
    hi: float,
    re: int | None,
    *,
    where: str = "",
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FrameError("bad_field", f"{where}{key!r} must be a number, not {_show(value)}", re)
    x = float(value) if isinstance(value, float) or abs(value) < 2**63 else math.inf
    ok = math.isfinite(x) and (x > lo if lo_open else x >= lo) and (x < hi if hi_open else x <= hi)
    if not ok:
        lo_s = f"above {lo:g}" if lo_open else f"from {lo:g}"
        hi_s = f"below {hi:g}" if hi_open else f"to {hi:g}"
        raise FrameError(
            "bad_field", f"{where}{key!r} must be a number {lo_s} {hi_s}, not {_show(value)}", re
        )
    return x


def _integer(
    obj: dict[str, Any], key: str, lo: int, hi: int, re: int | None, where: str = ""
) -> int:
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise FrameError(
            "bad_field",
            f"{where}{key!r} must be an integer from {lo} to {hi}, not {_show(value)}",
            re,
        )
    return value


def parse_client_frame(message: str | bytes, *, session: str) -> ClientFrame:
    """Validate one client message (docs/protocol.md "Client → server").

    Args:
        message: the websocket message as received (text; bytes are refused).
        session: the connection's session id (a frame's ``session``, if present, must
            equal it).

    Raises:
        FrameError: with ``code`` ``bad_json``, ``too_large``, ``version``,
            ``unknown_type``, ``bad_field`` or ``conflict``, and a message naming the
            field and what it must be.
    """
    if isinstance(message, bytes | bytearray | memoryview):
        raise FrameError("bad_json", "frames are JSON text messages, not binary ones")
    if len(message) > MAX_MESSAGE_BYTES:
        raise FrameError(
            "too_large",
            f"a message has at most {MAX_MESSAGE_BYTES} bytes, this one {len(message)}: "
            f"send at most {MAX_PACKETS_PER_FRAME} packets per frame",
        )
    try:
        # orjson first (a relay's packets frame every second from every relay); what it
        # refuses (1e400, lone surrogates, deep nesting...) the standard library decides,
        # so the answer (and its error) is the same either way
        obj = orjson.loads(message)
    except orjson.JSONDecodeError:
        try:
            obj = json.loads(message, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise FrameError("bad_json", f"not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(obj, dict):
        raise FrameError("bad_json", f"a frame is a JSON object, not {type(obj).__name__}")
    re: int | None = None
    seq = obj.get("seq")
    if "seq" in obj:
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
            raise FrameError(
                "bad_field", f"'seq' must be an integer from 0 to {MAX_SEQ}, not {_show(seq)}"
            )
        re = seq
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise FrameError("unknown_type", f"a frame needs a string 'type', not {_show(kind)}", re)
    allowed = _FIELDS.get(kind)
    if allowed is None:
        raise FrameError(
            "unknown_type",
            f"unknown frame type {_show(kind)}; clients send one of {sorted(_FIELDS)}",
            re,
        )
    if "v" not in obj:
        raise FrameError("version", f"a frame needs 'v': {PROTOCOL_VERSION}", re)
    v = obj["v"]
    if isinstance(v, bool) or v != PROTOCOL_VERSION:
        raise FrameError(
            "version",
            f"this server speaks protocol version {PROTOCOL_VERSION}, not {_show(v)}: "
            "reload the page or update the client",
            re,
        )
    extra = set(obj) - _ENVELOPE - allowed
    if extra:
        raise FrameError("bad_field", f"unknown field(s) for {kind!r}: {sorted(extra)}", re)
    if "session" in obj:
        given = obj["session"]
        if not isinstance(given, str) or not _SESSION.fullmatch(given):
            raise FrameError("bad_field", f"'session' must be a session id, not {_show(given)}", re)
        if given != session:
            raise FrameError(
                "conflict", f"this connection is for session {session!r}, not {given!r}", re
            )
    participant: str | None = None
    if "participant" in obj:
        participant = obj["participant"]
        if not isinstance(participant, str) or not _NAME.fullmatch(participant):
            raise FrameError(
                "bad_field",
                f"'participant' must be a name (letters, digits, . _ -), not {_show(participant)}",
                re,
            )
    if kind == "ping":
        client_time = None
        if "client_time" in obj:
            client_time = _number(obj, "client_time", -1e15, 1e15, re)
        return PingCmd(re, client_time)
    if kind == "pacer":
        return PacerCmd(re, _pacer_changes(obj, re))
    if kind == "marker":
        if "text" not in obj:
            raise FrameError("bad_field", "a marker needs 'text'", re)
        text = obj["text"]
        if not isinstance(text, str) or not 1 <= len(text) <= MAX_MARKER_CHARS:
            raise FrameError(
                "bad_field",
                f"'text' must be a string of 1 to {MAX_MARKER_CHARS} characters, not {_show(text)}",
                re,
            )
        t_s = _number(obj, "t_s", 0.0, MAX_T_S, re) if "t_s" in obj else None
        return MarkerCmd(re, text, t_s)
    if kind == "packets":
        return PacketsCmd(re, participant, _packet_items(obj, re))
    if kind == "status":
        battery: int | None = None
        if "battery_pct" in obj and obj["battery_pct"] is not None:
            battery = _integer(obj, "battery_pct", 0, 100, re)
        connected = obj.get("connected")
        if "connected" in obj and not isinstance(connected, bool):
            raise FrameError(
                "bad_field", f"'connected' must be true or false, not {_show(connected)}", re
            )
        return StatusCmd(re, participant, battery, "battery_pct" in obj, connected)
    if kind == "end":
        return EndCmd(re)
    if kind == "recording":
        on = obj.get("on")
        if not isinstance(on, bool):
            raise FrameError("bad_field", f"'on' must be true or false, not {_show(on)}", re)
        return RecordingCmd(re, on)
    # review
    action = obj.get("action")
    if action not in _REVIEW_ACTIONS:
        raise FrameError(
            "bad_field", f"'action' must be one of {list(_REVIEW_ACTIONS)}, not {_show(action)}", re
        )
    t_s = _number(obj, "t_s", 0.0, MAX_T_S, re) if "t_s" in obj else None
    speed = _number(obj, "speed", 0.0, 1000.0, re) if "speed" in obj else None
    if action == "seek" and t_s is None:
        raise FrameError("bad_field", "a seek needs 't_s' (the session time to go to)", re)
    if action == "speed" and speed is None:
        raise FrameError("bad_field", "a speed change needs 'speed' (0 = as fast as possible)", re)
    return ReviewCmd(re, action, t_s, speed)


def _pacer_changes(obj: dict[str, Any], re: int | None) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if "mode" in obj:
        if obj["mode"] not in PACER_MODES:
            raise FrameError(
                "bad_field",
                f"'mode' must be one of {list(PACER_MODES)}, not {_show(obj['mode'])}",
                re,
            )
        changes["mode"] = obj["mode"]
    if "rate_bpm" in obj:
        changes["rate_bpm"] = (
            None if obj["rate_bpm"] is None else _number(obj, "rate_bpm", 1.0, 40.0, re)
        )
    if "inhale_fraction" in obj:
        changes["inhale_fraction"] = _number(obj, "inhale_fraction", 0.1, 0.9, re)
    for key in ("hold_in_s", "hold_out_s"):
        if key in obj:
            changes[key] = _number(obj, key, 0.0, 30.0, re)
    if "follow" in obj:
        follow = obj["follow"]
        if not isinstance(follow, str) or not _NAME.fullmatch(follow):
            raise FrameError(
                "bad_field", f"'follow' must be a participant's name, not {_show(follow)}", re
            )
        changes["follow"] = follow
    if "guidance" in obj:
        if obj["guidance"] not in ("off", *GUIDANCE_LEVEL_NAMES):
            raise FrameError(
                "bad_field",
                f"'guidance' must be one of {['off', *GUIDANCE_LEVEL_NAMES]}, "
                f"not {_show(obj['guidance'])}",
                re,
            )
        changes["guidance"] = obj["guidance"]
    return changes


def _packet_items(obj: dict[str, Any], re: int | None) -> tuple[PacketItem, ...]:
    raw = obj.get("packets")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_PACKETS_PER_FRAME:
        raise FrameError(
            "bad_field",
            f"'packets' must be a list of 1 to {MAX_PACKETS_PER_FRAME} packets, not {_show(raw)}",
            re,
        )
    items: list[PacketItem] = []
    previous = 0
    for i, item in enumerate(raw):
        where = f"packets[{i}]: "
        if not isinstance(item, dict):
            raise FrameError("bad_field", f"{where}a packet is an object, not {_show(item)}", re)
        extra = set(item) - {"seq", "t_s", "payload", "gap"}
        if extra:
            raise FrameError("bad_field", f"{where}unknown field(s) {sorted(extra)}", re)
        for key in ("seq", "t_s"):
            if key not in item:
                raise FrameError("bad_field", f"{where}a packet needs {key!r}", re)
        seq = _integer(item, "seq", 1, MAX_SEQ, re, where)
        if seq <= previous:
            raise FrameError(
                "bad_field",
                f"{where}'seq' must increase within a frame ({seq} after {previous})",
                re,
            )
        previous = seq
        t_s = _number(item, "t_s", 0.0, MAX_T_S, re, where=where, hi_open=True)
        if ("payload" in item) == ("gap" in item):
            raise FrameError(
                "bad_field", f"{where}a packet has exactly one of 'payload' or 'gap'", re
            )
        payload: bytes | None = None
        gap: str | None = None
        if "payload" in item:
            text = item["payload"]
            if not isinstance(text, str) or not _HEX.fullmatch(text):
                raise FrameError(
                    "bad_field",
                    f"{where}'payload' must be the packet's 2-64 bytes in hex, not {_show(text)}",
                    re,
                )
            payload = bytes.fromhex(text)
        else:
            gap = item["gap"]
            if not isinstance(gap, str) or not _GAP_REASON.fullmatch(gap):
                raise FrameError(
                    "bad_field",
                    f"{where}'gap' must be a reason such as 'link_lost' (a-z and _), "
                    f"not {_show(gap)}",
                    re,
                )
        items.append(PacketItem(seq, t_s, payload, gap))
    return tuple(items)


def dumps(obj: Any) -> str:
    """Compact JSON text (orjson: encoding every frame with the standard library's
    encoder was the largest share of the server's own CPU in ``vagus bench serve
    --profile``, a spectrum's 200 floats above all). A non-finite number becomes null, as
    the events already make it."""
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def encode(
    kind: str, session: str, participant: str | None = None, **fields: Any
) -> dict[str, Any]:
    """A server frame without its ``seq`` (the connection numbers its frames as it sends)."""
    return {
        "type": kind,
        "v": PROTOCOL_VERSION,
        "session": session,
        "participant": participant,
        **fields,
    }


@cache
def load_schema() -> dict[str, Any]:
    """The protocol's JSON Schema (``vagus/schema/protocol.schema.json``)."""
    text = resources.files("vagus").joinpath("schema/protocol.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
