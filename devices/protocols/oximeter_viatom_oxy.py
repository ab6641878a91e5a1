"""Viatom / Wellue O2Ring, Checkme O2 and sibling ring and wrist oximeters: the polled "Oxy" BLE
protocol.

References: Lepu's Android SDK viatomEcho/LepuBle (blepro/src/main/java/com/lepu/blepro/ble/cmd/
OxyBleCmd.java, OxyBleResponse.kt `RtParam` / `RtWave`; its demo app shows PI as the byte / 10),
Viatom's iOS SDK viatom-dev/VTO2Lib (`VTO2Parser parseO2RealObjectWithData`), MackeyStingray/o2r
(o2r/o2pkt.py; o2r/o2state.py, whose comments quote real 0x17 payloads), home-health-hub/
viatom-o2ring-ble (protocol.py); layout in docs PROTOCOLS.md section 4.4. The newer O2Ring-S
speaks another protocol ("OxyII", service E8FB0001-...) and is not covered.

Request, host -> ring (written in chunks of at most 20 bytes unless the MTU was raised):
  AA | cmd | cmd ^ FF | block u16 LE | length u16 LE | data | crc
Response, ring -> host (split over as many notifications as it takes):
  55 | status | status ^ FF | block u16 LE | length u16 LE | data | crc
  status 0x00 = OK. A response does not name the command it answers.
  crc    CRC-8/SMBUS (polynomial 0x07, init 0x00, not reflected) over every preceding byte
Responses resynchronise on 55 + the status check byte + a plausible length + the CRC.

0x17 read sensors (there is no push stream: poll every 1-2 s), 12 or 13 data bytes:
  0     SpO2 % (0xFF = no value)
  1-2   pulse rate u16 LE, bpm (0xFFFF = no value)
  3-6   step count u32 LE (not reported)
  7     battery %
  8     battery state: 0 discharging, 1 charging, 2 full (not reported)
  9     motion: largest 3-axis acceleration vector sum of the window, 0-255, no unit
  10    PI x 10, % (0 = not measured)
  11    bit 0 finger on ("lead on"); bits 4-7 lead-off countdown, s
  12    alarm states (not reported; absent on some firmware)
  Finger off: SpO2 FF, pulse FFFF, byte 11 bit 0 clear. Finger on with neither SpO2 nor pulse:
  the ring is still measuring (reported as SEARCHING).
0x1B real-time parameters and wave, request data 1 byte (0 = 125 Hz wave), 12 + n data bytes:
  0 SpO2, 1-2 pulse u16 LE, 3 battery %, 4 battery state, 5 PI x 10 (0 before firmware 1.4.1),
  6 lead state (0 off, 1 on, other = fault), 7-9 reserved, 10-11 wave length n u16 LE, 12.. wave
Other commands: 0x14 info (JSON reply), 0x15 ping, 0x16 set config (JSON data, values as strings,
e.g. {"SetTIME":"2025-03-06,22:20:56"}), 0x18 factory reset, 0x03 file open (data: name + NUL;
reply: file size u32 LE), 0x04 file read (block number in the block field), 0x05 file close.
Stored files are read by `oximeter_viatom_oxy_file`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum

from devices.protocols.framing import NOT_A_FRAME, HeaderFramer
from devices.protocols.reading import INVALIDATING, DecodeError, Metric, Quality, Reading
from devices.protocols.spec import DecoderStats, ProtocolSpec, checked_reading

PROTOCOL_NAME = "viatom-oxy"

BLE_SERVICE_UUID = "14839ac4-7d7e-415c-9a42-167340cf2339"
BLE_NOTIFY_UUID = "0734594a-a8e7-4b1a-a6b1-cd5243059a57"
BLE_WRITE_UUID = "8b00ace7-eb0b-49b0-bbe9-9aee0a26e1a3"
BLE_WRITE_CHUNK_LEN = 20  # ATT payload of the default 23-byte MTU

REQUEST_SYNC = 0xAA
RESPONSE_SYNC = 0x55
CHECK_XOR = 0xFF  # byte 2 = byte 1 ^ 0xFF in both directions
HEADER_LEN = 7  # sync, cmd/status, check, block u16, length u16
STATUS_OK = 0x00
CRC8_POLY = 0x07
# Longest live response expected: the info JSON (about 260 bytes) or a 0x1B wave reply. A header
# claiming more is taken for garbage so that a false sync cannot hold back the stream for long.
MAX_LIVE_PAYLOAD_LEN = 1024

SENSORS_PAYLOAD_LENS = (12, 13)  # 13 on O2Ring firmware (o2r); LepuBle needs at least 12
RT_WAVE_FIXED_LEN = 12
SPO2_NO_VALUE = 0xFF
PULSE_NO_VALUE = 0xFFFF
PI_NOT_MEASURED = 0
FINGER_ON_BIT = 0x01
LEAD_OFF, LEAD_ON = 0, 1
WAVE_RATE_125_HZ = 0  # 0x1B request data; 1 = 62.5 Hz
# The ring documents no motion threshold. In a REAL night export (tolnaiz/garmin-venu3-vs-viatom-
# o2ring, vendor CSV) the byte stays at 0-2 at rest and bursts reach 5-30; from 10 up a reading
# is flagged MOTION, so bursts are flagged and resting jitter is not. A project choice.
MOTION_FLAG_THRESHOLD = 10
TIME_FORMAT = "%Y-%m-%d,%H:%M:%S"  # SetTIME value and the info reply's CurTIME


class OxyCommand(IntEnum):
    """Request op-codes (byte 1 of a request)."""

    FILE_OPEN = 0x03
    FILE_READ = 0x04
    FILE_CLOSE = 0x05
    INFO = 0x14
    PING = 0x15
    SET_CONFIG = 0x16
    READ_SENSORS = 0x17
    FACTORY_RESET = 0x18
    RT_WAVE = 0x1B


def _crc8_table() -> tuple[int, ...]:
    """CRC-8 (polynomial 0x07, MSB first) of every single byte."""
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ CRC8_POLY) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return tuple(table)


_CRC8_TABLE = _crc8_table()


def crc8(data: bytes) -> int:
    """CRC-8/SMBUS (polynomial 0x07, init 0, not reflected, no final xor) of `data`."""
    crc = 0
    for byte in data:
        crc = _CRC8_TABLE[crc ^ byte]
    return crc


@dataclass(frozen=True, slots=True)
class OxyResponse:
    """One reassembled response: status (0 = OK), block number and data bytes."""

    status: int
    block: int
    payload: bytes


def _is_sound(frame: bytes) -> bool:
    """True when the last byte of a whole response is its CRC."""
    return crc8(frame[:-1]) == frame[-1]


@dataclass(slots=True)
class OxyFramer:
    """Reassembles responses from notification bytes; resynchronises byte by byte on garbage
    and bad CRCs (counted in `stats.skipped_bytes` and `stats.bad_frames`)."""

    stats: DecoderStats = field(default_factory=DecoderStats)
    max_payload_len: int = MAX_LIVE_PAYLOAD_LEN
    _framer: HeaderFramer = field(init=False)

    def __post_init__(self) -> None:
        self._framer = HeaderFramer(bytes((RESPONSE_SYNC,)), self._frame_len, _is_sound)

    def feed(self, data: bytes) -> list[OxyResponse]:
        """The responses completed by `data`; an incomplete one is kept for the next call."""
        return [
            OxyResponse(frame[1], int.from_bytes(frame[3:5], "little"), frame[HEADER_LEN:-1])
            for frame in self._framer.feed(data, self.stats)
        ]

    def _frame_len(self, buffer: bytearray, pos: int) -> int | None:
        """Length of the frame starting at `pos`, `NOT_A_FRAME`, or None while its header is cut."""
        available = len(buffer) - pos
        if available >= 3 and buffer[pos + 1] ^ buffer[pos + 2] != CHECK_XOR:
            return NOT_A_FRAME
        if available < HEADER_LEN:
            return None
        length = int.from_bytes(buffer[pos + 5 : pos + 7], "little")
        if length > self.max_payload_len:
            return NOT_A_FRAME
        return HEADER_LEN + length + 1


@dataclass(slots=True)
class OxyDecoder:
    """Stream decoder for the replies to the live poll (0x17 by default, or 0x1B).

    Feed it only the notifications that answer the poll: a reply does not say which command it
    answers, so replies of other shapes (acknowledgements, info JSON) give no readings, and a
    file download must go through its own `OxyFramer`.
    """

    live_command: OxyCommand = OxyCommand.READ_SENSORS
    stats: DecoderStats = field(default_factory=DecoderStats)
    _framer: OxyFramer = field(init=False)

    def __post_init__(self) -> None:
        self._framer = OxyFramer(self.stats)

    def feed(self, data: bytes) -> list[Reading]:
        """Readings (SpO2, pulse, PI, battery) of every live reply completed by `data`."""
        readings: list[Reading] = []
        for response in self._framer.feed(data):
            payload = response.payload
            if response.status != STATUS_OK:
                continue
            if self.live_command == OxyCommand.READ_SENSORS:
                if len(payload) in SENSORS_PAYLOAD_LENS:
                    readings += decode_sensors_payload(payload, self.stats)
            elif self.live_command == OxyCommand.RT_WAVE and _is_rt_wave_payload(payload):
                readings += decode_rt_wave_payload(payload, self.stats)
        return readings


def decode_sensors_payload(payload: bytes, stats: DecoderStats | None = None) -> list[Reading]:
    """Readings of one 0x17 reply's data bytes; `DecodeError` if it has the wrong length."""
    if len(payload) not in SENSORS_PAYLOAD_LENS:
        raise DecodeError(PROTOCOL_NAME, len(payload), payload, "0x17 data is not 12 or 13 bytes")
    quality = Quality.OK if payload[11] & FINGER_ON_BIT else Quality.FINGER_OUT
    if payload[9] >= MOTION_FLAG_THRESHOLD:
        quality |= Quality.MOTION
    return _live_readings(
        DecoderStats() if stats is None else stats,
        spo2_raw=payload[0],
        pulse_raw=int.from_bytes(payload[1:3], "little"),
        pi_raw=payload[10],
        battery_percent=payload[7],
        quality=quality,
    )


