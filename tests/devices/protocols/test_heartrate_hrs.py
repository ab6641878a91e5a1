"""Heart Rate Measurement: encoder round trips, u8/u16 heart rate, RR units, contact."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.protocols.heartrate_hrs import (
    HeartRateMeasurement,
    HrsDecoder,
    decode_heart_rate_measurement,
    encode_heart_rate_measurement,
    rr_interval_ms,
)
from devices.protocols.reading import DecodeError, Metric, Quality, Reading


@given(
    heart_rate_bpm=st.integers(0, 0xFFFF),
    contact=st.none() | st.booleans(),
    energy_expended_kj=st.none() | st.integers(0, 0xFFFF),
    rr_intervals_1024=st.lists(st.integers(0, 0xFFFF), max_size=9).map(tuple),
)
def test_encoded_measurement_decodes_to_the_same_fields(
    heart_rate_bpm: int,
    contact: bool | None,
    energy_expended_kj: int | None,
    rr_intervals_1024: tuple[int, ...],
) -> None:
    data = encode_heart_rate_measurement(
        heart_rate_bpm,
        contact=contact,
        energy_expended_kj=energy_expended_kj,
        rr_intervals_1024=rr_intervals_1024,
    )
    assert decode_heart_rate_measurement(data) == HeartRateMeasurement(
        heart_rate_bpm, contact, energy_expended_kj, rr_intervals_1024
    )


@pytest.mark.parametrize(
    ("heart_rate_bpm", "wire"),
    [(85, "00 55"), (255, "00 ff"), (256, "01 00 01"), (257, "01 01 01")],
)
def test_heart_rate_uses_u16_only_when_it_does_not_fit_u8(heart_rate_bpm: int, wire: str) -> None:
    assert encode_heart_rate_measurement(heart_rate_bpm) == bytes.fromhex(wire)


@pytest.mark.parametrize(
    ("rr_1024", "ms"), [(1024, 1000.0), (512, 500.0), (33, 32.2265625), (65535, 63999.0234375)]
)
def test_rr_interval_converts_1024ths_of_a_second_to_ms(rr_1024: int, ms: float) -> None:
    assert rr_interval_ms(rr_1024) == ms


def test_heart_rate_then_each_plausible_rr_interval_is_read() -> None:
    data = encode_heart_rate_measurement(60, contact=True, rr_intervals_1024=(1024, 100, 1000))
    decoder = HrsDecoder()
    assert decoder.feed(data) == [
        Reading(Metric.PULSE, 60.0),
        Reading(Metric.RR_INTERVAL, 1000.0),
        Reading(Metric.RR_INTERVAL, 1000 * 1000 / 1024),
    ]
    assert (decoder.stats.frames, decoder.stats.dropped_values) == (1, 1)


def test_no_contact_reports_missing_heart_rate_and_no_rr_intervals() -> None:
    data = encode_heart_rate_measurement(72, contact=False, rr_intervals_1024=(1024,))
    assert HrsDecoder().feed(data) == [Reading(Metric.PULSE, None, Quality.FINGER_OUT)]


def test_energy_expended_is_skipped_before_rr_intervals() -> None:
    data = encode_heart_rate_measurement(72, energy_expended_kj=0x0400, rr_intervals_1024=(512,))
    readings = HrsDecoder().feed(data)
    assert [r.value for r in readings] == [72.0, 500.0]


@pytest.mark.parametrize("wire", ["", "01", "01 48", "08 48 01", "10 48 01", "18 48 00 01"])
def test_truncated_value_raises_decode_error(wire: str) -> None:
    with pytest.raises(DecodeError) as caught:
        HrsDecoder().feed(bytes.fromhex(wire))
    assert caught.value.protocol == "hrs"


@pytest.mark.parametrize(
    "encode",
    [
        lambda: encode_heart_rate_measurement(0x10000),
        lambda: encode_heart_rate_measurement(72, energy_expended_kj=-1),
        lambda: encode_heart_rate_measurement(72, rr_intervals_1024=(0x10000,)),
    ],
    ids=["heart rate", "energy expended", "RR interval"],
)
def test_encoder_refuses_fields_that_do_not_fit_u16(encode: Callable[[], bytes]) -> None:
    with pytest.raises(ValueError, match="u16"):
        encode()
