"""Lepu / Viatom PC-60FW family fingertip oximeters (PC-60F, PC-60FW, PC-60NW, OxySmart and other
Lepu fingertips) over the Nordic UART Service.

Reference: Lepu's Android SDK viatomEcho/LepuBle (blepro/src/main/java/com/lepu/blepro/ble/cmd/
PC60FwBleResponse.kt, Pc60FwBleCmd.java, Sp20BleResponse.kt for the check-probe bit;
ble/Pc60FwBleInterface.kt), sza2/viatom_pc60fw README.md, andradebyte/oximeter-wellue-pc60fw-web
PROTOCOL.md; layout in docs PROTOCOLS.md section 4.3.

Frame, both directions:
  AA 55 | token | length | type | payload ... | crc
  token   0x0F pulse-oximeter messages, 0xF0 device ("equipment public information") messages
  length  number of bytes after the length byte: type + payload + crc, so at least 2
  crc     CRC-8/MAXIM (reflected polynomial 0x8C, init 0x00) over every byte from AA up to the
          last payload byte; the CRC over a whole good frame, crc byte included, is 0
Token 0x0F, type 0x01, parameters (about 1 Hz), 6-byte payload:
  0    SpO2 % (0 = no value)
  1-2  pulse rate u16 LE, bpm (0 = no value)
  3    PI x 10, %
  4    status: bit 1 probe off (no finger), bit 2 pulse searching, bit 3 check probe
  5    bits 6-7 battery level 0-3
Token 0x0F, type 0x02: pleth, 5 samples (bits 0-6 value, bit 7 beat marker); recognised, no readings
Token 0x0F, type 0x21: working status (mode, step, para1, para2); recognised, no readings
Token 0xF0, type 0x03: battery level 0-3, reported as a percentage (a level is a third)
Token 0xF0, types 0x01 device info, 0x02 serial number: recognised, no readings

The type byte means different things under the two tokens (0x01 is the parameters under 0x0F
but the device info under 0xF0; 0x03 is the battery under 0xF0 but a device-info reply under
0x0F), so a message is identified by token and type together.

Host -> device commands use the same frame with token 0x0F: 0x84 enable parameter push and
0x85 enable wave push (one byte, 1 = on), 0x80 heartbeat (one byte, interval in seconds).
PC-60FW units push as soon as notifications are on; LepuBle sends the enable commands and a
heartbeat every 5 s only to PC-60NW units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from devices.protocols.framing import NOT_A_FRAME, HeaderFramer
from devices.protocols.reading import INVALIDATING, Metric, Quality, Reading
from devices.protocols.spec import DecoderStats, ProtocolSpec, checked_reading, quality_from_bits

PROTOCOL_NAME = "lepu-pc60fw"

HEADER = b"\xaa\x55"
HEADER_LEN = 4  # AA 55 token length
MIN_LENGTH = 2  # type + crc
CRC8_MAXIM_POLY = 0x8C  # 0x31 reflected

BLE_SERVICE_UUID = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"  # Nordic UART Service
BLE_WRITE_UUID = "6e400002-b5a3-f393-e0a9-e50e24dcca9e"
BLE_NOTIFY_UUID = "6e400003-b5a3-f393-e0a9-e50e24dcca9e"


class Token(IntEnum):
    """Message class, byte 2 of a frame."""

    OXIMETER = 0x0F
    DEVICE = 0xF0


_TOKENS = frozenset(int(token) for token in Token)


class OximeterMessage(IntEnum):
    """Types under token 0x0F, device to host."""

    HEARTBEAT_REPLY = 0x00
    PARAMS = 0x01
    WAVE = 0x02
    INFO_REPLY = 0x03
    WORKING_STATUS = 0x21


class DeviceMessage(IntEnum):
    """Types under token 0xF0, device to host."""

    INFO = 0x01
    SERIAL_NUMBER = 0x02
    BATTERY = 0x03


class Command(IntEnum):
    """Types under token 0x0F, host to device."""

    HEARTBEAT = 0x80
    ENABLE_PARAMS = 0x84
    ENABLE_WAVE = 0x85


PARAMS_PAYLOAD_LEN = 6
WAVE_SAMPLES = 5
STATUS_PROBE_OFF = 0x02
STATUS_SEARCHING = 0x04
STATUS_CHECK_PROBE = 0x08
_STATUS_QUALITY = (
    (STATUS_PROBE_OFF, Quality.FINGER_OUT),
    (STATUS_SEARCHING, Quality.SEARCHING),
    (STATUS_CHECK_PROBE, Quality.SENSOR_FAULT),
)
BATTERY_SHIFT = 6  # params byte 5, bits 6-7
BATTERY_LEVEL_MAX = 3
NO_VALUE = 0  # SpO2 and pulse rate read 0 while the device has no value
PI_SCALE = 10
WAVE_VALUE_MASK = 0x7F
WAVE_BEAT_BIT = 0x80
HEARTBEAT_INTERVAL_S = 5


def _crc8_table() -> tuple[int, ...]:
    """The 256-entry table of the reflected CRC-8/MAXIM."""
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ CRC8_MAXIM_POLY if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC8_TABLE = _crc8_table()


def crc8_maxim(data: bytes | bytearray | memoryview) -> int:
    """CRC-8/MAXIM (Dallas 1-Wire) of `data`; 0 over a whole frame whose crc byte is right."""
    crc = 0
    for byte in data:
        crc = _CRC8_TABLE[crc ^ byte]
    return crc


def decode_params(stats: DecoderStats, payload: bytes) -> list[Reading]:
    """SpO2, pulse and PI readings of a parameter payload (at least 6 bytes).

    Probe off, searching and check-probe make every value missing, with the flags set; so does
    an SpO2 of 0 for the PI, since the device has no pulse lock then.
    """
    spo2_raw = payload[0]
    pulse_raw = int.from_bytes(payload[1:3], "little")
    status = payload[4]
    quality = quality_from_bits(status, _STATUS_QUALITY)
    usable = not quality & INVALIDATING
    spo2 = float(spo2_raw) if usable and spo2_raw != NO_VALUE else None
    pulse = float(pulse_raw) if usable and pulse_raw != NO_VALUE else None
    pi = payload[3] / PI_SCALE if spo2 is not None else None
    readings = (
        checked_reading(stats, Metric.SPO2, spo2, quality),
        checked_reading(stats, Metric.PULSE, pulse, quality),
        checked_reading(stats, Metric.PI, pi, quality),
    )
    return [reading for reading in readings if reading is not None]


def decode_battery(stats: DecoderStats, payload: bytes) -> list[Reading]:
    """The battery reading of a battery payload: level 0-3 as a percentage."""
    percent = float(round(payload[0] * 100 / BATTERY_LEVEL_MAX))
    reading = checked_reading(stats, Metric.BATTERY, percent)
    return [reading] if reading is not None else []


# Least payload length per message that carries readings; every other message is only counted.
_MIN_PAYLOAD: dict[tuple[int, int], int] = {
    (Token.OXIMETER, OximeterMessage.PARAMS): PARAMS_PAYLOAD_LEN,
    (Token.DEVICE, DeviceMessage.BATTERY): 1,
}


def _decode_message(stats: DecoderStats, frame: bytes) -> list[Reading]:
    """Readings of one whole, CRC-checked frame whose payload is long enough."""
    key = (frame[2], frame[4])
    payload = frame[5:-1]
    if key == (Token.OXIMETER, OximeterMessage.PARAMS):
        return decode_params(stats, payload)
    if key == (Token.DEVICE, DeviceMessage.BATTERY):
        return decode_battery(stats, payload)
    return []


def _frame_len(buffer: bytearray, start: int) -> int | None:
    """Length of the frame at `start` from its token and length bytes (see `HeaderFramer`)."""
    if len(buffer) - start < HEADER_LEN:
        return None
    token, length = buffer[start + 2], buffer[start + 3]
    if token not in _TOKENS or length < MIN_LENGTH:
        return NOT_A_FRAME
    return HEADER_LEN + length


def _is_sound(frame: bytes) -> bool:
    """True when the CRC holds and the payload is long enough for its message."""
    if crc8_maxim(frame) != 0:
        return False
    least = _MIN_PAYLOAD.get((frame[2], frame[4]), 0)
    return len(frame) - HEADER_LEN - MIN_LENGTH >= least


def _new_framer() -> HeaderFramer:
    """A framer for `AA 55` frames."""
    return HeaderFramer(HEADER, _frame_len, _is_sound)


@dataclass(slots=True)
class Pc60fwDecoder:
    """Stream decoder for `AA 55` frames; resynchronises byte by byte on garbage or a bad CRC."""

    stats: DecoderStats = field(default_factory=DecoderStats)
    _framer: HeaderFramer = field(default_factory=_new_framer)

    def feed(self, data: bytes) -> list[Reading]:
        """Readings of every frame completed by `data`; partial frames wait for the next call."""
        readings: list[Reading] = []
        for frame in self._framer.feed(data, self.stats):
            readings.extend(_decode_message(self.stats, frame))
        return readings


def encode_frame(token: int, message_type: int, payload: bytes = b"") -> bytes:
    """One `AA 55` frame with its length and CRC, either direction."""
    if len(payload) + MIN_LENGTH > 0xFF:
        raise ValueError(f"payload of {len(payload)} bytes does not fit the length byte")
    body = HEADER + bytes((token, len(payload) + MIN_LENGTH, message_type)) + payload
    return body + bytes((crc8_maxim(body),))


def encode_params_frame(
    spo2_percent: int | None,
    pulse_bpm: int | None,
    pi_percent: float | None,
    *,
    finger_out: bool = False,
    searching: bool = False,
    check_probe: bool = False,
    battery_level: int = BATTERY_LEVEL_MAX,
) -> bytes:
    """A parameter frame as the oximeter pushes it (None = the device's 0 for "no value")."""
    spo2 = NO_VALUE if spo2_percent is None else spo2_percent
    pulse = NO_VALUE if pulse_bpm is None else pulse_bpm
    pi = 0 if pi_percent is None else round(pi_percent * PI_SCALE)
    if not (0 <= spo2 <= 0xFF and 0 <= pulse <= 0xFFFF and 0 <= pi <= 0xFF):
        raise ValueError(f"SpO2 {spo2} / pulse {pulse} / PI x10 {pi} out of the field ranges")
    if not 0 <= battery_level <= BATTERY_LEVEL_MAX:
        raise ValueError(f"battery level {battery_level} is not 0-{BATTERY_LEVEL_MAX}")
    status = (
        (STATUS_PROBE_OFF if finger_out else 0)
        | (STATUS_SEARCHING if searching else 0)
        | (STATUS_CHECK_PROBE if check_probe else 0)
    )
    payload = bytes((spo2,)) + pulse.to_bytes(2, "little")
    payload += bytes((pi, status, battery_level << BATTERY_SHIFT))
    return encode_frame(Token.OXIMETER, OximeterMessage.PARAMS, payload)


def encode_wave_frame(samples: Sequence[int], beats: Sequence[bool] = ()) -> bytes:
    """A pleth frame: five samples 0-127, each optionally carrying the beat marker."""
    if len(samples) != WAVE_SAMPLES or any(not 0 <= s <= WAVE_VALUE_MASK for s in samples):
        raise ValueError(f"a wave frame holds {WAVE_SAMPLES} samples of 0-127, got {samples}")
    if len(beats) > WAVE_SAMPLES:
        raise ValueError(f"{len(beats)} beat markers for {WAVE_SAMPLES} samples")
    marks = list(beats) + [False] * (WAVE_SAMPLES - len(beats))
    payload = bytes(
        s | (WAVE_BEAT_BIT if beat else 0) for s, beat in zip(samples, marks, strict=True)
    )
    return encode_frame(Token.OXIMETER, OximeterMessage.WAVE, payload)


def encode_battery_frame(level: int) -> bytes:
    """A battery frame with the level 0-3."""
    if not 0 <= level <= BATTERY_LEVEL_MAX:
        raise ValueError(f"battery level {level} is not 0-{BATTERY_LEVEL_MAX}")
    return encode_frame(Token.DEVICE, DeviceMessage.BATTERY, bytes((level,)))


def encode_enable_command(command: Command, enable: bool = True) -> bytes:
    """Switch the parameter push (Command.ENABLE_PARAMS) or wave push (ENABLE_WAVE) on or off."""
    if command not in (Command.ENABLE_PARAMS, Command.ENABLE_WAVE):
        raise ValueError(f"{command!r} is not an enable command")
    return encode_frame(Token.OXIMETER, command, bytes((1 if enable else 0,)))


def encode_heartbeat(interval_s: int = HEARTBEAT_INTERVAL_S) -> bytes:
    """The heartbeat a PC-60NW expects, announcing the next one in `interval_s` seconds."""
    if not 0 <= interval_s <= 0xFF:
        raise ValueError(f"heartbeat interval {interval_s} s does not fit one byte")
    return encode_frame(Token.OXIMETER, Command.HEARTBEAT, bytes((interval_s,)))


ENABLE_PARAMS_COMMAND = encode_enable_command(Command.ENABLE_PARAMS)  # aa 55 0f 03 84 01 e0
ENABLE_WAVE_COMMAND = encode_enable_command(Command.ENABLE_WAVE)  # aa 55 0f 03 85 01 24


PROTOCOLS = (
    ProtocolSpec(
        name=PROTOCOL_NAME,
        title="Lepu/Viatom PC-60FW family (AA 55 frames over the Nordic UART Service)",
        transports=frozenset({"ble"}),
        new_decoder=Pc60fwDecoder,
        metrics=frozenset({Metric.SPO2, Metric.PULSE, Metric.PI, Metric.BATTERY}),
        ble_service_uuids=(BLE_SERVICE_UUID,),
        ble_notify_uuids=(BLE_NOTIFY_UUID,),
        ble_write_uuid=BLE_WRITE_UUID,
        name_patterns=("PC-60F", "OxySmart"),
        start_commands=(ENABLE_PARAMS_COMMAND,),
        notes=(
            "PC-60FW units push parameters (1 Hz) and pleth once notifications are on. LepuBle "
            "sends the parameter enable, and encode_heartbeat() every 5 s, to PC-60NW units "
            "only. Write without response."
        ),
    ),
)
