"""Contec V7.0: the real CMS60C session, resynchronisation, splits, and the command bytes.

The session file (tests/data/contec/contec_cms60c_v7_serial_session.bin, from InfantLab/
Contec-Pulse-Oximeter-in-Matlab `Data/caspar reverse engineer.txt` @334fc64, MIT) holds typed
notes up to 0x1F0, then the host's commands and the device's answers logged in one stream.
The whole file is fed as is: the framer's own resync skips the ASCII preamble.
"""

from __future__ import annotations

from collections import Counter
from itertools import groupby
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.protocols.catalog import get_protocol
from devices.protocols.oximeter_contec_v7 import (
    KEEPALIVE_COMMAND,
    START_REALTIME_COMMAND,
    STOP_REALTIME_COMMAND,
    ContecV7Decoder,
    decode_data_bytes,
    encode_packet,
    encode_realtime_packet,
)
from devices.protocols.reading import Metric, Quality, Reading

SESSION = Path(__file__).parents[2] / "data" / "contec" / "contec_cms60c_v7_serial_session.bin"
BINARY_PART_OFFSET = 0x1F1  # first byte after the typed notes (a logged 7D 81 A2 ... command)
# Where the real session shows the host sending each command (offsets checked with xxd).
START_AT = 0x2E5
KEEPALIVES_AT = (0xBE5, 0x167A, 0x20F4, 0x2B89)
STOP_AT = 0x30AB
PACKET = 9

FINGER_OUT = Quality.FINGER_OUT | Quality.SEARCHING


@pytest.fixture(scope="module")
def session() -> bytes:
    return SESSION.read_bytes()


def _pairs(readings: list[Reading]) -> list[tuple[float | None, float | None, Quality]]:
    """(SpO2, pulse, quality) per packet; the session's device has no PI."""
    assert [r.metric for r in readings] == [Metric.SPO2, Metric.PULSE] * (len(readings) // 2)
    return [
        (spo2.value, pulse.value, spo2.quality)
        for spo2, pulse in zip(readings[::2], readings[1::2], strict=True)
    ]


def test_real_session_runs_finger_out_then_searching_then_valid(session: bytes) -> None:
    packets = _pairs(ContecV7Decoder().feed(session))
    assert len(packets) == 1296
    runs = [(key, len(list(group))) for key, group in groupby(q for _, _, q in packets)]
    assert runs == [(FINGER_OUT, 236), (Quality.SEARCHING, 994), (Quality.OK, 66)]
    assert all(spo2 is None and pulse is None for spo2, pulse, q in packets if q != Quality.OK)
    valid = Counter((spo2, pulse) for spo2, pulse, q in packets if q == Quality.OK)
    assert valid == {(98.0, 82.0): 48, (98.0, 81.0): 18}


def test_real_session_preamble_is_skipped_by_resync(session: bytes) -> None:
    whole = ContecV7Decoder()
    from_binary = ContecV7Decoder()
    assert whole.feed(session) == from_binary.feed(session[BINARY_PART_OFFSET:])
    # 1,296 real-time packets, 22 logged host commands and 17 other replies; the file ends
    # with CR LF CR LF, three of which look like cut-short packets, the last still pending.
    assert (from_binary.stats.frames, from_binary.stats.bad_frames) == (1335, 3)
    assert from_binary.stats.skipped_bytes == 3
    assert whole.stats.frames > from_binary.stats.frames  # commands pasted in the notes
    assert whole.stats.skipped_bytes > BINARY_PART_OFFSET // 2


# Packets decoded by hand from the hex dump: offset -> (SpO2, pulse, quality).
HAND_CHECKED = [
    (0x2EE, None, None, FINGER_OUT),  # 01 e9 94 c0 95 ff ff ff ff: probe error
    (0xB3A, None, None, Quality.SEARCHING),  # 01 ea 94 ...: searching pulse
    (0x2E47, None, None, Quality.SEARCHING),  # still searching, stale PR byte 210
    (0x2E50, 98.0, 82.0, Quality.OK),  # 01 e0 c5 c5 98 d2 e2 ff ff
    (0x3099, 98.0, 81.0, Quality.OK),  # 01 e0 85 a4 94 d1 e2 ff ff: the last packet
]


@pytest.mark.parametrize(("offset", "spo2", "pulse", "quality"), HAND_CHECKED)
def test_real_session_packets_match_hand_decoding(
    session: bytes, offset: int, spo2: float | None, pulse: float | None, quality: Quality
) -> None:
    readings = ContecV7Decoder().feed(session[offset : offset + PACKET])
    assert _pairs(readings) == [(spo2, pulse, quality)]


def test_feeding_the_session_byte_by_byte_gives_the_same_readings(session: bytes) -> None:
    expected = ContecV7Decoder().feed(session)
    decoder = ContecV7Decoder()
    readings = [
        r for index in range(len(session)) for r in decoder.feed(session[index : index + 1])
    ]
    assert readings == expected


def test_command_bytes_equal_what_the_real_host_sent(session: bytes) -> None:
    assert session[START_AT : START_AT + PACKET] == START_REALTIME_COMMAND
    for offset in KEEPALIVES_AT:
        assert session[offset : offset + PACKET] == KEEPALIVE_COMMAND
    assert session[STOP_AT : STOP_AT + PACKET] == STOP_REALTIME_COMMAND
    assert bytes.fromhex("7d 81 a1 80 80 80 80 80 80") == START_REALTIME_COMMAND
    assert bytes.fromhex("7d 81 af 80 80 80 80 80 80") == KEEPALIVE_COMMAND


def test_spec_starts_streaming_and_keeps_alive_within_five_seconds() -> None:
    spec = get_protocol("contec-v7")
    assert spec.start_commands == (START_REALTIME_COMMAND,)
    assert spec.keepalive_command == KEEPALIVE_COMMAND
    assert spec.keepalive_interval_s is not None and 0 < spec.keepalive_interval_s <= 5.0
    assert spec.serial is not None and (spec.serial.baudrate, spec.serial.parity) == (115200, "N")


STREAM = (
    encode_realtime_packet(97, 65)
    + KEEPALIVE_COMMAND
    + encode_realtime_packet(None, None, probe_error=True)
    + encode_realtime_packet(95, 130, pi_percent=3.5)
)
STREAM_VALUES = [
    (Metric.SPO2, 97.0),
    (Metric.PULSE, 65.0),
    (Metric.SPO2, None),
    (Metric.PULSE, None),
    (Metric.SPO2, 95.0),
    (Metric.PULSE, 130.0),
    (Metric.PI, 3.5),
]


@pytest.mark.parametrize("cut", range(len(STREAM) + 1))
def test_split_at_any_position_gives_the_same_readings(cut: int) -> None:
    decoder = ContecV7Decoder()
    readings = decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:])
    assert [(r.metric, r.value) for r in readings] == STREAM_VALUES
    assert (decoder.stats.frames, decoder.stats.skipped_bytes, decoder.stats.bad_frames) == (
        4,
        0,
        0,
    )


