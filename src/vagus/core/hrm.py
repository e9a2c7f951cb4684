"""Heart Rate Measurement (0x2A37) payloads: parse and encode.

Bluetooth SIG, Heart Rate Service 1.0 §3.1 and the GATT Specification Supplement
("Heart Rate Measurement"). All fields little-endian::

    flags (uint8)
      bit 0  heart rate value format: 0 = uint8, 1 = uint16 (may change within a connection)
      bit 1  sensor contact status: contact detected
      bit 2  sensor contact status supported (bit 1 only meaningful when bit 2 is set)
      bit 3  energy expended field present
      bit 4  RR-interval field(s) present
      bits 5-7 reserved
    heart rate      uint8 or uint16, beats per minute
    energy expended uint16, kJ                 (only if bit 3)
    RR-interval     uint16 each, 1/1024 s, 0..n (only if bit 4)

Three bugs common in open-source parsers are each pinned by a regression test:
ignoring the flags byte (reading RR from byte 2), ignoring the energy flag (reading
energy as the first RR), and storing energy under one key while reading another.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vagus.exceptions import MalformedPacket

__all__ = [
    "BATTERY_LEVEL_UUID",
    "BATTERY_SERVICE_UUID",
    "BLUETOOTH_BASE_UUID",
    "BODY_SENSOR_LOCATION_UUID",
    "CCCD_UUID",
    "HEART_RATE_MEASUREMENT_UUID",
    "HEART_RATE_SERVICE_UUID",
    "RR_TICKS_PER_S",
    "HeartRateMeasurement",
    "encode_heart_rate_measurement",
    "parse_fields",
    "parse_heart_rate_measurement",
    "ticks_to_ms",
    "uuid16",
]

#: The Bluetooth base UUID: a 16-bit UUID ``xxxx`` stands for
#: ``0000xxxx-0000-1000-8000-00805f9b34fb`` (Bluetooth Core Specification, Vol 3, Part B,
#: §2.5.1). The one definition: the BLE source, the device profiles and the simulated
#: BlueZ all use it and the UUIDs below.
BLUETOOTH_BASE_UUID = "0000{}-0000-1000-8000-00805f9b34fb"


def uuid16(short: int) -> str:
    """The lower-case 128-bit form of a 16-bit Bluetooth SIG UUID: ``short`` on
    :data:`BLUETOOTH_BASE_UUID` (Core Specification Vol 3 Part B §2.5.1).

    Raises:
        ValueError: ``short`` is not within 0x0000..0xFFFF.
    """
    if not 0 <= short <= 0xFFFF:
        raise ValueError(f"a 16-bit UUID is within 0x0000..0xFFFF, not {short:#x}")
    return BLUETOOTH_BASE_UUID.format(f"{short:04x}")


#: Heart Rate Service (assigned number 0x180D).
HEART_RATE_SERVICE_UUID = uuid16(0x180D)
#: Heart Rate Measurement characteristic (0x2A37): the payloads parsed here.
HEART_RATE_MEASUREMENT_UUID = uuid16(0x2A37)
#: Body Sensor Location characteristic (0x2A38).
BODY_SENSOR_LOCATION_UUID = uuid16(0x2A38)
#: Battery Service (0x180F).
BATTERY_SERVICE_UUID = uuid16(0x180F)
#: Battery Level characteristic (0x2A19).
BATTERY_LEVEL_UUID = uuid16(0x2A19)
#: Client Characteristic Configuration descriptor (0x2902): enables notifications.
CCCD_UUID = uuid16(0x2902)

#: RR intervals are sent in units of 1/1024 s (Heart Rate Service §3.1.1.5).
RR_TICKS_PER_S = 1024

_FLAG_HR_UINT16 = 0x01
_FLAG_CONTACT_DETECTED = 0x02
_FLAG_CONTACT_SUPPORTED = 0x04
_FLAG_ENERGY_PRESENT = 0x08
_FLAG_RR_PRESENT = 0x10


def ticks_to_ms(rr_ticks: int) -> float:
    """Convert an RR interval from 1/1024 s ticks to milliseconds: ``ticks * 1000 / 1024``."""
    return rr_ticks * 1000.0 / RR_TICKS_PER_S


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """One parsed Heart Rate Measurement notification.

    Attributes:
        hr_bpm: the heart rate the strap reports (beats/min). Several straps
            overestimate it; vagus computes heart rate from RR instead.
        rr_ticks: the RR intervals exactly as sent, in 1/1024 s.
        contact: True/False when the strap supports contact detection, else None.
        energy_kj: cumulative energy expended (kJ) when the field is present, else None.
        hr_uint16: whether the heart rate was sent as uint16 (flags bit 0).
    """

    hr_bpm: int
    rr_ticks: tuple[int, ...] = ()
    contact: bool | None = None
    energy_kj: int | None = None
    hr_uint16: bool = False

    @property
    def rr_ms(self) -> tuple[float, ...]:
        """RR intervals in milliseconds (``ticks * 1000 / 1024``)."""
        return tuple(t * 1000.0 / RR_TICKS_PER_S for t in self.rr_ticks)


def parse_heart_rate_measurement(payload: bytes) -> HeartRateMeasurement:
    """Parse the bytes of one Heart Rate Measurement (0x2A37) notification.

    Args:
        payload: the characteristic value exactly as received.

    Returns:
        The parsed measurement.

    Raises:
        MalformedPacket: the payload is empty, shorter than its flags promise, or
            carries an odd number of trailing RR bytes. Nothing is guessed.
    """
    flags, hr_bpm, energy_kj, rr_ticks = parse_fields(payload)
    return HeartRateMeasurement(
        hr_bpm,
        rr_ticks,
        bool(flags & _FLAG_CONTACT_DETECTED) if flags & _FLAG_CONTACT_SUPPORTED else None,
        energy_kj,
        bool(flags & _FLAG_HR_UINT16),
    )


#: ``struct.Struct("<nH")`` for n RR values, made on first use (a notification holds at
#: most 9 in a 23-byte ATT payload; longer payloads from larger MTUs work the same way).
_RR_STRUCTS: dict[int, struct.Struct] = {}


def parse_fields(payload: bytes) -> tuple[int, int, int | None, tuple[int, ...]]:
    """The fields of a 0x2A37 payload as a plain tuple ``(flags, hr_bpm, energy_kj,
    rr_ticks)``: :func:`parse_heart_rate_measurement` without building its result object
    (the real-time pipeline parses notifications with it, all but the usual 4-byte one:
    flags, a uint8 heart rate, one RR value, which it reads inline the same way).

    Raises:
        MalformedPacket: as :func:`parse_heart_rate_measurement`.
    """
    n = len(payload)
    if n == 0:
        raise MalformedPacket("empty Heart Rate Measurement payload: no flags byte")
    flags = payload[0]
    if flags & _FLAG_HR_UINT16:
        if n < 3:
            raise MalformedPacket(
                f"Heart Rate Measurement of {n} bytes is too short: flags 0x{flags:02x} "
                "announce a uint16 heart rate at byte 1"
            )
        hr_bpm = payload[1] | (payload[2] << 8)
        offset = 3
    else:
        if n < 2:
            raise MalformedPacket(
                f"Heart Rate Measurement of {n} bytes is too short: flags 0x{flags:02x} "
                "announce a uint8 heart rate at byte 1"
            )
        hr_bpm = payload[1]
        offset = 2

    energy_kj: int | None = None
    if flags & _FLAG_ENERGY_PRESENT:
        if n < offset + 2:
            raise MalformedPacket(
                f"Heart Rate Measurement of {n} bytes is too short: flags 0x{flags:02x} "
                f"announce a uint16 energy-expended field at byte {offset}"
            )
        energy_kj = payload[offset] | (payload[offset + 1] << 8)
        offset += 2

    rest = n - offset
    if flags & _FLAG_RR_PRESENT:
        if rest & 1:
            raise MalformedPacket(
                f"Heart Rate Measurement has {rest} trailing RR bytes (flags 0x{flags:02x}); "
                "RR intervals are uint16, so the count must be even"
            )
        count = rest >> 1
        unpack = _RR_STRUCTS.get(count)
        if unpack is None:
            unpack = _RR_STRUCTS[count] = struct.Struct(f"<{count}H")
        return flags, hr_bpm, energy_kj, unpack.unpack_from(payload, offset)
    if rest:
        raise MalformedPacket(
            f"Heart Rate Measurement has {rest} unexpected trailing bytes "
            f"(flags 0x{flags:02x} announce no RR intervals)"
        )
    return flags, hr_bpm, energy_kj, ()


def encode_heart_rate_measurement(
    hr_bpm: int,
    rr_ticks: tuple[int, ...] | list[int] = (),
    *,
    contact: bool | None = None,
    energy_kj: int | None = None,
    hr_uint16: bool = False,
    rr_present: bool | None = None,
) -> bytes:
    """Encode a Heart Rate Measurement payload, as a strap would send it.

    The inverse of :func:`parse_heart_rate_measurement`; the simulator and the
    simulated BlueZ use it to produce real 0x2A37 bytes.

    Args:
        hr_bpm: heart rate, 0-255 for uint8 or 0-65535 with ``hr_uint16``.
        rr_ticks: RR intervals in 1/1024 s, each 0-65535.
        contact: None if contact detection is unsupported, else the contact state.
        energy_kj: energy expended (0-65535) or None to omit the field.
        hr_uint16: send the heart rate as uint16.
        rr_present: set flags bit 4; by default only when ``rr_ticks`` is non-empty.

    Raises:
        ValueError: a field is out of its range.
    """
    limit = 0xFFFF if hr_uint16 else 0xFF
    if not 0 <= hr_bpm <= limit:
        raise ValueError(f"hr_bpm {hr_bpm} out of range 0..{limit}")
    if energy_kj is not None and not 0 <= energy_kj <= 0xFFFF:
        raise ValueError(f"energy_kj {energy_kj} out of range 0..65535")
    if any(not 0 <= t <= 0xFFFF for t in rr_ticks):
        raise ValueError("every RR value must be within 0..65535 ticks")
    if rr_present is None:
        rr_present = len(rr_ticks) > 0
    if rr_ticks and not rr_present:
        raise ValueError("rr_ticks given but rr_present=False")
    flags = 0
    if hr_uint16:
        flags |= _FLAG_HR_UINT16
    if contact is not None:
        flags |= _FLAG_CONTACT_SUPPORTED
        if contact:
            flags |= _FLAG_CONTACT_DETECTED
    if energy_kj is not None:
        flags |= _FLAG_ENERGY_PRESENT
    if rr_present:
        flags |= _FLAG_RR_PRESENT
    out = bytearray([flags])
    out += hr_bpm.to_bytes(2 if hr_uint16 else 1, "little")
    if energy_kj is not None:
        out += energy_kj.to_bytes(2, "little")
    for t in rr_ticks:
        out += t.to_bytes(2, "little")
    return bytes(out)
