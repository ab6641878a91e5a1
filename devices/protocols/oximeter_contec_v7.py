"""Contec V7.0 command protocol (newer CMS50D+/E/F, CMS60C; USB-serial 115200 8N1, or SPP).

Reference: Contec "Communication protocol of pulse oximeter V7.0.pdf" (2010-07-08, in
InfantLab/Contec-Pulse-Oximeter-in-Matlab @334fc64 and albertcbraun/CMS50FW); packet lengths
cross-checked with kaivol/pulox `contec-protocol/src/incoming_package.rs` and with the real
CMS60C session in InfantLab `Data/caspar reverse engineer.txt`; layout in PROTOCOLS.md 5.2.

Every packet, in both directions:
  type (bit 7 = 0) | high-bits byte (bit 7 = 1; bit i = bit 7 of data byte i)
                   | data bytes, each sent with bit 7 forced to 1
  data[i] = (byte & 0x7F) | (((high >> i) & 1) << 7)
No checksum: a byte with bit 7 = 0 starts a packet, so the stream resynchronises on it.

Host commands are type 0x7D with seven data bytes: the command code, then six zeros
(start real-time 0xA1, stop 0xA2, "inform device connected" 0xAF, which the document asks the
host to send at least once every 5 s while connected).

Real-time data, type 0x01, 60 packets/s, seven data bytes:
  d0: bits 0-3 signal strength; bit 4 searching too long; bit 5 low SpO2; bit 6 pulse beep;
      bit 7 probe error ("finger out"; pleth is then 64)
  d1: bits 0-6 pleth; bit 7 searching for pulse
  d2: bits 0-3 bargraph; bit 4 = 1: PI invalid or not supported
  d3: pulse rate, 1-254 bpm, 0xFF = no value
  d4: SpO2, 1-100 %, 0x7F = no value
  d5-d6: PI u16 LE in 0.01 %, 0xFFFF = no value
While searching or finger-out the values are stale (the CMS60C's first packet after the finger
went in still said "searching" and carried PR 210), so they are reported missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from devices.protocols.reading import INVALIDATING, Metric, Quality, Reading
from devices.protocols.spec import DecoderStats, ProtocolSpec, SerialSettings, checked_reading

PROTOCOL_NAME = "contec-v7"
SERIAL_BAUDRATE = 115200
KEEPALIVE_INTERVAL_S = 4.0  # the V7.0 document asks for one at least every 5 s; keep a margin

HIGH_BIT = 0x80
MAX_DATA_BYTES = 7  # the high-bits byte carries bit 7 of at most seven data bytes

# Packet types (first byte).
TYPE_REALTIME = 0x01
TYPE_COMMAND = 0x7D  # host to device; appears in logs that record both directions

# Command codes (first data byte of a TYPE_COMMAND packet).
CMD_START_REALTIME = 0xA1
CMD_STOP_REALTIME = 0xA2
CMD_INFORM_CONNECTED = 0xAF

# Total packet length (type + high-bits byte + data bytes) of every type the decoder knows.
PACKET_LENGTHS: dict[int, int] = {
    TYPE_REALTIME: 9,
    0x02: 9,  # model name, ASCII (undocumented; answer to 0xA8 in the CMS60C session)
    0x03: 9,  # manufacturer, ASCII (undocumented; answer to 0xA9 in the CMS60C session)
    0x04: 9,  # device identifier
    0x05: 9,  # user information
    0x06: 4,  # undocumented; answer to 0xA0 in the CMS60C session
    0x07: 8,  # storage start date
    0x08: 8,  # storage data length
    0x09: 6,  # storage data with PI
    0x0A: 4,  # storage segment amount
    0x0B: 4,  # command feedback: command, reason code
    0x0C: 2,  # free feedback (no data)
    0x0D: 3,  # disconnect notice
    0x0E: 3,  # PI support
    0x0F: 8,  # storage data, three SpO2/PR pairs
    0x10: 3,  # user amount
    0x11: 9,  # device notice
    0x12: 8,  # storage start time
    0x15: 9,  # storage data identifiers
    TYPE_COMMAND: 9,
}

# Real-time data byte flags.
SIGNAL_MASK = 0x0F
SEARCHING_TOO_LONG_BIT = 0x10  # d0
LOW_SPO2_BIT = 0x20  # d0
PULSE_BEEP_BIT = 0x40  # d0
PROBE_ERROR_BIT = 0x80  # d0
SEARCHING_BIT = 0x80  # d1
PI_INVALID_BIT = 0x10  # d2
FINGER_OUT_PLETH = 64  # the pleth value the device sends with a probe error
PR_INVALID = 0xFF
SPO2_INVALID = 0x7F
PI_INVALID = 0xFFFF
PI_RAW_PER_PERCENT = 100  # PI is sent in 0.01 %


def decode_data_bytes(packet: bytes) -> bytes:
    """The data bytes of one packet, with bit 7 restored from the high-bits byte."""
    high = packet[1]
    return bytes(
        (byte & 0x7F) | (((high >> index) & 1) << 7) for index, byte in enumerate(packet[2:])
    )


def encode_packet(packet_type: int, data: bytes) -> bytes:
    """One packet of `packet_type` carrying up to seven data bytes (either direction)."""
    if not 0 <= packet_type < HIGH_BIT:
        raise ValueError(f"packet type {packet_type:#x} must have bit 7 clear")
    if len(data) > MAX_DATA_BYTES:
        raise ValueError(f"{len(data)} data bytes; a packet carries at most {MAX_DATA_BYTES}")
    high = HIGH_BIT
    for index, byte in enumerate(data):
        high |= (byte >> 7) << index
    return bytes((packet_type, high, *(byte | HIGH_BIT for byte in data)))


def encode_command(code: int) -> bytes:
    """The 9-byte host command `code` (six zero parameters), e.g. `7D 81 A1 80 80 80 80 80 80`."""
    return encode_packet(TYPE_COMMAND, bytes((code, 0, 0, 0, 0, 0, 0)))


START_REALTIME_COMMAND = encode_command(CMD_START_REALTIME)
STOP_REALTIME_COMMAND = encode_command(CMD_STOP_REALTIME)
KEEPALIVE_COMMAND = encode_command(CMD_INFORM_CONNECTED)


def encode_realtime_packet(
    spo2_percent: int | None,
    pulse_bpm: int | None,
    *,
    pi_percent: float | None = None,
    pleth: int = 50,
    signal_strength: int = 5,
    bargraph: int = 5,
    probe_error: bool = False,
    searching: bool = False,
    searching_too_long: bool = False,
    beep: bool = False,
) -> bytes:
    """One type-0x01 real-time packet as the oximeter sends it (None = the no-value marker).

    `pi_percent` None sends the "PI invalid" bit and 0xFFFF, as devices without PI do.
    """
    spo2 = SPO2_INVALID if spo2_percent is None else spo2_percent
    pulse = PR_INVALID if pulse_bpm is None else pulse_bpm
    pi_raw = PI_INVALID if pi_percent is None else round(pi_percent * PI_RAW_PER_PERCENT)
    if not (0 <= spo2 <= 0xFF and 0 <= pulse <= 0xFF and 0 <= pi_raw <= PI_INVALID):
        raise ValueError(f"SpO2 {spo2} / pulse {pulse} / PI {pi_raw} out of the field ranges")
    d0 = (signal_strength & SIGNAL_MASK) | (PULSE_BEEP_BIT if beep else 0)
    d0 |= (PROBE_ERROR_BIT if probe_error else 0) | (
        SEARCHING_TOO_LONG_BIT if searching_too_long else 0
    )
    d1 = (FINGER_OUT_PLETH if probe_error else pleth & 0x7F) | (SEARCHING_BIT if searching else 0)
    d2 = (bargraph & 0x0F) | (PI_INVALID_BIT if pi_percent is None else 0)
    data = bytes((d0, d1, d2, pulse, spo2, pi_raw & 0xFF, pi_raw >> 8))
    return encode_packet(TYPE_REALTIME, data)


@dataclass(slots=True)
class ContecV7Decoder:
    """Stream decoder for V7.0 packets: real-time data becomes readings, other packets are
    recognised and skipped, anything else is skipped byte by byte up to the next type byte."""

    stats: DecoderStats = field(default_factory=DecoderStats)
    _pending: bytes = b""

    def feed(self, data: bytes) -> list[Reading]:
        """Readings (SpO2, pulse and, when the device has it, PI) of every completed packet."""
        buffer = self._pending + bytes(data)
        array = np.frombuffer(buffer, dtype=np.uint8)
        starts = np.flatnonzero((array & HIGH_BIT) == 0).tolist()
        # Bytes before the first type byte can never begin a packet.
        self.stats.skipped_bytes += starts[0] if starts else len(buffer)
        consumed = len(buffer)
        readings: list[Reading] = []
        for index, start in enumerate(starts):
            is_last = index + 1 == len(starts)
            run_end = len(buffer) if is_last else starts[index + 1]
            length = PACKET_LENGTHS.get(buffer[start])
            if length is None:  # unknown type: skip it and its continuation bytes
                self.stats.skipped_bytes += run_end - start
            elif run_end - start >= length:
                self.stats.frames += 1
                self.stats.skipped_bytes += run_end - start - length
                if buffer[start] == TYPE_REALTIME:
                    readings.extend(self._realtime_readings(buffer[start : start + length]))
            elif is_last:  # incomplete: wait for the rest
                consumed = start
                break
            else:  # cut short by the next type byte
                self.stats.bad_frames += 1
                self.stats.skipped_bytes += run_end - start
        self._pending = buffer[consumed:]
        return readings

    def _realtime_readings(self, packet: bytes) -> list[Reading]:
        """SpO2, pulse and (if the device reports it) PI of one real-time packet."""
        d0, d1, d2, pulse, spo2, pi_low, pi_high = decode_data_bytes(packet)
        quality = Quality.OK
        if d0 & PROBE_ERROR_BIT:
            quality |= Quality.FINGER_OUT
        if d1 & SEARCHING_BIT or d0 & SEARCHING_TOO_LONG_BIT:
            quality |= Quality.SEARCHING
        usable = not quality & INVALIDATING
        values: list[tuple[Metric, float | None]] = [
            (Metric.SPO2, float(spo2) if usable and spo2 not in (0, SPO2_INVALID) else None),
            (Metric.PULSE, float(pulse) if usable and pulse not in (0, PR_INVALID) else None),
        ]
        if not d2 & PI_INVALID_BIT:
            pi_raw = pi_low | pi_high << 8
            pi_valid = usable and pi_raw != PI_INVALID
            values.append((Metric.PI, pi_raw / PI_RAW_PER_PERCENT if pi_valid else None))
        readings = []
        for metric, value in values:
            reading = checked_reading(self.stats, metric, value, quality)
            if reading is not None:
                readings.append(reading)
        return readings


PROTOCOLS = (
    ProtocolSpec(
        name=PROTOCOL_NAME,
        title="Contec V7.0 command protocol (CMS50D+/E/F, CMS60C; USB-serial or SPP)",
        transports=frozenset({"serial"}),
        new_decoder=ContecV7Decoder,
        metrics=frozenset({Metric.SPO2, Metric.PULSE, Metric.PI}),
        serial=SerialSettings(baudrate=SERIAL_BAUDRATE),
        start_commands=(START_REALTIME_COMMAND,),
        keepalive_command=KEEPALIVE_COMMAND,
        keepalive_interval_s=KEEPALIVE_INTERVAL_S,
        notes="Silent until the start command is sent; send the keep-alive while connected.",
    ),
)
