"""AOJ-20A infrared forehead / ear thermometer (distributed by Lepu), over BLE.

Reference: viatomEcho/LepuBle blepro/src/main/java/com/lepu/blepro/ble/cmd/Aoj20aBleCmd.java,
cmd/Aoj20aBleResponse.kt and Aoj20aBleInterface.kt (the vendor SDK); layout in docs
PROTOCOLS.md section 4.8. GATT: service FFE0, write FFE2 (without response), notify FFE1.

Frame, both directions:
  AA | 01 (device type: IR thermometer) | command | length | data[length] | XOR of bytes 1 .. n-2
Replies (device -> host):
  C1 temperature  temp u16 BE in 0.01 °C | mode (1 adult forehead, 2 child forehead, 3 ear,
                  4 object)                       always 3 data bytes, whatever the length byte
  C2 / C4         acknowledge set-time / delete-history
  C3 history      number, year-2000, month, day, hour, minute, temp u16 BE (length 0: end)
  C5 device data  mode | battery level 1-10 (tenths of full) | firmware version
  CE error        code E1-E5 (ERROR_CODES)         always 1 data byte, whatever the length byte
The thermometer sends C1 by itself when a measurement completes; D1 asks for one (the SDK names
it both "get real-time data" and "start a single measurement").

Readings: C1 in a body mode is a temperature in °C with its site (forehead, or tympanic for the
ear mode); C1 in object mode is not a body temperature and is dropped and counted. C5 gives the
battery in %. C3 history records carry no mode (body and object readings cannot be told apart)
and are not reported; acknowledgements and error replies carry no value and yield nothing
(they count as good frames). Notifications may split or merge frames: the framer buffers, and
resynchronises byte by byte on garbage, unknown replies and bad XORs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from functools import reduce
from operator import xor

from devices.protocols.framing import NOT_A_FRAME, HeaderFramer
from devices.protocols.reading import BodySite, Metric, Reading
from devices.protocols.spec import DecoderStats, ProtocolSpec, checked_reading

PROTOCOL_NAME = "aoj-20a"
SERVICE_UUID = "0000ffe0-0000-1000-8000-00805f9b34fb"
NOTIFY_UUID = "0000ffe1-0000-1000-8000-00805f9b34fb"
WRITE_UUID = "0000ffe2-0000-1000-8000-00805f9b34fb"

HEAD = 0xAA
DEVICE_TYPE_IR_THERMOMETER = 0x01
FRAME_PREFIX = bytes((HEAD, DEVICE_TYPE_IR_THERMOMETER))
HEADER_LEN = 4  # head, device type, command, length
CHECKSUM_LEN = 1
MAX_DATA_LEN = 16  # the longest known reply (C3) has 8; a longer length is garbage
TEMP_SCALE = 100  # 0.01 °C per unit
BATTERY_PERCENT_PER_LEVEL = 10


class Command(IntEnum):
    """Host -> thermometer command codes."""

    GET_TEMPERATURE = 0xD1
    SET_TIME = 0xD2
    GET_HISTORY = 0xD3
    DELETE_HISTORY = 0xD4
    GET_DEVICE_DATA = 0xD5


class Reply(IntEnum):
    """Thermometer -> host reply codes."""

    TEMPERATURE = 0xC1
    SET_TIME = 0xC2
    HISTORY = 0xC3
    DELETE_HISTORY = 0xC4
    DEVICE_DATA = 0xC5
    ERROR = 0xCE


class Mode(IntEnum):
    """Measuring mode reported with each temperature."""

    ADULT_FOREHEAD = 1
    CHILD_FOREHEAD = 2
    EAR = 3
    OBJECT = 4


# The vendor SDK reads these replies with a fixed data length and ignores the length byte.
FIXED_DATA_LEN = {Reply.TEMPERATURE: 3, Reply.ERROR: 1}
MODE_SITES: dict[int, BodySite] = {
    Mode.ADULT_FOREHEAD: BodySite.FOREHEAD,
    Mode.CHILD_FOREHEAD: BodySite.FOREHEAD,
    Mode.EAR: BodySite.TYMPANIC,  # an IR ear thermometer reads the ear drum
}
ERROR_CODES = {
    0xE1: "ambient temperature above 40 °C or below 10 °C",
    0xE2: "object temperature below 0 °C",
    0xE3: "object temperature above 100 °C",
    0xE4: "body temperature below 32 °C",
    0xE5: "body temperature above 42.9 °C",
}
_KNOWN_REPLIES = frozenset(int(reply) for reply in Reply)


@dataclass(frozen=True, slots=True)
class AojFrame:
    """One checked frame: its command or reply code and its data bytes."""

    code: int
    data: bytes


def aoj_checksum(frame_without_checksum: bytes | bytearray) -> int:
    """The XOR of every byte after the head (the last byte of a frame)."""
    return reduce(xor, frame_without_checksum[1:], 0)


def encode_aoj_frame(code: int, data: bytes = b"") -> bytes:
    """A frame with head, device type, `code`, length, `data` and XOR."""
    if not 0 <= code <= 0xFF or len(data) > 0xFF:
        raise ValueError(f"code {code:#x} / {len(data)} data bytes do not fit a frame")
    body = FRAME_PREFIX + bytes((code, len(data))) + bytes(data)
    return body + bytes((aoj_checksum(body),))


# Ask for the last temperature (three zero data bytes, as the vendor SDK sends).
GET_TEMPERATURE_COMMAND = encode_aoj_frame(Command.GET_TEMPERATURE, bytes(3))
GET_DEVICE_DATA_COMMAND = encode_aoj_frame(Command.GET_DEVICE_DATA)
GET_HISTORY_COMMAND = encode_aoj_frame(Command.GET_HISTORY)


def encode_set_time(year: int, month: int, day: int, hour: int, minute: int) -> bytes:
    """The command that sets the thermometer's clock (local wall time, minute resolution)."""
    if not 2000 <= year <= 2255:
        raise ValueError(f"year {year} is outside 2000-2255")
    return encode_aoj_frame(Command.SET_TIME, bytes((year - 2000, month, day, hour, minute)))