def _is_rt_wave_payload(payload: bytes) -> bool:
    """True when `payload` has the 0x1B shape: 12 fixed bytes and the wave they announce."""
    if len(payload) < RT_WAVE_FIXED_LEN:
        return False
    return len(payload) == RT_WAVE_FIXED_LEN + int.from_bytes(payload[10:12], "little")


def decode_rt_wave_payload(payload: bytes, stats: DecoderStats | None = None) -> list[Reading]:
    """Readings of one 0x1B reply's data bytes (the wave is not reported); `DecodeError` if the
    wave length does not match."""
    if not _is_rt_wave_payload(payload):
        raise DecodeError(PROTOCOL_NAME, 10, payload, "0x1B wave length does not match the data")
    lead_state = payload[6]
    quality = Quality.OK
    if lead_state == LEAD_OFF:
        quality = Quality.FINGER_OUT
    elif lead_state != LEAD_ON:
        quality = Quality.SENSOR_FAULT
    return _live_readings(
        DecoderStats() if stats is None else stats,
        spo2_raw=payload[0],
        pulse_raw=int.from_bytes(payload[1:3], "little"),
        pi_raw=payload[5],
        battery_percent=payload[3],
        quality=quality,
    )


def _live_readings(
    stats: DecoderStats,
    *,
    spo2_raw: int,
    pulse_raw: int,
    pi_raw: int,
    battery_percent: int,
    quality: Quality,
) -> list[Reading]:
    """SpO2, pulse and PI (missing when flagged or not measured), then the battery level."""
    spo2_missing = spo2_raw in (0, SPO2_NO_VALUE)
    if not quality & INVALIDATING and spo2_missing and pulse_raw in (0, PULSE_NO_VALUE):
        quality |= Quality.SEARCHING
    usable = not quality & INVALIDATING
    values = (
        (Metric.SPO2, float(spo2_raw) if usable and spo2_raw != SPO2_NO_VALUE else None),
        (Metric.PULSE, float(pulse_raw) if usable and pulse_raw != PULSE_NO_VALUE else None),
        (Metric.PI, pi_raw / 10 if usable and pi_raw != PI_NOT_MEASURED else None),
    )
    readings = [checked_reading(stats, metric, value, quality) for metric, value in values]
    readings.append(checked_reading(stats, Metric.BATTERY, float(battery_percent)))
    return [reading for reading in readings if reading is not None]


