"""Nonin 3230 / 3150 proprietary BLE oximetry notification ("data format 19").

References (layout in docs PROTOCOLS.md section 4.8): andreasdri/nonin-3230-ble `index.js`; the
status bits as Mauricio Villarroel's `ble_nco_spec_decoder.swift` names them after Nonin document
113142 "Nonin Continuous Oximetry Characteristic". The 3230 also offers the standard PLX service.

Service 46a970e0-0d5f-11e2-8b5e-0002a5d5c51b, notification 0aad7ea0-0d60-11e2-8e3c-0002a5d5c51b,
one 10-byte frame a second, big-endian:
  length (10) | STATUS | battery V x 10 | PAI u16 x 0.01 % | counter u16 | SpO2 | PR u16
  STATUS: b1 weak signal, b2 SmartPoint, b3 searching, b4 sensor connected (on the finger),
          b5 low battery, b6 encrypted link
SpO2 127 and PR 511 are Nonin's missing markers. The public sources name no PAI marker;
0xFFFF and 0x7FFF (the all-ones u16 / s16) are read as missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntFlag

from devices.protocols.oximeter_nonin import (
    HR_MISSING,
    encode_spo2_byte,
    oximetry_readings,
    spo2_and_pulse_values,
    status_quality,
)
from devices.protocols.reading import DecodeError, Metric, Quality, Reading
from devices.protocols.spec import DecoderStats, ProtocolSpec

PROTOCOL_NAME = "nonin-ble"
SERVICE_UUID = "46a970e0-0d5f-11e2-8b5e-0002a5d5c51b"
NOTIFY_UUID = "0aad7ea0-0d60-11e2-8e3c-0002a5d5c51b"
FRAME_LEN = 10
PAI_MISSING = frozenset({0x7FFF, 0xFFFF})
PAI_SCALE = 0.01  # percent per count
BATTERY_SCALE_V = 0.1


class BleStatus(IntFlag):
    """STATUS byte of the oximetry frame."""

    WEAK_SIGNAL = 0x02
    SMARTPOINT = 0x04
    SEARCHING = 0x08
    SENSOR_CONNECTED = 0x10
    LOW_BATTERY = 0x20
    ENCRYPTED = 0x40


_QUALITY = (
    (BleStatus.WEAK_SIGNAL, Quality.LOW_SIGNAL),
    (BleStatus.SEARCHING, Quality.SEARCHING),
)


def split_frames(data: bytes) -> list[bytes]:
    """The length-prefixed frames of one notification; DecodeError if they do not tile it."""
    if not data:
        raise DecodeError(PROTOCOL_NAME, 0, data, "empty notification")
    frames = []
    offset = 0
    while offset < len(data):
        length = data[offset]
        if length < FRAME_LEN:
            raise DecodeError(PROTOCOL_NAME, offset, data, f"length byte {length} below 10")
        if offset + length > len(data):
            raise DecodeError(PROTOCOL_NAME, offset, data, f"frame of {length} bytes truncated")
        frames.append(data[offset : offset + length])
        offset += length
    return frames


@dataclass(slots=True)
class NoninBleDecoder:
    """Decodes one oximetry notification (one frame; several if the stack merges them)."""

    stats: DecoderStats = field(default_factory=DecoderStats)

    def feed(self, data: bytes) -> list[Reading]:
        """SpO2, pulse and PI (Nonin's pulse amplitude index) readings of one notification."""
        readings: list[Reading] = []
        for frame in split_frames(bytes(data)):
            self.stats.frames += 1
            status = frame[1]
            pai = int.from_bytes(frame[3:5], "big")
            quality = status_quality(status, _QUALITY)
            if not status & BleStatus.SENSOR_CONNECTED:
                quality |= Quality.FINGER_OUT
            values = spo2_and_pulse_values(frame[7], int.from_bytes(frame[8:10], "big"))
            values.append((Metric.PI, None if pai in PAI_MISSING else round(pai * PAI_SCALE, 2)))
            readings += oximetry_readings(self.stats, values, quality)
        return readings


def encode_frame(
    spo2_percent: int | None,
    pulse_bpm: int | None,
    pi_percent: float | None,
    *,
    status: BleStatus = BleStatus.SENSOR_CONNECTED | BleStatus.SMARTPOINT | BleStatus.ENCRYPTED,
    counter: int = 0,
    battery_v: float = 3.0,
) -> bytes:
    """One 10-byte oximetry notification (None = the missing marker)."""
    pulse = HR_MISSING if pulse_bpm is None else pulse_bpm
    pai = 0xFFFF if pi_percent is None else round(pi_percent / PAI_SCALE)
    if not 0 <= pai <= 0xFFFF or not 0 <= pulse <= 0xFFFF:
        raise ValueError(f"PI {pi_percent} / pulse {pulse} out of the frame's ranges")
    return (
        bytes((FRAME_LEN, status, round(battery_v / BATTERY_SCALE_V) & 0xFF))
        + pai.to_bytes(2, "big")
        + (counter & 0xFFFF).to_bytes(2, "big")
        + bytes((encode_spo2_byte(spo2_percent),))
        + pulse.to_bytes(2, "big")
    )


PROTOCOLS = (
    ProtocolSpec(
        name=PROTOCOL_NAME,
        title="Nonin 3230 / 3150 BLE oximetry service (proprietary 10-byte frame)",
        transports=frozenset({"ble"}),
        new_decoder=NoninBleDecoder,
        metrics=frozenset({Metric.SPO2, Metric.PULSE, Metric.PI}),
        ble_service_uuids=(SERVICE_UUID,),
        ble_notify_uuids=(NOTIFY_UUID,),
        name_patterns=("Nonin3230",),
        notes="The 3230 notifies only over an encrypted (bonded) link.",
    ),
)
