"""Sources of raw strap packets: the BLE reader, the simulator, replay, (later) a relay.

All sources share one interface (:class:`vagus.sources.base.Source`): an async context
manager that is also an async iterator of :data:`vagus.sources.base.SourceItem`.
:func:`open_source` is the one factory; it imports bleak only on the BLE path.
"""

from __future__ import annotations

from vagus.sources.base import (
    BleSpec,
    DeviceInfo,
    LinkGap,
    LinkState,
    Packet,
    ReplaySpec,
    SimSpec,
    Source,
    SourceItem,
    SourceSpec,
    open_source,
)

__all__ = [
    "BleSpec",
    "DeviceInfo",
    "LinkGap",
    "LinkState",
    "Packet",
    "ReplaySpec",
    "SimSpec",
    "Source",
    "SourceItem",
    "SourceSpec",
    "open_source",
]
