"""Contec "new" protocol (CMS50D-BT / USB-HID CMS50): command bytes, framing, HID padding.

Real bytes from RavuAlHemio/poxymeter `contrib/poxymeter-protocol.txt` (annotated HID traffic)
and the BLE start sequence of nringelstein/CMS50D-BT `cms50d_bt_driver.py`.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.protocols.catalog import get_protocol
from devices.protocols.oximeter_contec_hid import (
    HID_INIT_COMMANDS,
    KEEPALIVE_COMMAND,
    START_LIVE_COMMAND,
    START_VALUES_COMMAND,
    STOP_LIVE_COMMAND,
    ContecHidDecoder,
    checksum,
    encode_command,
    encode_values_frame,
    encode_wave_frame,
)
from devices.protocols.reading import Metric, Quality

# poxymeter-protocol.txt: "s 7d | 81 a7 80 80 80 80 80 | 80 || 7d | 81 a2 ..." (HID setup)
HID_INIT_REAL = bytes.fromhex("7d 81 a7 80 80 80 80 80 80 7d 81 a2 80 80 80 80 80 80")
# nringelstein/CMS50D-BT: writes to 0xFF01 in this order before streaming.
BLE_START_REAL = ["81 01", "82 02", "9a 1a", "9b 00 1b"]
# Replies from poxymeter-protocol.txt that carry no values.
VERSION_REPLY = bytes.fromhex("f2 00 00 02 04 00 0c 04")
READY_REPLY = bytes.fromhex("f0 70")
READY_COMMAND = bytes.fromhex("80 00")  # its checksum is 0x00, like HID padding
VALUES_98_80 = bytes.fromhex("eb 01 04 50 62 7f 00 21")
WAVE = bytes.fromhex("eb 00 06 35 06 2c")


def test_commands_equal_the_captured_bytes() -> None:
    assert bytes.fromhex("9b 00 1b") == START_LIVE_COMMAND
    assert bytes.fromhex("9b 01 1c") == START_VALUES_COMMAND
    assert bytes.fromhex("9b 7f 1a") == STOP_LIVE_COMMAND
    assert bytes.fromhex("9a 1a") == KEEPALIVE_COMMAND
    assert b"".join(HID_INIT_COMMANDS) == HID_INIT_REAL
    assert encode_command(0x80) == READY_COMMAND


def test_spec_uses_the_ble_driver_start_sequence_and_keepalive() -> None:
    spec = get_protocol("contec-hid")
    assert [command.hex(" ") for command in spec.start_commands] == BLE_START_REAL
    assert spec.keepalive_command == KEEPALIVE_COMMAND
    assert spec.keepalive_interval_s is not None and 0 < spec.keepalive_interval_s <= 5.0
    assert spec.ble_write_uuid == "0000ff01-0000-1000-8000-00805f9b34fb"
    assert spec.ble_notify_uuids == ("0000ff02-0000-1000-8000-00805f9b34fb",)


STREAM = VERSION_REPLY + WAVE + VALUES_98_80 + READY_REPLY + encode_values_frame(None, None) + WAVE


@pytest.mark.parametrize("cut", range(len(STREAM) + 1))
def test_split_at_any_position_gives_the_same_readings(cut: int) -> None:
    decoder = ContecHidDecoder()
    readings = decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:])
    assert [(r.metric, r.value, r.quality) for r in readings] == [
        (Metric.SPO2, 98.0, Quality.OK),
        (Metric.PULSE, 80.0, Quality.OK),
        (Metric.SPO2, None, Quality.SEARCHING),
        (Metric.PULSE, None, Quality.SEARCHING),
    ]
    # The trailing waveform frame is complete; the version and ready replies are recognised.
    assert (decoder.stats.frames, decoder.stats.bad_frames, decoder.stats.skipped_bytes) == (
        6,
        0,
        0,
    )


def test_hid_padding_is_not_counted_and_a_zero_checksum_survives_it() -> None:
    report = READY_COMMAND + bytes(30)
    decoder = ContecHidDecoder()
    readings = decoder.feed(report) + decoder.feed(VALUES_98_80 + bytes(56))
    assert [r.value for r in readings] == [98.0, 80.0]
    assert (decoder.stats.frames, decoder.stats.bad_frames, decoder.stats.skipped_bytes) == (
        2,
        0,
        0,
    )


def test_bad_checksum_and_garbage_are_skipped_and_counted() -> None:
    corrupted = VALUES_98_80[:-1] + bytes((VALUES_98_80[-1] ^ 0x01,))
    garbage = bytes((0x11, 0x22, 0x33))
    decoder = ContecHidDecoder()
    readings = decoder.feed(garbage + corrupted + VALUES_98_80)
    assert [r.value for r in readings] == [98.0, 80.0]
    assert (decoder.stats.frames, decoder.stats.bad_frames) == (1, 1)
    assert decoder.stats.skipped_bytes == len(garbage) + len(corrupted)


def test_cut_short_live_frame_is_a_bad_frame() -> None:
    decoder = ContecHidDecoder()
    readings = decoder.feed(VALUES_98_80[:5] + VALUES_98_80)
    assert [r.value for r in readings] == [98.0, 80.0]
    assert (decoder.stats.frames, decoder.stats.bad_frames, decoder.stats.skipped_bytes) == (
        1,
        1,
        5,
    )


def test_an_unterminated_reply_is_dropped_once_longer_than_any_frame() -> None:
    decoder = ContecHidDecoder()
    assert decoder.feed(bytes((0xF1,)) + bytes(range(1, 100))) == []
    assert decoder.stats.bad_frames == 0  # may still be a reply waiting for its end
    assert decoder.feed(bytes(range(1, 100))) == []
    assert decoder.stats.bad_frames == 1
    assert decoder.feed(VALUES_98_80) != []


def test_invalid_marker_alone_makes_that_value_missing() -> None:
    readings = ContecHidDecoder().feed(encode_values_frame(95, None))
    assert [(r.metric, r.value, r.quality) for r in readings] == [
        (Metric.SPO2, 95.0, Quality.OK),
        (Metric.PULSE, None, Quality.OK),
    ]


@given(spo2=st.integers(35, 100), pulse=st.integers(25, 126))
def test_values_frame_round_trips(spo2: int, pulse: int) -> None:
    frame = encode_values_frame(spo2, pulse)
    assert frame[-1] == checksum(frame[:-1])
    readings = ContecHidDecoder().feed(frame)
    assert [(r.metric, r.value) for r in readings] == [
        (Metric.SPO2, float(spo2)),
        (Metric.PULSE, float(pulse)),
    ]


@given(pleth=st.integers(0, 127), status=st.integers(0, 127))
def test_wave_frames_decode_to_no_readings_and_count(pleth: int, status: int) -> None:
    decoder = ContecHidDecoder()
    assert decoder.feed(encode_wave_frame(pleth, status=status)) == []
    assert (decoder.stats.frames, decoder.stats.bad_frames) == (1, 0)


SEVEN_BIT_PAYLOADS = st.binary(max_size=20).map(lambda raw: bytes(b & 0x7F for b in raw))
NON_LIVE_CODES = st.integers(0x80, 0xFF).filter(lambda code: code != 0xEB)


@given(code=NON_LIVE_CODES, payload=SEVEN_BIT_PAYLOADS, padding=st.integers(0, 40))
def test_any_reply_is_recognised_as_a_frame_when_the_next_code_arrives(
    code: int, payload: bytes, padding: int
) -> None:
    command = encode_command(code, payload)
    assert command[-1] == sum(command[:-1]) % 128
    decoder = ContecHidDecoder()
    readings = decoder.feed(command + bytes(padding) + VALUES_98_80)
    assert [r.value for r in readings] == [98.0, 80.0]
    assert (decoder.stats.frames, decoder.stats.bad_frames, decoder.stats.skipped_bytes) == (
        2,
        0,
        0,
    )
