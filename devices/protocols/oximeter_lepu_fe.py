"""FE-framed fingertip oximeters: Lepu VTM20F, Wellue fingertip (Amazon B087Q724QM), probably
Yuwell YX110; BLE service 0xFFE0, notify 0xFFE4.

Reference: Lepu's Android SDK viatomEcho/LepuBle (blepro/src/main/java/com/lepu/blepro/ble/
Vtm20fBleManager.kt for the UUIDs, cmd/Vtm20fBleResponse.kt and Vtm20fBleInterface.kt for the
layout); a real frame quoted in jaggzh/pulseox-bluetooth pulseox-bluetooth.py; layout in docs
PROTOCOLS.md section 4.5.

Frame: FE | length | type | payload ... | checksum
  length    of the whole frame, FE and checksum included
  checksum  sum of the bytes from `length` to the last payload byte, modulo 256 (FE excluded).
            The rule was inferred from the one real frame on record, which it matches; LepuBle
            checks none.
Type 0x55, parameters, length 10:
  PR u16 big-endian, bpm (0x1FF = no value); SpO2 % (0x7F = no value); PI u16 big-endian / 1000,
  %; sequence number
Type 0x56, pleth, length 8:
  wave sample; flags: bit 0 pulse sound, bit 1 sensor off, bit 2 motion, bit 3 low perfusion;
  bargraph 0-15; sequence number
Only these two types are accepted (with their fixed lengths), so the weak checksum guards a
stream together with the header.

The parameter frame has no status bits: the flags of the latest pleth frame (about 50 a second)
qualify it. On a fingertip "sensor off" means no finger. jaggzh reads the PR low byte alone and
sees 255 with SpO2 127 when the finger is out, so a PR of 0x0FF is taken as "no value" as well.
The device streams as soon as FFE4 notifications are on; it needs no command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from devices.protocols.framing import NOT_A_FRAME, HeaderFramer
from devices.protocols.reading import INVALIDATING, Metric, Quality, Reading
from devices.protocols.spec import DecoderStats, ProtocolSpec, checked_reading, quality_from_bits

PROTOCOL_NAME = "lepu-fe"

HEAD = 0xFE
HEAD_LEN = 3  # FE length type

BLE_SERVICE_UUID = "0000ffe0-0000-1000-8000-00805f9b34fb"
BLE_NOTIFY_UUID = "0000ffe4-0000-1000-8000-00805f9b34fb"
BLE_WRITE_UUID = "0000fff2-0000-1000-8000-00805f9b34fb"


class FrameType(IntEnum):
    """Byte 2 of a frame."""

    PARAMS = 0x55
    WAVE = 0x56


FRAME_LENGTHS: dict[int, int] = {FrameType.PARAMS: 10, FrameType.WAVE: 8}

SPO2_NO_VALUE = 0x7F
PULSE_NO_VALUES = frozenset({0x1FF, 0x0FF})  # 0x1FF per LepuBle, 0x0FF per jaggzh
PI_SCALE = 1000
FLAG_PULSE_SOUND = 0x01
FLAG_SENSOR_OFF = 0x02
FLAG_MOTION = 0x04
FLAG_LOW_PERFUSION = 0x08
BARGRAPH_MAX = 15


def checksum(data: bytes | bytearray) -> int:
    """Checksum of a frame without its last byte: the sum of all bytes after FE, modulo 256."""
    return sum(data[1:]) & 0xFF


_WAVE_QUALITY = (
    (FLAG_SENSOR_OFF, Quality.FINGER_OUT),
    (FLAG_MOTION, Quality.MOTION),
    (FLAG_LOW_PERFUSION, Quality.LOW_PERFUSION),
)


def decode_wave_quality(flags: int) -> Quality:
    """Quality flags carried by the flags byte of a pleth frame."""
    return quality_from_bits(flags, _WAVE_QUALITY)


def decode_params(stats: DecoderStats, payload: bytes, quality: Quality) -> list[Reading]:
    """SpO2, pulse and PI readings of a 6-byte parameter payload, qualified by `quality`.

    With no finger, or with the SpO2 "no value" marker, every value is missing.
    """
    pulse_raw = int.from_bytes(payload[0:2], "big")
    spo2_raw = payload[2]
    usable = not quality & INVALIDATING
    spo2 = float(spo2_raw) if usable and spo2_raw != SPO2_NO_VALUE else None
    pulse = float(pulse_raw) if usable and pulse_raw not in PULSE_NO_VALUES else None
    pi = int.from_bytes(payload[3:5], "big") / PI_SCALE if spo2 is not None else None
    readings = (
        checked_reading(stats, Metric.SPO2, spo2, quality),
        checked_reading(stats, Metric.PULSE, pulse, quality),
        checked_reading(stats, Metric.PI, pi, quality),
    )
    return [reading for reading in readings if reading is not None]


def _frame_len(buffer: bytearray, start: int) -> int | None:
    """Length of the frame at `start`: its length byte, if it matches its type."""
    if len(buffer) - start < HEAD_LEN:
        return None
    length, frame_type = buffer[start + 1], buffer[start + 2]
    return length if FRAME_LENGTHS.get(frame_type) == length else NOT_A_FRAME


def _is_sound(frame: bytes) -> bool:
    """True when the last byte of a whole frame is its checksum."""
    return checksum(frame[:-1]) == frame[-1]


def _new_framer() -> HeaderFramer:
    """A framer for FE frames."""
    return HeaderFramer(bytes((HEAD,)), _frame_len, _is_sound)


@dataclass(slots=True)
class FeDecoder:
    """Stream decoder for FE frames; resynchronises byte by byte on garbage or a bad checksum."""

    stats: DecoderStats = field(default_factory=DecoderStats)
    _framer: HeaderFramer = field(default_factory=_new_framer)
    _quality: Quality = Quality.OK  # flags of the latest pleth frame

    def feed(self, data: bytes) -> list[Reading]:
        """Readings of every parameter frame completed by `data`; partial frames wait."""
        readings: list[Reading] = []
        for frame in self._framer.feed(data, self.stats):
            readings.extend(self._decode_frame(frame))
        return readings

    def _decode_frame(self, frame: bytes) -> list[Reading]:
        """Readings of one checked frame; a pleth frame only updates the quality flags."""
        payload = frame[HEAD_LEN:-1]
        if frame[2] == FrameType.WAVE:
            self._quality = decode_wave_quality(payload[1])
            return []
        return decode_params(self.stats, payload, self._quality)


def encode_frame(frame_type: FrameType, payload: bytes) -> bytes:
    """One FE frame with its length and checksum."""
    body = bytes((HEAD, len(payload) + HEAD_LEN + 1, frame_type)) + payload
    return body + bytes((checksum(body),))


def encode_params_frame(
    spo2_percent: int | None,
    pulse_bpm: int | None,
    pi_percent: float | None = None,
    *,
    seq: int = 0,
) -> bytes:
    """A parameter frame as the oximeter notifies it (None = the "no value" markers)."""
    spo2 = SPO2_NO_VALUE if spo2_percent is None else spo2_percent
    pulse = max(PULSE_NO_VALUES) if pulse_bpm is None else pulse_bpm
    pi = 0 if pi_percent is None else round(pi_percent * PI_SCALE)
    if not (0 <= spo2 <= 0xFF and 0 <= pulse <= 0xFFFF and 0 <= pi <= 0xFFFF):
        raise ValueError(f"SpO2 {spo2} / pulse {pulse} / PI x1000 {pi} out of the field ranges")
    payload = pulse.to_bytes(2, "big") + bytes((spo2,)) + pi.to_bytes(2, "big")
    return encode_frame(FrameType.PARAMS, payload + bytes((seq & 0xFF,)))


def encode_wave_frame(
    wave: int,
    *,
    sensor_off: bool = False,
    motion: bool = False,
    low_perfusion: bool = False,
    pulse_sound: bool = False,
    bargraph: int = 5,
    seq: int = 0,
) -> bytes:
    """A pleth frame with its status flags."""
    if not 0 <= wave <= 0xFF or not 0 <= bargraph <= BARGRAPH_MAX:
        raise ValueError(f"wave {wave} / bargraph {bargraph} out of the field ranges")
    flags = (
        (FLAG_PULSE_SOUND if pulse_sound else 0)
        | (FLAG_SENSOR_OFF if sensor_off else 0)
        | (FLAG_MOTION if motion else 0)
        | (FLAG_LOW_PERFUSION if low_perfusion else 0)
    )
    return encode_frame(FrameType.WAVE, bytes((wave, flags, bargraph, seq & 0xFF)))


PROTOCOLS = (
    ProtocolSpec(
        name=PROTOCOL_NAME,
        title="FE-framed fingertips (Lepu VTM20F, Wellue fingertip; BLE FFE0/FFE4)",
        transports=frozenset({"ble"}),
        new_decoder=FeDecoder,
        metrics=frozenset({Metric.SPO2, Metric.PULSE, Metric.PI}),
        ble_service_uuids=(BLE_SERVICE_UUID,),
        ble_notify_uuids=(BLE_NOTIFY_UUID,),
        ble_write_uuid=BLE_WRITE_UUID,
        name_patterns=("VTM 20F",),
        notes=(
            "Service FFE0 is shared with other devices (JKS50F notifies on FFE1, AOJ-20A "
            "thermometers use FFE1/FFE2); this protocol notifies on FFE4. Push only."
        ),
    ),
)
