"""Contec "SpO2 Assistant" recording files (`*.SpO2`), as the PC software saves a download
from a CMS50D+/CMS50E/CMS50H/CMS60C.

Reference: the two real files of InfantLab/Contec-Pulse-Oximeter-in-Matlab @334fc64
(`Data/demo.SpO2` from a CMS50H, `Data/_20111017200058.SpO2` from a CMS60CW; MIT), whose
fields agree with the independent reader of OpenPSG (`SpO2AssistantLoader`, the same header
offset, date fields and record-size rule). Layout (all integers little-endian):
  0        u16   header offset H (0x0358 in both real files)
  4        u32   1 in both real files (meaning unknown)
  H+8      model name, UTF-16LE, 64 bytes, NUL-padded ("CMS50H", "CMS60CW")
  H+72     user name, same encoding ("  user2", "   user")
  H+136    manufacturer, same encoding ("Contec")
  H+200    seven u32: year, month, day, hour, minute, second (start, device clock), count
  H+228    `count` records at 1 Hz, each 2 bytes [SpO2, PR] or 4 bytes [?, ?, SpO2, PR];
           the record size is (file size - (H+228)) / count
SpO2 0x7F or 0xFF and PR 0xFF mean "no value". The first two bytes of a 4-byte record are not
decoded (in the CMS50H file they run 170-860 in steps of 10, perhaps PI x 100; unconfirmed).
The start time is the device's wall clock, in an unknown time zone.
"""

from __future__ import annotations

import calendar
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

from devices.protocols.reading import DecodeError, Metric, Reading
from devices.protocols.spec import DecoderStats, Recording, RecordingFormat, checked_reading

FORMAT_NAME = "contec-spo2"
INTERVAL_S = 1.0
DEFAULT_HEADER_OFFSET = 0x0358  # as in both real files

_HEADER_OFFSET = struct.Struct("<H")
_MARKER = struct.Struct("<I")
MARKER_OFFSET = 4
MARKER_VALUE = 1  # as in both real files
MODEL_OFFSET = 8  # from the header offset
USER_OFFSET = 72
MANUFACTURER_OFFSET = 136
TEXT_FIELD_LEN = 64  # bytes: 32 UTF-16 code units
_START_AND_COUNT = struct.Struct("<7I")
START_OFFSET = 200
DATA_OFFSET = START_OFFSET + _START_AND_COUNT.size  # 228
RECORD_SIZES = (2, 4)
SPO2_NO_VALUE_BYTE = 0x7F  # what the writer uses
SPO2_NO_VALUE = frozenset({SPO2_NO_VALUE_BYTE, 0xFF})
PR_NO_VALUE = 0xFF
_ERROR_CONTEXT_LEN = 32  # bytes of the file quoted in a DecodeError
_YEARS = range(1990, 2100)


@dataclass(frozen=True, slots=True)
class _Header:
    model: str
    start_fields: tuple[int, int, int, int, int, int]
    count: int
    data_offset: int
    record_size: int


def _error(data: bytes, offset: int, reason: str) -> DecodeError:
    return DecodeError(FORMAT_NAME, offset, data[offset : offset + _ERROR_CONTEXT_LEN], reason)


def _text(data: bytes, offset: int) -> str:
    raw = data[offset : offset + TEXT_FIELD_LEN]
    return raw.decode("utf-16-le", errors="replace").split("\0", 1)[0]


def _parse_header(data: bytes) -> _Header:
    """The header fields of a `.SpO2` file; `DecodeError` where they do not add up."""
    if len(data) < _HEADER_OFFSET.size:
        raise _error(data, 0, "too short for the header offset")
    (header,) = _HEADER_OFFSET.unpack_from(data, 0)
    data_offset = header + DATA_OFFSET
    if data_offset > len(data):
        raise _error(data, 0, f"header offset {header} leaves no room for the header")
    *start, count = _START_AND_COUNT.unpack_from(data, header + START_OFFSET)
    year, month, day, hour, minute, second = start
    if not (year in _YEARS and 1 <= month <= 12 and 1 <= day <= 31):
        raise _error(data, header + START_OFFSET, "start date out of range")
    if not (hour < 24 and minute < 60 and second < 60):
        raise _error(data, header + START_OFFSET, "start time out of range")
    data_len = len(data) - data_offset
    record_size = data_len // count if count else 0
    fits = data_len == 0 if count == 0 else data_len % count == 0 and record_size in RECORD_SIZES
    if not fits:
        raise _error(data, data_offset, f"{data_len} data bytes do not hold {count} records")
    return _Header(
        model=_text(data, header + MODEL_OFFSET),
        start_fields=(year, month, day, hour, minute, second),
        count=count,
        data_offset=data_offset,
        record_size=record_size,
    )


