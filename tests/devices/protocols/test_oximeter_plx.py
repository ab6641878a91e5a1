"""PLX continuous and spot-check: status bits to quality flags, encoder round trips, and what
becomes missing (PROTOCOLS.md section 1)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.protocols.oximeter_plx import (
    PlxContinuousDecoder,
    PlxMeasurement,
    PlxSpotCheckDecoder,
    decode_plx_continuous,
    decode_plx_spot_check,
    encode_plx_continuous,
    encode_plx_spot_check,
    plx_quality,
)
from devices.protocols.reading import DecodeError, Metric, Quality, Reading

SPEZI_P4 = bytes.fromhex("1f de f3 ca f3 ca f3 5a f5 d4 f3 b2 f2 20 01 00 00 00 7a e3")
CHINA_UTC_OFFSET_S = 8 * 3600

DEVICE_STATUS_QUALITY = [
    (0x000001, Quality.OK),  # extended display update ongoing
    (0x000002, Quality.SENSOR_FAULT),  # equipment malfunction
    (0x000004, Quality.LOW_SIGNAL),  # signal processing irregularity
    (0x000008, Quality.LOW_SIGNAL),  # inadequate signal
    (0x000010, Quality.LOW_SIGNAL),  # poor signal
    (0x000020, Quality.LOW_PERFUSION),
    (0x000040, Quality.MOTION),  # erratic signal
    (0x000080, Quality.LOW_SIGNAL),  # non-pulsatile signal
    (0x000100, Quality.LOW_SIGNAL),  # questionable pulse
    (0x000200, Quality.SEARCHING),  # signal analysis ongoing
    (0x000400, Quality.LOW_SIGNAL),  # sensor interference
    (0x000800, Quality.FINGER_OUT),  # sensor unconnected to user
    (0x001000, Quality.SENSOR_FAULT),  # unknown sensor connected
    (0x002000, Quality.FINGER_OUT),  # sensor displaced
    (0x004000, Quality.SENSOR_FAULT),  # sensor malfunctioning
    (0x008000, Quality.SENSOR_FAULT),  # sensor disconnected
    (0x010000, Quality.OK),  # reserved
]
MEASUREMENT_STATUS_QUALITY = [
    (0x001F, Quality.OK),  # reserved
    (0x0020, Quality.OK),  # measurement ongoing
    (0x0040, Quality.OK),  # early estimated data
    (0x0080, Quality.OK),  # validated data
    (0x0100, Quality.OK),  # fully qualified data
    (0x0200, Quality.OK),  # data from measurement storage
    (0x1000, Quality.SEARCHING),  # calibration ongoing
    (0x2000, Quality.SEARCHING),  # measurement unavailable
    (0x4000, Quality.LOW_SIGNAL),  # questionable measurement detected
    (0x8000, Quality.SEARCHING),  # invalid measurement detected
]


@pytest.mark.parametrize(("bits", "quality"), DEVICE_STATUS_QUALITY)
def test_device_status_bit_maps_to_quality(bits: int, quality: Quality) -> None:
    assert plx_quality(None, bits) == quality


@pytest.mark.parametrize(("bits", "quality"), MEASUREMENT_STATUS_QUALITY)
def test_measurement_status_bit_maps_to_quality(bits: int, quality: Quality) -> None:
    assert plx_quality(bits, None) == quality


def test_status_flags_combine() -> None:
    assert plx_quality(0x4000, 0x000060) == (
        Quality.LOW_SIGNAL | Quality.LOW_PERFUSION | Quality.MOTION
    )


def test_fast_and_slow_averages_are_decoded_but_not_emitted() -> None:
    measurement = decode_plx_continuous(SPEZI_P4)
    assert (measurement.fast, measurement.slow) == ((97.0, 137.0), (98.0, 69.0))
    readings = PlxContinuousDecoder().feed(SPEZI_P4)
    assert [(r.metric, r.value) for r in readings] == [
        (Metric.SPO2, 99.0),
        (Metric.PULSE, 97.0),
        (Metric.PI, 8.9),
    ]


@pytest.mark.parametrize("cut", range(len(SPEZI_P4)))
def test_value_cut_inside_announced_fields_raises_decode_error(cut: int) -> None:
    with pytest.raises(DecodeError) as caught:
        PlxContinuousDecoder().feed(SPEZI_P4[:cut])
    assert caught.value.protocol == "plx-continuous"


def test_demonstration_and_test_data_are_dropped_and_counted() -> None:
    decoder = PlxContinuousDecoder()
    for status in (0x0400, 0x0800):
        assert decoder.feed(encode_plx_continuous(97, 70, measurement_status=status)) == []
    assert decoder.feed(encode_plx_continuous(97, 70, pai_percent=2.0)) != []
    assert (decoder.stats.frames, decoder.stats.dropped_values) == (3, 4)


def test_pi_is_missing_when_neither_spo2_nor_pulse_is_measured() -> None:
    readings = PlxContinuousDecoder().feed(encode_plx_continuous(None, None, pai_percent=1.5))
    assert [(r.metric, r.value) for r in readings] == [
        (Metric.SPO2, None),
        (Metric.PULSE, None),
        (Metric.PI, None),
    ]


def test_nan_pai_is_sent_and_decoded_as_missing() -> None:
    data = encode_plx_continuous(97, 70, pai_percent=math.nan)
    assert decode_plx_continuous(data).pai_present
    assert PlxContinuousDecoder().feed(data)[2] == Reading(Metric.PI, None)


def test_spot_check_timestamp_of_an_unset_clock_is_not_used() -> None:
    data = encode_plx_spot_check(97, 70, device_time_s=1_700_000_000, clock_not_set=True)
    measurement = decode_plx_spot_check(data)
    assert measurement.clock_not_set
    assert measurement.device_time_s is None


def test_spot_check_clock_on_china_time_gives_utc() -> None:
    data = encode_plx_spot_check(
        97, 70, device_time_s=1_700_000_000, utc_offset_s=CHINA_UTC_OFFSET_S
    )
    readings = PlxSpotCheckDecoder(utc_offset_s=CHINA_UTC_OFFSET_S).feed(data)
    assert {r.device_time_s for r in readings} == {1_700_000_000}


@pytest.mark.parametrize(
    ("measurement_status", "device_status"), [(0x10000, None), (-1, None), (None, 0x1000000)]
)
def test_encoder_refuses_status_words_that_do_not_fit(
    measurement_status: int | None, device_status: int | None
) -> None:
    with pytest.raises(ValueError, match="status"):
        encode_plx_continuous(
            97, 70, measurement_status=measurement_status, device_status=device_status
        )


_spo2 = st.none() | st.integers(35, 100)
_pulse = st.none() | st.integers(25, 250)
_pair = st.none() | st.tuples(_spo2, _pulse)
_status16 = st.none() | st.integers(0, 0xFFFF)
_status24 = st.none() | st.integers(0, 0xFFFFFF)
_pai_centi = st.none() | st.integers(0, 3000)


def _as_float(value: int | None) -> float | None:
    return None if value is None else float(value)


@given(
    spo2=_spo2,
    pulse=_pulse,
    fast=_pair,
    slow=_pair,
    measurement_status=_status16,
    device_status=_status24,
    pai_centi=_pai_centi,
    decimals=st.sampled_from([0, 1]),
)
def test_encoded_continuous_measurement_decodes_to_the_same_fields(
    spo2: int | None,
    pulse: int | None,
    fast: tuple[int | None, int | None] | None,
    slow: tuple[int | None, int | None] | None,
    measurement_status: int | None,
    device_status: int | None,
    pai_centi: int | None,
    decimals: int,
) -> None:
    pai = None if pai_centi is None else pai_centi / 100
    data = encode_plx_continuous(
        spo2,
        pulse,
        fast=fast,
        slow=slow,
        measurement_status=measurement_status,
        device_status=device_status,
        pai_percent=pai,
        decimals=decimals,
    )
    decoded = decode_plx_continuous(data)
    assert decoded == PlxMeasurement(
        _as_float(spo2),
        _as_float(pulse),
        None if fast is None else (_as_float(fast[0]), _as_float(fast[1])),
        None if slow is None else (_as_float(slow[0]), _as_float(slow[1])),
        measurement_status,
        device_status,
        pai_present=pai is not None,
        pai_percent=decoded.pai_percent,
    )
    if pai is not None:
        assert decoded.pai_percent is not None
        # PAI above 20.45 % only fits the 12-bit mantissa with one decimal.
        sent = pai if pai_centi is not None and pai_centi <= 2045 else round(pai * 10) / 10
        assert math.isclose(decoded.pai_percent, sent, abs_tol=1e-9)


@given(
    spo2=st.integers(35, 100),
    pulse=st.integers(25, 250),
    device_time_s=st.none() | st.integers(946684800, 4102444800),
    device_status=_status24,
    pai_centi=_pai_centi,
)
def test_encoded_spot_check_decodes_to_readings_with_status_quality(
    spo2: int,
    pulse: int,
    device_time_s: int | None,
    device_status: int | None,
    pai_centi: int | None,
) -> None:
    pai = None if pai_centi is None else pai_centi / 100
    data = encode_plx_spot_check(
        spo2, pulse, device_time_s=device_time_s, device_status=device_status, pai_percent=pai
    )
    readings = PlxSpotCheckDecoder().feed(data)
    quality = plx_quality(None, device_status)
    voided = bool(quality & (Quality.FINGER_OUT | Quality.SEARCHING | Quality.SENSOR_FAULT))
    expected = [(Metric.SPO2, float(spo2)), (Metric.PULSE, float(pulse))]
    if pai is not None:
        expected.append((Metric.PI, pai))
    assert len(readings) == len(expected)
    for reading, (metric, value) in zip(readings, expected, strict=True):
        assert (reading.metric, reading.quality, reading.device_time_s) == (
            metric,
            quality,
            device_time_s,
        )
        if voided:
            assert reading.value is None
        else:
            assert reading.value is not None
            assert math.isclose(reading.value, value, abs_tol=0.05 + 1e-9)
