"""vagus: live heart-rate-variability biofeedback from a Bluetooth chest strap.

The public API::

    from vagus import Pipeline, Session, parse_heart_rate_measurement, VagusError, MalformedPacket

``Pipeline`` is the sans-I/O core (see :mod:`vagus.core.pipeline`): feed it packets
or RR intervals with their times, read the events it hands out. ``Session`` (see
:mod:`vagus.session`) runs one per participant of a session, with one pacer and one
session clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vagus.core.hrm import HeartRateMeasurement, parse_heart_rate_measurement
from vagus.exceptions import (
    ConnectionLost,
    DeviceNotFound,
    DeviceProfileError,
    FileFormatError,
    InvalidInput,
    MalformedPacket,
    ProtocolError,
    SessionNotFound,
    SourceError,
    StoreError,
    VagusError,
)

if TYPE_CHECKING:
    from vagus.core.pipeline import Pipeline
    from vagus.session import Session

__version__ = "0.1.0"

__all__ = [
    "ConnectionLost",
    "DeviceNotFound",
    "DeviceProfileError",
    "FileFormatError",
    "HeartRateMeasurement",
    "InvalidInput",
    "MalformedPacket",
    "Pipeline",
    "ProtocolError",
    "Session",
    "SessionNotFound",
    "SourceError",
    "StoreError",
    "VagusError",
    "__version__",
    "parse_heart_rate_measurement",
]


def __getattr__(name: str) -> Any:
    # Lazy so that ``import vagus`` stays cheap (numpy is loaded on first use).
    if name == "Pipeline":
        from vagus.core.pipeline import Pipeline

        return Pipeline
    if name == "Session":
        from vagus.session import Session

        return Session
    raise AttributeError(f"module 'vagus' has no attribute {name!r}")
