"""IEEE-11073 SFLOAT / FLOAT: the specials decode to None, numbers keep their exponent, and the
encoders round-trip (PROTOCOLS.md sections 1.1 and 2)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.protocols.ieee11073 import (
    FLOAT_NAN,
    SFLOAT_NAN,
    decode_float,
    decode_sfloat,
    encode_float,
    encode_sfloat,
)

# Nordic Android-BLE-Library Data.java constants (shared/data/protocols/test_vectors.json).
SFLOAT_SPECIALS = [
    (0x07FF, "NaN"),
    (0x0800, "NRes"),
    (0x07FE, "+INF"),
    (0x0802, "-INF"),
    (0x0801, "reserved"),
]
FLOAT_SPECIALS = [
    (0x007FFFFF, "NaN"),
    (0x00800000, "NRes"),
    (0x007FFFFE, "+INF"),
    (0x00800002, "-INF"),
    (0x00800001, "reserved"),
]
# raw, value: PROTOCOLS.md 1.1 table, the Spezi PLX vectors, the Nordic HTS vector.
SFLOAT_NUMBERS = [
    (0xF057, 8.7),
    (0xF3E8, 100.0),
    (0xFFFF, -0.1),
    (0x0062, 98.0),
    (0xE37A, 8.9),
    (0xF3D4, 98.0),
    (0x8062, 9.8e-7),  # exponent -8: the "98" some decoders read from 62 80
    (0x17FF, 20470.0),  # special mantissa with exponent 1 is a plain number
    (0xF7FF, 204.7),
]
FLOAT_NUMBERS = [
    (0xFE000EB0, 37.6),
    (0xFF000172, 37.0),
    (0xFF0003DA, 98.6),
    (0xFFFFFFFF, -0.1),
    (0x00000000, 0.0),
    (0x017FFFFF, 83886070.0),
]


@pytest.mark.parametrize(("raw", "name"), SFLOAT_SPECIALS)
def test_sfloat_special_decodes_to_none(raw: int, name: str) -> None:
    assert decode_sfloat(raw) is None, name


@pytest.mark.parametrize(("raw", "name"), FLOAT_SPECIALS)
def test_float_special_decodes_to_none(raw: int, name: str) -> None:
    assert decode_float(raw) is None, name


@pytest.mark.parametrize(("raw", "value"), SFLOAT_NUMBERS)
def test_sfloat_decodes_signed_exponent_and_mantissa(raw: int, value: float) -> None:
    decoded = decode_sfloat(raw)
    assert decoded is not None
    assert math.isclose(decoded, value, rel_tol=1e-12)


@pytest.mark.parametrize(("raw", "value"), FLOAT_NUMBERS)
def test_float_decodes_signed_exponent_and_mantissa(raw: int, value: float) -> None:
    decoded = decode_float(raw)
    assert decoded is not None
    assert math.isclose(decoded, value, rel_tol=1e-12)


def test_none_and_nan_encode_the_nan_special() -> None:
    assert encode_sfloat(None) == encode_sfloat(math.nan) == SFLOAT_NAN
    assert encode_float(None) == encode_float(math.nan) == FLOAT_NAN


@pytest.mark.parametrize(("value", "decimals"), [(204.6, 1), (-2046, 0), (2047, 0), (30.0, 2)])
def test_sfloat_encoder_refuses_mantissas_that_collide_with_specials(
    value: float, decimals: int
) -> None:
    with pytest.raises(ValueError, match="SFLOAT"):
        encode_sfloat(value, decimals)


def test_float_encoder_refuses_mantissas_that_collide_with_specials() -> None:
    with pytest.raises(ValueError, match="FLOAT"):
        encode_float(83886.06, 2)


def _sfloat_parts(raw: int) -> tuple[int, int]:
    exponent = raw >> 12
    mantissa = raw & 0x0FFF
    return (exponent - 16 if exponent >= 8 else exponent), (
        mantissa - 4096 if mantissa >= 2048 else mantissa
    )


def _float_parts(raw: int) -> tuple[int, int]:
    exponent = raw >> 24
    mantissa = raw & 0xFFFFFF
    return (exponent - 256 if exponent >= 128 else exponent), (
        mantissa - (1 << 24) if mantissa >= 1 << 23 else mantissa
    )


@given(st.integers(0, 0xFFFF).filter(lambda raw: abs(_sfloat_parts(raw)[1]) <= 2045))
def test_sfloat_number_reencodes_to_the_same_raw(raw: int) -> None:
    exponent, _ = _sfloat_parts(raw)
    assert encode_sfloat(decode_sfloat(raw), decimals=-exponent) == raw


@given(st.integers(0, 0xFFFFFFFF).filter(lambda raw: abs(_float_parts(raw)[1]) <= (1 << 23) - 3))
def test_float_number_reencodes_to_the_same_raw(raw: int) -> None:
    exponent, _ = _float_parts(raw)
    assert encode_float(decode_float(raw), decimals=-exponent) == raw


@given(mantissa=st.integers(-2045, 2045), decimals=st.integers(0, 8))
def test_sfloat_value_round_trips_at_its_resolution(mantissa: int, decimals: int) -> None:
    value = mantissa / 10**decimals
    decoded = decode_sfloat(encode_sfloat(value, decimals))
    assert decoded is not None
    assert math.isclose(decoded, value, rel_tol=1e-12, abs_tol=1e-15)


@given(mantissa=st.integers(-(1 << 23) + 3, (1 << 23) - 3), decimals=st.integers(0, 10))
def test_float_value_round_trips_at_its_resolution(mantissa: int, decimals: int) -> None:
    value = mantissa / 10**decimals
    decoded = decode_float(encode_float(value, decimals))
    assert decoded is not None
    assert math.isclose(decoded, value, rel_tol=1e-12, abs_tol=1e-15)
