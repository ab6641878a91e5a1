"""Nonin oximeters over serial / Bluetooth SPP: data formats 2 and 8, and the format command.

References (layouts in docs PROTOCOLS.md section 5.4):
* Format 2 (OEM III module, Xpod 3012; 9600 8N1, streams without a command): Nonin OEM III
  specification as implemented by pez-globo/pufferfish-software `Driver/Serial/Nonin/*` (test
  vectors `TestNoninOEM3.cpp`) and mattjlewis/NoninPulseOx `DataFormat2*Serialiser.java`.
    frame = 01 | STATUS | PLETH | DATA | CHK, CHK = (sum of bytes 0-3) mod 256, 75 frames/s
    STATUS: b7 always 1, b6 sensor disconnect, b5 artifact, b4 out of track, b3 sensor alarm,
            b2-b1 perfusion (01 green, 10 red, 11 yellow), b0 SYNC (first frame of a packet)
    25 frames = 1 packet; DATA of frame 0 = HR bits 8-7, frame 1 = HR bits 6-0,
    frame 2 = SpO2 (4-beat averages); later frames carry display / extended averages.
* Format 8 (9560 Onyx II, 3150 WristOx2 over SPP; 9600 8N1): mattjlewis/NoninPulseOx
  `DataFormat8Serialiser.java`, `Nonin9560Constants.java`. One 4-byte frame a second:
    STATUS1 | HR bits 6-0 | SpO2 | STATUS2, no checksum
    STATUS1: b7 always 1, b6 sensor disconnect, b5 out of track, b4 low perfusion,
             b3 marginal perfusion, b2 artifact, b1-b0 HR bits 8-7
    STATUS2: b5 SmartPoint, b3 sensor alarm, b0 low battery
  Only STATUS1 has bit 7 set (HR and SpO2 are 7-bit, STATUS2 uses bits 0-5), so the stream
  resynchronises on the next byte with bit 7 set. Set the format with
  STX 70 02 02 <format> ETX; the device answers ACK 06 or NAK 15.
In every Nonin format HR 511 and SpO2 127 mean "missing" (all-ones markers); the 3230 / 3150
BLE frame is in `oximeter_nonin_ble.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntFlag

import numpy as np
import numpy.typing as npt

from devices.protocols.reading import INVALIDATING, DecodeError, Metric, Quality, Reading
from devices.protocols.spec import DecoderStats, ProtocolSpec, SerialSettings, checked_reading

FORMAT2_NAME = "nonin-format2"
FORMAT8_NAME = "nonin-format8"

HR_MISSING = 511
SPO2_MISSING = 127
HR_HIGH_SHIFT = 7  # HR bits 8-7 travel in a separate 2-bit field
HR_HIGH_MASK = 0x03
SEVEN_BITS = 0x7F
NONIN_SERIAL = SerialSettings(baudrate=9600)

# --- host commands (9560 / 3150 / OEM III serial protocol) ---
STX = 0x02
ETX = 0x03
ACK = 0x06
NAK = 0x15
OP_SET_DATA_FORMAT = 0x70
SET_DATA_FORMAT_LEN = 2  # bytes between the length byte and ETX
DATA_FORMAT_PARAMETER = 0x02  # first parameter byte of "set data format", fixed in the sources


class Format2Status(IntFlag):
    """STATUS byte of a format-2 frame."""

    SYNC = 0x01
    GREEN_PERFUSION = 0x02
    RED_PERFUSION = 0x04  # with GREEN_PERFUSION: yellow (marginal)
    SENSOR_ALARM = 0x08
    OUT_OF_TRACK = 0x10
    ARTIFACT = 0x20
    SENSOR_DISCONNECT = 0x40
    ALWAYS_SET = 0x80


class Format8Status1(IntFlag):
    """First byte of a format-8 frame (bits 1-0 are HR bits 8-7, not flags)."""

    ARTIFACT = 0x04
    MARGINAL_PERFUSION = 0x08
    LOW_PERFUSION = 0x10
    OUT_OF_TRACK = 0x20
    SENSOR_DISCONNECT = 0x40
    ALWAYS_SET = 0x80


class Format8Status2(IntFlag):
    """Last byte of a format-8 frame."""

    LOW_BATTERY = 0x01
    SENSOR_ALARM = 0x08
    SMARTPOINT = 0x20


# Status bit -> Quality. "Sensor alarm" is Nonin's "device is providing unusable data": it
# invalidates the values like a disconnected sensor. Red and yellow perfusion share bit 2.
_F2_QUALITY = (
    (Format2Status.SENSOR_DISCONNECT, Quality.SENSOR_FAULT),
    (Format2Status.SENSOR_ALARM, Quality.SENSOR_FAULT),
    (Format2Status.OUT_OF_TRACK, Quality.SEARCHING),
    (Format2Status.ARTIFACT, Quality.MOTION),
    (Format2Status.RED_PERFUSION, Quality.LOW_PERFUSION),
)
_F8_QUALITY = (
    (Format8Status1.SENSOR_DISCONNECT, Quality.SENSOR_FAULT),
    (Format8Status1.OUT_OF_TRACK, Quality.SEARCHING),
    (Format8Status1.LOW_PERFUSION, Quality.LOW_PERFUSION),
    (Format8Status1.MARGINAL_PERFUSION, Quality.LOW_PERFUSION),
    (Format8Status1.ARTIFACT, Quality.MOTION),
)

F2_FRAME_LEN = 5
F2_START = 0x01  # byte 0 of every format-2 frame
F2_FRAMES_PER_PACKET = 25
# Frame index in the packet -> what its DATA byte carries (encoder fills every copy).
F2_HR_HIGH_FRAMES = (0, 13, 19, 21)  # HR, E-HR, HR-D, E-HR-D bits 8-7
F2_HR_LOW_FRAMES = (1, 14, 20, 22)
F2_SPO2_FRAMES = (2, 8, 9, 10, 15, 16)  # SpO2, SpO2-D, fast, beat-to-beat, E-SpO2, E-SpO2-D
F2_FIRMWARE_FRAME = 3

F8_FRAME_LEN = 4
F8_SYNC_BIT = 0x80


def status_quality(bits: int, table: tuple[tuple[int, Quality], ...]) -> Quality:
    """Quality flags for the status `bits` that appear in `table` (bit, flag) pairs."""
    quality = Quality.OK
    for bit, flag in table:
        if bits & bit:
            quality |= flag
    return quality


def oximetry_readings(
    stats: DecoderStats, values: Sequence[tuple[Metric, float | None]], quality: Quality
) -> list[Reading]:
    """Readings for values with sentinels already None; all missing when `quality` invalidates."""
    usable = not quality & INVALIDATING
    readings = []
    for metric, value in values:
        reading = checked_reading(stats, metric, value if usable else None, quality)
        if reading is not None:
            readings.append(reading)
    return readings


def spo2_and_pulse_values(spo2: int, pulse: int) -> list[tuple[Metric, float | None]]:
    """SpO2 and pulse with Nonin's missing markers turned into None."""
    return [
        (Metric.SPO2, None if spo2 == SPO2_MISSING else float(spo2)),
        (Metric.PULSE, None if pulse == HR_MISSING else float(pulse)),
    ]


