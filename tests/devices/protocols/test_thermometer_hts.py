"""Health Thermometer: encoder round trips, time zones, counters, and what is subscribed."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.protocols.catalog import get_protocol
from devices.protocols.reading import BodySite, DecodeError, Metric, Quality
from devices.protocols.thermometer_hts import (
    BODY_SITES,
    TEMPERATURE_MEASUREMENT_UUID,
    HtsDecoder,
    decode_temperature_measurement,
    encode_temperature_measurement,
)

NORDIC_T1 = bytes.fromhex("06 b0 0e 00 fe dc 07 0c 05 0b 32 1b 04")
CHINA_UTC_OFFSET_S = 8 * 3600


@given(
    temp_centi_c=st.integers(2500, 4500),
    site=st.none() | st.sampled_from(sorted(BODY_SITES.values())),
    device_time_s=st.none() | st.integers(0, 4102444800),
    utc_offset_s=st.sampled_from([0, CHINA_UTC_OFFSET_S, -5 * 3600]),
)
def test_encoded_measurement_decodes_to_the_same_reading(
    temp_centi_c: int, site: BodySite | None, device_time_s: int | None, utc_offset_s: int
) -> None:
    temp_c = temp_centi_c / 100
    data = encode_temperature_measurement(
        temp_c, site=site, device_time_s=device_time_s, utc_offset_s=utc_offset_s
    )
    (reading,) = HtsDecoder(utc_offset_s=utc_offset_s).feed(data)
    assert reading.metric is Metric.TEMP
    assert reading.value is not None
    assert math.isclose(reading.value, temp_c, abs_tol=1e-9)
    assert reading.site == site
    assert reading.device_time_s == device_time_s
    assert reading.quality == Quality.OK


def test_thermometer_clock_on_china_time_gives_utc() -> None:
    (reading,) = HtsDecoder(utc_offset_s=CHINA_UTC_OFFSET_S).feed(NORDIC_T1)
    assert reading.device_time_s == 1354708227 - CHINA_UTC_OFFSET_S


def test_nan_encodes_and_decodes_as_missing() -> None:
    reading = decode_temperature_measurement(encode_temperature_measurement(None))
    assert reading is not None
    assert reading.value is None


def test_site_outside_the_hts_vocabulary_is_left_out() -> None:
    data = encode_temperature_measurement(36.6, site=BodySite.FOREHEAD)
    assert data[0] == 0  # no type flag
    reading = decode_temperature_measurement(data)
    assert reading is not None
    assert reading.site is None


def test_decoder_counts_frames_and_dropped_values() -> None:
    decoder = HtsDecoder()
    decoder.feed(encode_temperature_measurement(36.6))
    assert decoder.feed(encode_temperature_measurement(12.0)) == []
    assert (decoder.stats.frames, decoder.stats.dropped_values) == (2, 1)


@pytest.mark.parametrize("cut", range(5))
def test_value_shorter_than_flags_and_float_raises_decode_error(cut: int) -> None:
    with pytest.raises(DecodeError) as caught:
        HtsDecoder().feed(NORDIC_T1[:cut])
    assert caught.value.protocol == "hts"


@pytest.mark.parametrize("cut", range(5, len(NORDIC_T1)))
def test_value_cut_inside_announced_fields_raises_decode_error(cut: int) -> None:
    with pytest.raises(DecodeError):
        HtsDecoder().feed(NORDIC_T1[:cut])


def test_only_the_final_measurement_is_subscribed() -> None:
    # 0x2A1E carries the values of a thermometer still settling: never taken as a reading.
    assert get_protocol("hts").ble_notify_uuids == (TEMPERATURE_MEASUREMENT_UUID,)
