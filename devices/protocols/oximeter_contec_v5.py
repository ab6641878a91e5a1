"""Contec CMS50 "V5.1" 5-byte stream (older CMS50D+ / CMS50E, USB-serial cable, 19200 8O1).

Reference: Contec "Communication protocol of pulse oximeter V5.1.pdf" (in
InfantLab/Contec-Pulse-Oximeter-in-Matlab @334fc64); serial settings and a unit-test frame from
atbrask/CMS50Dplus; layout in docs PROTOCOLS.md section 5.1.

The wire format is BerryMed BCI (`oximeter_berrymed`): same sync bit, same field positions, no
checksum. Only the meaning of the flag bits differs, so the framer and the vectorised field
extraction are shared and the flags are read here with the Contec names:
  byte 0: bit 7 sync = 1; bits 0-3 signal strength; bit 4 "searching too long";
          bit 5 "SpO2 dropping" (an alarm hint, not a fault); bit 6 pulse beep
  byte 1: pleth (bits 0-6)
  byte 2: bits 0-3 bargraph; bit 4 probe error (finger out); bit 5 searching;
          bit 6 = bit 7 of pulse rate
  byte 3: pulse rate bits 0-6
  byte 4: SpO2 %
V5.1 documents no sentinel values; as in BCI, PR 0xFF and SpO2 0x7F are "no value", and so is 0.
The device streams 60 frames/s as soon as it is powered: no start command, no keep-alive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from devices.protocols.oximeter_berrymed import (
    BCI_FRAME_LEN,
    decode_bci_frames,
    encode_bci_frame,
    find_bci_frames,
)
from devices.protocols.reading import INVALIDATING, Metric, Quality, Reading
from devices.protocols.spec import DecoderStats, ProtocolSpec, SerialSettings, checked_reading

PROTOCOL_NAME = "contec-v5"
SERIAL_BAUDRATE = 19200

# Byte 0 flags (Contec names).
SEARCHING_TOO_LONG_BIT = 0x10
SPO2_DROPPING_BIT = 0x20
# Byte 2 flags.
PROBE_ERROR_BIT = 0x10
SEARCHING_BIT = 0x20


def contec_quality(
    buffer: npt.NDArray[np.uint8], starts: npt.NDArray[np.intp]
) -> npt.NDArray[np.uint8]:
    """Quality bits of the V5.1 frames at `starts`, from the Contec flag meanings.

    "SpO2 dropping" (byte 0 bit 5, where BCI has "probe unplugged") lowers nothing: it is the
    device's own alarm hint while the values stay valid.
    """
    byte0 = buffer[starts]
    byte2 = buffer[starts + 2]
    quality = np.zeros(len(starts), dtype=np.uint8)
    quality[(byte2 & PROBE_ERROR_BIT) != 0] |= np.uint8(Quality.FINGER_OUT)
    searching = ((byte2 & SEARCHING_BIT) != 0) | ((byte0 & SEARCHING_TOO_LONG_BIT) != 0)
    quality[searching] |= np.uint8(Quality.SEARCHING)
    return quality


@dataclass(slots=True)
class ContecV5Decoder:
    """Stream decoder for V5.1 frames; resynchronises on the sync bit like BCI."""

    stats: DecoderStats = field(default_factory=DecoderStats)
    _pending: bytes = b""

    def feed(self, data: bytes) -> list[Reading]:
        """Readings (SpO2 and pulse per frame) for every frame completed by `data`."""
        buffer = np.frombuffer(self._pending + bytes(data), dtype=np.uint8)
        starts, consumed = find_bci_frames(buffer)
        self._pending = buffer[consumed:].tobytes()
        self.stats.frames += len(starts)
        self.stats.skipped_bytes += consumed - BCI_FRAME_LEN * len(starts)
        if not len(starts):
            return []
        fields = decode_bci_frames(buffer, starts)
        quality = contec_quality(buffer, starts)
        readings: list[Reading] = []
        for spo2, pulse, quality_bits in zip(
            fields.spo2_percent.tolist(), fields.pulse_bpm.tolist(), quality.tolist(), strict=True
        ):
            flags = Quality(quality_bits)
            usable = not flags & INVALIDATING
            for metric, value in ((Metric.SPO2, spo2), (Metric.PULSE, pulse)):
                # decode_bci_frames marks 0x7F / 0xFF as -1; 0 is "no value" too.
                present = usable and value > 0
                reading = checked_reading(
                    self.stats, metric, float(value) if present else None, flags
                )
                if reading is not None:
                    readings.append(reading)
        return readings


def encode_contec_v5_frame(
    spo2_percent: int | None,
    pulse_bpm: int | None,
    *,
    pleth: int = 50,
    signal_strength: int = 7,
    bargraph: int = 5,
    probe_error: bool = False,
    searching: bool = False,
    spo2_dropping: bool = False,
    beep: bool = False,
) -> bytes:
    """One V5.1 frame as a CMS50D+ sends it (None = the no-value marker)."""
    frame = bytearray(
        encode_bci_frame(
            spo2_percent,
            pulse_bpm,
            pleth=pleth,
            signal_strength=signal_strength,
            bargraph=bargraph,
            searching=searching,
            beep=beep,
        )
    )
    if probe_error:
        frame[2] |= PROBE_ERROR_BIT
    if spo2_dropping:
        frame[0] |= SPO2_DROPPING_BIT
    return bytes(frame)


PROTOCOLS = (
    ProtocolSpec(
        name=PROTOCOL_NAME,
        title="Contec CMS50 V5.1 5-byte stream (older CMS50D+ / CMS50E, USB-serial)",
        transports=frozenset({"serial"}),
        new_decoder=ContecV5Decoder,
        metrics=frozenset({Metric.SPO2, Metric.PULSE}),
        # 8O1 per atbrask/CMS50Dplus; some cables run 8N1 (same data bytes), see PROTOCOLS.md 5.1.
        serial=SerialSettings(baudrate=SERIAL_BAUDRATE, parity="O"),
        notes="Streams without a command; if the port reports parity errors, retry 8N1.",
    ),
)
