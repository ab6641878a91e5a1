"""BerryMed (Shanghai Berry Electronic Tech) BCI 5-byte and BCI-RR 7-byte oximeter streams,
over BLE or USB serial.

References: BerryMed "BCI Protocol V1.2" (zh2x/BCI_Protocol), "BCI Protocol V1.4" and
"BCI-RR Protocol V1.0" (zh2x/SpO2-BLE-for-Android @2d9c069, files/Protocol/); layout in docs
PROTOCOLS.md section 4.1. The BCI wire format is also the Contec CMS50 "V5.1" stream. The
20-byte BERRY protocol of the same modules is in `oximeter_berrymed_berry`.

BCI frame (no checksum; the sync bit frames it):
  byte 0: bit 7 sync = 1; bits 0-3 signal strength (0xF invalid); bit 4 no signal;
          bit 5 probe unplugged; bit 6 pulse beep
  byte 1: pleth 0-100 (bits 0-6)
  byte 2: bits 0-3 bargraph; bit 4 no finger; bit 5 searching; bit 6 = bit 7 of pulse rate
  byte 3: pulse rate bits 0-6 (PR 0xFF = invalid)
  byte 4: SpO2 (0x7F = invalid)
BCI-RR frame: the BCI frame with byte 0 bits 0-3 = PI bits 0-3 and byte 2 bits 0-3 = PI bits 4-7
(PI 1-200 in 0.1 %, 0 = invalid; the 0.1 % unit is inferred, the document gives none), then
  byte 5: battery %
  byte 6: respiration rate 5-50 /min (0 = invalid)
Bytes after byte 0 never have bit 7 set, so a stream resynchronises on the next byte with bit 7
set.

BCI or BCI-RR: both streams come from the same UUIDs and the same serial settings, and nothing
on the wire names the format, so the user chooses it by the protocol name in the device binding
(`berrymed-bci` or `berrymed-bci-rr`). The wrong choice gives no wrong values:
  * A BCI-RR stream read as BCI gives the right SpO2 and pulse (the PI nibbles sit where BCI has
    signal strength and bargraph, which are not reported); the two trailing bytes of each frame
    are counted in `stats.skipped_bytes`, which is how a wrong binding shows.
  * A BCI stream read as BCI-RR gives nothing: its next sync byte always comes 5 bytes after the
    last one, so no 7-byte window is ever free of sync bits; every byte is counted as skipped.
  * A BERRY stream (module switched by command 0xE1) gives nothing to either decoder: the bytes
    of a 20-byte BERRY frame, from its FF AA header on, are never taken for BCI frames (FF AA
    cannot occur in a BCI or BCI-RR stream: a byte with bit 7 set is never followed by another).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from devices.protocols.reading import INVALIDATING, Metric, Quality, Reading
from devices.protocols.spec import DecoderStats, ProtocolSpec, SerialSettings, checked_reading

BCI_FRAME_LEN = 5
BCI_RR_FRAME_LEN = 7
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
NIBBLE = 0x0F  # BCI-RR: PI low nibble in byte 0, high nibble in byte 2
PI_INVALID = 0
RESP_RATE_INVALID = 0

# BERRY frames (see oximeter_berrymed_berry) start FF AA and are 20 bytes long.
BERRY_HEADER = b"\xff\xaa"
BERRY_FRAME_LEN = 20

BLE_SERVICE_UUID = "49535343-fe7d-4ae5-8fa9-9fafd205e455"
BLE_NOTIFY_UUID = "49535343-1e4d-4bd9-ba61-23c647249616"
BLE_WRITE_UUID = "49535343-8841-43f4-a8d4-ecbe34729bb3"
SERIAL_SETTINGS = SerialSettings(baudrate=115200)

_QUALITIES = tuple(Quality(bits) for bits in range(256))
_INVALIDATING_BITS = int(INVALIDATING)


@dataclass(frozen=True, slots=True)
class BciFrames:
    """Decoded fields of many BCI frames, one array element per frame."""

    spo2_percent: npt.NDArray[np.int16]  # -1 where the device sent the invalid marker
    pulse_bpm: npt.NDArray[np.int16]  # -1 where invalid
    pleth: npt.NDArray[np.uint8]
    signal_strength: npt.NDArray[np.uint8]
    quality: npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class BciRrFrames:
    """Decoded fields of many BCI-RR frames, one array element per frame."""

    spo2_percent: npt.NDArray[np.int16]  # -1 where invalid
    pulse_bpm: npt.NDArray[np.int16]  # -1 where invalid
    pi_tenths_percent: npt.NDArray[np.uint8]  # 0 where invalid
    battery_percent: npt.NDArray[np.uint8]
    resp_rate_per_min: npt.NDArray[np.uint8]  # 0 where invalid
    pleth: npt.NDArray[np.uint8]
    quality: npt.NDArray[np.uint8]


def find_sync_frames(
    buffer: npt.NDArray[np.uint8], frame_len: int
) -> tuple[npt.NDArray[np.intp], int]:
    """Start offsets of complete `frame_len`-byte frames in `buffer`, and the bytes consumed.

    A frame starts on a byte with the sync bit and is followed by `frame_len - 1` bytes without
    it. Valid starts can never overlap, so this needs no sequential scan. Bytes after the
    last complete frame are not consumed when they may still begin a frame.
    """
    size = len(buffer)
    sync = (buffer & SYNC_BIT) != 0
    if size < frame_len:
        first_sync = np.flatnonzero(sync)
        return np.empty(0, dtype=np.intp), int(first_sync[0]) if first_sync.size else size
    # sync_ahead[i] = number of sync bytes in buffer[i+1 : i+frame_len]
    cumulative = np.concatenate(([0], np.cumsum(sync, dtype=np.int64)))
    last_start = size - frame_len
    sync_ahead = cumulative[frame_len : size + 1] - cumulative[1 : last_start + 2]
    starts = np.flatnonzero(sync[: last_start + 1] & (sync_ahead == 0))
    # Keep the tail from the first sync byte that could still start a frame.
    tail_from = int(starts[-1]) + frame_len if starts.size else 0
    tail_sync = np.flatnonzero(sync[max(tail_from, last_start + 1) :])
    consumed = max(tail_from, last_start + 1) + int(tail_sync[0]) if tail_sync.size else size
    return starts, consumed


def find_bci_frames(buffer: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.intp], int]:
    """Start offsets of complete BCI frames in `buffer`, and how many bytes have been consumed."""
    return find_sync_frames(buffer, BCI_FRAME_LEN)


def berry_frame_mask(
    buffer: npt.NDArray[np.uint8], covered_until: int = 0
) -> tuple[npt.NDArray[np.bool_] | None, int]:
    """Which bytes of `buffer` belong to a BERRY frame (its FF AA header and the 18 bytes after).

    `covered_until` marks the first bytes as covered (a frame whose header came earlier).
    Returns the mask (None when nothing is covered) and the end offset of the last frame seen.
    """
    size = len(buffer)
    headers = np.flatnonzero((buffer[:-1] == BERRY_HEADER[0]) & (buffer[1:] == BERRY_HEADER[1]))
    if not headers.size and covered_until <= 0:
        return None, 0
    edges = np.zeros(size + 1, dtype=np.int32)
    np.add.at(edges, headers, 1)
    np.add.at(edges, np.minimum(headers + BERRY_FRAME_LEN, size), -1)
    mask = np.cumsum(edges[:size]) > 0
    mask[: max(covered_until, 0)] = True
    last_end = int(headers[-1]) + BERRY_FRAME_LEN if headers.size else 0
    return mask, max(last_end, covered_until)


@dataclass(slots=True)
class SyncFramer:
    """Cuts a byte stream, fed in pieces of any size, into sync-bit framed frames.

    Counts frames and skipped bytes in `stats`; skips the bytes of BERRY frames.
    """

    frame_len: int
    stats: DecoderStats
    _pending: bytes = b""
    _berry_until: int = 0

    def push(self, data: bytes) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.intp]]:
        """The buffer to read from and the start offsets of the frames completed by `data`."""
        buffer = np.frombuffer(self._pending + bytes(data), dtype=np.uint8)
        starts, consumed = find_sync_frames(buffer, self.frame_len)
        mask, berry_end = berry_frame_mask(buffer, self._berry_until)
        if mask is not None:
            starts = starts[~mask[starts]]
        self._berry_until = max(berry_end - consumed, 0)
        self._pending = buffer[consumed:].tobytes()
        self.stats.frames += len(starts)
        self.stats.skipped_bytes += consumed - self.frame_len * len(starts)
        return buffer, starts


def _common_fields(
    b0: npt.NDArray[np.uint8],
    b2: npt.NDArray[np.uint8],
    b3: npt.NDArray[np.uint8],
    b4: npt.NDArray[np.uint8],
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int16], npt.NDArray[np.uint8]]:
    """SpO2 (-1 invalid), pulse (-1 invalid) and quality bits, shared by BCI and BCI-RR."""
    spo2 = (b4 & 0x7F).astype(np.int16)
    spo2[spo2 == SPO2_INVALID] = -1
    pulse = ((b2 & PR_HIGH_BIT).astype(np.int16) << 1) | (b3 & 0x7F)
    pulse[pulse == PR_INVALID] = -1
    quality = np.zeros(len(b0), dtype=np.uint8)
    quality[(b2 & NO_FINGER_BIT) != 0] |= np.uint8(Quality.FINGER_OUT)
    searching = ((b2 & SEARCHING_BIT) != 0) | ((b0 & NO_SIGNAL_BIT) != 0)
    quality[searching] |= np.uint8(Quality.SEARCHING)
    quality[(b0 & PROBE_UNPLUGGED_BIT) != 0] |= np.uint8(Quality.SENSOR_FAULT)
    return spo2, pulse, quality


def decode_bci_frames(buffer: npt.NDArray[np.uint8], starts: npt.NDArray[np.intp]) -> BciFrames:
    """Vectorised field extraction for the BCI frames at `starts`."""
    b0, b1, b2, b3, b4 = (buffer[starts + i] for i in range(BCI_FRAME_LEN))
    spo2, pulse, quality = _common_fields(b0, b2, b3, b4)
    return BciFrames(spo2, pulse, b1 & np.uint8(0x7F), b0 & np.uint8(SIGNAL_MASK), quality)


def decode_bci_rr_frames(
    buffer: npt.NDArray[np.uint8], starts: npt.NDArray[np.intp]
) -> BciRrFrames:
    """Vectorised field extraction for the BCI-RR frames at `starts`."""
    b0, b1, b2, b3, b4, b5, b6 = (buffer[starts + i] for i in range(BCI_RR_FRAME_LEN))
    spo2, pulse, quality = _common_fields(b0, b2, b3, b4)
    pi_tenths = (b0 & np.uint8(NIBBLE)) | ((b2 & np.uint8(NIBBLE)) << np.uint8(4))
    return BciRrFrames(spo2, pulse, pi_tenths, b5, b6, b1, quality)


@dataclass(slots=True)
class BciDecoder:
    """Stream decoder for BCI 5-byte frames; resynchronises on the sync bit."""

    stats: DecoderStats = field(default_factory=DecoderStats)
    _framer: SyncFramer = field(init=False)

    def __post_init__(self) -> None:
        self._framer = SyncFramer(BCI_FRAME_LEN, self.stats)

    def feed(self, data: bytes) -> list[Reading]:
        """Readings (SpO2 and pulse per frame) for every frame completed by `data`."""
        buffer, starts = self._framer.push(data)
        if not len(starts):
            return []
        return self._readings(decode_bci_frames(buffer, starts))

    def _readings(self, frames: BciFrames) -> list[Reading]:
        """One SpO2 and one pulse reading per frame; invalid or flagged values are missing."""
        readings: list[Reading] = []
        append = readings.append
        stats = self.stats
        for spo2, pulse, quality_bits in zip(
            frames.spo2_percent.tolist(),
            frames.pulse_bpm.tolist(),
            frames.quality.tolist(),
            strict=True,
        ):
            quality = _QUALITIES[quality_bits]
            usable = not quality_bits & _INVALIDATING_BITS
            for metric, value in ((Metric.SPO2, spo2), (Metric.PULSE, pulse)):
                reading = checked_reading(
                    stats, metric, float(value) if usable and value >= 0 else None, quality
                )
                if reading is not None:
                    append(reading)
        return readings


@dataclass(slots=True)
class BciRrDecoder:
    """Stream decoder for BCI-RR 7-byte frames; resynchronises on the sync bit."""

    stats: DecoderStats = field(default_factory=DecoderStats)
    _framer: SyncFramer = field(init=False)

    def __post_init__(self) -> None:
        self._framer = SyncFramer(BCI_RR_FRAME_LEN, self.stats)

    def feed(self, data: bytes) -> list[Reading]:
        """Readings (SpO2, pulse, PI, respiration rate, battery) for every frame completed."""
        buffer, starts = self._framer.push(data)
        if not len(starts):
            return []
        return self._readings(decode_bci_rr_frames(buffer, starts))

    def _readings(self, frames: BciRrFrames) -> list[Reading]:
        """Five readings per frame; invalid or flagged values are missing, battery always kept."""
        readings: list[Reading] = []
        stats = self.stats
        for spo2, pulse, pi, resp, battery, quality_bits in zip(
            frames.spo2_percent.tolist(),
            frames.pulse_bpm.tolist(),
            frames.pi_tenths_percent.tolist(),
            frames.resp_rate_per_min.tolist(),
            frames.battery_percent.tolist(),
            frames.quality.tolist(),
            strict=True,
        ):
            quality = _QUALITIES[quality_bits]
            usable = not quality_bits & _INVALIDATING_BITS
            values = (
                (Metric.SPO2, float(spo2) if usable and spo2 >= 0 else None, quality),
                (Metric.PULSE, float(pulse) if usable and pulse >= 0 else None, quality),
                (Metric.PI, pi / 10 if usable and pi != PI_INVALID else None, quality),
                (Metric.RESP_RATE, float(resp) if usable and resp != 0 else None, quality),
                (Metric.BATTERY, float(battery), Quality.OK),
            )
            for metric, value, value_quality in values:
                reading = checked_reading(stats, metric, value, value_quality)
                if reading is not None:
                    readings.append(reading)
        return readings


def _frame_head(
    spo2_percent: int | None, pulse_bpm: int | None, finger_out: bool, searching: bool
) -> tuple[int, int, int, int]:
    """Bytes 0, 2, 3 and 4 of a BCI / BCI-RR frame, without the fields the two differ in."""
    spo2 = SPO2_INVALID if spo2_percent is None else spo2_percent
    pulse = PR_INVALID if pulse_bpm is None else pulse_bpm
    if not 0 <= spo2 <= 0x7F or not 0 <= pulse <= 0xFF:
        raise ValueError(f"SpO2 {spo2} / pulse {pulse} out of the BCI field ranges")
    b0 = SYNC_BIT | (NO_SIGNAL_BIT if finger_out else 0)
    b2 = ((pulse >> 1) & PR_HIGH_BIT) | (NO_FINGER_BIT if finger_out else 0)
    b2 |= SEARCHING_BIT if searching else 0
    return b0, b2, pulse & 0x7F, spo2


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
    b0, b2, b3, b4 = _frame_head(spo2_percent, pulse_bpm, finger_out, searching)
    b0 |= (signal_strength & SIGNAL_MASK) | (PULSE_BEEP_BIT if beep else 0)
    b2 |= bargraph & 0x0F
    return bytes((b0, pleth & 0x7F, b2, b3, b4))


def encode_bci_rr_frame(
    spo2_percent: int | None,
    pulse_bpm: int | None,
    *,
    pi_percent: float | None = None,
    battery_percent: int = 100,
    resp_rate_per_min: int | None = None,
    pleth: int = 50,
    finger_out: bool = False,
    searching: bool = False,
    beep: bool = False,
) -> bytes:
    """One BCI-RR frame (None = the invalid marker of that field; PI in 0.1 % steps)."""
    b0, b2, b3, b4 = _frame_head(spo2_percent, pulse_bpm, finger_out, searching)
    pi_tenths = PI_INVALID if pi_percent is None else round(pi_percent * 10)
    resp = RESP_RATE_INVALID if resp_rate_per_min is None else resp_rate_per_min
    if not 0 <= pi_tenths <= 0xFF or not 0 <= battery_percent <= 0x7F or not 0 <= resp <= 0x7F:
        raise ValueError(f"PI {pi_percent} / battery / respiration rate out of the field ranges")
    b0 |= (pi_tenths & NIBBLE) | (PULSE_BEEP_BIT if beep else 0)
    b2 |= pi_tenths >> 4
    return bytes((b0, pleth & 0x7F, b2, b3, b4, battery_percent, resp))


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
        serial=SERIAL_SETTINGS,
    ),
    ProtocolSpec(
        name="berrymed-bci-rr",
        title="BerryMed BCI-RR 7-byte stream (BCI plus PI, battery and respiration rate)",
        transports=frozenset({"ble", "serial"}),
        new_decoder=BciRrDecoder,
        metrics=frozenset({Metric.SPO2, Metric.PULSE, Metric.PI, Metric.RESP_RATE, Metric.BATTERY}),
        ble_service_uuids=(BLE_SERVICE_UUID,),
        ble_notify_uuids=(BLE_NOTIFY_UUID,),
        ble_write_uuid=BLE_WRITE_UUID,
        serial=SERIAL_SETTINGS,
        notes="Same UUIDs and serial settings as berrymed-bci: bind it by name.",
    ),
)
