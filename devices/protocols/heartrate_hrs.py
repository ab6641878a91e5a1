"""Bluetooth SIG Heart Rate Service (0x180D): Heart Rate Measurement 0x2A37 (notify).

Reference: Bluetooth SIG Heart Rate Service 1.0; test vectors from
NordicSemiconductor/Android-BLE-Common-Library HeartRateMeasurementDataCallbackTest.java;
layout in docs PROTOCOLS.md section 3.

  flags u8 | heart rate u8 (flags b0 = 0) or u16 LE (b0 = 1)
           | [b3] energy expended u16 LE, kJ (ignored)
           | [b4] RR intervals u16 LE, 1/1024 s each, repeated to the end of the value
  flags b1: sensor contact detected; b2: sensor contact status supported

Contact supported but not detected means the band is off the wrist (or the finger off the
sensor): the heart rate is then reported missing with FINGER_OUT and the RR intervals, which
describe no heartbeat, are not reported. Heart rate is emitted as `Metric.PULSE`, RR intervals as
`Metric.RR_INTERVAL` in milliseconds. One notification carries one measurement; a final odd
octet after the RR intervals is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from devices.protocols.reading import DecodeError, Metric, Quality, Reading
from devices.protocols.spec import DecoderStats, ProtocolSpec, checked_reading

PROTOCOL_NAME = "hrs"
SERVICE_UUID = "0000180d-0000-1000-8000-00805f9b34fb"
HEART_RATE_MEASUREMENT_UUID = "00002a37-0000-1000-8000-00805f9b34fb"

FLAG_HR_U16 = 0x01
FLAG_CONTACT_DETECTED = 0x02
FLAG_CONTACT_SUPPORTED = 0x04
FLAG_ENERGY_EXPENDED = 0x08
FLAG_RR_INTERVALS = 0x10

RR_UNITS_PER_S = 1024
_U8_MAX = 0xFF
_U16_MAX = 0xFFFF


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """The fields of one 0x2A37 value; `contact` is None when the sensor cannot tell."""

    heart_rate_bpm: int
    contact: bool | None
    energy_expended_kj: int | None
    rr_intervals_1024: tuple[int, ...]


def decode_heart_rate_measurement(data: bytes) -> HeartRateMeasurement:
    """The fields of one Heart Rate Measurement value; `DecodeError` when truncated."""
    data = bytes(data)
    if not data:
        raise DecodeError(PROTOCOL_NAME, 0, data, "empty value")
    flags = data[0]
    hr_size = 2 if flags & FLAG_HR_U16 else 1
    offset = 1 + hr_size
    if len(data) < offset:
        raise DecodeError(PROTOCOL_NAME, 1, data, "heart rate missing")
    heart_rate = int.from_bytes(data[1:offset], "little")
    energy = None
    if flags & FLAG_ENERGY_EXPENDED:
        if len(data) < offset + 2:
            raise DecodeError(PROTOCOL_NAME, offset, data, "energy expended missing")
        energy = int.from_bytes(data[offset : offset + 2], "little")
        offset += 2
    rr: tuple[int, ...] = ()
    if flags & FLAG_RR_INTERVALS:
        count = (len(data) - offset) // 2
        if count == 0:
            raise DecodeError(PROTOCOL_NAME, offset, data, "RR interval missing")
        rr = tuple(
            int.from_bytes(data[offset + 2 * i : offset + 2 * i + 2], "little")
            for i in range(count)
        )
    contact = bool(flags & FLAG_CONTACT_DETECTED) if flags & FLAG_CONTACT_SUPPORTED else None
    return HeartRateMeasurement(heart_rate, contact, energy, rr)


def rr_interval_ms(rr_1024: int) -> float:
    """An RR interval in 1/1024 s as milliseconds (exact in binary floating point)."""
    return rr_1024 * 1000 / RR_UNITS_PER_S


@dataclass(slots=True)
class HrsDecoder:
    """Decodes one Heart Rate Measurement per `feed` call (one BLE notification)."""

    stats: DecoderStats = field(default_factory=DecoderStats)

    def feed(self, data: bytes) -> list[Reading]:
        """The heart rate reading, then one reading per RR interval (implausible ones dropped)."""
        measurement = decode_heart_rate_measurement(data)
        self.stats.frames += 1
        if measurement.contact is False:
            return [Reading(Metric.PULSE, None, Quality.FINGER_OUT)]
        candidates = [(Metric.PULSE, float(measurement.heart_rate_bpm))]
        candidates += [
            (Metric.RR_INTERVAL, rr_interval_ms(rr)) for rr in measurement.rr_intervals_1024
        ]
        readings = (checked_reading(self.stats, metric, value) for metric, value in candidates)
        return [reading for reading in readings if reading is not None]


def encode_heart_rate_measurement(
    heart_rate_bpm: int,
    *,
    contact: bool | None = None,
    energy_expended_kj: int | None = None,
    rr_intervals_1024: tuple[int, ...] = (),
) -> bytes:
    """One Heart Rate Measurement value as a sensor notifies it.

    The heart rate goes in a u8 when it fits, else a u16; `contact` None means "not supported".
    """
    if not 0 <= heart_rate_bpm <= _U16_MAX:
        raise ValueError(f"heart rate {heart_rate_bpm} does not fit a u16")
    flags = 0
    if heart_rate_bpm > _U8_MAX:
        flags |= FLAG_HR_U16
        body = heart_rate_bpm.to_bytes(2, "little")
    else:
        body = bytes((heart_rate_bpm,))
    if contact is not None:
        flags |= FLAG_CONTACT_SUPPORTED | (FLAG_CONTACT_DETECTED if contact else 0)
    if energy_expended_kj is not None:
        flags |= FLAG_ENERGY_EXPENDED
        body += _u16(energy_expended_kj, "energy expended")
    if rr_intervals_1024:
        flags |= FLAG_RR_INTERVALS
        body += b"".join(_u16(rr, "RR interval") for rr in rr_intervals_1024)
    return bytes((flags,)) + body


def _u16(value: int, what: str) -> bytes:
    """`value` as u16 LE, or ValueError naming `what`."""
    if not 0 <= value <= _U16_MAX:
        raise ValueError(f"{what} {value} does not fit a u16")
    return value.to_bytes(2, "little")


PROTOCOLS = (
    ProtocolSpec(
        name=PROTOCOL_NAME,
        title="Bluetooth Heart Rate (0x180D: Heart Rate Measurement 0x2A37)",
        transports=frozenset({"ble"}),
        new_decoder=HrsDecoder,
        metrics=frozenset({Metric.PULSE, Metric.RR_INTERVAL}),
        ble_service_uuids=(SERVICE_UUID,),
        ble_notify_uuids=(HEART_RATE_MEASUREMENT_UUID,),
        notes="Bands and watches: heart rate and RR intervals, never SpO2.",
    ),
)
