"""Contec V5.1 5-byte stream: the Contec flag meanings on the shared BCI framer, splits, resync."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.protocols.catalog import get_protocol
from devices.protocols.oximeter_contec_v5 import ContecV5Decoder, encode_contec_v5_frame
from devices.protocols.reading import Metric, Quality

STREAM = (
    encode_contec_v5_frame(98, 72, beep=True)
    + encode_contec_v5_frame(None, None, probe_error=True, searching=True)
    + encode_contec_v5_frame(91, 140, spo2_dropping=True)
)
EXPECTED = [
    (Metric.SPO2, 98.0, Quality.OK),
    (Metric.PULSE, 72.0, Quality.OK),
    (Metric.SPO2, None, Quality.FINGER_OUT | Quality.SEARCHING),
    (Metric.PULSE, None, Quality.FINGER_OUT | Quality.SEARCHING),
    (Metric.SPO2, 91.0, Quality.OK),
    (Metric.PULSE, 140.0, Quality.OK),
]


@pytest.mark.parametrize("cut", range(len(STREAM) + 1))
def test_split_at_any_position_gives_the_same_readings(cut: int) -> None:
    decoder = ContecV5Decoder()
    readings = decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:])
    assert [(r.metric, r.value, r.quality) for r in readings] == EXPECTED
    assert (decoder.stats.frames, decoder.stats.skipped_bytes) == (3, 0)


def test_garbage_and_a_torn_frame_are_skipped_and_counted() -> None:
    frame = encode_contec_v5_frame(97, 64)
    torn = frame[:3]  # the next sync byte arrives before the frame is complete
    garbage = bytes((0x01, 0x7F, 0x42))
    decoder = ContecV5Decoder()
    readings = decoder.feed(garbage + frame + torn + frame)
    assert [r.value for r in readings] == [97.0, 64.0, 97.0, 64.0]
    assert decoder.stats.frames == 2
    assert decoder.stats.skipped_bytes == len(garbage) + len(torn)


def test_spo2_dropping_keeps_values_where_bci_probe_unplugged_would_not() -> None:
    frame = encode_contec_v5_frame(88, 110, spo2_dropping=True)
    bci = get_protocol("berrymed-bci").new_decoder().feed(frame)
    contec = ContecV5Decoder().feed(frame)
    assert [r.value for r in bci] == [None, None]  # BCI reads the same bit as "probe unplugged"
    assert [(r.value, r.quality) for r in contec] == [(88.0, Quality.OK), (110.0, Quality.OK)]


def test_searching_too_long_makes_values_missing() -> None:
    frame = bytearray(encode_contec_v5_frame(97, 64))
    frame[0] |= 0x10  # byte 0 bit 4: "searching too long"
    readings = ContecV5Decoder().feed(bytes(frame))
    assert [(r.value, r.quality) for r in readings] == [(None, Quality.SEARCHING)] * 2


def test_spec_is_19200_odd_parity_serial_without_commands() -> None:
    spec = get_protocol("contec-v5")
    assert spec.serial is not None
    assert (spec.serial.baudrate, spec.serial.bytesize, spec.serial.parity) == (19200, 8, "O")
    assert spec.start_commands == ()
    assert spec.keepalive_command is None


@given(
    spo2=st.integers(35, 100),
    pulse=st.integers(25, 250),
    pleth=st.integers(0, 127),
    beep=st.booleans(),
    dropping=st.booleans(),
)
def test_frame_round_trips(spo2: int, pulse: int, pleth: int, beep: bool, dropping: bool) -> None:
    frame = encode_contec_v5_frame(spo2, pulse, pleth=pleth, beep=beep, spo2_dropping=dropping)
    readings = ContecV5Decoder().feed(frame)
    assert [(r.metric, r.value, r.quality) for r in readings] == [
        (Metric.SPO2, float(spo2), Quality.OK),
        (Metric.PULSE, float(pulse), Quality.OK),
    ]
