"""FE-framed fingertips (Lepu VTM20F, Wellue): framing, resync, sentinels, flags and encoders."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.protocols.catalog import get_protocol
from devices.protocols.oximeter_lepu_fe import (
    FeDecoder,
    checksum,
    encode_params_frame,
    encode_wave_frame,
)
from devices.protocols.reading import Metric, Quality, Reading

# Real frame quoted in jaggzh/pulseox-bluetooth pulseox-bluetooth.py ("[10] 254 10 85 0 92 100 7
# 116 178 76"), PROTOCOLS.md 4.5 F1: PR 92, SpO2 100, PI 1.908 %, seq 178.
F1_REAL = bytes.fromhex("fe 0a 55 00 5c 64 07 74 b2 4c")
# PROTOCOLS.md 4.5 F2 (COMPUTED): PR 255, SpO2 127 as jaggzh sees them with no finger.
F2_NO_FINGER = bytes.fromhex("fe 0a 55 00 ff 7f 00 00 00 dd")
F1_READINGS = [
    Reading(Metric.SPO2, 100.0),
    Reading(Metric.PULSE, 92.0),
    Reading(Metric.PI, 1.908),
]


def _feed_in_pieces(decoder: FeDecoder, stream: bytes, cuts: list[int]) -> list[Reading]:
    readings: list[Reading] = []
    for start, end in itertools.pairwise([0, *sorted(cuts), len(stream)]):
        readings += decoder.feed(stream[start:end])
    return readings


def test_encoder_reproduces_the_real_frame() -> None:
    assert encode_params_frame(100, 92, 1.908, seq=178) == F1_REAL


def test_encoder_reproduces_the_no_finger_frame() -> None:
    assert encode_params_frame(127, 255, 0.0) == F2_NO_FINGER


def test_checksum_is_the_byte_sum_after_the_head() -> None:
    assert checksum(F1_REAL[:-1]) == F1_REAL[-1]
    assert checksum(F2_NO_FINGER[:-1]) == F2_NO_FINGER[-1]


def test_protocol_needs_no_command() -> None:
    spec = get_protocol("lepu-fe")
    assert spec.start_commands == ()
    assert spec.keepalive_command is None
    assert spec.ble_notify_uuids == ("0000ffe4-0000-1000-8000-00805f9b34fb",)


def test_stream_split_at_every_offset_decodes_like_the_whole() -> None:
    stream = encode_wave_frame(30, motion=True) + F1_REAL + encode_wave_frame(31) + F2_NO_FINGER
    whole = FeDecoder().feed(stream)
    assert len(whole) == 6
    for cut in range(len(stream) + 1):
        decoder = FeDecoder()
        assert decoder.feed(stream[:cut]) + decoder.feed(stream[cut:]) == whole, cut
        assert decoder.stats.frames == 4
        assert decoder.stats.skipped_bytes == 0


def test_byte_by_byte_feed_completes_the_frame_on_its_last_byte() -> None:
    decoder = FeDecoder()
    for byte in F1_REAL[:-1]:
        assert decoder.feed(bytes((byte,))) == []
    assert decoder.feed(F1_REAL[-1:]) == F1_READINGS


def test_garbage_before_and_between_frames_is_skipped_and_counted() -> None:
    garbage = bytes.fromhex("00 0a 55 ff 13")
    decoder = FeDecoder()
    assert decoder.feed(garbage + F1_REAL + garbage + F1_REAL) == F1_READINGS * 2
    assert decoder.stats.skipped_bytes == 2 * len(garbage)
    assert decoder.stats.frames == 2


def test_truncated_frame_before_a_good_frame_costs_only_its_own_bytes() -> None:
    truncated = F1_REAL[:4]
    decoder = FeDecoder()
    assert decoder.feed(truncated + F1_REAL) == F1_READINGS
    assert decoder.stats.skipped_bytes == len(truncated)
    assert decoder.stats.bad_frames == 1  # its claimed length runs into F1 and fails the sum
    assert decoder.stats.frames == 1


def test_length_that_does_not_fit_the_type_is_not_a_frame() -> None:
    decoder = FeDecoder()
    assert decoder.feed(bytes.fromhex("fe 09 55") + F1_REAL) == F1_READINGS
    assert decoder.stats.skipped_bytes == 3
    assert decoder.stats.bad_frames == 0


def test_bad_checksum_frame_is_skipped_and_counted() -> None:
    corrupted = F1_REAL[:-1] + bytes((F1_REAL[-1] ^ 0x01,))
    decoder = FeDecoder()
    assert decoder.feed(corrupted + F1_REAL) == F1_READINGS
    assert decoder.stats.bad_frames == 1
    assert decoder.stats.skipped_bytes == len(corrupted)
    assert decoder.stats.frames == 1


def test_sensor_off_in_the_pleth_makes_the_next_parameters_missing_until_cleared() -> None:
    decoder = FeDecoder()
    off = decoder.feed(encode_wave_frame(0, sensor_off=True) + F1_REAL)
    assert off == [
        Reading(m, None, Quality.FINGER_OUT) for m in (Metric.SPO2, Metric.PULSE, Metric.PI)
    ]
    assert decoder.feed(encode_wave_frame(50) + F1_REAL) == F1_READINGS


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (encode_params_frame(None, 92, 1.908), [None, 92.0, None]),
        (encode_params_frame(100, None, 1.908), [100.0, None, 1.908]),
        (encode_params_frame(100, 0x0FF, 1.908), [100.0, None, 1.908]),
        (F2_NO_FINGER, [None, None, None]),
    ],
    ids=["spo2-7f", "pulse-1ff", "pulse-0ff", "no-finger"],
)
def test_no_value_markers_become_missing(frame: bytes, expected: list[float | None]) -> None:
    readings = FeDecoder().feed(frame)
    assert [r.metric for r in readings] == [Metric.SPO2, Metric.PULSE, Metric.PI]
    assert [r.value for r in readings] == expected


def test_pulse_rate_is_big_endian() -> None:
    readings = FeDecoder().feed(encode_params_frame(95, 0x00C8, 2.0))
    assert readings[1] == Reading(Metric.PULSE, 200.0)


def test_implausible_perfusion_index_is_dropped_and_counted() -> None:
    decoder = FeDecoder()
    readings = decoder.feed(encode_params_frame(97, 70, 40.0))
    assert readings == [Reading(Metric.SPO2, 97.0), Reading(Metric.PULSE, 70.0)]
    assert decoder.stats.dropped_values == 1


# --- hypothesis: encode -> decode over multi-frame streams in random chunkings -----------------

_WaveCase = tuple[bytes, Quality]
_ParamsCase = tuple[bytes, int | None, int | None, int]


@st.composite
def _wave_frames(draw: st.DrawFn) -> _WaveCase:
    sensor_off, motion, low_perfusion = draw(st.lists(st.booleans(), min_size=3, max_size=3))
    frame = encode_wave_frame(
        draw(st.integers(0, 255)),
        sensor_off=sensor_off,
        motion=motion,
        low_perfusion=low_perfusion,
        pulse_sound=draw(st.booleans()),
        bargraph=draw(st.integers(0, 15)),
        seq=draw(st.integers(0, 255)),
    )
    quality = (
        (Quality.FINGER_OUT if sensor_off else Quality.OK)
        | (Quality.MOTION if motion else Quality.OK)
        | (Quality.LOW_PERFUSION if low_perfusion else Quality.OK)
    )
    return frame, quality


@st.composite
def _params_frames(draw: st.DrawFn) -> _ParamsCase:
    spo2 = draw(st.none() | st.integers(35, 100))
    pulse = draw(st.none() | st.integers(25, 250))
    pi_raw = draw(st.integers(0, 30_000))
    frame = encode_params_frame(spo2, pulse, pi_raw / 1000, seq=draw(st.integers(0, 255)))
    return frame, spo2, pulse, pi_raw


def _expected(cases: list[_WaveCase | _ParamsCase]) -> list[Reading]:
    quality = Quality.OK
    readings = []
    for case in cases:
        if len(case) == 2:
            quality = case[1]
            continue
        _, spo2, pulse, pi_raw = case
        finger_out = bool(quality & Quality.FINGER_OUT)
        spo2_value = None if finger_out or spo2 is None else float(spo2)
        pulse_value = None if finger_out or pulse is None else float(pulse)
        pi_value = None if spo2_value is None else pi_raw / 1000
        readings += [
            Reading(Metric.SPO2, spo2_value, quality),
            Reading(Metric.PULSE, pulse_value, quality),
            Reading(Metric.PI, pi_value, quality),
        ]
    return readings


_garbage = st.binary(max_size=12).map(lambda data: data.replace(b"\xfe", b""))


@settings(max_examples=200, deadline=None)
@given(
    cases=st.lists(st.tuples(_wave_frames() | _params_frames(), _garbage), min_size=1, max_size=10),
    data=st.data(),
)
def test_encoded_stream_round_trips_in_any_chunking(
    cases: list[tuple[_WaveCase | _ParamsCase, bytes]], data: st.DataObject
) -> None:
    stream = b"".join(garbage + case[0] for case, garbage in cases)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10))
    decoder = FeDecoder()
    assert _feed_in_pieces(decoder, stream, cuts) == _expected([case for case, _ in cases])
    assert decoder.stats.frames == len(cases)
    assert decoder.stats.bad_frames == 0
    assert decoder.stats.skipped_bytes == sum(len(garbage) for _, garbage in cases)
