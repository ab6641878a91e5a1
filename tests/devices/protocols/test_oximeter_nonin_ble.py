"""Nonin 3230 / 3150 BLE oximetry frame: round trips, merged frames, malformed notifications."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.protocols.oximeter_nonin_ble import BleStatus, NoninBleDecoder, encode_frame
from devices.protocols.reading import DecodeError, Metric, Quality
from tests.devices.protocols.test_oximeter_nonin import (
    _expected,
    _values,
    pulse_values,
    spo2_values,
)


@given(
    spo2=spo2_values,
    pulse=pulse_values,
    pi_hundredths=st.none() | st.integers(0, 3000),
    counter=st.integers(0, 0xFFFF),
)
def test_ble_frame_round_trips(
    spo2: int | None, pulse: int | None, pi_hundredths: int | None, counter: int
) -> None:
    pi = None if pi_hundredths is None else pi_hundredths / 100
    readings = NoninBleDecoder().feed(encode_frame(spo2, pulse, pi, counter=counter))
    assert _values(readings) == [*_expected(spo2, pulse), (Metric.PI, pi)]


def test_ble_two_frames_in_one_notification_give_both() -> None:
    data = encode_frame(97, 72, 3.0) + encode_frame(96, 75, 2.5, counter=1)
    readings = NoninBleDecoder().feed(data)
    assert _values(readings) == [
        *_expected(97, 72),
        (Metric.PI, 3.0),
        *_expected(96, 75),
        (Metric.PI, 2.5),
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        bytes(10),
        encode_frame(97, 72, 3.0) + b"\x0a\x54",
        encode_frame(97, 72, 3.0)[:9],
    ],
    ids=["empty", "zero-length-byte", "trailing-partial-frame", "short"],
)
def test_ble_malformed_notification_raises_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError) as raised:
        NoninBleDecoder().feed(data)
    assert raised.value.protocol == "nonin-ble"


def test_ble_sensor_off_finger_makes_values_missing() -> None:
    frame = encode_frame(97, 72, 3.0, status=BleStatus.ENCRYPTED | BleStatus.SMARTPOINT)
    readings = NoninBleDecoder().feed(frame)
    assert [(r.value, r.quality) for r in readings] == [(None, Quality.FINGER_OUT)] * 3