def _frame(sync: int, code: int, block: int, payload: bytes) -> bytes:
    """A request or response frame with its check byte, header fields and CRC."""
    if not 0 <= code <= 0xFF or not 0 <= block <= 0xFFFF or len(payload) > 0xFFFF:
        raise ValueError(f"code {code}, block {block} or {len(payload)} data bytes out of range")
    body = bytes((sync, code, code ^ CHECK_XOR))
    body += block.to_bytes(2, "little") + len(payload).to_bytes(2, "little") + bytes(payload)
    return body + bytes((crc8(body),))


def encode_oxy_command(cmd: int, payload: bytes = b"", *, block: int = 0) -> bytes:
    """A host -> ring request frame for `cmd` (see `OxyCommand`)."""
    return _frame(REQUEST_SYNC, cmd, block, payload)


def encode_oxy_response(payload: bytes = b"", *, status: int = STATUS_OK, block: int = 0) -> bytes:
    """A ring -> host response frame, as the ring sends it (before notification splitting)."""
    return _frame(RESPONSE_SYNC, status, block, payload)


SENSORS_POLL = encode_oxy_command(OxyCommand.READ_SENSORS)
RT_WAVE_POLL = encode_oxy_command(OxyCommand.RT_WAVE, bytes((WAVE_RATE_125_HZ,)))


