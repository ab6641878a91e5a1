"""Viatom / Wellue O2Ring and Checkme O2 stored nights: the "vld" file the ring keeps for each
recording (read over BLE with the 0x03 / 0x04 / 0x05 commands of `oximeter_viatom_oxy`, or
copied from the vendor app).

References: Lepu's Android SDK (viatomEcho/LepuBle, lepuble/file/OxyDataFile.kt), Viatom's iOS
SDK viatom-dev/VTO2Lib (`VTO2Parser parseO2ObjectWithData`, `parseO2WaveObjectArrayWithWaveData`),
OSCAR's Viatom loader (viatom_loader.cpp) and MackeyStingray/o2r (o2r/o2file.py); docs
PROTOCOLS.md section 4.4, where the layout is checked against a REAL night
(tolnaiz/garmin-venu3-vs-viatom-o2ring 2025-03-06/20250306222056) and the vendor app's CSV export
of it: 7 818 records; the export's rows start at the recording's start time (22:20:56, the file
name) and are 4 s apart.

Header, 40 bytes, little-endian:
  0      file version: 3 (5 on the Checkme O2 Max, per OSCAR)
  1      mode: 0 sleep, 1 monitor
  2-3    year u16; 4 month; 5 day; 6 hour; 7 minute; 8 second: the ring's clock at the first
         record
  9-12   file size u32, header included (OSCAR: older rings writing 2 s files give the size
         the file would have with each doubled record once)
  13-14  duration u16, s
  15-16  reserved
  17     average SpO2 %; 18 lowest SpO2 %; 19 drops of 3 % or more; 20 drops of 4 % or more
  21-24  time and events below 90 %: the sources split these bytes differently (VTO2Lib, OSCAR
         and o2r: 21 T90, 22-23 seconds, 24 events; LepuBle: 21-22 seconds, 23 events,
         24 percent), so they are not decoded
  25     O2 score x 10
  26-29  steps u32
  30-39  reserved
Records, 5 bytes, one every duration / count seconds (4 s; 2 s on some rings):
  0      SpO2 % (0xFF = no value)
  1-2    pulse rate u16 LE, bpm (0xFFFF = no value)
  3      motion (acceleration vector sum)
  4      vibration reminder marks (not reported)
A record without values (finger out, or measurement interrupted) is FF FF FF + motion + marks;
the vendor export shows "--" there and keeps the cadence. Older rings write each 4 s record
twice in 2 s files (OSCAR); they are read as they are, 2 s apart.

The ring's clock shows the wall time the phone (or the gateway, `encode_set_time`) gave it, with
no time zone. `device_time_s` is that wall time read as UTC; whoever imports the night shifts it
by the ring's UTC offset.
"""

from __future__ import annotations

import calendar
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from devices.protocols.oximeter_viatom_oxy import (
    MOTION_FLAG_THRESHOLD,
    PULSE_NO_VALUE,
    SPO2_NO_VALUE,
)
from devices.protocols.reading import DecodeError, Metric, Quality, Reading
from devices.protocols.spec import DecoderStats, Recording, RecordingFormat, checked_reading

FORMAT_NAME = "o2ring"
HEADER_LEN = 40
RECORD_LEN = 5
SUPPORTED_VERSIONS = (3, 5)
MODES = (0, 1)  # sleep, monitor
YEAR_RANGE = (2010, 2099)
INTERVALS_S = (4.0, 2.0)
# Largest gap between duration / count and the nearest interval still read as that interval;
# beyond it the file has lost records (or its header is not one of ours).
INTERVAL_TOLERANCE_S = 0.5

# version, mode, year, month, day, hour, minute, second, file size, duration, reserved,
# avg SpO2, min SpO2, drops 3 %, drops 4 %, bytes 21-24 (not decoded), O2 score x 10, steps
_HEADER = struct.Struct("<BBHBBBBBIHHBBBB4sBI10x")
_RECORD = np.dtype([("spo2", "u1"), ("pulse", "<u2"), ("motion", "u1"), ("marks", "u1")])


@dataclass(frozen=True, slots=True)
class O2RingHeader:
    """The decoded 40-byte header of a stored night."""

    version: int
    mode: int
    start_time_s: float  # the ring's wall clock read as UTC
    file_size: int
    duration_s: int
    spo2_avg_percent: int
    spo2_min_percent: int
    drops_3pct: int
    drops_4pct: int
    o2_score: float
    steps: int


@dataclass(frozen=True, slots=True)
class O2RingSample:
    """One stored record; None is the no-value marker."""

    spo2_percent: int | None
    pulse_bpm: int | None
    motion: int = 0
    marks: int = 0


def decode_o2ring_header(data: bytes) -> O2RingHeader:
    """The header of a stored night; `DecodeError` when it is not a valid O2Ring header."""
    data = bytes(data)
    if len(data) < HEADER_LEN:
        raise DecodeError(FORMAT_NAME, len(data), data[:HEADER_LEN], "shorter than the header")
    fields = _HEADER.unpack_from(data)
    version, mode, year, month, day, hour, minute, second = fields[:8]
    if version not in SUPPORTED_VERSIONS or mode not in MODES:
        raise DecodeError(FORMAT_NAME, 0, data[:HEADER_LEN], "unknown file version or mode")
    if not YEAR_RANGE[0] <= year <= YEAR_RANGE[1]:
        raise DecodeError(FORMAT_NAME, 2, data[:HEADER_LEN], "start year out of range")
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        raise DecodeError(FORMAT_NAME, 4, data[:HEADER_LEN], "start date out of range")
    if hour >= 24 or minute >= 60 or second >= 60:
        raise DecodeError(FORMAT_NAME, 6, data[:HEADER_LEN], "start time out of range")
    start_time_s = float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))
    file_size, duration_s, _, avg, low, drops_3, drops_4, _, score_x10, steps = fields[8:]
    return O2RingHeader(
        version, mode, start_time_s, file_size, duration_s, avg, low, drops_3, drops_4,
        score_x10 / 10, steps,
    )  # fmt: skip


