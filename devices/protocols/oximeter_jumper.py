"""Jumper JPD-500F and unbranded "CDEACB80" BLE fingertip oximeters ("My Oximeter").

No vendor document is public; the layout is reverse-engineered, docs PROTOCOLS.md section 4.2:
  * KookKookKool/smarttelemed-v4 lib/core/device/add_device/Jumper/jumper_po_jpd_500f.dart
    (a real frame, 81 38 63 44, quoted in a comment),
  * SensorsIot/Oximeters-BLE-Hack-ESP32 Oximeter_Jumper/Oximeter_Jumper.ino (PI = byte 3 / 10),
  * Eclipse AGAIL MedicalDevice.java (devices named "Medical" / "My Oximeter"; 11-byte 0x88
    frames),
  * invalid values: two independent public clients (an Android "My Oximeter" app and a React
    Native clinic app) discard frames with PR 255, SpO2 127 or PI 0; PR 0 and SpO2 0 are taken
    as invalid too (PROTOCOLS.md). None of them is confirmed by a capture.

The device streams on notify characteristic CDEACB81 once subscribed; nothing is written.
Each frame starts with its kind byte:
  0x81  parameters, 4 bytes: 81 | pulse rate bpm u8 | SpO2 % u8 | PI in 0.1 % u8
  0x80  pleth waveform, 0x88 (11 bytes): layouts undocumented, not decoded
There is no checksum, no sync bit (PR and PI bytes can be >= 0x80, even 0x81) and no length
field, so the frames cannot be found in a byte stream. They are framed by BLE notifications
instead, as every public client does: `feed()` takes one whole notification. A notification may
hold several parameter frames back to back; a waveform or other frame runs to the end of its
notification. A parameter frame cut short by the end of the notification is malformed
(`DecodeError`). The device reports no finger-out or searching flags: the values are then
just the invalid markers, decoded as missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from devices.protocols.reading import DecodeError, Metric, Reading
from devices.protocols.spec import DecoderStats, ProtocolSpec, checked_reading

PROTOCOL_NAME = "jumper"
SERVICE_UUID = "cdeacb80-5235-4c07-8846-93a37ee6b86d"
NOTIFY_UUID = "cdeacb81-5235-4c07-8846-93a37ee6b86d"
WRITE_UUID = "cdeacb82-5235-4c07-8846-93a37ee6b86d"  # present, not needed for streaming

KIND_PARAMETERS = 0x81
KIND_WAVEFORM = 0x80
KIND_EXTENDED = 0x88  # meaning unknown
PARAMETERS_LEN = 4
PR_INVALID = 0xFF
SPO2_INVALID = 0x7F
PI_INVALID = 0
ZERO_INVALID = 0  # PR 0 / SpO2 0: no measurement


@dataclass(frozen=True, slots=True)
class JumperFrame:
    """One frame of a notification: its kind byte and all its bytes."""

    kind: int
    data: bytes


def split_jumper_notification(notification: bytes) -> list[JumperFrame]:
    """The frames of one notification, in order.

    Raises `DecodeError` for a parameter frame shorter than 4 bytes.
    """
    frames: list[JumperFrame] = []
    pos = 0
    while pos < len(notification):
        kind = notification[pos]
        if kind != KIND_PARAMETERS:
            frames.append(JumperFrame(kind, notification[pos:]))
            break
        if len(notification) - pos < PARAMETERS_LEN:
            raise DecodeError(PROTOCOL_NAME, pos, notification, "parameter frame truncated")
        frames.append(JumperFrame(kind, notification[pos : pos + PARAMETERS_LEN]))
        pos += PARAMETERS_LEN
    return frames


def decode_jumper_parameters(frame: bytes, stats: DecoderStats) -> list[Reading]:
    """SpO2, pulse and PI readings of one 4-byte parameter frame (invalid markers: missing)."""
    pulse, spo2, pi_tenths = frame[1], frame[2], frame[3]
    values = (
        (Metric.SPO2, None if spo2 in (SPO2_INVALID, ZERO_INVALID) else float(spo2)),
        (Metric.PULSE, None if pulse in (PR_INVALID, ZERO_INVALID) else float(pulse)),
        (Metric.PI, None if pi_tenths == PI_INVALID else pi_tenths / 10),
    )
    readings = []
    for metric, value in values:
        reading = checked_reading(stats, metric, value)
        if reading is not None:
            readings.append(reading)
    return readings


@dataclass(slots=True)
class JumperDecoder:
    """Decodes one CDEACB81 notification per `feed` call."""

    stats: DecoderStats = field(default_factory=DecoderStats)

    def feed(self, data: bytes) -> list[Reading]:
        """The readings of the parameter frames in one notification."""
        notification = bytes(data)
        readings: list[Reading] = []
        for frame in split_jumper_notification(notification):
            if frame.kind in (KIND_PARAMETERS, KIND_WAVEFORM, KIND_EXTENDED):
                self.stats.frames += 1
            else:
                self.stats.skipped_bytes += len(frame.data)
            if frame.kind == KIND_PARAMETERS:
                readings.extend(decode_jumper_parameters(frame.data, self.stats))
        return readings


def encode_jumper_frame(
    spo2_percent: int | None, pulse_bpm: int | None, pi_percent: float | None = None
) -> bytes:
    """One parameter frame (None = the invalid marker; PI rounded to 0.1 %)."""
    spo2 = SPO2_INVALID if spo2_percent is None else spo2_percent
    pulse = PR_INVALID if pulse_bpm is None else pulse_bpm
    pi_tenths = PI_INVALID if pi_percent is None else round(pi_percent * 10)
    if not (0 <= spo2 <= 0xFF and 0 <= pulse <= 0xFF and 0 <= pi_tenths <= 0xFF):
        raise ValueError(f"SpO2 {spo2} / pulse {pulse} / PI {pi_percent} out of u8 fields")
    return bytes((KIND_PARAMETERS, pulse, spo2, pi_tenths))


PROTOCOLS = (
    ProtocolSpec(
        name=PROTOCOL_NAME,
        title='Jumper JPD-500F and "CDEACB80" clone oximeters (My Oximeter)',
        transports=frozenset({"ble"}),
        new_decoder=JumperDecoder,
        metrics=frozenset({Metric.SPO2, Metric.PULSE, Metric.PI}),
        ble_service_uuids=(SERVICE_UUID,),
        ble_notify_uuids=(NOTIFY_UUID,),
        ble_write_uuid=WRITE_UUID,
        name_patterns=("My Oximeter", "JPD-500"),
        notes='Some clones advertise as just "Medical"; match them by the service UUID.',
    ),
)