def looks_like_spo2_assistant(data: bytes) -> bool:
    """True when `data` has a consistent SpO2 Assistant header."""
    try:
        _parse_header(bytes(data))
    except DecodeError:
        return False
    return True


def read_spo2_assistant(
    data: bytes, *, utc_offset_s: float = 0.0, stats: DecoderStats | None = None
) -> Recording:
    """The recording in a `.SpO2` file: one SpO2 and one pulse reading per second.

    The file stores the device's wall-clock time; `utc_offset_s` is that clock's offset from
    UTC (e.g. 28800 for Beijing time), 0 takes it as UTC. Implausible values are dropped and
    counted in `stats`.
    """
    data = bytes(data)
    header = _parse_header(data)
    stats = DecoderStats() if stats is None else stats
    start_time_s = calendar.timegm((*header.start_fields, 0, 0, 0)) - utc_offset_s
    readings: list[Reading] = []
    for index in range(header.count):
        end = header.data_offset + (index + 1) * header.record_size
        spo2, pulse = data[end - 2], data[end - 1]
        device_time_s = start_time_s + index * INTERVAL_S
        for metric, value in (
            (Metric.SPO2, None if spo2 in SPO2_NO_VALUE else float(spo2)),
            (Metric.PULSE, None if pulse == PR_NO_VALUE else float(pulse)),
        ):
            reading = checked_reading(stats, metric, value, device_time_s=device_time_s)
            if reading is not None:
                readings.append(reading)
    stats.frames += header.count
    return Recording(FORMAT_NAME, start_time_s, INTERVAL_S, tuple(readings), header.model)


def _encode_text(text: str) -> bytes:
    raw = text.encode("utf-16-le")
    if len(raw) >= TEXT_FIELD_LEN:
        raise ValueError(f"{text!r} does not fit a {TEXT_FIELD_LEN}-byte text field")
    return raw.ljust(TEXT_FIELD_LEN, b"\0")


def encode_spo2_assistant(
    start_time_s: int,
    samples: Sequence[tuple[int | None, int | None]],
    *,
    model: str = "CMS50D+",
    user: str = "user",
    manufacturer: str = "Contec",
    record_size: int = 2,
    header_offset: int = DEFAULT_HEADER_OFFSET,
) -> bytes:
    """A `.SpO2` file of 1 Hz (SpO2 %, pulse bpm) samples; None is written as "no value".

    `start_time_s` is written as the device's wall clock (UTC fields of that epoch time).
    """
    if record_size not in RECORD_SIZES:
        raise ValueError(f"record size {record_size} is not one of {RECORD_SIZES}")
    if header_offset < MARKER_OFFSET + _MARKER.size:
        raise ValueError(f"header offset {header_offset} overlaps the file's first fields")
    start = time.gmtime(start_time_s)
    if start.tm_year not in _YEARS:
        raise ValueError(f"start year {start.tm_year} is outside {_YEARS.start}-{_YEARS.stop - 1}")
    out = bytearray(header_offset + DATA_OFFSET)
    _HEADER_OFFSET.pack_into(out, 0, header_offset)
    _MARKER.pack_into(out, MARKER_OFFSET, MARKER_VALUE)
    for offset, text in (
        (MODEL_OFFSET, model),
        (USER_OFFSET, user),
        (MANUFACTURER_OFFSET, manufacturer),
    ):
        at = header_offset + offset
        out[at : at + TEXT_FIELD_LEN] = _encode_text(text)
    fields = (start.tm_year, start.tm_mon, start.tm_mday, start.tm_hour, start.tm_min)
    # tm_sec can be 60 or 61 on leap seconds; the file format has no room for them.
    _START_AND_COUNT.pack_into(
        out, header_offset + START_OFFSET, *fields, min(start.tm_sec, 59), len(samples)
    )
    padding = bytes(record_size - 2)
    for spo2, pulse in samples:
        spo2_byte = SPO2_NO_VALUE_BYTE if spo2 is None else spo2
        pulse_byte = PR_NO_VALUE if pulse is None else pulse
        out += padding + bytes((spo2_byte, pulse_byte))
    return bytes(out)


RECORDING_FORMATS = (
    RecordingFormat(
        name=FORMAT_NAME,
        title="Contec SpO2 Assistant recording (.SpO2; CMS50D+/E/H, CMS60C)",
        looks_like=looks_like_spo2_assistant,
        read=read_spo2_assistant,
    ),
)
