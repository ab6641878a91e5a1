"""IEEE 11073-20601 SFLOAT (16-bit) and FLOAT (32-bit) numbers used by the Bluetooth SIG profiles.

Reference: Bluetooth PLX, HTS and HRS specifications; special values as in
NordicSemiconductor/Android-BLE-Library `Data.java` (SFLOAT_NAN, FLOAT_NAN, ...).
A special value (NaN, NRes, +INF, -INF, reserved) decodes to None: "no value".
"""

from __future__ import annotations

import math

# SFLOAT: 4-bit signed exponent, 12-bit signed mantissa. Specials have exponent 0.
_SFLOAT_SPECIAL_MANTISSAS = frozenset({0x07FF, 0x0800, 0x07FE, 0x0802, 0x0801})
# FLOAT: 8-bit signed exponent, 24-bit signed mantissa. Specials have exponent 0.
_FLOAT_SPECIAL_MANTISSAS = frozenset({0x7FFFFF, 0x800000, 0x7FFFFE, 0x800002, 0x800001})
SFLOAT_NAN = 0x07FF
FLOAT_NAN = 0x007FFFFF


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


def decode_sfloat(raw: int) -> float | None:
    """The value of a 16-bit SFLOAT, or None for NaN/NRes/INF/reserved."""
    mantissa_bits = raw & 0x0FFF
    exponent = _signed(raw >> 12, 4)
    if exponent == 0 and mantissa_bits in _SFLOAT_SPECIAL_MANTISSAS:
        return None
    return _scaled(_signed(mantissa_bits, 12), exponent)


def decode_float(raw: int) -> float | None:
    """The value of a 32-bit FLOAT, or None for NaN/NRes/INF/reserved."""
    mantissa_bits = raw & 0xFFFFFF
    exponent = _signed(raw >> 24, 8)
    if exponent == 0 and mantissa_bits in _FLOAT_SPECIAL_MANTISSAS:
        return None
    return _scaled(_signed(mantissa_bits, 24), exponent)


def _scaled(mantissa: int, exponent: int) -> float:
    # round() keeps 37.6 as 37.6 rather than 37.600000000000001; exponents here are small.
    return round(mantissa * 10.0**exponent, max(0, -exponent))


def encode_float(value: float | None, decimals: int = 2) -> int:
    """The 32-bit FLOAT for `value` with `decimals` digits (None encodes NaN)."""
    if value is None or math.isnan(value):
        return FLOAT_NAN
    mantissa = round(value * 10.0**decimals)
    if not -(1 << 23) + 3 <= mantissa <= (1 << 23) - 3:
        raise ValueError(f"{value} does not fit a FLOAT with {decimals} decimals")
    return ((-decimals & 0xFF) << 24) | (mantissa & 0xFFFFFF)


def encode_sfloat(value: float | None, decimals: int = 0) -> int:
    """The 16-bit SFLOAT for `value` with `decimals` digits (None encodes NaN)."""
    if value is None or math.isnan(value):
        return SFLOAT_NAN
    mantissa = round(value * 10.0**decimals)
    if not -2045 <= mantissa <= 2045:
        raise ValueError(f"{value} does not fit an SFLOAT with {decimals} decimals")
    return ((-decimals & 0xF) << 12) | (mantissa & 0x0FFF)
