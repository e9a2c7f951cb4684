"""Heart Rate Measurement (0x2A37) parser: every flag combination of BLE.md, the three
parser bugs of BLE.md as regression tests, fuzzing and a round trip with the encoder."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vagus import MalformedPacket, VagusError
from vagus.core.hrm import (
    HeartRateMeasurement,
    encode_heart_rate_measurement,
    parse_heart_rate_measurement,
    ticks_to_ms,
)


def _build(flags: int, hr: int, energy: int | None, rr: list[int]) -> bytes:
    """Independent little-endian encoder (struct), so the parser is not checked against itself."""
    out = struct.pack("<B", flags)
    out += struct.pack("<H" if flags & 0x01 else "<B", hr)
    if energy is not None:
        out += struct.pack("<H", energy)
    out += b"".join(struct.pack("<H", r) for r in rr)
    return out


@pytest.mark.parametrize(
    ("hr16", "contact_bits", "energy", "rr_flag", "reserved"),
    list(
        itertools.product(
            [False, True],
            [0b00, 0b01, 0b10, 0b11],  # (supported, detected) as bits 2 and 1
            [False, True],
            [False, True],
            [0x00, 0xE0],
        )
    ),
)
def test_every_flag_combination(
    hr16: bool, contact_bits: int, energy: bool, rr_flag: bool, reserved: int
) -> None:
    supported = bool(contact_bits & 0b10)
    detected = bool(contact_bits & 0b01)
    flags = (
        (0x01 if hr16 else 0)
        | (0x02 if detected else 0)
        | (0x04 if supported else 0)
        | (0x08 if energy else 0)
        | (0x10 if rr_flag else 0)
        | reserved
    )
    hr = 300 if hr16 else 173
    energy_kj = 0xFFFF if energy else None
    rr = [1003, 870, 65535] if rr_flag else []
    m = parse_heart_rate_measurement(_build(flags, hr, energy_kj, rr))
    assert m.hr_bpm == hr
    assert m.hr_uint16 is hr16
    assert m.energy_kj == energy_kj
    assert m.rr_ticks == tuple(rr)
    assert m.rr_ms == tuple(t * 1000 / 1024 for t in rr)
    # Bit 1 is only meaningful when bit 2 (supported) is set.
    assert m.contact == (detected if supported else None)


def test_rr_present_but_empty_is_valid() -> None:
    m = parse_heart_rate_measurement(bytes([0x10, 60]))
    assert m.rr_ticks == ()
    assert m.hr_bpm == 60


def test_rr_conversion_keeps_raw_ticks() -> None:
    m = parse_heart_rate_measurement(_build(0x10, 70, None, [1024, 512]))
    assert m.rr_ticks == (1024, 512)
    assert m.rr_ms == (1000.0, 500.0)
    assert ticks_to_ms(1) == pytest.approx(0.9765625)


# --- regression tests for the three parser bugs of BLE.md ---------------------------------


def test_regression_flags_byte_not_ignored() -> None:
    """Bug 1: ignoring the flags byte (assuming uint8 HR and RR from byte 2).

    With a uint16 heart rate the RR values start at byte 3; a parser reading RR from
    byte 2 would return HR's high byte mixed into the first RR.
    """
    payload = _build(0x11, 0x0150, None, [800, 900])  # HR 336 bpm as uint16
    m = parse_heart_rate_measurement(payload)
    assert m.hr_bpm == 336
    assert m.rr_ticks == (800, 900)
    # What the buggy parser would have produced, to show this test separates the two:
    buggy_hr = payload[1]
    buggy_rr = struct.unpack_from("<H", payload, 2)[0]
    assert (buggy_hr, buggy_rr) != (m.hr_bpm, m.rr_ticks[0])


def test_regression_energy_flag_not_ignored() -> None:
    """Bug 2: ignoring the energy flag (reading energy as the first RR)."""
    payload = _build(0x18, 72, 1234, [700, 710])
    m = parse_heart_rate_measurement(payload)
    assert m.energy_kj == 1234
    assert m.rr_ticks == (700, 710)
    assert 1234 not in m.rr_ticks
    # Energy with uint16 HR as well: energy at bytes 3-4, RR from byte 5.
    m16 = parse_heart_rate_measurement(_build(0x19, 72, 4321, [650]))
    assert (m16.hr_bpm, m16.energy_kj, m16.rr_ticks) == (72, 4321, (650,))


def test_regression_energy_stored_and_read_under_one_key() -> None:
    """Bug 3: storing energy under one key and reading another.

    The value parsed from the payload must come back from the one documented field
    ``energy_kj``, and the encoder must write what the parser reads.
    """
    m = parse_heart_rate_measurement(_build(0x08, 90, 0x0A0B, []))
    assert m.energy_kj == 0x0A0B
    fields = HeartRateMeasurement.__dataclass_fields__
    energy_fields = [name for name in fields if "energy" in name]
    assert energy_fields == ["energy_kj"]
    again = parse_heart_rate_measurement(
        encode_heart_rate_measurement(m.hr_bpm, m.rr_ticks, energy_kj=m.energy_kj)
    )
    assert again.energy_kj == 0x0A0B
    # Absent field: None, not 0.
    assert parse_heart_rate_measurement(_build(0x00, 90, None, [])).energy_kj is None


# --- malformed payloads --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"", "empty"),
        (bytes([0x01, 0x50]), "uint16"),  # uint16 HR announced, 1 byte given
        (bytes([0x08, 0x50, 0x01]), "energy"),  # energy announced, 1 byte given
        (bytes([0x10, 0x50, 0x01, 0x02, 0x03]), "even"),  # 3 RR bytes
        (bytes([0x10, 0x50, 0x01]), "even"),
        (bytes([0x00, 0x50, 0x01, 0x02]), "trailing"),  # bytes without RR flag
    ],
)
def test_malformed_payload_rejected_with_reason(payload: bytes, words: str) -> None:
    with pytest.raises(MalformedPacket) as info:
        parse_heart_rate_measurement(payload)
    assert words in str(info.value).lower() or "short" in str(info.value).lower()
    assert isinstance(info.value, VagusError)


@given(st.binary(max_size=40))
def test_fuzz_arbitrary_bytes_parse_or_malformed(payload: bytes) -> None:
    try:
        m = parse_heart_rate_measurement(payload)
    except MalformedPacket:
        return
    # Accepted: the fields are consistent with the bytes.
    flags = payload[0]
    hr_len = 2 if flags & 0x01 else 1
    energy_len = 2 if flags & 0x08 else 0
    assert len(payload) == 1 + hr_len + energy_len + 2 * len(m.rr_ticks)
    assert all(0 <= t <= 0xFFFF for t in m.rr_ticks)


@given(
    hr16=st.booleans(),
    hr=st.integers(0, 0xFFFF),
    rr=st.lists(st.integers(0, 0xFFFF), max_size=9),
    contact=st.sampled_from([None, True, False]),
    energy=st.one_of(st.none(), st.integers(0, 0xFFFF)),
)
def test_round_trip_with_encoder(
    hr16: bool, hr: int, rr: list[int], contact: bool | None, energy: int | None
) -> None:
    if not hr16:
        hr %= 256
    payload = encode_heart_rate_measurement(
        hr, rr, contact=contact, energy_kj=energy, hr_uint16=hr16
    )
    m = parse_heart_rate_measurement(payload)
    assert m == HeartRateMeasurement(
        hr_bpm=hr, rr_ticks=tuple(rr), contact=contact, energy_kj=energy, hr_uint16=hr16
    )
    assert (
        encode_heart_rate_measurement(
            m.hr_bpm, m.rr_ticks, contact=m.contact, energy_kj=m.energy_kj, hr_uint16=m.hr_uint16
        )
        == payload
    )


def test_encoder_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        encode_heart_rate_measurement(256)
    with pytest.raises(ValueError):
        encode_heart_rate_measurement(60, [70000])
    with pytest.raises(ValueError):
        encode_heart_rate_measurement(60, energy_kj=-1)
