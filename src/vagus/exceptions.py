"""Exceptions raised by vagus.

Every error vagus raises on purpose derives from one root, so a caller can catch
them all with ``except VagusError``. Each message says what was wrong and, where
there is something to do, what to do about it.

The hierarchy::

    VagusError
    ├── MalformedPacket        a Heart Rate Measurement payload that breaks its own flags
    ├── InvalidInput           bad input to the pipeline or a command (non-finite RR, …)
    │   └── ProtocolError      an event's JSON form with a bad field (names the field)
    ├── FileFormatError        a file that is not what it claims (names the line and reason)
    ├── DeviceProfileError     a device profile TOML with a bad or missing field
    ├── SourceError            a source could not deliver packets
    │   ├── DeviceNotFound     no strap matched the request within the scan time
    │   └── ConnectionLost     the strap went away and the retry budget is spent
    └── StoreError             the session store cannot be read or written
        └── SessionNotFound    no session with that id
"""

from __future__ import annotations

__all__ = [
    "ConnectionLost",
    "DeviceNotFound",
    "DeviceProfileError",
    "FileFormatError",
    "InvalidInput",
    "MalformedPacket",
    "ProtocolError",
    "SessionNotFound",
    "SourceError",
    "StoreError",
    "VagusError",
]


class VagusError(Exception):
    """Root of every exception vagus raises on purpose."""


class MalformedPacket(VagusError):
    """A Heart Rate Measurement (0x2A37) payload that cannot be parsed.

    Raised for an empty payload, a payload shorter than its flags promise, or an
    odd number of trailing RR bytes. The packet is rejected whole: nothing is
    guessed from it.
    """


class InvalidInput(VagusError):
    """Input to the pipeline or to a command that is out of its documented domain."""


class ProtocolError(InvalidInput, ValueError):
    """An event (or control) whose JSON form or fields break the event protocol.

    Raised by :func:`vagus.core.events.event_from_json` and the session's control
    validation for a missing, unknown, mistyped or out-of-range field. :attr:`field` names
    the field (``None`` when the object as a whole is wrong, e.g. not a dict or an unknown
    ``type``). It is also a ``ValueError``, as ``event_from_json``'s errors were before.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        #: The offending field's name, or None.
        self.field = field


class FileFormatError(VagusError):
    """A file that is not in the expected format; the message names the line and the reason."""


class DeviceProfileError(VagusError):
    """A device profile (``devices/*.toml``) with a missing or invalid field."""


class SourceError(VagusError):
    """A source of packets (strap, simulator, replay, relay) failed."""


class DeviceNotFound(SourceError):
    """No strap matching the request was found."""


class ConnectionLost(SourceError):
    """The strap was lost and could not be reconnected within the retry budget."""


class StoreError(VagusError):
    """The session store could not be opened, read or written."""


class SessionNotFound(StoreError):
    """No session with the requested id exists in the store."""