def _hr_fields(pulse_bpm: int | None) -> tuple[int, int]:
    """(bits 8-7, bits 6-0) of a heart rate, None meaning the missing marker."""
    pulse = HR_MISSING if pulse_bpm is None else pulse_bpm
    if not 0 <= pulse <= HR_MISSING:
        raise ValueError(f"pulse {pulse} does not fit Nonin's 9-bit field")
    return pulse >> HR_HIGH_SHIFT, pulse & SEVEN_BITS


def encode_spo2_byte(spo2_percent: int | None) -> int:
    """The 7-bit SpO2 byte, None meaning the missing marker."""
    spo2 = SPO2_MISSING if spo2_percent is None else spo2_percent
    if not 0 <= spo2 <= SPO2_MISSING:
        raise ValueError(f"SpO2 {spo2} does not fit Nonin's 7-bit field")
    return spo2


# --- format 2 ---


def find_format2_frames(buffer: npt.NDArray[np.uint8]) -> tuple[list[int], int, int]:
    """Start offsets of valid format-2 frames, bytes consumed, and bad checksums seen.

    A frame starts with 01, a STATUS byte with bit 7 set, and ends with the right checksum;
    anything else is skipped one byte at a time. Bytes that may still begin a frame stay
    unconsumed.
    """
    size = len(buffer)
    last_start = size - F2_FRAME_LEN
    starts: list[int] = []
    bad_frames = 0
    position = 0
    if last_start >= 0:
        b0, b1, b2, b3, b4 = (
            buffer[i : last_start + 1 + i].astype(np.uint16) for i in range(F2_FRAME_LEN)
        )
        header = (b0 == F2_START) & ((b1 & Format2Status.ALWAYS_SET) != 0)
        checksum_ok = ((b0 + b1 + b2 + b3) & 0xFF) == b4
        for start in np.flatnonzero(header).tolist():
            if start < position:
                continue
            if checksum_ok[start]:
                starts.append(start)
                position = start + F2_FRAME_LEN
            else:
                bad_frames += 1
    tail = max(position, last_start + 1)
    rest = buffer[tail:].tolist()
    keep = next(
        (
            i
            for i, byte in enumerate(rest)
            if byte == F2_START and (i + 1 == len(rest) or rest[i + 1] & Format2Status.ALWAYS_SET)
        ),
        len(rest),
    )
    return starts, tail + keep, bad_frames


