"""Lepu/Viatom PC-60FW `AA 55` stream: framing, resync, sentinels, encoders and commands."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.protocols.catalog import get_protocol
from devices.protocols.oximeter_lepu_pc60fw import (
    ENABLE_PARAMS_COMMAND,
    ENABLE_WAVE_COMMAND,
    Command,
    Pc60fwDecoder,
    Token,
    crc8_maxim,
    encode_battery_frame,
    encode_enable_command,
    encode_frame,
    encode_heartbeat,
    encode_params_frame,
    encode_wave_frame,
)
from devices.protocols.reading import Metric, Quality, Reading

# Frames of PROTOCOLS.md section 4.3 (payloads from sza2/viatom_pc60fw README.md, CRC computed;
# commands from viatomEcho/LepuBle Pc60FwBleCmd.java), as in shared/data/protocols/
# test_vectors.json.
L1_PARAMS = bytes.fromhex("aa 55 0f 08 01 60 3e 00 50 00 c0 08")
L2_WAVE = bytes.fromhex("aa 55 0f 07 02 3b 38 35 32 2f bd")
L3_BATTERY = bytes.fromhex("aa 55 f0 03 03 03 f6")
L1_READINGS = [
    Reading(Metric.SPO2, 96.0),
    Reading(Metric.PULSE, 62.0),
    Reading(Metric.PI, 8.0),
]
BATTERY_FULL = Reading(Metric.BATTERY, 100.0)
BATTERY_PERCENT = {0: 0.0, 1: 33.0, 2: 67.0, 3: 100.0}  # level 0-3 in thirds


def _feed_in_pieces(decoder: Pc60fwDecoder, stream: bytes, cuts: list[int]) -> list[Reading]:
    readings: list[Reading] = []
    bounds = [0, *sorted(cuts), len(stream)]
    for start, end in itertools.pairwise(bounds):
        readings += decoder.feed(stream[start:end])
    return readings


@pytest.mark.parametrize(
    ("encoded", "documented"),
    [
        (encode_params_frame(96, 62, 8.0, battery_level=3), L1_PARAMS),
        (encode_wave_frame([59, 56, 53, 50, 47]), L2_WAVE),
        (encode_battery_frame(3), L3_BATTERY),
        (ENABLE_PARAMS_COMMAND, bytes.fromhex("aa 55 0f 03 84 01 e0")),
        (ENABLE_WAVE_COMMAND, bytes.fromhex("aa 55 0f 03 85 01 24")),
    ],
    ids=["L1-params", "L2-wave", "L3-battery", "enable-params", "enable-wave"],
)
def test_encoders_reproduce_the_documented_frames(encoded: bytes, documented: bytes) -> None:
    assert encoded == documented


def test_crc_table_starts_like_lepus_table() -> None:
    # PROTOCOLS.md 4.3: "The Lepu table starts 00 5E BC E2 61"
    assert [crc8_maxim(bytes((i,))) for i in range(5)] == [0x00, 0x5E, 0xBC, 0xE2, 0x61]


def test_protocol_starts_with_the_documented_enable_parameter_command() -> None:
    spec = get_protocol("lepu-pc60fw")
    assert spec.start_commands == (bytes.fromhex("aa 55 0f 03 84 01 e0"),)
    assert spec.keepalive_command is None


def test_heartbeat_carries_its_interval_in_a_sound_frame() -> None:
    heartbeat = encode_heartbeat(5)
    assert heartbeat[:6] == bytes.fromhex("aa 55 0f 03 80 05")
    assert crc8_maxim(heartbeat) == 0


def test_disabling_a_push_sends_zero() -> None:
    assert encode_enable_command(Command.ENABLE_WAVE, enable=False)[4:6] == b"\x85\x00"
    with pytest.raises(ValueError, match="not an enable command"):
        encode_enable_command(Command.HEARTBEAT)


def test_stream_split_at_every_offset_decodes_like_the_whole() -> None:
    stream = (
        L1_PARAMS + L2_WAVE + L3_BATTERY + encode_params_frame(None, None, None, finger_out=True)
    )
    whole = Pc60fwDecoder().feed(stream)
    assert len(whole) == 3 + 1 + 3
    for cut in range(len(stream) + 1):
        decoder = Pc60fwDecoder()
        assert decoder.feed(stream[:cut]) + decoder.feed(stream[cut:]) == whole, cut
        assert decoder.stats.frames == 4
        assert decoder.stats.skipped_bytes == 0


def test_byte_by_byte_feed_completes_each_frame_on_its_last_byte() -> None:
    decoder = Pc60fwDecoder()
    for byte in L1_PARAMS[:-1]:
        assert decoder.feed(bytes((byte,))) == []
    assert decoder.feed(L1_PARAMS[-1:]) == L1_READINGS


def test_garbage_before_and_between_frames_is_skipped_and_counted() -> None:
    garbage = bytes.fromhex("00 55 13 aa 00 ff aa")
    decoder = Pc60fwDecoder()
    readings = decoder.feed(garbage + L1_PARAMS + garbage + L3_BATTERY)
    assert readings == [*L1_READINGS, BATTERY_FULL]
    assert decoder.stats.skipped_bytes == 2 * len(garbage)
    assert decoder.stats.frames == 2


def test_truncated_frame_before_a_good_frame_costs_only_its_own_bytes() -> None:
    truncated = L1_PARAMS[:5]
    decoder = Pc60fwDecoder()
    assert decoder.feed(truncated + L1_PARAMS) == L1_READINGS
    assert decoder.stats.skipped_bytes == len(truncated)
    assert decoder.stats.bad_frames == 1  # the header's claimed length spans a bad CRC
    assert decoder.stats.frames == 1


def test_bad_crc_frame_is_skipped_and_counted() -> None:
    corrupted = L1_PARAMS[:-1] + bytes((L1_PARAMS[-1] ^ 0x80,))
    decoder = Pc60fwDecoder()
    assert decoder.feed(corrupted + L3_BATTERY) == [BATTERY_FULL]
    assert decoder.stats.bad_frames == 1
    assert decoder.stats.skipped_bytes == len(corrupted)
    assert decoder.stats.frames == 1


def test_parameter_frame_too_short_for_its_payload_is_counted_bad() -> None:
    short = encode_frame(Token.OXIMETER, 0x01, bytes.fromhex("60 3e"))
    decoder = Pc60fwDecoder()
    assert decoder.feed(short + L3_BATTERY) == [BATTERY_FULL]
    assert decoder.stats.bad_frames == 1
    assert decoder.stats.frames == 1


def test_unknown_token_is_not_taken_for_a_frame() -> None:
    foreign = bytes.fromhex("aa 55 33 03 03 03") + bytes((crc8_maxim(b"\xaa\x55\x33\x03\x03\x03"),))
    decoder = Pc60fwDecoder()
    assert decoder.feed(foreign) == []
    assert decoder.stats.frames == 0
    assert decoder.stats.skipped_bytes == len(foreign)


def test_message_type_is_read_together_with_its_token() -> None:
    device_info = encode_frame(Token.DEVICE, 0x01, bytes.fromhex("60 3e 00 50 00 c0"))
    info_reply = encode_frame(Token.OXIMETER, 0x03, b"\x03")
    decoder = Pc60fwDecoder()
    assert decoder.feed(device_info + info_reply) == []
    assert decoder.stats.frames == 2


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (encode_params_frame(None, 70, 2.0), [None, 70.0, None]),
        (encode_params_frame(97, None, 2.0), [97.0, None, 2.0]),
        (encode_params_frame(97, 70, 2.0, searching=True), [None, None, None]),
        (encode_params_frame(None, None, None, finger_out=True), [None, None, None]),
    ],
    ids=["spo2-zero", "pulse-zero", "searching", "probe-off"],
)
def test_zero_and_flagged_values_are_missing(frame: bytes, expected: list[float | None]) -> None:
    readings = Pc60fwDecoder().feed(frame)
    assert [r.metric for r in readings] == [Metric.SPO2, Metric.PULSE, Metric.PI]
    assert [r.value for r in readings] == expected


@pytest.mark.parametrize(("level", "percent"), BATTERY_PERCENT.items())
def test_battery_level_is_reported_in_thirds(level: int, percent: float) -> None:
    assert Pc60fwDecoder().feed(encode_battery_frame(level)) == [Reading(Metric.BATTERY, percent)]


def test_implausible_pulse_is_dropped_and_counted() -> None:
    decoder = Pc60fwDecoder()
    readings = decoder.feed(encode_params_frame(97, 300, 2.0))
    assert readings == [Reading(Metric.SPO2, 97.0), Reading(Metric.PI, 2.0)]
    assert decoder.stats.dropped_values == 1


# --- hypothesis: encode -> decode over multi-frame streams in random chunkings -----------------

_FrameCase = tuple[bytes, list[Reading]]


@st.composite
def _params_frames(draw: st.DrawFn) -> _FrameCase:
    spo2 = draw(st.none() | st.integers(35, 100))
    pulse = draw(st.none() | st.integers(25, 250))
    pi_raw = draw(st.integers(0, 255))
    finger_out, searching, check_probe = draw(
        st.tuples(st.booleans(), st.booleans(), st.booleans())
    )
    frame = encode_params_frame(
        spo2,
        pulse,
        pi_raw / 10,
        finger_out=finger_out,
        searching=searching,
        check_probe=check_probe,
        battery_level=draw(st.integers(0, 3)),
    )
    quality = (
        (Quality.FINGER_OUT if finger_out else Quality.OK)
        | (Quality.SEARCHING if searching else Quality.OK)
        | (Quality.SENSOR_FAULT if check_probe else Quality.OK)
    )
    flagged = finger_out or searching or check_probe
    spo2_value = None if flagged or spo2 is None else float(spo2)
    pulse_value = None if flagged or pulse is None else float(pulse)
    pi_value = None if spo2_value is None else pi_raw / 10
    return frame, [
        Reading(Metric.SPO2, spo2_value, quality),
        Reading(Metric.PULSE, pulse_value, quality),
        Reading(Metric.PI, pi_value, quality),
    ]


_wave_frames: st.SearchStrategy[_FrameCase] = st.builds(
    lambda samples, beats: (encode_wave_frame(samples, beats), []),
    st.lists(st.integers(0, 127), min_size=5, max_size=5),
    st.lists(st.booleans(), max_size=5),
)
_battery_frames = st.integers(0, 3).map(
    lambda level: (
        encode_battery_frame(level),
        [Reading(Metric.BATTERY, float(round(level * 100 / 3)))],
    )
)
_command_frames: st.SearchStrategy[_FrameCase] = st.builds(
    lambda command, enable: (encode_enable_command(command, enable), []),
    st.sampled_from([Command.ENABLE_PARAMS, Command.ENABLE_WAVE]),
    st.booleans(),
)
_garbage = st.binary(max_size=12).map(lambda data: data.replace(b"\xaa", b""))


@settings(max_examples=200, deadline=None)
@given(
    frames=st.lists(
        st.tuples(_params_frames() | _wave_frames | _battery_frames | _command_frames, _garbage),
        min_size=1,
        max_size=8,
    ),
    data=st.data(),
)
def test_encoded_stream_round_trips_in_any_chunking(
    frames: list[tuple[_FrameCase, bytes]], data: st.DataObject
) -> None:
    stream = b"".join(garbage + frame for (frame, _), garbage in frames)
    expected = [reading for (_, readings), _ in frames for reading in readings]
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10))
    decoder = Pc60fwDecoder()
    assert _feed_in_pieces(decoder, stream, cuts) == expected
    assert decoder.stats.frames == len(frames)
    assert decoder.stats.bad_frames == 0
    assert decoder.stats.skipped_bytes == sum(len(garbage) for _, garbage in frames)


@settings(max_examples=200, deadline=None)
@given(
    token=st.sampled_from(list(Token)),
    message_type=st.integers(0, 255).filter(lambda t: t not in (0x01, 0x03)),
    payload=st.binary(max_size=253),
)
def test_any_sound_frame_is_taken_whole(token: Token, message_type: int, payload: bytes) -> None:
    decoder = Pc60fwDecoder()
    assert decoder.feed(encode_frame(token, message_type, payload)) == []
    assert (decoder.stats.frames, decoder.stats.skipped_bytes, decoder.stats.bad_frames) == (
        1,
        0,
        0,
    )
