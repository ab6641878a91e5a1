"""Nonin format 2 / format 8 stream framing and the command pulsegate sends."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.protocols.catalog import get_protocol
from devices.protocols.oximeter_nonin import (
    Format2Decoder,
    Format2Status,
    Format8Decoder,
    Format8Status1,
    Format8Status2,
    decode_set_data_format,
    encode_format2_frame,
    encode_format2_packet,
    encode_format8_frame,
    encode_set_data_format,
)
from devices.protocols.reading import DecodeError, Metric, Quality, Reading

# mattjlewis/NoninPulseOx @4e53359 DataFormat2FrameSerialiser.java, frames quoted in its closing
# comment (a real packet: HR 74, SpO2 96, preceded by the tail of the previous packet).
REAL_STREAM = bytes.fromhex(
    "01804900CA 0180464A11 01804400C5 01804300C4 01814300C5 0180434A0E 0180436024 0180439458"
    " 01804300C4 01804100C2 01803E17D6 01803C04C1 018039601A 0180366017 0180356016 01803400B5"
    " 01803400B5 01803400B5 0180354A00 0180366017 0180376018 01803A00BB 01804000C1 01804A00CB"
    " 0180574A22 01806900EA 01807C4A47 0180900011 0180A10022 0181AF0031"
)
REAL_READINGS = [Reading(Metric.SPO2, 96.0), Reading(Metric.PULSE, 74.0)]
GARBAGE = bytes.fromhex("ff 00 7e 80 81 02")  # no 01 byte, so nothing here can start a frame

spo2_values = st.none() | st.integers(35, 100)
pulse_values = st.none() | st.integers(25, 250)


def _values(readings: list[Reading]) -> list[tuple[Metric, float | None]]:
    return [(reading.metric, reading.value) for reading in readings]


def _expected(spo2: int | None, pulse: int | None) -> list[tuple[Metric, float | None]]:
    return [
        (Metric.SPO2, None if spo2 is None else float(spo2)),
        (Metric.PULSE, None if pulse is None else float(pulse)),
    ]


# --- format 2 ---


def test_format2_real_stream_split_at_every_offset_gives_one_packet() -> None:
    for split in range(len(REAL_STREAM) + 1):
        decoder = Format2Decoder()
        readings = decoder.feed(REAL_STREAM[:split]) + decoder.feed(REAL_STREAM[split:])
        assert readings == REAL_READINGS, split
        assert decoder.stats.frames == 30
        assert decoder.stats.skipped_bytes == 0


def test_format2_byte_by_byte_feed_gives_one_packet() -> None:
    decoder = Format2Decoder()
    readings = [reading for byte in REAL_STREAM for reading in decoder.feed(bytes([byte]))]
    assert readings == REAL_READINGS


def test_format2_garbage_before_and_between_packets_is_skipped_and_counted() -> None:
    first = encode_format2_packet(97, 72)
    second = encode_format2_packet(88, 110)
    decoder = Format2Decoder()
    readings = decoder.feed(GARBAGE + first + GARBAGE + second)
    assert _values(readings) == _expected(97, 72) + _expected(88, 110)
    assert decoder.stats.skipped_bytes == 2 * len(GARBAGE)
    assert decoder.stats.frames == 50
    assert decoder.stats.bad_frames == 0


def test_format2_bad_checksum_is_counted_and_drops_only_its_packet() -> None:
    broken = bytearray(encode_format2_packet(97, 72))
    broken[7 * 5 + 4] ^= 0x01  # checksum of frame 7
    decoder = Format2Decoder()
    readings = decoder.feed(bytes(broken) + encode_format2_packet(90, 80))
    assert _values(readings) == _expected(90, 80)
    assert decoder.stats.bad_frames == 1
    assert decoder.stats.frames == 24 + 25


def test_format2_lost_byte_inside_a_packet_drops_that_packet() -> None:
    packet = encode_format2_packet(97, 72)
    lossy = packet[:62] + packet[63:]  # one byte of frame 12 lost on the line
    decoder = Format2Decoder()
    assert decoder.feed(lossy) == []
    assert _values(decoder.feed(encode_format2_packet(95, 65))) == _expected(95, 65)


def test_format2_packet_missing_its_first_frames_is_not_decoded() -> None:
    packet = encode_format2_packet(97, 72)
    decoder = Format2Decoder()
    assert decoder.feed(packet[5:]) == []
    assert _values(decoder.feed(packet)) == _expected(97, 72)


def test_format2_early_sync_restarts_the_packet() -> None:
    packet = encode_format2_packet(97, 72)
    decoder = Format2Decoder()
    assert decoder.feed(packet[: 10 * 5]) == []
    assert _values(decoder.feed(encode_format2_packet(91, 66))) == _expected(91, 66)


def test_format2_frame_encoder_matches_pufferfish_vectors() -> None:
    # pez-globo/pufferfish-software TestNoninOEM3.cpp (shared/data/protocols/test_vectors.json)
    assert encode_format2_frame(0x81, 1, 0) == bytes.fromhex("01 81 01 00 83")
    assert encode_format2_frame(0x80, 1, 72) == bytes.fromhex("01 80 01 48 ca")
    assert encode_format2_frame(0x80, 1, 97) == bytes.fromhex("01 80 01 61 e3")


@pytest.mark.parametrize(
    ("status", "quality"),
    [
        (Format2Status.GREEN_PERFUSION, Quality.OK),
        (Format2Status.RED_PERFUSION, Quality.LOW_PERFUSION),
        (Format2Status.RED_PERFUSION | Format2Status.GREEN_PERFUSION, Quality.LOW_PERFUSION),
        (Format2Status.ARTIFACT, Quality.MOTION),
        (Format2Status.OUT_OF_TRACK, Quality.SEARCHING),
        (Format2Status.SENSOR_ALARM, Quality.SENSOR_FAULT),
        (Format2Status.SENSOR_DISCONNECT, Quality.SENSOR_FAULT),
    ],
)
def test_format2_status_bits_map_to_quality(status: Format2Status, quality: Quality) -> None:
    readings = Format2Decoder().feed(encode_format2_packet(97, 72, status=status))
    invalid = bool(quality & (Quality.SEARCHING | Quality.SENSOR_FAULT))
    assert [r.quality for r in readings] == [quality, quality]
    expected = _expected(None, None) if invalid else _expected(97, 72)
    assert _values(readings) == expected


@given(spo2=spo2_values, pulse=pulse_values, split=st.integers(0, 125))
def test_format2_packet_round_trips_through_any_split(
    spo2: int | None, pulse: int | None, split: int
) -> None:
    packet = encode_format2_packet(spo2, pulse)
    decoder = Format2Decoder()
    readings = decoder.feed(packet[:split]) + decoder.feed(packet[split:])
    assert _values(readings) == _expected(spo2, pulse)


# --- format 8 ---


def test_format8_stream_split_at_every_offset() -> None:
    stream = encode_format8_frame(97, 72) + encode_format8_frame(None, None) * 2
    for split in range(len(stream) + 1):
        decoder = Format8Decoder()
        readings = decoder.feed(stream[:split]) + decoder.feed(stream[split:])
        assert _values(readings) == _expected(97, 72) + _expected(None, None) * 2, split


def test_format8_resyncs_after_a_truncated_frame() -> None:
    decoder = Format8Decoder()
    stream = b"\x06" + encode_format8_frame(97, 72)[:2] + encode_format8_frame(96, 150)
    assert _values(decoder.feed(stream)) == _expected(96, 150)
    assert decoder.stats.skipped_bytes == 3  # the ACK byte and the two bytes of the cut frame


def test_format8_implausible_pulse_is_dropped_and_counted() -> None:
    decoder = Format8Decoder()
    readings = decoder.feed(encode_format8_frame(96, 300))
    assert _values(readings) == [(Metric.SPO2, 96.0)]
    assert decoder.stats.dropped_values == 1


@given(
    spo2=spo2_values,
    pulse=pulse_values,
    low_battery=st.booleans(),
    smartpoint=st.booleans(),
)
def test_format8_frame_round_trips(
    spo2: int | None, pulse: int | None, low_battery: bool, smartpoint: bool
) -> None:
    status2 = Format8Status2(0)
    if low_battery:
        status2 |= Format8Status2.LOW_BATTERY
    if smartpoint:
        status2 |= Format8Status2.SMARTPOINT
    readings = Format8Decoder().feed(encode_format8_frame(spo2, pulse, status2=status2))
    assert _values(readings) == _expected(spo2, pulse)
    assert all(reading.quality == Quality.OK for reading in readings)


def test_format8_marginal_perfusion_lowers_confidence_only() -> None:
    frame = encode_format8_frame(
        95, 70, status1=Format8Status1.ALWAYS_SET | Format8Status1.MARGINAL_PERFUSION
    )
    readings = Format8Decoder().feed(frame)
    assert _values(readings) == _expected(95, 70)
    assert {reading.quality for reading in readings} == {Quality.LOW_PERFUSION}


# --- commands ---


def test_set_data_format_8_is_the_documented_command() -> None:
    # PROTOCOLS.md 5.4 N6, from mattjlewis/NoninPulseOx Nonin9560Constants.java
    assert encode_set_data_format(8) == bytes.fromhex("02 70 02 02 08 03")


def test_format8_protocol_starts_by_setting_format_8() -> None:
    assert get_protocol("nonin-format8").start_commands == (bytes.fromhex("02 70 02 02 08 03"),)
    assert get_protocol("nonin-format2").start_commands == ()


@given(data_format=st.integers(0, 255))
def test_set_data_format_round_trips(data_format: int) -> None:
    assert decode_set_data_format(encode_set_data_format(data_format)) == data_format


@pytest.mark.parametrize("command", ["02 70 02 02 08", "02 72 02 02 08 03", "02 70 02 02 08 04"])
def test_other_bytes_are_not_a_set_data_format_command(command: str) -> None:
    with pytest.raises(DecodeError):
        decode_set_data_format(bytes.fromhex(command))


def test_set_data_format_rejects_a_value_that_is_not_a_byte() -> None:
    with pytest.raises(ValueError, match="not a byte"):
        encode_set_data_format(256)