@dataclass(slots=True)
class Format2Decoder:
    """Stream decoder for format 2: frames resync on 01 + checksum, packets on the SYNC bit.

    One SpO2 and one pulse reading per complete 25-frame packet (3 a second). A packet
    interrupted by lost bytes is dropped, since its frame positions are then unknown.
    """

    stats: DecoderStats = field(default_factory=DecoderStats)
    _pending: bytes = b""
    _packet: list[tuple[int, int]] = field(default_factory=list)  # (STATUS, DATA) per frame

    def feed(self, data: bytes) -> list[Reading]:
        """Readings for every packet completed by `data`."""
        buffer = np.frombuffer(self._pending + bytes(data), dtype=np.uint8)
        starts, consumed, bad_frames = find_format2_frames(buffer)
        self._pending = buffer[consumed:].tobytes()
        self.stats.frames += len(starts)
        self.stats.bad_frames += bad_frames
        self.stats.skipped_bytes += consumed - F2_FRAME_LEN * len(starts)
        readings: list[Reading] = []
        expected = 0
        for start in starts:
            if start != expected:
                self._packet.clear()
            expected = start + F2_FRAME_LEN
            readings += self._add_frame(int(buffer[start + 1]), int(buffer[start + 3]))
        if consumed != expected:
            self._packet.clear()
        return readings

    def _add_frame(self, status: int, data_byte: int) -> list[Reading]:
        """Collect one frame; readings when it completes a packet."""
        if status & Format2Status.SYNC:
            self._packet.clear()
        elif not self._packet:
            return []  # waiting for the first frame of a packet
        self._packet.append((status, data_byte))
        if len(self._packet) < F2_FRAMES_PER_PACKET:
            return []
        packet = list(self._packet)
        self._packet.clear()
        status_any = 0
        for frame_status, _ in packet:
            status_any |= frame_status
        pulse = ((packet[0][1] & HR_HIGH_MASK) << HR_HIGH_SHIFT) | (packet[1][1] & SEVEN_BITS)
        spo2 = packet[2][1] & SEVEN_BITS
        quality = status_quality(status_any, _F2_QUALITY)
        return oximetry_readings(self.stats, spo2_and_pulse_values(spo2, pulse), quality)


def encode_format2_frame(status: int, pleth: int, data_byte: int) -> bytes:
    """One format-2 frame with its checksum (bit 7 of STATUS is set here)."""
    body = bytes((F2_START, (status | Format2Status.ALWAYS_SET) & 0xFF, pleth, data_byte))
    return body + bytes((sum(body) & 0xFF,))


def encode_format2_packet(
    spo2_percent: int | None,
    pulse_bpm: int | None,
    *,
    status: Format2Status = Format2Status.GREEN_PERFUSION,
    pleth: Sequence[int] = (),
    firmware_revision: int = 0,
) -> bytes:
    """One 25-frame packet (1/3 s) reporting the same values in every average it carries."""
    hr_high, hr_low = _hr_fields(pulse_bpm)
    data = [0] * F2_FRAMES_PER_PACKET
    for index in F2_HR_HIGH_FRAMES:
        data[index] = hr_high
    for index in F2_HR_LOW_FRAMES:
        data[index] = hr_low
    for index in F2_SPO2_FRAMES:
        data[index] = encode_spo2_byte(spo2_percent)
    data[F2_FIRMWARE_FRAME] = firmware_revision
    waveform = list(pleth) or [128] * F2_FRAMES_PER_PACKET
    frames = (
        encode_format2_frame(
            (status & ~Format2Status.SYNC) | (Format2Status.SYNC if index == 0 else 0),
            waveform[index % len(waveform)],
            data[index],
        )
        for index in range(F2_FRAMES_PER_PACKET)
    )
    return b"".join(frames)


