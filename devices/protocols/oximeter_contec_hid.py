"""Contec "new" protocol: CMS50D-BT over BLE (write 0xFF01, notify 0xFF02) and the USB-HID
CMS50 (VID 0x28E9, PID 0x028A, 64-byte reports right-padded with 0x00).

Reference: RavuAlHemio/poxymeter `contrib/poxymeter-protocol.txt` (annotated real HID traffic)
and `src/oximeter.rs`; nringelstein/CMS50D-BT `cms50d_bt_driver.py` (BLE start sequence);
layout in docs PROTOCOLS.md sections 4.6 and 5.3.

Framing, both directions:
  code (bit 7 = 1) | payload bytes (bit 7 = 0) | checksum = (sum of all preceding bytes) & 0x7F
The code byte is the only one with bit 7 set, so the stream resynchronises on it. A response
code is usually the command code XOR 0x70 (live data 0x9B -> 0xEB).

Live data (response 0xEB, after the host sends 9B 00 1B):
  EB 00 | status | pleth | bar? | chk            waveform, ~20 Hz; pleth 64 = finger out
  EB 01 | status | PR | SpO2 | x | y | chk       values, ~1 Hz; status bit 1 = values invalid;
                                                 PR / SpO2 0x7F = no value; x, y not decoded
  EB 7F | chk                                    acknowledges "stop live data" (9B 7F 1A)
A pulse rate above 127 bpm cannot be told from these bytes (its encoding is not known), and
0x7F is the no-value marker, so the protocol carries pulse rates of 1-126 bpm only.
Other responses (device name, version, stored data) end at the next code byte and are
recognised by their checksum, then skipped. 0x00 between packets is HID report padding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from devices.protocols.oximeter_contec_v7 import STOP_REALTIME_COMMAND
from devices.protocols.oximeter_contec_v7 import encode_command as encode_v7_command
from devices.protocols.reading import Metric, Quality, Reading
from devices.protocols.spec import DecoderStats, ProtocolSpec, checked_reading

PROTOCOL_NAME = "contec-hid"
CODE_BIT = 0x80
CHECKSUM_MASK = 0x7F
PADDING = 0x00
MAX_FRAME_LEN = 128  # longest response seen (stored-data blocks) is about 30 bytes
KEEPALIVE_INTERVAL_S = 4.0  # the sources send it every 5 s; keep a margin

BLE_WRITE_UUID = "0000ff01-0000-1000-8000-00805f9b34fb"
BLE_NOTIFY_UUID = "0000ff02-0000-1000-8000-00805f9b34fb"
USB_VENDOR_ID = 0x28E9
USB_PRODUCT_ID = 0x028A

# Command codes (host to device).
CMD_GET_DEVICE_NAME = 0x81
CMD_GET_VERSION = 0x82
CMD_KEEPALIVE = 0x9A  # no response
CMD_LIVE_DATA = 0x9B
LIVE_START_FULL = 0x00  # waveform and values
LIVE_START_VALUES = 0x01  # values only, delivered in batches about every 3 s
LIVE_STOP = 0x7F

# Live-data response and its sub-types, with the full frame length of each.
CODE_LIVE_DATA = 0xEB
LIVE_WAVE = 0x00
LIVE_VALUES = 0x01
LIVE_STOPPED = 0x7F
LIVE_FRAME_LENGTHS = {LIVE_WAVE: 6, LIVE_VALUES: 8, LIVE_STOPPED: 3}

STATUS_VALUES_INVALID = 0x02
STATUS_GOOD = 0x04  # set on every valid values frame seen
WAVE_STATUS_FINGER_IN = 0x06  # waveform status seen with a finger in (0x46 on beats)
VALUE_INVALID = 0x7F
FINGER_OUT_PLETH = 0x40


def checksum(data: bytes) -> int:
    """The protocol checksum of `data`: the sum of its bytes, modulo 128."""
    return sum(data) & CHECKSUM_MASK


def encode_command(code: int, payload: bytes = b"") -> bytes:
    """One host command: `code`, `payload` (7-bit bytes) and the checksum, e.g. `9B 00 1B`."""
    if not code & CODE_BIT or any(byte & CODE_BIT for byte in payload):
        raise ValueError("the code needs bit 7 set and the payload bytes bit 7 clear")
    body = bytes((code, *payload))
    return body + bytes((checksum(body),))


GET_DEVICE_NAME_COMMAND = encode_command(CMD_GET_DEVICE_NAME)
GET_VERSION_COMMAND = encode_command(CMD_GET_VERSION)
KEEPALIVE_COMMAND = encode_command(CMD_KEEPALIVE)
START_LIVE_COMMAND = encode_command(CMD_LIVE_DATA, bytes((LIVE_START_FULL,)))
START_VALUES_COMMAND = encode_command(CMD_LIVE_DATA, bytes((LIVE_START_VALUES,)))
STOP_LIVE_COMMAND = encode_command(CMD_LIVE_DATA, bytes((LIVE_STOP,)))
# The sequence of the BLE driver: name, version, keep-alive, then live data.
START_COMMANDS = (
    GET_DEVICE_NAME_COMMAND,
    GET_VERSION_COMMAND,
    KEEPALIVE_COMMAND,
    START_LIVE_COMMAND,
)
# Sent first on the USB-HID path only: V7.0-style packets (0xA7, then "stop real-time").
V7_INIT_CODE = 0xA7  # a V7.0 storage-family command code; its meaning here is not known
HID_INIT_COMMANDS = (encode_v7_command(V7_INIT_CODE), STOP_REALTIME_COMMAND)


def encode_values_frame(spo2_percent: int | None, pulse_bpm: int | None) -> bytes:
    """An `EB 01` values frame; None (or both None) is sent as the device does: 0x7F, invalid."""
    for value in (spo2_percent, pulse_bpm):
        if value is not None and not 0 <= value < VALUE_INVALID:
            raise ValueError(f"{value} does not fit a 7-bit field below the 0x7F marker")
    invalid = spo2_percent is None and pulse_bpm is None
    status = STATUS_GOOD | (STATUS_VALUES_INVALID if invalid else 0)
    pulse = VALUE_INVALID if pulse_bpm is None else pulse_bpm
    spo2 = VALUE_INVALID if spo2_percent is None else spo2_percent
    body = bytes((CODE_LIVE_DATA, LIVE_VALUES, status, pulse, spo2, VALUE_INVALID, 0))
    return body + bytes((checksum(body),))


def encode_wave_frame(pleth: int, *, status: int = WAVE_STATUS_FINGER_IN, bar: int = 5) -> bytes:
    """An `EB 00` waveform frame (pleth 0x40 is what the device sends with no finger)."""
    body = bytes((CODE_LIVE_DATA, LIVE_WAVE, status & 0x7F, pleth & 0x7F, bar & 0x7F))
    return body + bytes((checksum(body),))


def _has_valid_checksum(frame: bytes) -> bool:
    return len(frame) >= 2 and frame[-1] == checksum(frame[:-1])


@dataclass(slots=True)
class ContecHidDecoder:
    """Stream decoder for BLE notifications or HID reports of the new Contec protocol."""

    stats: DecoderStats = field(default_factory=DecoderStats)
    _pending: bytes = b""

    def feed(self, data: bytes) -> list[Reading]:
        """Readings (SpO2 and pulse) of every values frame completed by `data`."""
        buffer = self._pending + bytes(data)
        array = np.frombuffer(buffer, dtype=np.uint8)
        starts = np.flatnonzero(array & CODE_BIT).tolist()
        self._skip(buffer[: starts[0] if starts else len(buffer)])
        consumed = len(buffer)
        readings: list[Reading] = []
        for index, start in enumerate(starts):
            is_last = index + 1 == len(starts)
            run = buffer[start : len(buffer) if is_last else starts[index + 1]]
            length = self._frame_length(run)
            if length is not None and len(run) >= length:
                readings.extend(self._fixed_frame(run[:length]))
                self._skip(run[length:])
            elif not is_last:  # the next code byte ends this frame
                self._variable_frame(run, truncated=length is not None)
            elif len(run) <= MAX_FRAME_LEN:  # may still be completed by the next feed
                consumed = start
                break
            else:
                self._reject(run)
        self._pending = buffer[consumed:]
        return readings

    def _skip(self, gap: bytes) -> None:
        """Count the bytes of `gap` that are neither in a frame nor HID padding."""
        self.stats.skipped_bytes += len(gap) - gap.count(PADDING)

    def _reject(self, run: bytes) -> None:
        """Count a bad frame; its bytes, up to any trailing HID padding, are skipped."""
        self.stats.bad_frames += 1
        self.stats.skipped_bytes += len(run.rstrip(bytes((PADDING,))))

    @staticmethod
    def _frame_length(run: bytes) -> int | None:
        """Length of a live-data frame starting `run`; None when it is not known (yet)."""
        if run[0] != CODE_LIVE_DATA or len(run) < 2:
            return None
        return LIVE_FRAME_LENGTHS.get(run[1])

    def _fixed_frame(self, frame: bytes) -> list[Reading]:
        """Check and decode one complete live-data frame."""
        if not _has_valid_checksum(frame):
            self._reject(frame)
            return []
        self.stats.frames += 1
        if frame[1] != LIVE_VALUES:
            return []
        status, pulse, spo2 = frame[2], frame[3], frame[4]
        quality = Quality.SEARCHING if status & STATUS_VALUES_INVALID else Quality.OK
        readings = []
        for metric, raw in ((Metric.SPO2, spo2), (Metric.PULSE, pulse)):
            present = quality == Quality.OK and raw != VALUE_INVALID
            reading = checked_reading(self.stats, metric, float(raw) if present else None, quality)
            if reading is not None:
                readings.append(reading)
        return readings

    def _variable_frame(self, run: bytes, *, truncated: bool) -> None:
        """A frame delimited by the next code byte: a reply to recognise and skip, or garbage."""
        frame = run.rstrip(bytes((PADDING,)))
        # A checksum of 0x00 looks like padding; try it back when the stripped frame fails.
        stripped_zero = len(frame) < len(run)
        valid = _has_valid_checksum(frame) or (
            stripped_zero and _has_valid_checksum(frame + bytes((PADDING,)))
        )
        if valid and not truncated:
            self.stats.frames += 1
        else:
            self._reject(run)


PROTOCOLS = (
    ProtocolSpec(
        name=PROTOCOL_NAME,
        title="Contec new protocol (CMS50D-BT over BLE; USB-HID CMS50 28E9:028A)",
        transports=frozenset({"ble"}),
        new_decoder=ContecHidDecoder,
        metrics=frozenset({Metric.SPO2, Metric.PULSE}),
        # The parent service is not known for sure (probably 0xFF00): discover by characteristic.
        ble_notify_uuids=(BLE_NOTIFY_UUID,),
        ble_write_uuid=BLE_WRITE_UUID,
        name_patterns=("CMS50D-BT",),
        start_commands=START_COMMANDS,
        keepalive_command=KEEPALIVE_COMMAND,
        keepalive_interval_s=KEEPALIVE_INTERVAL_S,
        notes=(
            "Also USB-HID VID 0x28E9 PID 0x028A: send HID_INIT_COMMANDS first; output reports "
            "are report ID 0x00 + command, right-padded with 0x00."
        ),
    ),
)