def encode_temperature_reply(temp_c: float, mode: Mode = Mode.ADULT_FOREHEAD) -> bytes:
    """A C1 temperature reply as the thermometer sends it after a measurement."""
    raw = round(temp_c * TEMP_SCALE)
    if not 0 <= raw <= 0xFFFF:
        raise ValueError(f"{temp_c} °C does not fit the u16 temperature field")
    return encode_aoj_frame(Reply.TEMPERATURE, raw.to_bytes(2, "big") + bytes((mode,)))


def encode_error_reply(code: int) -> bytes:
    """A CE error reply (codes in ERROR_CODES)."""
    return encode_aoj_frame(Reply.ERROR, bytes((code,)))


def encode_device_data_reply(mode: Mode, battery_level: int, version: int = 10) -> bytes:
    """A C5 device-data reply: current mode, battery level 1-10 and firmware version."""
    return encode_aoj_frame(Reply.DEVICE_DATA, bytes((mode, battery_level, version)))


def _data_length(code: int, length_byte: int) -> int | None:
    """How many data bytes follow a header, or None when the header cannot be a reply."""
    if code not in _KNOWN_REPLIES:
        return None
    length = FIXED_DATA_LEN.get(Reply(code), length_byte)
    return length if length <= MAX_DATA_LEN else None


def _frame_len(buffer: bytearray, start: int) -> int | None:
    """Length of the reply at `start` from its code and length bytes (see `HeaderFramer`)."""
    if len(buffer) - start < HEADER_LEN:
        return None
    data_len = _data_length(buffer[start + 2], buffer[start + 3])
    if data_len is None:
        return NOT_A_FRAME
    return HEADER_LEN + data_len + CHECKSUM_LEN


def _is_sound(frame: bytes) -> bool:
    """True when the last byte of a whole frame is its XOR."""
    return aoj_checksum(frame[:-1]) == frame[-1]


def _new_framer() -> HeaderFramer:
    """A framer for `AA 01` replies."""
    return HeaderFramer(FRAME_PREFIX, _frame_len, _is_sound)


@dataclass(slots=True)
class AojDecoder:
    """Stream decoder for AOJ-20A replies; resynchronises on the `AA 01` prefix and the XOR."""

    stats: DecoderStats = field(default_factory=DecoderStats)
    _framer: HeaderFramer = field(default_factory=_new_framer)

    def feed(self, data: bytes) -> list[Reading]:
        """Readings of every reply completed by `data`."""
        readings: list[Reading] = []
        for frame in self._framer.feed(data, self.stats):
            readings.extend(self._readings(AojFrame(frame[2], frame[HEADER_LEN:-1])))
        return readings

    def _readings(self, frame: AojFrame) -> list[Reading]:
        """The temperature of a C1 reply, the battery of a C5 reply; nothing for the others."""
        if frame.code == Reply.TEMPERATURE:
            temp_c = int.from_bytes(frame.data[:2], "big") / TEMP_SCALE
            mode = frame.data[2]
            if mode == Mode.OBJECT:
                self.stats.dropped_values += 1
                return []
            site = MODE_SITES.get(mode)  # None for a mode this module does not know
            reading = checked_reading(self.stats, Metric.TEMP, temp_c, site=site)
        elif frame.code == Reply.DEVICE_DATA and len(frame.data) >= 2:
            battery_percent = frame.data[1] * BATTERY_PERCENT_PER_LEVEL
            reading = checked_reading(self.stats, Metric.BATTERY, float(battery_percent))
        else:
            return []
        return [reading] if reading is not None else []


PROTOCOLS = (
    ProtocolSpec(
        name=PROTOCOL_NAME,
        title="AOJ-20A infrared forehead / ear thermometer (Lepu, AA 01 frames)",
        transports=frozenset({"ble"}),
        new_decoder=AojDecoder,
        metrics=frozenset({Metric.TEMP, Metric.BATTERY}),
        ble_service_uuids=(SERVICE_UUID,),
        ble_notify_uuids=(NOTIFY_UUID,),
        ble_write_uuid=WRITE_UUID,
        name_patterns=("AOJ-20A",),
        start_commands=(GET_DEVICE_DATA_COMMAND,),
        notes=(
            "Temperatures are pushed when a measurement completes; no keep-alive. "
            "GET_TEMPERATURE_COMMAND re-sends the last one (not sent on connect: it would "
            "repeat an old measurement at the time of arrival)."
        ),
    ),
)