# --- format 8 ---


def find_sync_frames(buffer: bytes, frame_len: int) -> tuple[list[int], int]:
    """Start offsets of frames whose first byte alone has bit 7 set, and bytes consumed."""
    starts: list[int] = []
    position = 0
    while position + frame_len <= len(buffer):
        frame = buffer[position : position + frame_len]
        if frame[0] & F8_SYNC_BIT and not any(byte & F8_SYNC_BIT for byte in frame[1:]):
            starts.append(position)
            position += frame_len
        else:
            position += 1
    rest = buffer[position:]
    keep = next((i for i, byte in enumerate(rest) if byte & F8_SYNC_BIT), len(rest))
    return starts, position + keep


@dataclass(slots=True)
class Format8Decoder:
    """Stream decoder for format 8 (one frame a second); resynchronises on the sync bit."""

    stats: DecoderStats = field(default_factory=DecoderStats)
    _pending: bytes = b""

    def feed(self, data: bytes) -> list[Reading]:
        """SpO2 and pulse readings for every frame completed by `data`."""
        buffer = self._pending + bytes(data)
        starts, consumed = find_sync_frames(buffer, F8_FRAME_LEN)
        self._pending = buffer[consumed:]
        self.stats.frames += len(starts)
        self.stats.skipped_bytes += consumed - F8_FRAME_LEN * len(starts)
        readings: list[Reading] = []
        for start in starts:
            status1, hr_low, spo2, status2 = buffer[start : start + F8_FRAME_LEN]
            pulse = ((status1 & HR_HIGH_MASK) << HR_HIGH_SHIFT) | hr_low
            quality = status_quality(status1, _F8_QUALITY)
            if status2 & Format8Status2.SENSOR_ALARM:
                quality |= Quality.SENSOR_FAULT
            readings += oximetry_readings(self.stats, spo2_and_pulse_values(spo2, pulse), quality)
        return readings


def encode_format8_frame(
    spo2_percent: int | None,
    pulse_bpm: int | None,
    *,
    status1: Format8Status1 = Format8Status1.ALWAYS_SET,
    status2: Format8Status2 = Format8Status2.SMARTPOINT,
) -> bytes:
    """One format-8 frame as a 9560 / 3150 sends it each second."""
    hr_high, hr_low = _hr_fields(pulse_bpm)
    first = status1 | Format8Status1.ALWAYS_SET | hr_high
    return bytes((first, hr_low, encode_spo2_byte(spo2_percent), status2))


# --- commands ---


def encode_set_data_format(data_format: int) -> bytes:
    """The host command that switches a 9560 / 3150 / OEM III to `data_format` (2, 7, 8, 13)."""
    if not 0 <= data_format <= 0xFF:
        raise ValueError(f"data format {data_format} is not a byte")
    return bytes(
        (STX, OP_SET_DATA_FORMAT, SET_DATA_FORMAT_LEN, DATA_FORMAT_PARAMETER, data_format, ETX)
    )


def decode_set_data_format(command: bytes) -> int:
    """The data format requested by a "set data format" command (for device simulators)."""
    command = bytes(command)
    head = bytes((STX, OP_SET_DATA_FORMAT, SET_DATA_FORMAT_LEN, DATA_FORMAT_PARAMETER))
    if len(command) != len(head) + 2 or not command.startswith(head) or command[-1] != ETX:
        raise DecodeError(FORMAT8_NAME, 0, command, "not a set-data-format command")
    return command[len(head)]


PROTOCOLS = (
    ProtocolSpec(
        name=FORMAT2_NAME,
        title="Nonin serial data format 2 (OEM III module, Xpod 3012), 75 frames/s",
        transports=frozenset({"serial"}),
        new_decoder=Format2Decoder,
        metrics=frozenset({Metric.SPO2, Metric.PULSE}),
        serial=NONIN_SERIAL,
        notes="Streams on power-up; no command needed.",
    ),
    ProtocolSpec(
        name=FORMAT8_NAME,
        title="Nonin serial data format 8 (9560 Onyx II, 3150 WristOx2 over SPP), 1 frame/s",
        transports=frozenset({"serial"}),
        new_decoder=Format8Decoder,
        metrics=frozenset({Metric.SPO2, Metric.PULSE}),
        serial=NONIN_SERIAL,
        start_commands=(encode_set_data_format(8),),
        notes="The device answers the set-format command with ACK 06 or NAK 15.",
    ),
)
