"""BerryMed BERRY 20-byte protocol (newer Berry modules; switched on from BCI by command 0xE1).

Reference: BerryMed "BCI & BERRY Protocol V1.0" (2024-10-22), zh2x/SpO2-BLE-for-Android
@2d9c069 files/Protocol/; layout in docs PROTOCOLS.md section 4.1. Same UUIDs and serial settings
as the BCI stream (`oximeter_berrymed`).

Frame (all fields u8 unless said):
  0-1   header FF AA
  2     packet index (0x53 'S' / 0x48 'H' in version replies, see below)
  3     status: 0x01 sensor off, 0x02 no finger, 0x04 no pulse, 0x08 pulse beat
  4, 5  SpO2 average, real-time: 35-100 %, 127 = invalid
  6, 7  pulse rate average, real-time: 25-250 bpm, 255 = invalid
  8-9   RR interval u16 LE in 5 ms units: 40-600, 0 = invalid
  10,11 PI average, real-time: 1-200 in 0.1 % (the unit is inferred), 0 = invalid
  12    pleth 1-100
  13-16 IR ADC sample i32 LE
  17    battery %
  18    sample rate in Hz (1, 50, 100 or 200)
  19    checksum: (byte 0 + ... + byte 18) mod 256
Version replies (to 0xFF / 0xFE) are the same frame with byte 2 = 'S' (software) or 'H'
(hardware) and bytes 3-18 an ASCII string padded with NULs; they give no readings, the decoder
keeps them in `software_version` / `hardware_version`.

Readings per data frame: SpO2, pulse and PI (the averaged values the device displays), the RR
interval only on frames flagged "pulse beat" (one reading per beat, as the Heart Rate Service
gives them; at the 1 Hz rate most beats are not seen), and battery. Sensor off / no finger /
no pulse make the values missing, with SENSOR_FAULT / FINGER_OUT / SEARCHING.

Host commands are single bytes written to the "Receive" characteristic (or the serial port):
`BerryMedCommand`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

from devices.protocols.framing import HeaderFramer, fixed_length
from devices.protocols.oximeter_berrymed import (
    BERRY_FRAME_LEN,
    BERRY_HEADER,
    BLE_NOTIFY_UUID,
    BLE_SERVICE_UUID,
    BLE_WRITE_UUID,
    SERIAL_SETTINGS,
)
from devices.protocols.reading import Metric, Quality, Reading
from devices.protocols.spec import DecoderStats, ProtocolSpec, checked_reading, quality_from_bits

PROTOCOL_NAME = "berrymed-berry"

STATUS_SENSOR_OFF = 0x01
STATUS_NO_FINGER = 0x02
STATUS_NO_PULSE = 0x04
STATUS_PULSE_BEAT = 0x08
SPO2_INVALID = 127
PR_INVALID = 255
RR_INVALID = 0
PI_INVALID = 0
RR_UNIT_MS = 5
VERSION_SOFTWARE = 0x53  # 'S' in byte 2
VERSION_HARDWARE = 0x48  # 'H' in byte 2
VERSION_TEXT_LEN = 16  # bytes 3-18
SAMPLE_RATES_HZ = (1, 50, 100, 200)

# header, index, status, SpO2 avg/rt, PR avg/rt, RR, PI avg/rt, pleth, ADC, battery, rate, sum
_FRAME = struct.Struct("<2sBBBBBBHBBBiBBB")
_CHECKED_LEN = BERRY_FRAME_LEN - 1


class BerryMedCommand(IntEnum):
    """One-byte host commands of BerryMed modules (the rate, ADC and stop commands: BERRY only)."""

    GET_SOFTWARE_VERSION = 0xFF
    GET_HARDWARE_VERSION = 0xFE
    SWITCH_TO_BCI = 0xE0
    SWITCH_TO_BERRY = 0xE1
    RATE_50_HZ = 0xF0
    RATE_100_HZ = 0xF1
    RATE_200_HZ = 0xF2
    RATE_1_HZ = 0xF3
    ADC_RAW = 0xF4
    ADC_FILTERED = 0xF5
    STOP = 0xF6


_RATE_COMMANDS = {
    1: BerryMedCommand.RATE_1_HZ,
    50: BerryMedCommand.RATE_50_HZ,
    100: BerryMedCommand.RATE_100_HZ,
    200: BerryMedCommand.RATE_200_HZ,
}


def encode_berry_command(command: BerryMedCommand) -> bytes:
    """The bytes to write for `command`."""
    return bytes((BerryMedCommand(command),))


def encode_berry_rate(rate_hz: int) -> bytes:
    """The command that sets the BERRY frame rate to `rate_hz` (1, 50, 100 or 200)."""
    if rate_hz not in _RATE_COMMANDS:
        raise ValueError(f"BERRY frame rate {rate_hz} Hz not one of {SAMPLE_RATES_HZ}")
    return encode_berry_command(_RATE_COMMANDS[rate_hz])


def berry_checksum(head: bytes) -> int:
    """The checksum byte of a frame whose first 19 bytes are `head`."""
    return sum(head[:_CHECKED_LEN]) & 0xFF


def decode_berry_version(frame: bytes) -> tuple[int, str] | None:
    """(VERSION_SOFTWARE or VERSION_HARDWARE, text) if `frame` is a version reply, else None.

    A data frame whose packet index happens to be 'S' or 'H' has a status byte below 0x10 in
    byte 3, never the printable first character of a version string.
    """
    kind = frame[2]
    if kind not in (VERSION_SOFTWARE, VERSION_HARDWARE):
        return None
    raw = frame[3 : 3 + VERSION_TEXT_LEN]
    text = raw.rstrip(b"\x00")
    if not text or not all(0x20 <= byte <= 0x7E for byte in text):
        return None
    return kind, text.decode("ascii")


def _is_frame_sound(frame: bytes) -> bool:
    """True when the last byte of a whole BERRY frame is its checksum."""
    return berry_checksum(frame) == frame[-1]


def _new_framer() -> HeaderFramer:
    """A framer for FF AA frames of the fixed BERRY length."""
    return HeaderFramer(BERRY_HEADER, fixed_length(BERRY_FRAME_LEN), _is_frame_sound)


@dataclass(slots=True)
class BerryDecoder:
    """Stream decoder for BERRY frames; resynchronises on the FF AA header and the checksum."""

    stats: DecoderStats = field(default_factory=DecoderStats)
    software_version: str | None = None
    hardware_version: str | None = None
    _framer: HeaderFramer = field(default_factory=_new_framer)

    def feed(self, data: bytes) -> list[Reading]:
        """Readings of every data frame completed by `data`."""
        readings: list[Reading] = []
        for frame in self._framer.feed(data, self.stats):
            self._decode_frame(frame, readings)
        return readings

    def _decode_frame(self, frame: bytes, readings: list[Reading]) -> None:
        """Append the readings of one checked frame, or keep the version it replies."""
        version = decode_berry_version(frame)
        if version is not None:
            kind, text = version
            if kind == VERSION_SOFTWARE:
                self.software_version = text
            else:
                self.hardware_version = text
            return
        readings.extend(decode_berry_data(frame, self.stats))


_STATUS_QUALITY = (
    (STATUS_SENSOR_OFF, Quality.SENSOR_FAULT),
    (STATUS_NO_FINGER, Quality.FINGER_OUT),
    (STATUS_NO_PULSE, Quality.SEARCHING),
)


def decode_berry_data(frame: bytes, stats: DecoderStats) -> list[Reading]:
    """Readings of one checked BERRY data frame (see the module docstring for which)."""
    (_, _, status, spo2, _, pulse, _, rr_units, pi_tenths, _, _, _, battery, _, _) = _FRAME.unpack(
        frame
    )
    quality = quality_from_bits(status, _STATUS_QUALITY)
    usable = quality == Quality.OK
    values: list[tuple[Metric, float | None, Quality]] = [
        (Metric.SPO2, float(spo2) if usable and spo2 != SPO2_INVALID else None, quality),
        (Metric.PULSE, float(pulse) if usable and pulse != PR_INVALID else None, quality),
        (Metric.PI, pi_tenths / 10 if usable and pi_tenths != PI_INVALID else None, quality),
    ]
    if status & STATUS_PULSE_BEAT:
        rr_ms = float(rr_units * RR_UNIT_MS) if usable and rr_units != RR_INVALID else None
        values.append((Metric.RR_INTERVAL, rr_ms, quality))
    values.append((Metric.BATTERY, float(battery), Quality.OK))
    readings = []
    for metric, value, value_quality in values:
        reading = checked_reading(stats, metric, value, value_quality)
        if reading is not None:
            readings.append(reading)
    return readings


def _field(value: int | None, default: int, high: int, name: str) -> int:
    """A u8/u16 field value: `default` (the invalid marker) for None, else range-checked."""
    if value is None:
        return default
    if not 0 <= value <= high:
        raise ValueError(f"{name} {value} out of the BERRY field range 0-{high}")
    return value


def encode_berry_frame(
    spo2_percent: int | None,
    pulse_bpm: int | None,
    *,
    index: int = 0,
    spo2_realtime_percent: int | None = None,
    pulse_realtime_bpm: int | None = None,
    rr_interval_ms: int | None = None,
    pi_percent: float | None = None,
    pi_realtime_percent: float | None = None,
    pleth: int = 50,
    ir_adc: int = 0,
    battery_percent: int = 100,
    rate_hz: int = 100,
    sensor_off: bool = False,
    finger_out: bool = False,
    no_pulse: bool = False,
    beat: bool = False,
) -> bytes:
    """One BERRY data frame (None = the invalid marker, or for a real-time value: the average).

    The RR interval is rounded to 5 ms and PI to 0.1 %.
    """
    spo2 = _field(spo2_percent, SPO2_INVALID, 0xFF, "SpO2")
    pulse = _field(pulse_bpm, PR_INVALID, 0xFF, "pulse")
    spo2_rt = _field(spo2_realtime_percent, spo2, 0xFF, "SpO2")
    pulse_rt = _field(pulse_realtime_bpm, pulse, 0xFF, "pulse")
    rr_ms = None if rr_interval_ms is None else round(rr_interval_ms / RR_UNIT_MS)
    rr_units = _field(rr_ms, RR_INVALID, 0xFFFF, "RR interval")
    pi = _field(None if pi_percent is None else round(pi_percent * 10), PI_INVALID, 0xFF, "PI")
    pi_rt_tenths = None if pi_realtime_percent is None else round(pi_realtime_percent * 10)
    pi_rt = _field(pi_rt_tenths, pi, 0xFF, "PI")
    if not -(2**31) <= ir_adc < 2**31:
        raise ValueError(f"IR ADC sample {ir_adc} out of the int32 range")
    status = (
        (STATUS_SENSOR_OFF if sensor_off else 0)
        | (STATUS_NO_FINGER if finger_out else 0)
        | (STATUS_NO_PULSE if no_pulse else 0)
        | (STATUS_PULSE_BEAT if beat else 0)
    )
    head = _FRAME.pack(
        BERRY_HEADER,
        index & 0xFF,
        status,
        spo2,
        spo2_rt,
        pulse,
        pulse_rt,
        rr_units,
        pi,
        pi_rt,
        pleth & 0xFF,
        ir_adc,
        _field(battery_percent, 0, 0xFF, "battery"),
        _field(rate_hz, 0, 0xFF, "rate"),
        0,
    )[:_CHECKED_LEN]
    return head + bytes((berry_checksum(head),))


def encode_berry_version_reply(kind: int, text: str) -> bytes:
    """A version reply frame: `kind` VERSION_SOFTWARE or VERSION_HARDWARE, `text` <= 16 ASCII."""
    if kind not in (VERSION_SOFTWARE, VERSION_HARDWARE):
        raise ValueError(f"version kind {kind:#x} is neither 'S' nor 'H'")
    raw = text.encode("ascii")
    if len(raw) > VERSION_TEXT_LEN:
        raise ValueError(f"version text {text!r} longer than {VERSION_TEXT_LEN} bytes")
    head = BERRY_HEADER + bytes((kind,)) + raw.ljust(VERSION_TEXT_LEN, b"\x00")
    return head + bytes((berry_checksum(head),))


PROTOCOLS = (
    ProtocolSpec(
        name=PROTOCOL_NAME,
        title="BerryMed BERRY 20-byte frames (SpO2, pulse, PI, RR interval, battery)",
        transports=frozenset({"ble", "serial"}),
        new_decoder=BerryDecoder,
        metrics=frozenset(
            {Metric.SPO2, Metric.PULSE, Metric.PI, Metric.RR_INTERVAL, Metric.BATTERY}
        ),
        ble_service_uuids=(BLE_SERVICE_UUID,),
        ble_notify_uuids=(BLE_NOTIFY_UUID,),
        ble_write_uuid=BLE_WRITE_UUID,
        serial=SERIAL_SETTINGS,
        start_commands=(encode_berry_command(BerryMedCommand.SWITCH_TO_BERRY),),
        notes="Same UUIDs and serial settings as berrymed-bci: bind it by name.",
    ),
)
