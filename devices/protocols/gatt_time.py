"""The Bluetooth SIG "Date Time" field (org.bluetooth.characteristic.date_time) shared by the
Health Thermometer (0x2A1C) and Pulse Oximeter spot-check (0x2A5E) measurements.

Reference: Bluetooth SIG GATT Specification Supplement, Date Time; layout in docs PROTOCOLS.md
sections 1.3 and 2.

  year u16 LE (1582-9999, 0 = not known) | month u8 (1-12, 0 = not known)
  | day u8 (1-31, 0 = not known) | hours u8 (0-23) | minutes u8 (0-59) | seconds u8 (0-59)

The field carries no time zone: devices keep the wall-clock time their phone app set, so the
caller passes that wall clock's offset from UTC (`utc_offset_s`, +28800 for China Standard Time).
"""

from __future__ import annotations

import calendar
import struct
import time

from devices.protocols.reading import DecodeError

DATE_TIME = struct.Struct("<HBBBBB")
DATE_TIME_SIZE = DATE_TIME.size
_MIN_YEAR = 1582
_MAX_YEAR = 9999


def decode_date_time(
    data: bytes, offset: int, protocol: str, *, utc_offset_s: float = 0.0
) -> float | None:
    """UTC epoch seconds of the Date Time at `offset`; None when the device says "not known".

    Raises `DecodeError` (naming `protocol`) when the field is truncated or out of range.
    """
    if len(data) < offset + DATE_TIME_SIZE:
        raise DecodeError(protocol, offset, data, "date time truncated")
    year, month, day, hour, minute, second = DATE_TIME.unpack_from(data, offset)
    if year == 0 or month == 0 or day == 0:  # 0 is "not known" in each date field
        return None
    in_range = (
        _MIN_YEAR <= year <= _MAX_YEAR
        and month <= 12
        and day <= calendar.monthrange(year, month)[1]
        and hour < 24
        and minute < 60
        and second < 60
    )
    if not in_range:
        raise DecodeError(protocol, offset, data, "date time out of range")
    wall_clock_s = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    return float(wall_clock_s) - utc_offset_s


def encode_date_time(device_time_s: float, *, utc_offset_s: float = 0.0) -> bytes:
    """The 7-byte Date Time a device whose clock runs `utc_offset_s` ahead of UTC would send."""
    t = time.gmtime(int(device_time_s + utc_offset_s))
    return DATE_TIME.pack(t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)
