"""The GATT Date Time field: known dates, "not known", out-of-range dates, time zones."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.protocols.gatt_time import decode_date_time, encode_date_time
from devices.protocols.reading import DecodeError

NORDIC_DATE_TIME = bytes.fromhex("dc 07 0c 05 0b 32 1b")  # 2012-12-05 11:50:27 (HTS vector T1)
CHINA_UTC_OFFSET_S = 8 * 3600


def test_date_time_decodes_to_utc_epoch_seconds() -> None:
    assert decode_date_time(NORDIC_DATE_TIME, 0, "hts") == 1354708227.0


def test_wall_clock_time_is_shifted_by_the_utc_offset() -> None:
    beijing = decode_date_time(NORDIC_DATE_TIME, 0, "hts", utc_offset_s=CHINA_UTC_OFFSET_S)
    assert beijing == 1354708227.0 - CHINA_UTC_OFFSET_S


def test_field_is_read_at_its_offset() -> None:
    assert decode_date_time(b"\xff\xff" + NORDIC_DATE_TIME, 2, "hts") == 1354708227.0


@pytest.mark.parametrize(
    "field", ["00 00 0c 05 0b 32 1b", "dc 07 00 05 0b 32 1b", "dc 07 0c 00 0b 32 1b"]
)
def test_zero_year_month_or_day_means_not_known(field: str) -> None:
    assert decode_date_time(bytes.fromhex(field), 0, "hts") is None


@pytest.mark.parametrize(
    ("field", "what"),
    [
        ("e8 03 01 01 00 00 00", "year 1000"),
        ("dc 07 0d 05 0b 32 1b", "month 13"),
        ("e8 07 02 1e 0b 32 1b", "30 February"),
        ("e7 07 02 1d 0b 32 1b", "29 February 2023"),
        ("dc 07 0c 05 18 32 1b", "hour 24"),
        ("dc 07 0c 05 0b 3c 1b", "minute 60"),
        ("dc 07 0c 05 0b 32 3c", "second 60"),
    ],
)
def test_impossible_date_raises_decode_error_naming_the_protocol(field: str, what: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_date_time(bytes.fromhex(field), 0, "plx-spot-check")
    assert caught.value.protocol == "plx-spot-check", what


def test_truncated_field_raises_decode_error() -> None:
    with pytest.raises(DecodeError, match="truncated"):
        decode_date_time(NORDIC_DATE_TIME[:6], 0, "hts")


@given(
    epoch_s=st.integers(0, 253402300799 - 14 * 3600),
    utc_offset_s=st.integers(-12 * 4, 14 * 4).map(lambda quarters: quarters * 900),
)
def test_encoded_date_time_decodes_to_the_same_second(epoch_s: int, utc_offset_s: int) -> None:
    field = encode_date_time(epoch_s, utc_offset_s=utc_offset_s)
    assert decode_date_time(field, 0, "hts", utc_offset_s=utc_offset_s) == epoch_s
