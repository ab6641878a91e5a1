"""Viatom "Oxy" live protocol: reassembly across notifications, resynchronisation, the command
bytes the gateway writes, and encode -> decode round trips. Single frames are in
vectors/viatom-oxy.json."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.protocols.catalog import get_protocol
from devices.protocols.oximeter_viatom_oxy import (
    BLE_WRITE_CHUNK_LEN,
    MOTION_FLAG_THRESHOLD,
    RT_WAVE_POLL,
    SENSORS_POLL,
    OxyCommand,
    OxyDecoder,
    OxyFramer,
    OxyResponse,
    crc8,
    decode_rt_wave_payload,
    decode_sensors_payload,
    encode_file_close,
    encode_file_open,
    encode_file_read,
    encode_oxy_command,
    encode_oxy_response,
    encode_sensors_payload,
    encode_set_config,
    encode_set_time,
    split_for_ble_write,
)
from devices.protocols.reading import DecodeError, Metric, Quality, Reading

# 0x17 reply; payload REAL (quoted in MackeyStingray/o2r o2r/o2state.py), header + CRC COMPUTED.
O3 = bytes.fromhex("55 00 ff 00 00 0d 00 62 42 00 00 00 00 00 61 00 92 0a 01 00 2f")
# Same source, no finger.
O4 = bytes.fromhex("55 00 ff 00 00 0d 00 ff ff ff 00 00 00 00 60 00 05 00 00 00 43")
O3_READINGS = [
    Reading(Metric.SPO2, 98.0, Quality.MOTION),
    Reading(Metric.PULSE, 66.0, Quality.MOTION),
    Reading(Metric.PI, 1.0, Quality.MOTION),
    Reading(Metric.BATTERY, 97.0),
]


def _header_fields(frame: bytes) -> tuple[int, int, int, int, int]:
    """sync, code, check, block, length of a frame."""
    return (
        frame[0],
        frame[1],
        frame[2],
        int.from_bytes(frame[3:5], "little"),
        int.from_bytes(frame[5:7], "little"),
    )


@pytest.mark.parametrize(
    ("command", "documented_hex", "source"),
    [
        (SENSORS_POLL, "aa 17 e8 00 00 00 00 1b", "PROTOCOLS.md 4.4 O1; viatom-ble magic bytes"),
        (RT_WAVE_POLL, "aa 1b e4 00 00 01 00 00 5e", "PROTOCOLS.md 4.4 O2"),
        (
            encode_oxy_command(OxyCommand.INFO),
            "aa 14 eb 00 00 00 00 c6",
            "test_vectors oxy-req-info",
        ),
    ],
)
def test_command_bytes_equal_the_documented_bytes(
    command: bytes, documented_hex: str, source: str
) -> None:
    assert command == bytes.fromhex(documented_hex), source


def test_crc8_is_crc8_smbus() -> None:
    # Catalogue check value of CRC-8/SMBUS (poly 0x07, init 0, not reflected) over "123456789".
    assert crc8(b"123456789") == 0xF4


def test_spec_polls_read_sensors_as_start_and_keepalive() -> None:
    spec = get_protocol("viatom-oxy")
    assert spec.start_commands == (SENSORS_POLL,)
    assert spec.keepalive_command == SENSORS_POLL
    assert spec.keepalive_interval_s is not None
    assert 1.0 <= spec.keepalive_interval_s <= 2.0
    assert spec.ble_service_uuids == ("14839ac4-7d7e-415c-9a42-167340cf2339",)


@pytest.mark.parametrize("cut", range(1, len(O3)))
def test_reply_split_at_every_position_decodes_once(cut: int) -> None:
    decoder = OxyDecoder()
    assert decoder.feed(O3[:cut]) == []
    assert decoder.feed(O3[cut:]) == O3_READINGS
    assert decoder.stats.frames == 1
    assert decoder.stats.skipped_bytes == 0


def test_replies_fed_byte_by_byte_decode_in_order() -> None:
    decoder = OxyDecoder()
    readings = [r for byte in O4 + O3 for r in decoder.feed(bytes((byte,)))]
    assert [r.value for r in readings] == [None, None, None, 96.0, 98.0, 66.0, 1.0, 97.0]
    assert decoder.stats.frames == 2


@given(garbage=st.binary(max_size=40).map(lambda b: b.replace(b"\x55", b"")))
def test_garbage_before_and_between_replies_is_skipped_and_counted(garbage: bytes) -> None:
    decoder = OxyDecoder()
    readings = decoder.feed(garbage + O3 + garbage + O3)
    assert readings == O3_READINGS * 2
    assert decoder.stats.skipped_bytes == 2 * len(garbage)


def test_bad_crc_is_counted_and_the_next_reply_still_decodes() -> None:
    corrupted = O3[:-1] + bytes((O3[-1] ^ 0x01,))
    decoder = OxyDecoder()
    assert decoder.feed(corrupted) == []
    assert decoder.stats.bad_frames == 1
    assert decoder.feed(O3) == O3_READINGS
    assert decoder.stats.frames == 1
    assert decoder.stats.skipped_bytes == len(corrupted)


def test_corrupted_payload_byte_is_rejected_by_the_crc() -> None:
    corrupted = bytearray(O3)
    corrupted[7] = 0x50  # SpO2 98 -> 80
    decoder = OxyDecoder()
    assert decoder.feed(bytes(corrupted)) == []
    assert decoder.stats.bad_frames == 1


def test_false_sync_claiming_a_huge_length_does_not_hold_back_the_stream() -> None:
    false_header = bytes.fromhex("55 00 ff 00 00 ff ff")  # length 65535
    decoder = OxyDecoder()
    assert decoder.feed(false_header + O3) == O3_READINGS
    assert decoder.stats.skipped_bytes == len(false_header)


def test_replies_of_other_shapes_give_no_readings() -> None:
    info = encode_oxy_response(json.dumps({"Model": "O2Ring", "CurBAT": "80%"}).encode())
    ping_ack = encode_oxy_response(bytes(4))
    decoder = OxyDecoder()
    assert decoder.feed(info + ping_ack) == []
    assert decoder.stats.frames == 2
    assert decoder.stats.bad_frames == 0


def test_framer_returns_status_block_and_payload() -> None:
    frame = encode_oxy_response(b"\x01\x02\x03", status=0x02, block=0x0304)
    assert OxyFramer().feed(frame) == [OxyResponse(0x02, 0x0304, b"\x01\x02\x03")]


@pytest.mark.parametrize(
    ("motion", "flagged"),
    [(MOTION_FLAG_THRESHOLD - 1, False), (MOTION_FLAG_THRESHOLD, True), (255, True)],
)
def test_motion_flag_threshold(motion: int, flagged: bool) -> None:
    readings = decode_sensors_payload(encode_sensors_payload(97, 70, motion=motion))
    assert [bool(r.quality & Quality.MOTION) for r in readings] == [flagged] * 3 + [False]


def test_finger_off_with_motion_keeps_both_flags() -> None:
    payload = encode_sensors_payload(None, None, motion=200, finger_on=False)
    quality = decode_sensors_payload(payload)[0].quality
    assert quality == Quality.FINGER_OUT | Quality.MOTION


def test_sensors_payload_of_wrong_length_raises_decode_error() -> None:
    with pytest.raises(DecodeError):
        decode_sensors_payload(bytes(11))


def _rt_wave_payload(spo2: int, pulse: int, pi_raw: int, lead: int, wave: bytes) -> bytes:
    """0x1B data: SpO2, pulse u16, battery 77, state 0, PI, lead, 3 reserved, wave length, wave."""
    fixed = bytes((spo2,)) + pulse.to_bytes(2, "little") + bytes((77, 0, pi_raw, lead, 0, 0, 0))
    return fixed + len(wave).to_bytes(2, "little") + wave


def test_rt_wave_replies_decode_when_the_decoder_polls_0x1b() -> None:
    reply = encode_oxy_response(_rt_wave_payload(96, 270, 15, 1, bytes(range(50))))
    decoder = OxyDecoder(live_command=OxyCommand.RT_WAVE)
    assert decoder.feed(reply) == [
        Reading(Metric.SPO2, 96.0),
        # 270 bpm is outside the plausible range: the u16 pulse is read whole, then dropped.
        Reading(Metric.PI, 1.5),
        Reading(Metric.BATTERY, 77.0),
    ]
    assert decoder.stats.dropped_values == 1


@pytest.mark.parametrize(("lead", "quality"), [(0, Quality.FINGER_OUT), (2, Quality.SENSOR_FAULT)])
def test_rt_wave_lead_state_invalidates_values(lead: int, quality: Quality) -> None:
    readings = decode_rt_wave_payload(_rt_wave_payload(96, 70, 15, lead, b""))
    assert [(r.value, r.quality) for r in readings[:3]] == [(None, quality)] * 3


def test_rt_wave_payload_with_wrong_wave_length_is_not_decoded() -> None:
    payload = _rt_wave_payload(96, 70, 15, 1, bytes(10))[:-1]
    decoder = OxyDecoder(live_command=OxyCommand.RT_WAVE)
    assert decoder.feed(encode_oxy_response(payload)) == []
    with pytest.raises(DecodeError):
        decode_rt_wave_payload(payload)


def test_sensors_decoder_ignores_rt_wave_replies() -> None:
    reply = encode_oxy_response(_rt_wave_payload(96, 70, 15, 1, bytes(30)))
    assert OxyDecoder().feed(reply) == []


@settings(max_examples=200, deadline=None)
@given(
    spo2=st.none() | st.integers(35, 100),
    pulse=st.none() | st.integers(25, 250),
    pi_raw=st.integers(0, 255),
    battery=st.integers(0, 100),
    motion=st.integers(0, 255),
    cuts=st.lists(st.integers(1, 20), max_size=10),
)
def test_sensors_reply_round_trip_through_any_notification_split(
    spo2: int | None, pulse: int | None, pi_raw: int, battery: int, motion: int, cuts: list[int]
) -> None:
    pi = pi_raw / 10 if pi_raw else None
    payload = encode_sensors_payload(
        spo2, pulse, pi_percent=pi, battery_percent=battery, motion=motion
    )
    stream = encode_oxy_response(payload)
    decoder = OxyDecoder()
    readings: list[Reading] = []
    pos = 0
    for cut in [*cuts, len(stream)]:
        readings += decoder.feed(stream[pos : pos + cut])
        pos += cut
    readings += decoder.feed(stream[pos:])
    quality = Quality.MOTION if motion >= MOTION_FLAG_THRESHOLD else Quality.OK
    if spo2 is None and pulse is None:
        quality |= Quality.SEARCHING
        spo2_value = pulse_value = pi = None
    else:
        spo2_value = None if spo2 is None else float(spo2)
        pulse_value = None if pulse is None else float(pulse)
    assert readings == [
        Reading(Metric.SPO2, spo2_value, quality),
        Reading(Metric.PULSE, pulse_value, quality),
        Reading(Metric.PI, pi, quality),
        Reading(Metric.BATTERY, float(battery)),
    ]


@given(
    cmd=st.integers(0, 255),
    payload=st.binary(max_size=300),
    block=st.integers(0, 0xFFFF),
)
def test_request_frames_carry_their_fields_and_crc(cmd: int, payload: bytes, block: int) -> None:
    frame = encode_oxy_command(cmd, payload, block=block)
    assert _header_fields(frame) == (0xAA, cmd, cmd ^ 0xFF, block, len(payload))
    assert frame[7:-1] == payload
    assert frame[-1] == crc8(frame[:-1])


@given(
    status=st.integers(0, 255),
    payload=st.binary(max_size=1024),
    block=st.integers(0, 0xFFFF),
)
def test_response_frames_round_trip_through_the_framer(
    status: int, payload: bytes, block: int
) -> None:
    frames = split_for_ble_write(encode_oxy_response(payload, status=status, block=block))
    framer = OxyFramer()
    responses = [response for chunk in frames for response in framer.feed(chunk)]
    assert responses == [OxyResponse(status, block, payload)]


def test_file_commands_carry_name_and_block() -> None:
    opened = encode_file_open("20250306222056")
    assert _header_fields(opened) == (0xAA, 0x03, 0xFC, 0, 15)
    assert opened[7:-1] == b"20250306222056\x00"
    assert _header_fields(encode_file_read(7)) == (0xAA, 0x04, 0xFB, 7, 0)
    assert _header_fields(encode_file_close()) == (0xAA, 0x05, 0xFA, 0, 0)


def test_file_open_is_split_into_20_byte_writes() -> None:
    opened = encode_file_open("20250306222056")
    chunks = split_for_ble_write(opened)
    assert [len(chunk) for chunk in chunks] == [BLE_WRITE_CHUNK_LEN, len(opened) - 20]
    assert b"".join(chunks) == opened


def test_set_config_sends_values_as_json_strings() -> None:
    # PROTOCOLS.md 4.4: set config data is JSON such as {"SetMotor":"80"}.
    assert encode_set_config({"SetMotor": 80})[7:-1] == b'{"SetMotor":"80"}'
    clock = encode_set_time(datetime(2025, 3, 6, 22, 20, 56))
    assert clock[1] == OxyCommand.SET_CONFIG
    assert clock[7:-1] == b'{"SetTIME":"2025-03-06,22:20:56"}'


@pytest.mark.parametrize(
    "kwargs", [{"spo2_percent": 256, "pulse_bpm": 70}, {"spo2_percent": 97, "pulse_bpm": 70000}]
)
def test_sensors_payload_encoder_rejects_out_of_range_fields(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="range"):
        encode_sensors_payload(**kwargs)
