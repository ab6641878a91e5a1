"""Bluetooth SIG Pulse Oximeter Service (PLX, 0x1822): PLX Continuous Measurement 0x2A5F (notify)
and PLX Spot-Check Measurement 0x2A5E (indicate).

Reference: Bluetooth SIG Pulse Oximeter Service 1.0; StanfordSpezi/SpeziBluetooth
PLXContinuousMeasurement.swift, PLXSpotCheckMeasurement.swift and PLXTests.swift (test vectors);
a real ChoiceMMed capture in StackOverflow question 71264072; layout in docs PROTOCOLS.md section 1.

Every number is an IEEE-11073 SFLOAT (u16 LE), decoded in full: `62 00` is 98 and `d4 f3` is
98.0. (Reading only the low byte, as some public decoders do, turns `62 80` into "98".)

  0x2A5F: flags u8 | SpO2 | PR | [b0] SpO2 fast | PR fast | [b1] SpO2 slow | PR slow
          | [b2] measurement status u16 LE | [b3] device & sensor status u24 LE | [b4] PAI
  0x2A5E: flags u8 | SpO2 | PR | [b0] Date Time (7 bytes) | [b1] measurement status u16 LE
          | [b2] device & sensor status u24 LE | [b3] PAI;  flags b4 = device clock not set

One notification or indication carries one measurement; octets after the announced fields are
ignored. The readings are SpO2, pulse and, when present, PI (PAI, in %). The fast and slow
averages are decoded but not emitted: one value per metric per measurement. Status bits map onto
`Quality` (tables below); NaN/NRes/INF and the 0 some cheap devices send mean "no value".
Measurements flagged as demonstration or test data are not patient data: dropped and counted.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

from devices.protocols.gatt_time import DATE_TIME_SIZE, decode_date_time, encode_date_time
from devices.protocols.ieee11073 import decode_sfloat, encode_sfloat
from devices.protocols.reading import INVALIDATING, DecodeError, Metric, Quality, Reading
from devices.protocols.spec import DecoderStats, ProtocolSpec, checked_reading

CONTINUOUS_NAME = "plx-continuous"
SPOT_CHECK_NAME = "plx-spot-check"
SERVICE_UUID = "00001822-0000-1000-8000-00805f9b34fb"
SPOT_CHECK_UUID = "00002a5e-0000-1000-8000-00805f9b34fb"
CONTINUOUS_UUID = "00002a5f-0000-1000-8000-00805f9b34fb"

# 0x2A5F flags
CONT_FLAG_FAST = 0x01
CONT_FLAG_SLOW = 0x02
CONT_FLAG_MEASUREMENT_STATUS = 0x04
CONT_FLAG_DEVICE_STATUS = 0x08
CONT_FLAG_PAI = 0x10
# 0x2A5E flags
SPOT_FLAG_TIMESTAMP = 0x01
SPOT_FLAG_MEASUREMENT_STATUS = 0x02
SPOT_FLAG_DEVICE_STATUS = 0x04
SPOT_FLAG_PAI = 0x08
SPOT_FLAG_CLOCK_NOT_SET = 0x10

# Measurement Status (u16); bits 0-4 reserved.
MEAS_ONGOING = 0x0020
MEAS_EARLY_ESTIMATE = 0x0040
MEAS_VALIDATED = 0x0080
MEAS_FULLY_QUALIFIED = 0x0100
MEAS_FROM_STORAGE = 0x0200
MEAS_DEMONSTRATION = 0x0400
MEAS_TESTING = 0x0800
MEAS_CALIBRATION_ONGOING = 0x1000
MEAS_UNAVAILABLE = 0x2000
MEAS_QUESTIONABLE = 0x4000
MEAS_INVALID = 0x8000
NOT_PATIENT_DATA = MEAS_DEMONSTRATION | MEAS_TESTING

# Device and Sensor Status (u24); bits 16-23 reserved.
DEV_EXTENDED_DISPLAY_UPDATE = 0x000001
DEV_EQUIPMENT_MALFUNCTION = 0x000002
DEV_SIGNAL_PROCESSING_IRREGULARITY = 0x000004
DEV_INADEQUATE_SIGNAL = 0x000008
DEV_POOR_SIGNAL = 0x000010
DEV_LOW_PERFUSION = 0x000020
DEV_ERRATIC_SIGNAL = 0x000040
DEV_NON_PULSATILE_SIGNAL = 0x000080
DEV_QUESTIONABLE_PULSE = 0x000100
DEV_SIGNAL_ANALYSIS_ONGOING = 0x000200
DEV_SENSOR_INTERFERENCE = 0x000400
DEV_SENSOR_UNCONNECTED = 0x000800
DEV_UNKNOWN_SENSOR = 0x001000
DEV_SENSOR_DISPLACED = 0x002000
DEV_SENSOR_MALFUNCTION = 0x004000
DEV_SENSOR_DISCONNECTED = 0x008000

# Which status bits lower or void a measurement. FINGER_OUT / SEARCHING / SENSOR_FAULT void it.
MEASUREMENT_STATUS_QUALITY: tuple[tuple[int, Quality], ...] = (
    (MEAS_CALIBRATION_ONGOING | MEAS_UNAVAILABLE | MEAS_INVALID, Quality.SEARCHING),
    (MEAS_QUESTIONABLE, Quality.LOW_SIGNAL),
)
DEVICE_STATUS_QUALITY: tuple[tuple[int, Quality], ...] = (
    (DEV_SENSOR_UNCONNECTED | DEV_SENSOR_DISPLACED, Quality.FINGER_OUT),
    (
        DEV_EQUIPMENT_MALFUNCTION
        | DEV_UNKNOWN_SENSOR
        | DEV_SENSOR_MALFUNCTION
        | DEV_SENSOR_DISCONNECTED,
        Quality.SENSOR_FAULT,
    ),
    (DEV_SIGNAL_ANALYSIS_ONGOING, Quality.SEARCHING),
    (DEV_LOW_PERFUSION, Quality.LOW_PERFUSION),
    (DEV_ERRATIC_SIGNAL, Quality.MOTION),
    (
        DEV_SIGNAL_PROCESSING_IRREGULARITY
        | DEV_INADEQUATE_SIGNAL
        | DEV_POOR_SIGNAL
        | DEV_NON_PULSATILE_SIGNAL
        | DEV_QUESTIONABLE_PULSE
        | DEV_SENSOR_INTERFERENCE,
        Quality.LOW_SIGNAL,
    ),
)

_SFLOAT_SIZE = 2
_PAI_DECIMALS = 2
_U16_MAX = 0xFFFF
_U24_MAX = 0xFFFFFF

SfloatPair = tuple[float | None, float | None]


@dataclass(frozen=True, slots=True)
class PlxMeasurement:
    """The fields of one PLX measurement; None where absent or NaN/NRes/INF."""

    spo2_percent: float | None
    pulse_bpm: float | None
    fast: SfloatPair | None = None  # (SpO2 %, PR bpm), continuous only
    slow: SfloatPair | None = None
    measurement_status: int | None = None
    device_status: int | None = None
    pai_present: bool = False
    pai_percent: float | None = None
    device_time_s: float | None = None
    clock_not_set: bool = False


@dataclass(slots=True)
class _FieldReader:
    """Reads little-endian fields in order; a missing field raises `DecodeError`."""

    protocol: str
    data: bytes
    offset: int = 0

    def take(self, size: int, what: str) -> bytes:
        """The next `size` bytes."""
        if len(self.data) < self.offset + size:
            raise DecodeError(self.protocol, self.offset, self.data, f"{what} missing")
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def uint(self, size: int, what: str) -> int:
        """The next unsigned little-endian integer of `size` bytes."""
        return int.from_bytes(self.take(size, what), "little")

    def sfloat(self, what: str) -> float | None:
        """The next SFLOAT."""
        return decode_sfloat(self.uint(_SFLOAT_SIZE, what))


def decode_plx_continuous(data: bytes) -> PlxMeasurement:
    """The fields of one PLX Continuous Measurement (0x2A5F) value."""
    reader = _FieldReader(CONTINUOUS_NAME, bytes(data))
    flags = reader.uint(1, "flags")
    spo2, pulse = reader.sfloat("SpO2"), reader.sfloat("PR")
    fast = (
        (reader.sfloat("SpO2 fast"), reader.sfloat("PR fast")) if flags & CONT_FLAG_FAST else None
    )
    slow = (
        (reader.sfloat("SpO2 slow"), reader.sfloat("PR slow")) if flags & CONT_FLAG_SLOW else None
    )
    status_and_pai = _read_status_and_pai(
        reader, flags, CONT_FLAG_MEASUREMENT_STATUS, CONT_FLAG_DEVICE_STATUS, CONT_FLAG_PAI
    )
    return PlxMeasurement(spo2, pulse, fast, slow, *status_and_pai)


def decode_plx_spot_check(data: bytes, *, utc_offset_s: float = 0.0) -> PlxMeasurement:
    """The fields of one PLX Spot-Check Measurement (0x2A5E) value.

    A timestamp from a device whose clock is not set (flags b4) is dropped: the time of arrival
    is closer to the truth than a clock that restarted at its factory date.
    """
    reader = _FieldReader(SPOT_CHECK_NAME, bytes(data))
    flags = reader.uint(1, "flags")
    spo2, pulse = reader.sfloat("SpO2"), reader.sfloat("PR")
    clock_not_set = bool(flags & SPOT_FLAG_CLOCK_NOT_SET)
    device_time_s = None
    if flags & SPOT_FLAG_TIMESTAMP and clock_not_set:
        reader.take(DATE_TIME_SIZE, "timestamp")  # whatever an unset clock says: not read
    elif flags & SPOT_FLAG_TIMESTAMP:
        device_time_s = decode_date_time(
            reader.data, reader.offset, SPOT_CHECK_NAME, utc_offset_s=utc_offset_s
        )
        reader.offset += DATE_TIME_SIZE
    status_and_pai = _read_status_and_pai(
        reader, flags, SPOT_FLAG_MEASUREMENT_STATUS, SPOT_FLAG_DEVICE_STATUS, SPOT_FLAG_PAI
    )
    return PlxMeasurement(spo2, pulse, None, None, *status_and_pai, device_time_s, clock_not_set)


def _read_status_and_pai(
    reader: _FieldReader, flags: int, measurement_flag: int, device_flag: int, pai_flag: int
) -> tuple[int | None, int | None, bool, float | None]:
    """Measurement status, device and sensor status, whether PAI is present, and PAI."""
    measurement_status = None
    if flags & measurement_flag:
        measurement_status = reader.uint(2, "measurement status")
    device_status = None
    if flags & device_flag:
        device_status = reader.uint(3, "device and sensor status")
    pai_present = bool(flags & pai_flag)
    return (
        measurement_status,
        device_status,
        pai_present,
        (reader.sfloat("PAI") if pai_present else None),
    )


def plx_quality(measurement_status: int | None, device_status: int | None) -> Quality:
    """The quality flags the two PLX status fields amount to (absent fields say nothing)."""
    quality = Quality.OK
    for bits, flag in MEASUREMENT_STATUS_QUALITY:
        if (measurement_status or 0) & bits:
            quality |= flag
    for bits, flag in DEVICE_STATUS_QUALITY:
        if (device_status or 0) & bits:
            quality |= flag
    return quality


def plx_readings(stats: DecoderStats, measurement: PlxMeasurement) -> list[Reading]:
    """SpO2, pulse and (when sent) PI readings of one measurement, counted in `stats`."""
    metrics = [Metric.SPO2, Metric.PULSE] + ([Metric.PI] if measurement.pai_present else [])
    if (measurement.measurement_status or 0) & NOT_PATIENT_DATA:
        stats.dropped_values += len(metrics)
        return []
    quality = plx_quality(measurement.measurement_status, measurement.device_status)
    # 0 SpO2 / PR is how some cheap devices say "no value".
    spo2 = None if measurement.spo2_percent == 0 else measurement.spo2_percent
    pulse = None if measurement.pulse_bpm == 0 else measurement.pulse_bpm
    values = [spo2, pulse, measurement.pai_percent]
    # A voiding status voids every value; PI means nothing without SpO2 or pulse.
    if quality & INVALIDATING or (spo2 is None and pulse is None):
        values = [None, None, None]
    readings = (
        checked_reading(stats, metric, value, quality, device_time_s=measurement.device_time_s)
        for metric, value in zip(metrics, values, strict=False)
    )
    return [reading for reading in readings if reading is not None]


@dataclass(slots=True)
class PlxContinuousDecoder:
    """Decodes one PLX Continuous Measurement per `feed` call (one BLE notification)."""

    stats: DecoderStats = field(default_factory=DecoderStats)

    def feed(self, data: bytes) -> list[Reading]:
        """The readings of one 0x2A5F notification."""
        measurement = decode_plx_continuous(data)
        self.stats.frames += 1
        return plx_readings(self.stats, measurement)


@dataclass(slots=True)
class PlxSpotCheckDecoder:
    """Decodes one PLX Spot-Check Measurement per `feed` call (one BLE indication).

    `utc_offset_s` is how far the oximeter's clock runs ahead of UTC (the Date Time field has
    no time zone; +28800 for a clock set to China Standard Time).
    """

    stats: DecoderStats = field(default_factory=DecoderStats)
    utc_offset_s: float = 0.0

    def feed(self, data: bytes) -> list[Reading]:
        """The readings of one 0x2A5E indication."""
        measurement = decode_plx_spot_check(data, utc_offset_s=self.utc_offset_s)
        self.stats.frames += 1
        return plx_readings(self.stats, measurement)


def _sfloat_bytes(value: float | None, decimals: int) -> bytes:
    """An SFLOAT on the wire with up to `decimals` decimals, fewer when the mantissa needs it.

    None or NaN sends the NaN special.
    """
    if value is None or math.isnan(value):
        return struct.pack("<H", encode_sfloat(None))
    fitting = (d for d in range(decimals, -1, -1) if abs(round(value * 10**d)) <= 2045)
    return struct.pack("<H", encode_sfloat(value, next(fitting, 0)))


def _status_bytes(measurement_status: int | None, device_status: int | None) -> tuple[bytes, bytes]:
    """The two status fields on the wire (empty when absent)."""
    meas = b""
    if measurement_status is not None:
        if not 0 <= measurement_status <= _U16_MAX:
            raise ValueError(f"measurement status {measurement_status:#x} is not a u16")
        meas = measurement_status.to_bytes(2, "little")
    dev = b""
    if device_status is not None:
        if not 0 <= device_status <= _U24_MAX:
            raise ValueError(f"device and sensor status {device_status:#x} is not a u24")
        dev = device_status.to_bytes(3, "little")
    return meas, dev


def encode_plx_continuous(
    spo2_percent: float | None,
    pulse_bpm: float | None,
    *,
    fast: SfloatPair | None = None,
    slow: SfloatPair | None = None,
    measurement_status: int | None = None,
    device_status: int | None = None,
    pai_percent: float | None = None,
    decimals: int = 0,
) -> bytes:
    """One PLX Continuous Measurement value as an oximeter notifies it.

    None for SpO2/PR encodes NaN; `pai_percent` None leaves PAI out (float("nan") sends NaN).
    `decimals` is the resolution of SpO2 and PR (0 like ChoiceMMed, 1 like the Spezi vectors);
    a value too large for it is sent with fewer decimals, PAI with up to 2.
    """
    flags = 0
    body = _sfloat_bytes(spo2_percent, decimals) + _sfloat_bytes(pulse_bpm, decimals)
    for flag, pair in ((CONT_FLAG_FAST, fast), (CONT_FLAG_SLOW, slow)):
        if pair is not None:
            flags |= flag
            body += _sfloat_bytes(pair[0], decimals) + _sfloat_bytes(pair[1], decimals)
    meas, dev = _status_bytes(measurement_status, device_status)
    flags |= (CONT_FLAG_MEASUREMENT_STATUS if meas else 0) | (CONT_FLAG_DEVICE_STATUS if dev else 0)
    body += meas + dev
    if pai_percent is not None:
        flags |= CONT_FLAG_PAI
        body += _sfloat_bytes(pai_percent, _PAI_DECIMALS)
    return bytes((flags,)) + body


def encode_plx_spot_check(
    spo2_percent: float | None,
    pulse_bpm: float | None,
    *,
    device_time_s: float | None = None,
    utc_offset_s: float = 0.0,
    clock_not_set: bool = False,
    measurement_status: int | None = None,
    device_status: int | None = None,
    pai_percent: float | None = None,
    decimals: int = 0,
) -> bytes:
    """One PLX Spot-Check Measurement value as an oximeter indicates it (see the continuous one)."""
    flags = SPOT_FLAG_CLOCK_NOT_SET if clock_not_set else 0
    body = _sfloat_bytes(spo2_percent, decimals) + _sfloat_bytes(pulse_bpm, decimals)
    if device_time_s is not None:
        flags |= SPOT_FLAG_TIMESTAMP
        body += encode_date_time(device_time_s, utc_offset_s=utc_offset_s)
    meas, dev = _status_bytes(measurement_status, device_status)
    flags |= (SPOT_FLAG_MEASUREMENT_STATUS if meas else 0) | (SPOT_FLAG_DEVICE_STATUS if dev else 0)
    body += meas + dev
    if pai_percent is not None:
        flags |= SPOT_FLAG_PAI
        body += _sfloat_bytes(pai_percent, _PAI_DECIMALS)
    return bytes((flags,)) + body


_PLX_METRICS = frozenset({Metric.SPO2, Metric.PULSE, Metric.PI})

PROTOCOLS = (
    ProtocolSpec(
        name=CONTINUOUS_NAME,
        title="Bluetooth Pulse Oximeter (0x1822: PLX Continuous Measurement 0x2A5F)",
        transports=frozenset({"ble"}),
        new_decoder=PlxContinuousDecoder,
        metrics=_PLX_METRICS,
        ble_service_uuids=(SERVICE_UUID,),
        ble_notify_uuids=(CONTINUOUS_UUID,),
        notes="No start command: notifications flow while a finger is in the probe.",
    ),
    ProtocolSpec(
        name=SPOT_CHECK_NAME,
        title="Bluetooth Pulse Oximeter (0x1822: PLX Spot-Check Measurement 0x2A5E)",
        transports=frozenset({"ble"}),
        new_decoder=PlxSpotCheckDecoder,
        metrics=_PLX_METRICS,
        ble_service_uuids=(SERVICE_UUID,),
        ble_notify_uuids=(SPOT_CHECK_UUID,),
        notes="Indications; bleak's start_notify enables them. One final reading per measurement.",
    ),
)
