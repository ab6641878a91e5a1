"""AOJ-20A framer: command bytes, frames split and merged at any position, garbage and bad XORs
skipped and counted, encoder round trips (PROTOCOLS.md section 4.8)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.protocols.catalog import get_protocol
from devices.protocols.reading import BodySite, Metric, Reading
from devices.protocols.thermometer_aoj import (
    GET_DEVICE_DATA_COMMAND,
    GET_HISTORY_COMMAND,
    GET_TEMPERATURE_COMMAND,
    AojDecoder,
    Mode,
    Reply,
    encode_aoj_frame,
    encode_device_data_reply,
    encode_error_reply,
    encode_set_time,
    encode_temperature_reply,
)

FOREHEAD_36_5 = bytes.fromhex("aa 01 c1 03 0e 42 01 8e")
EAR_38_2 = bytes.fromhex("aa 01 c1 03 0e ec 03 22")
ERROR_E5 = bytes.fromhex("aa 01 ce 01 e5 2b")
BATTERY_8 = bytes.fromhex("aa 01 c5 03 01 08 0a c4")
STREAM = FOREHEAD_36_5 + ERROR_E5 + EAR_38_2 + BATTERY_8
STREAM_READINGS = [
    Reading(Metric.TEMP, 36.5, site=BodySite.FOREHEAD),
    Reading(Metric.TEMP, 38.2, site=BodySite.TYMPANIC),
    Reading(Metric.BATTERY, 80.0),
]


@pytest.mark.parametrize(
    ("command", "wire"),
    [
        # PROTOCOLS.md 4.8 (XOR checked there); the others by hand: XOR of bytes 1 .. n-2.
        (GET_TEMPERATURE_COMMAND, "aa 01 d1 03 00 00 00 d3"),
        (GET_DEVICE_DATA_COMMAND, "aa 01 d5 00 d4"),
        (GET_HISTORY_COMMAND, "aa 01 d3 00 d2"),
        (encode_set_time(2024, 3, 15, 8, 30), "aa 01 d2 05 18 03 0f 08 1e d4"),
    ],
)
def test_command_bytes_equal_the_documented_bytes(command: bytes, wire: str) -> None:
    assert command == bytes.fromhex(wire)


def test_encoded_replies_equal_the_vector_frames() -> None:
    assert encode_temperature_reply(36.5, Mode.ADULT_FOREHEAD) == FOREHEAD_36_5
    assert encode_temperature_reply(38.2, Mode.EAR) == EAR_38_2
    assert encode_error_reply(0xE5) == ERROR_E5
    assert encode_device_data_reply(Mode.ADULT_FOREHEAD, 8, 10) == BATTERY_8


def test_start_command_asks_for_device_data_only() -> None:
    spec = get_protocol("aoj-20a")
    assert spec.start_commands == (GET_DEVICE_DATA_COMMAND,)
    assert spec.keepalive_command is None


@pytest.mark.parametrize("split", range(len(STREAM) + 1))
def test_stream_split_at_any_position_gives_the_same_readings(split: int) -> None:
    decoder = AojDecoder()
    readings = decoder.feed(STREAM[:split]) + decoder.feed(STREAM[split:])
    assert readings == STREAM_READINGS
    assert (decoder.stats.frames, decoder.stats.skipped_bytes) == (4, 0)


def test_stream_fed_byte_by_byte_gives_the_same_readings() -> None:
    decoder = AojDecoder()
    readings = [r for i in range(len(STREAM)) for r in decoder.feed(STREAM[i : i + 1])]
    assert readings == STREAM_READINGS


def test_garbage_before_and_between_frames_is_skipped_and_counted() -> None:
    garbage = bytes.fromhex("00 aa 55 aa 02")
    decoder = AojDecoder()
    readings = decoder.feed(garbage + FOREHEAD_36_5 + garbage + EAR_38_2)
    assert readings == STREAM_READINGS[:2]
    assert decoder.stats.skipped_bytes == 2 * len(garbage)


def test_bad_xor_is_counted_and_the_next_frame_still_decodes() -> None:
    corrupt = FOREHEAD_36_5[:-1] + bytes((FOREHEAD_36_5[-1] ^ 0x01,))
    decoder = AojDecoder()
    assert decoder.feed(corrupt + EAR_38_2) == [STREAM_READINGS[1]]
    assert decoder.stats.bad_frames == 1
    assert decoder.stats.skipped_bytes == len(corrupt)


def test_header_announcing_an_impossible_length_does_not_hold_back_real_frames() -> None:
    decoder = AojDecoder()
    assert decoder.feed(bytes.fromhex("aa 01 c3 ff") + FOREHEAD_36_5) == [STREAM_READINGS[0]]
    assert decoder.stats.skipped_bytes == 4


def test_unknown_reply_code_is_skipped() -> None:
    decoder = AojDecoder()
    assert decoder.feed(encode_aoj_frame(0xC9, b"\x01") + FOREHEAD_36_5) == [STREAM_READINGS[0]]
    assert decoder.stats.frames == 1


def test_object_mode_temperature_is_dropped_and_counted() -> None:
    decoder = AojDecoder()
    assert decoder.feed(encode_temperature_reply(36.5, Mode.OBJECT)) == []
    assert (decoder.stats.frames, decoder.stats.dropped_values) == (1, 1)


def test_acknowledgements_history_and_errors_yield_no_reading() -> None:
    frames = (
        encode_aoj_frame(Reply.SET_TIME),
        encode_aoj_frame(Reply.HISTORY, bytes.fromhex("01 18 03 0f 08 1e 0e 42")),
        encode_aoj_frame(Reply.HISTORY),
        encode_aoj_frame(Reply.DELETE_HISTORY),
        *(encode_error_reply(code) for code in range(0xE1, 0xE6)),
    )
    decoder = AojDecoder()
    assert decoder.feed(b"".join(frames)) == []
    assert (decoder.stats.frames, decoder.stats.bad_frames) == (len(frames), 0)


_body_modes = st.sampled_from([Mode.ADULT_FOREHEAD, Mode.CHILD_FOREHEAD, Mode.EAR])
_SITES = {
    Mode.ADULT_FOREHEAD: BodySite.FOREHEAD,
    Mode.CHILD_FOREHEAD: BodySite.FOREHEAD,
    Mode.EAR: BodySite.TYMPANIC,
}


@given(
    measurements=st.lists(st.tuples(st.integers(2500, 4500), _body_modes), max_size=6),
    garbage=st.lists(st.binary(max_size=6).filter(lambda chunk: 0xAA not in chunk), max_size=7),
    cuts=st.lists(st.integers(0, 200), max_size=8),
)
def test_temperatures_survive_garbage_and_any_chunking(
    measurements: list[tuple[int, Mode]], garbage: list[bytes], cuts: list[int]
) -> None:
    frames = [encode_temperature_reply(centi / 100, mode) for centi, mode in measurements]
    pieces = [garbage[i] if i < len(garbage) else b"" for i in range(len(frames) + 1)]
    stream = pieces[0] + b"".join(f + g for f, g in zip(frames, pieces[1:], strict=True))
    decoder = AojDecoder()
    readings = []
    for start, end in zip([0, *sorted(cuts)], [*sorted(cuts), len(stream)], strict=True):
        readings += decoder.feed(stream[start:end])
    assert readings == [
        Reading(Metric.TEMP, centi / 100, site=_SITES[mode]) for centi, mode in measurements
    ]
    assert decoder.stats.skipped_bytes == sum(len(chunk) for chunk in pieces)
