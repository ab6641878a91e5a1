"""Masimo ASCII 1: line framing, garbage and over-long runs, exception bits, encoder round trip."""

from __future__ import annotations

import calendar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.protocols.oximeter_masimo import (
    MAX_LINE_BYTES,
    MasimoAsciiDecoder,
    decode_ascii1_line,
    encode_ascii1_line,
)
from devices.protocols.reading import DecodeError, Metric, Quality, Reading

# yahnatan/pulseox README.md, real Rad-8 output
M1 = (
    b"02/22/16 22:47:45 SN=0000056661 SPO2=098% BPM=097 PI=03.60% SPCO=--.-% SPMET=--.-%"
    b" DESAT=-- PIDELTA=+-- ALARM=0000 EXC=000800\r\n"
)
M1_TIME_S = float(calendar.timegm((2016, 2, 22, 22, 47, 45, 0, 0, 0)))
M1_READINGS = [
    Reading(Metric.SPO2, 98.0, device_time_s=M1_TIME_S),
    Reading(Metric.PULSE, 97.0, device_time_s=M1_TIME_S),
    Reading(Metric.PI, 3.6, device_time_s=M1_TIME_S),
]


def _values(readings: list[Reading]) -> list[tuple[Metric, float | None]]:
    return [(reading.metric, reading.value) for reading in readings]


def test_line_split_at_every_offset_decodes_once() -> None:
    for split in range(len(M1) + 1):
        decoder = MasimoAsciiDecoder()
        assert decoder.feed(M1[:split]) + decoder.feed(M1[split:]) == M1_READINGS, split
        assert decoder.stats.frames == 1


@pytest.mark.parametrize("line_end", [b"\r\n", b"\n", b"\r", b"\r\n\r\n"])
def test_any_line_end_terminates_a_line(line_end: bytes) -> None:
    line = M1.removesuffix(b"\r\n") + line_end
    assert MasimoAsciiDecoder().feed(line * 2) == M1_READINGS * 2


def test_line_without_its_end_waits_for_it() -> None:
    decoder = MasimoAsciiDecoder()
    assert decoder.feed(M1.removesuffix(b"\r\n")) == []
    assert decoder.feed(b"\r\n") == M1_READINGS


def test_noise_and_non_data_lines_are_skipped_and_counted() -> None:
    noise = b"\x00\xff\x13 power-up banner\r\n"
    decoder = MasimoAsciiDecoder()
    assert decoder.feed(noise + M1 + noise + M1) == M1_READINGS * 2
    assert decoder.stats.skipped_bytes == 2 * (len(noise) - 2)
    assert decoder.stats.bad_frames == 0


@pytest.mark.parametrize(
    "garbled",
    [
        M1.replace(b"SPO2=098%", b"SPO2=0\xb88%"),
        M1.replace(b"BPM=097", b"BPM=0?7"),
        M1.replace(b"BPM=097", b"BPX=097"),
        M1.replace(b"PI=03.60%", b"PI=03..60%"),
        M1.replace(b"EXC=000800", b"EXC=00G800"),
        M1.replace(b"SN=0000056661 ", b"SN=0000056661 W "),
    ],
    ids=["non-ascii", "bad-digit", "no-bpm", "bad-number", "bad-hex", "stray-token"],
)
def test_garbled_data_line_is_a_bad_frame_and_the_next_line_decodes(garbled: bytes) -> None:
    decoder = MasimoAsciiDecoder()
    assert decoder.feed(garbled + M1) == M1_READINGS
    assert decoder.stats.bad_frames == 1


