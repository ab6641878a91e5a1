"""BerryMed (Shanghai Berry Electronic Tech) BCI 5-byte oximeter stream, over BLE or USB serial.

Reference: BerryMed "BCI Protocol V1.2" (zh2x/BCI_Protocol) and "BCI Protocol V1.4"
(zh2x/SpO2-BLE-for-Android @2d9c069, files/Protocol/); layout in docs PROTOCOLS.md section 4.1.
The same wire format is the Contec CMS50 "V5.1" stream.

Frame (no checksum; the sync bit frames it):
  byte 0: bit 7 sync = 1; bits 0-3 signal strength (0xF invalid); bit 4 no signal;
          bit 5 probe unplugged; bit 6 pulse beep
  byte 1: pleth 0-100 (bits 0-6)
  byte 2: bits 0-3 bargraph; bit 4 no finger; bit 5 searching; bit 6 = bit 7 of pulse rate
  byte 3: pulse rate bits 0-6 (PR 0xFF = invalid)
  byte 4: SpO2 (0x7F = invalid)
Bytes 1-4 never have bit 7 set, so a stream resynchronises on the next byte with bit 7 set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from devices.protocols.reading import Metric, Quality, Reading
from devices.protocols.spec import DecoderStats, ProtocolSpec, SerialSettings, checked_reading

BCI_FRAME_LEN = 5
SYNC_BIT = 0x80
SIGNAL_MASK = 0x0F
NO_SIGNAL_BIT = 0x10
PROBE_UNPLUGGED_BIT = 0x20
PULSE_BEEP_BIT = 0x40
NO_FINGER_BIT = 0x10
SEARCHING_BIT = 0x20
PR_HIGH_BIT = 0x40
SPO2_INVALID = 0x7F
PR_INVALID = 0xFF

BLE_SERVICE_UUID = "49535343-fe7d-4ae5-8fa9-9fafd205e455"
BLE_NOTIFY_UUID = "49535343-1e4d-4bd9-ba61-23c647249616"
BLE_WRITE_UUID = "49535343-8841-43f4-a8d4-ecbe34729bb3"


@dataclass(frozen=True, slots=True)
class BciFrames:
    """Decoded fields of many BCI frames, one array element per frame."""

    spo2_percent: npt.NDArray[np.int16]  # -1 where the device sent the invalid marker
    pulse_bpm: npt.NDArray[np.int16]  # -1 where invalid
    pleth: npt.NDArray[np.uint8]
    signal_strength: npt.NDArray[np.uint8]
    quality: npt.NDArray[np.uint8]


def find_bci_frames(buffer: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.intp], int]:
    """Start offsets of complete frames in `buffer`, and how many bytes have been consumed.

    A frame starts on a byte with the sync bit and is followed by four bytes without it.
    Valid starts can never overlap, so this needs no sequential scan. Bytes after the
    last complete frame are not consumed when they may still begin a frame.
    """
    size = len(buffer)
    sync = (buffer & SYNC_BIT) != 0
    if size < BCI_FRAME_LEN:
        first_sync = np.flatnonzero(sync)
        return np.empty(0, dtype=np.intp), int(first_sync[0]) if first_sync.size else size
    # sync_ahead[i] = number of sync bytes in buffer[i+1 : i+5]
    cumulative = np.concatenate(([0], np.cumsum(sync, dtype=np.int64)))
    last_start = size - BCI_FRAME_LEN
    candidates = np.arange(last_start + 1)
    sync_ahead = cumulative[candidates + BCI_FRAME_LEN] - cumulative[candidates + 1]
    starts = np.flatnonzero(sync[: last_start + 1] & (sync_ahead == 0))
    # Keep the tail from the first sync byte that could still start a frame.
    tail_from = int(starts[-1]) + BCI_FRAME_LEN if starts.size else 0
    tail_sync = np.flatnonzero(sync[max(tail_from, last_start + 1) :])
    consumed = max(tail_from, last_start + 1) + int(tail_sync[0]) if tail_sync.size else size
    return starts, consumed


def decode_bci_frames(buffer: npt.NDArray[np.uint8], starts: npt.NDArray[np.intp]) -> BciFrames:
    """Vectorised field extraction for the frames at `starts`."""
    b0, b1, b2, b3, b4 = (buffer[starts + i] for i in range(BCI_FRAME_LEN))
    spo2 = (b4 & 0x7F).astype(np.int16)
    spo2[spo2 == SPO2_INVALID] = -1
    pulse = (((b2 & PR_HIGH_BIT).astype(np.int16) << 1) | (b3 & 0x7F)).astype(np.int16)
    pulse[pulse == PR_INVALID] = -1
    quality = np.zeros(len(starts), dtype=np.uint8)
    quality[(b2 & NO_FINGER_BIT) != 0] |= np.uint8(Quality.FINGER_OUT)
    searching = ((b2 & SEARCHING_BIT) != 0) | ((b0 & NO_SIGNAL_BIT) != 0)
    quality[searching] |= np.uint8(Quality.SEARCHING)
    quality[(b0 & PROBE_UNPLUGGED_BIT) != 0] |= np.uint8(Quality.SENSOR_FAULT)
    return BciFrames(spo2, pulse, b1 & np.uint8(0x7F), b0 & np.uint8(SIGNAL_MASK), quality)


@dataclass(slots=True)
class BciDecoder:
    """Stream decoder for BCI 5-byte frames; resynchronises on the sync bit."""

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
        frames = decode_bci_frames(buffer, starts)
        return self._readings(frames)

    def _readings(self, frames: BciFrames) -> list[Reading]:
        """One SpO2 and one pulse reading per frame; invalid or flagged values are missing."""
        readings: list[Reading] = []
        invalidating = int(Quality.FINGER_OUT | Quality.SEARCHING | Quality.SENSOR_FAULT)
        for spo2, pulse, quality_bits in zip(
            frames.spo2_percent.tolist(),
            frames.pulse_bpm.tolist(),
            frames.quality.tolist(),
            strict=True,
        ):
            quality = Quality(quality_bits)
            usable = not quality_bits & invalidating
            for metric, value in ((Metric.SPO2, spo2), (Metric.PULSE, pulse)):
                reading = checked_reading(
                    self.stats, metric, float(value) if usable and value >= 0 else None, quality
                )
                if reading is not None:
                    readings.append(reading)
        return readings


def encode_bci_frame(
    spo2_percent: int | None,
    pulse_bpm: int | None,
    *,
    pleth: int = 50,
    signal_strength: int = 7,
    bargraph: int = 5,
    finger_out: bool = False,
    searching: bool = False,
    beep: bool = False,
) -> bytes:
    """One BCI frame, as a BerryMed module sends it (None = the invalid marker)."""
    spo2 = SPO2_INVALID if spo2_percent is None else spo2_percent
    pulse = PR_INVALID if pulse_bpm is None else pulse_bpm
    if not 0 <= spo2 <= 0x7F or not 0 <= pulse <= 0xFF:
        raise ValueError(f"SpO2 {spo2} / pulse {pulse} out of the BCI field ranges")
    b0 = SYNC_BIT | (signal_strength & SIGNAL_MASK) | (PULSE_BEEP_BIT if beep else 0)
    if finger_out:
        b0 |= NO_SIGNAL_BIT
    b2 = (bargraph & 0x0F) | ((pulse >> 1) & PR_HIGH_BIT)
    b2 |= (NO_FINGER_BIT if finger_out else 0) | (SEARCHING_BIT if searching else 0)
    return bytes((b0, pleth & 0x7F, b2, pulse & 0x7F, spo2))


PROTOCOLS = (
    ProtocolSpec(
        name="berrymed-bci",
        title="BerryMed BCI 5-byte stream (BM1000 and Berry-module OEM oximeters)",
        transports=frozenset({"ble", "serial"}),
        new_decoder=BciDecoder,
        metrics=frozenset({Metric.SPO2, Metric.PULSE}),
        ble_service_uuids=(BLE_SERVICE_UUID,),
        ble_notify_uuids=(BLE_NOTIFY_UUID,),
        ble_write_uuid=BLE_WRITE_UUID,
        name_patterns=("BerryMed", "BM1000"),
        serial=SerialSettings(baudrate=115200),
    ),
)