def looks_like_o2ring_file(data: bytes) -> bool:
    """True when `data` starts with a valid O2Ring night header."""
    try:
        decode_o2ring_header(data)
    except DecodeError:
        return False
    return True


def read_o2ring_file(data: bytes) -> Recording:
    """The SpO2 and pulse readings of a stored night, one pair per record, stamped with the
    ring's clock. `DecodeError` for a malformed or truncated file."""
    data = bytes(data)
    header = decode_o2ring_header(data)
    body_len = len(data) - HEADER_LEN
    if body_len % RECORD_LEN:
        raise DecodeError(FORMAT_NAME, len(data), data[-RECORD_LEN:], "truncated inside a record")
    if header.file_size > len(data):
        reason = f"truncated: the header declares {header.file_size} bytes, {len(data)} present"
        raise DecodeError(FORMAT_NAME, len(data), data[:HEADER_LEN], reason)
    records = np.frombuffer(data, dtype=_RECORD, offset=HEADER_LEN)
    interval_s = _interval_s(header, len(records), data)
    readings = _record_readings(records, header.start_time_s, interval_s)
    return Recording(FORMAT_NAME, header.start_time_s, interval_s, readings)


def _interval_s(header: O2RingHeader, count: int, data: bytes) -> float:
    """Seconds between records: the known interval nearest to duration / count."""
    if count == 0:
        return INTERVALS_S[0]
    ratio = header.duration_s / count
    interval_s = min(INTERVALS_S, key=lambda candidate: abs(candidate - ratio))
    if abs(interval_s - ratio) > INTERVAL_TOLERANCE_S:
        reason = f"duration {header.duration_s} s does not fit {count} records"
        raise DecodeError(FORMAT_NAME, 13, data[:HEADER_LEN], reason)
    return interval_s


def _record_readings(
    records: npt.NDArray[np.void], start_time_s: float, interval_s: float
) -> tuple[Reading, ...]:
    """An SpO2 and a pulse reading per record; implausible values are dropped."""
    stats = DecoderStats()
    readings: list[Reading] = []
    columns = (records["spo2"].tolist(), records["pulse"].tolist(), records["motion"].tolist())
    for index, (spo2, pulse, motion) in enumerate(zip(*columns, strict=True)):
        quality = Quality.MOTION if motion >= MOTION_FLAG_THRESHOLD else Quality.OK
        time_s = start_time_s + index * interval_s
        for metric, value in (
            (Metric.SPO2, None if spo2 == SPO2_NO_VALUE else float(spo2)),
            (Metric.PULSE, None if pulse == PULSE_NO_VALUE else float(pulse)),
        ):
            reading = checked_reading(stats, metric, value, quality, device_time_s=time_s)
            if reading is not None:
                readings.append(reading)
    return tuple(readings)


def encode_o2ring_file(
    start_time_s: float,
    samples: Sequence[O2RingSample],
    *,
    interval_s: float = 4.0,
    version: int = 3,
    mode: int = 0,
) -> bytes:
    """A stored night as the ring writes it: the header (start time as in `read_o2ring_file`,
    average and lowest SpO2 of the samples; drop counts, score and steps 0) and the records."""
    if interval_s not in INTERVALS_S:
        raise ValueError(f"interval {interval_s} s is not one of {INTERVALS_S}")
    if version not in SUPPORTED_VERSIONS or mode not in MODES:
        raise ValueError(f"version {version} / mode {mode} is not a known O2Ring file")
    if len(samples) * interval_s > 0xFFFF:
        raise ValueError("the recording is longer than the u16 duration field allows")
    body = b"".join(_encode_record(sample) for sample in samples)
    valid_spo2 = [s.spo2_percent for s in samples if s.spo2_percent is not None]
    avg = round(sum(valid_spo2) / len(valid_spo2)) if valid_spo2 else 0
    clock = _gmtime_fields(start_time_s)
    header = _HEADER.pack(
        version, mode, *clock, HEADER_LEN + len(body), round(len(samples) * interval_s), 0,
        avg, min(valid_spo2, default=0), 0, 0, bytes(4), 0, 0,
    )  # fmt: skip
    return header + body


def _gmtime_fields(time_s: float) -> tuple[int, int, int, int, int, int]:
    """Year, month, day, hour, minute, second of `time_s` read as UTC."""
    t = time.gmtime(int(time_s))
    if not YEAR_RANGE[0] <= t.tm_year <= YEAR_RANGE[1]:
        raise ValueError(f"start year {t.tm_year} is outside {YEAR_RANGE}")
    return t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec


def _encode_record(sample: O2RingSample) -> bytes:
    """The 5 bytes of one record."""
    spo2 = SPO2_NO_VALUE if sample.spo2_percent is None else sample.spo2_percent
    pulse = PULSE_NO_VALUE if sample.pulse_bpm is None else sample.pulse_bpm
    if not all(0 <= v <= 0xFF for v in (spo2, sample.motion, sample.marks)) or pulse > 0xFFFF:
        raise ValueError(f"{sample} has a field out of its record range")
    return struct.pack("<BHBB", spo2, pulse, sample.motion, sample.marks)


RECORDING_FORMATS = (
    RecordingFormat(
        name=FORMAT_NAME,
        title="Viatom / Wellue O2Ring and Checkme O2 stored night (vld file)",
        looks_like=looks_like_o2ring_file,
        read=read_o2ring_file,
    ),
)