def test_overlong_run_without_line_end_is_dropped_while_it_streams() -> None:
    decoder = MasimoAsciiDecoder()
    chunk = b"x" * 64
    for _ in range(4 * MAX_LINE_BYTES // len(chunk)):
        assert decoder.feed(chunk) == []
    # Dropped before any line end arrived: the decoder did not keep it.
    assert decoder.stats.skipped_bytes > 2 * MAX_LINE_BYTES
    assert decoder.feed(b"tail of the run\r\n" + M1) == M1_READINGS
    assert decoder.stats.skipped_bytes == 4 * MAX_LINE_BYTES + len(b"tail of the run")


def test_overlong_line_in_one_piece_is_skipped() -> None:
    decoder = MasimoAsciiDecoder()
    long_line = M1.removesuffix(b"\r\n") + b" SPCO=--.-%" * MAX_LINE_BYTES + b"\r\n"
    assert decoder.feed(long_line + M1) == M1_READINGS
    assert decoder.stats.skipped_bytes == len(long_line) - 2


@pytest.mark.parametrize(
    ("exc", "quality"),
    [
        (0x000800, Quality.OK),
        (0x000001, Quality.SENSOR_FAULT),
        (0x000002, Quality.SENSOR_FAULT),
        (0x000004, Quality.LOW_PERFUSION),
        (0x000008, Quality.SEARCHING),
        (0x000010, Quality.LOW_SIGNAL),
        (0x000020, Quality.FINGER_OUT),
        (0x000040, Quality.LOW_SIGNAL),
        (0x000080, Quality.SENSOR_FAULT),
        (0x000100, Quality.SENSOR_FAULT),
        (0x000400, Quality.LOW_SIGNAL),
        (0x001000, Quality.SENSOR_FAULT),
        (0x020000, Quality.SEARCHING),
        (0x200000, Quality.OK),  # SpCO low confidence: pulsegate does not read SpCO
        (0x00000C, Quality.LOW_PERFUSION | Quality.SEARCHING),
    ],
)
def test_exception_bits_map_to_quality(exc: int, quality: Quality) -> None:
    readings = MasimoAsciiDecoder().feed(encode_ascii1_line(97, 70, 2.5, exceptions=exc))
    invalid = bool(quality & (Quality.FINGER_OUT | Quality.SEARCHING | Quality.SENSOR_FAULT))
    expected = [None] * 3 if invalid else [97.0, 70.0, 2.5]
    assert [reading.value for reading in readings] == expected
    assert {reading.quality for reading in readings} == {quality}


def test_invalid_date_keeps_values_without_device_time() -> None:
    line = M1.replace(b"02/22/16", b"02/30/16")
    readings = MasimoAsciiDecoder().feed(line)
    assert _values(readings) == _values(M1_READINGS)
    assert {reading.device_time_s for reading in readings} == {None}


def test_trend_style_pr_and_annotated_exc_are_accepted() -> None:
    decoded = decode_ascii1_line(b"09/21/08 09:56:14 SpO2=096 PR=074 PI=02.28 EXC=C00:LowSigIQ,SET")
    assert decoded is not None
    assert (decoded.spo2_percent, decoded.pulse_bpm, decoded.pi_percent) == (96.0, 74.0, 2.28)
    assert decoded.exceptions == 0xC00


def test_line_without_spo2_is_not_a_data_line() -> None:
    assert decode_ascii1_line(b"02/22/16 22:47:45 SN=0000056661 ALARM=0000") is None


def test_garbled_data_line_raises_decode_error_naming_the_protocol() -> None:
    with pytest.raises(DecodeError) as raised:
        decode_ascii1_line(b"SPO2=9x% BPM=070")
    assert raised.value.protocol == "masimo-ascii"


def test_encoder_prints_dashes_for_missing_values() -> None:
    line = encode_ascii1_line(None, None, None, exceptions=0x000001)
    assert b"SPO2=---% BPM=--- PI=--.--%" in line
    assert line.endswith(b"EXC=000001\r\n")


@given(
    spo2=st.none() | st.integers(35, 100),
    pulse=st.none() | st.integers(25, 250),
    pi_hundredths=st.none() | st.integers(1, 3000),
    device_time_s=st.none() | st.integers(946684800, 4102444799),  # years 2000-2099
    alarms=st.integers(0, 0xFFFF),
)
def test_line_round_trips(
    spo2: int | None,
    pulse: int | None,
    pi_hundredths: int | None,
    device_time_s: int | None,
    alarms: int,
) -> None:
    pi = None if pi_hundredths is None else pi_hundredths / 100
    line = encode_ascii1_line(spo2, pulse, pi, alarms=alarms, device_time_s=device_time_s)
    decoded = decode_ascii1_line(line.removesuffix(b"\r\n"))
    assert decoded is not None
    assert (decoded.spo2_percent, decoded.pulse_bpm, decoded.pi_percent) == (spo2, pulse, pi)
    assert decoded.alarms == alarms
    assert decoded.device_time_s == device_time_s
    readings = MasimoAsciiDecoder().feed(line)
    assert _values(readings) == [(Metric.SPO2, spo2), (Metric.PULSE, pulse), (Metric.PI, pi)]