def test_garbage_and_cut_short_packets_are_skipped_and_counted() -> None:
    good = encode_realtime_packet(98, 72)
    cut_short = good[:5]  # the next type byte arrives before the packet is complete
    garbage = bytes((0xFF, 0xC3, 0x20, 0x99))  # two bit-7 bytes, unknown type 0x20 + one byte
    decoder = ContecV7Decoder()
    readings = decoder.feed(garbage + good + cut_short + good)
    assert [r.value for r in readings] == [98.0, 72.0, 98.0, 72.0]
    assert (decoder.stats.frames, decoder.stats.bad_frames) == (2, 1)
    assert decoder.stats.skipped_bytes == len(garbage) + len(cut_short)


def test_values_are_missing_while_searching_even_if_the_bytes_look_valid() -> None:
    readings = ContecV7Decoder().feed(encode_realtime_packet(98, 210, searching=True))
    assert [(r.value, r.quality) for r in readings] == [(None, Quality.SEARCHING)] * 2


def test_zero_and_implausible_values_never_come_out_as_numbers() -> None:
    decoder = ContecV7Decoder()
    readings = decoder.feed(encode_realtime_packet(0, 0) + encode_realtime_packet(120, 254))
    assert [r.value for r in readings] == [None, None]  # 0 is no value; 120 % / 254 bpm dropped
    assert decoder.stats.dropped_values == 2


@given(data=st.binary(max_size=7), packet_type=st.integers(0, 0x7F))
def test_packet_encoding_round_trips_any_data_bytes(data: bytes, packet_type: int) -> None:
    packet = encode_packet(packet_type, data)
    assert packet[0] == packet_type
    assert all(byte & 0x80 for byte in packet[1:])
    assert decode_data_bytes(packet) == data


@given(
    spo2=st.integers(35, 100),
    pulse=st.integers(25, 250),
    pi_hundredths=st.none() | st.integers(0, 2200),
    pleth=st.integers(0, 127),
    beep=st.booleans(),
)
def test_realtime_packet_round_trips(
    spo2: int, pulse: int, pi_hundredths: int | None, pleth: int, beep: bool
) -> None:
    pi = None if pi_hundredths is None else pi_hundredths / 100
    packet = encode_realtime_packet(spo2, pulse, pi_percent=pi, pleth=pleth, beep=beep)
    readings = ContecV7Decoder().feed(packet)
    expected = [(Metric.SPO2, float(spo2)), (Metric.PULSE, float(pulse))]
    if pi is not None:
        expected.append((Metric.PI, pi))
    assert [(r.metric, r.value) for r in readings] == expected
    assert all(r.quality == Quality.OK for r in readings)