def encode_file_open(name: str) -> bytes:
    """The 0x03 request opening the stored file `name` (e.g. "20250306222056")."""
    return encode_oxy_command(OxyCommand.FILE_OPEN, name.encode("ascii") + b"\x00")


def encode_file_read(block: int) -> bytes:
    """The 0x04 request for block number `block` of the open file."""
    return encode_oxy_command(OxyCommand.FILE_READ, block=block)


def encode_file_close() -> bytes:
    """The 0x05 request closing the open file."""
    return encode_oxy_command(OxyCommand.FILE_CLOSE)


def encode_set_config(settings: Mapping[str, str | int]) -> bytes:
    """The 0x16 request writing `settings` (e.g. {"SetMotor": 80}); values are sent as strings."""
    text = json.dumps({key: str(value) for key, value in settings.items()}, separators=(",", ":"))
    return encode_oxy_command(OxyCommand.SET_CONFIG, text.encode("ascii"))


def encode_set_time(wall_clock: datetime) -> bytes:
    """The 0x16 request setting the ring's clock to `wall_clock` (the wall time it should show,
    which also stamps its stored files)."""
    return encode_set_config({"SetTIME": wall_clock.strftime(TIME_FORMAT)})


def encode_sensors_payload(
    spo2_percent: int | None,
    pulse_bpm: int | None,
    *,
    pi_percent: float | None = None,
    battery_percent: int = 100,
    charging: int = 0,
    motion: int = 0,
    finger_on: bool = True,
) -> bytes:
    """The 13 data bytes of a 0x17 reply (None = the no-value marker; PI in 0.1 % steps)."""
    spo2 = SPO2_NO_VALUE if spo2_percent is None else spo2_percent
    pulse = PULSE_NO_VALUE if pulse_bpm is None else pulse_bpm
    pi_raw = PI_NOT_MEASURED if pi_percent is None else round(pi_percent * 10)
    if not all(0 <= v <= 0xFF for v in (spo2, pi_raw, battery_percent, charging, motion)):
        raise ValueError("a 0x17 field is out of its byte range")
    if not 0 <= pulse <= 0xFFFF:
        raise ValueError(f"pulse {pulse} out of the u16 range")
    state = FINGER_ON_BIT if finger_on else 0
    return (
        bytes((spo2,))
        + pulse.to_bytes(2, "little")
        + bytes(4)  # step count
        + bytes((battery_percent, charging, motion, pi_raw, state, 0))
    )


def split_for_ble_write(packet: bytes, chunk_len: int = BLE_WRITE_CHUNK_LEN) -> list[bytes]:
    """`packet` cut into the pieces written one by one to the write characteristic."""
    return [packet[i : i + chunk_len] for i in range(0, len(packet), chunk_len)]


PROTOCOLS = (
    ProtocolSpec(
        name=PROTOCOL_NAME,
        title="Viatom / Wellue O2Ring, Checkme O2 and sibling oximeters (polled 'Oxy' protocol)",
        transports=frozenset({"ble"}),
        new_decoder=OxyDecoder,
        metrics=frozenset({Metric.SPO2, Metric.PULSE, Metric.PI, Metric.BATTERY}),
        ble_service_uuids=(BLE_SERVICE_UUID,),
        ble_notify_uuids=(BLE_NOTIFY_UUID,),
        ble_write_uuid=BLE_WRITE_UUID,
        name_patterns=("O2Ring", "Checkme O2", "CMRing", "SleepU", "KidsO2"),
        start_commands=(SENSORS_POLL,),
        keepalive_command=SENSORS_POLL,
        keepalive_interval_s=2.0,
        notes=(
            "No push stream: the 0x17 poll is the keep-alive. Writes longer than 20 bytes must "
            "be split (split_for_ble_write). The O2Ring-S ('O2Ring S8-AW', OxyII service "
            "e8fb0001-...) speaks another protocol."
        ),
    ),
)
