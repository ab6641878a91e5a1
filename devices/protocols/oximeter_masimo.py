"""Masimo Rad-8 / Radical-5 / Radical-7 "ASCII 1" serial output (RS-232, 9600 8N1).

References (layout in docs PROTOCOLS.md section 5.5): real Rad-8 lines in yahnatan/pulseox
`README.md` and remkolems/masimo-datacapture `README.md` / `masimo-capture.py`; the EXC and
ALARM bit tables of MD PnP `poxrad_discrete.h`; the Rad-8 Operator's Manual (trend format).
The device must be set to ASCII 1 ("AS1"; the Rad-8 default is ASCII 2). No command is sent.

One line a second, CR LF terminated, space-separated tokens:
  MM/DD/YY HH:MM:SS [SN=...] SPO2=098% BPM=097 PI=03.60% [SPCO=... SPMET=... DESAT=...
  PIDELTA=... PVI=... EXC1=...] ALARM=hhhh EXC=hhhhhh
Field sets differ by model and firmware (Radical-5 has no SN and 3-digit EXC; a Rad-8 without
sensor omits PI; a Radical-7 prints PI without "%"), so the line is read as KEY=VALUE tokens,
never by column. Unavailable values are dashes (`---`, `--.--`); a value of 0 also means "no
data" (Rad-8 manual, trend sample: `SpO2=000 PR=000 PI=00.00` while off the patient).
EXC is a hex bit field of exceptions (table below); ALARM is read but maps to no quality flag.

The date and time are the device's wall clock, in local time as set on its front panel (Masimo
devices have no time-zone setting). `device_time_s` is that wall clock read as if it were UTC;
the transport, which knows the site's zone, shifts it to real UTC.
"""

from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass, field

from devices.protocols.reading import INVALIDATING, DecodeError, Metric, Quality, Reading
from devices.protocols.spec import DecoderStats, ProtocolSpec, SerialSettings, checked_reading

PROTOCOL_NAME = "masimo-ascii"
MAX_LINE_BYTES = 512  # longest real line (Radical-7 with every field) is under 250 bytes
LINE_END = re.compile(rb"[\r\n]")
DATE = re.compile(r"(\d\d)/(\d\d)/(\d\d)")  # MM/DD/YY
TIME = re.compile(r"(\d\d):(\d\d):(\d\d)")
NUMBER = re.compile(r"\d{1,4}(?:\.\d{1,3})?")
HEX = re.compile(r"[0-9A-Fa-f]{1,8}")
YEAR_BASE = 2000  # two-digit years; ASCII 1 devices date from 2005 on
PERCENT = "%"
UNAVAILABLE = "-"
EXC_TEXT_SEPARATOR = ":"  # trend-style "EXC=820:OffPat,SET"

# EXC (exception) bits, MD PnP poxrad_discrete.h / Rad-8 manual.
EXC_NO_SENSOR = 0x000001
EXC_DEFECTIVE_SENSOR = 0x000002
EXC_LOW_PERFUSION = 0x000004
EXC_PULSE_SEARCH = 0x000008
EXC_INTERFERENCE = 0x000010
EXC_SENSOR_OFF = 0x000020  # off the patient
EXC_AMBIENT_LIGHT = 0x000040
EXC_UNRECOGNIZED_SENSOR = 0x000080
EXC_INCOMPATIBLE_SENSOR = 0x000100
EXC_LOW_SIGNAL_IQ = 0x000400
EXC_MASIMO_SET = 0x000800  # normal: the full SET algorithm is running
EXC_NO_CABLE = 0x001000
EXC_SENSOR_CALIBRATING = 0x020000

# Exception -> Quality. The invalidating ones are exactly PROTOCOLS.md's validity rule
# (0x1, 0x2, 0x8, 0x20, 0x80, 0x100, 0x1000, 0x20000).
EXC_QUALITY = (
    (EXC_NO_SENSOR, Quality.SENSOR_FAULT),
    (EXC_DEFECTIVE_SENSOR, Quality.SENSOR_FAULT),
    (EXC_UNRECOGNIZED_SENSOR, Quality.SENSOR_FAULT),
    (EXC_INCOMPATIBLE_SENSOR, Quality.SENSOR_FAULT),
    (EXC_NO_CABLE, Quality.SENSOR_FAULT),
    (EXC_SENSOR_OFF, Quality.FINGER_OUT),
    (EXC_PULSE_SEARCH, Quality.SEARCHING),
    (EXC_SENSOR_CALIBRATING, Quality.SEARCHING),
    (EXC_LOW_PERFUSION, Quality.LOW_PERFUSION),
    (EXC_INTERFERENCE, Quality.LOW_SIGNAL),
    (EXC_AMBIENT_LIGHT, Quality.LOW_SIGNAL),
    (EXC_LOW_SIGNAL_IQ, Quality.LOW_SIGNAL),
)

# ALARM bits (read for completeness; alarms are decided by the gateway, not the device).
ALARM_ACTIVE = 0x0010
ALARM_SILENCED = 0x0020


@dataclass(frozen=True, slots=True)
class Ascii1Line:
    """The fields pulsegate uses from one ASCII 1 line (None = unavailable on the device)."""

    spo2_percent: float | None
    pulse_bpm: float | None
    pi_percent: float | None
    has_pi: bool
    exceptions: int
    alarms: int
    device_time_s: float | None


def exception_quality(exceptions: int) -> Quality:
    """Quality flags for an EXC bit field."""
    quality = Quality.OK
    for bit, flag in EXC_QUALITY:
        if exceptions & bit:
            quality |= flag
    return quality


def _number(key: str, raw: str, line: bytes) -> float | None:
    """A numeric field: None when dashed out or zero, DecodeError when garbled."""
    value = raw.removesuffix(PERCENT)
    if UNAVAILABLE in value:
        return None
    if not NUMBER.fullmatch(value):
        raise DecodeError(PROTOCOL_NAME, max(line.find(key.encode()), 0), line, f"{key}={raw!r}")
    number = float(value)
    return number if number > 0 else None


def _bits(key: str, raw: str | None, line: bytes) -> int:
    """A hex bit field (absent = 0); DecodeError when garbled."""
    if raw is None:
        return 0
    value = raw.partition(EXC_TEXT_SEPARATOR)[0]
    if not HEX.fullmatch(value):
        raise DecodeError(PROTOCOL_NAME, max(line.find(key.encode()), 0), line, f"{key}={raw!r}")
    return int(value, 16)


def _wall_clock_s(date: re.Match[str] | None, clock: re.Match[str] | None) -> float | None:
    """The line's date and time as epoch seconds of that wall clock; None if absent or invalid."""
    if date is None or clock is None:
        return None
    month, day, year = (int(part) for part in date.groups())
    hour, minute, second = (int(part) for part in clock.groups())
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 60):
        return None
    if day > calendar.monthrange(YEAR_BASE + year, month)[1]:
        return None
    return float(calendar.timegm((YEAR_BASE + year, month, day, hour, minute, second, 0, 0, 0)))


def decode_ascii1_line(line: bytes) -> Ascii1Line | None:
    """The fields of one line (without CR LF); None when it is not a data line.

    Raises DecodeError for a data line (one with SPO2=) that is garbled: non-ASCII bytes,
    stray tokens, missing BPM, or values that are neither numbers nor dashes.
    """
    text = line.decode("ascii", errors="replace")
    fields: dict[str, str] = {}
    stray: list[str] = []
    date = clock = None
    for token in text.split():
        key, separator, value = token.partition("=")
        if separator:
            fields[key.upper()] = value
        elif date is None and (match := DATE.fullmatch(token)):
            date = match
        elif clock is None and (match := TIME.fullmatch(token)):
            clock = match
        else:
            stray.append(token)
    if "SPO2" not in fields:
        return None
    if stray or "\ufffd" in text:
        raise DecodeError(PROTOCOL_NAME, 0, line, f"unexpected text {' '.join(stray)!r}")
    pulse_raw = fields.get("BPM", fields.get("PR"))
    if pulse_raw is None:
        raise DecodeError(PROTOCOL_NAME, 0, line, "no BPM field")
    pi_raw = fields.get("PI")
    return Ascii1Line(
        spo2_percent=_number("SPO2", fields["SPO2"], line),
        pulse_bpm=_number("BPM", pulse_raw, line),
        pi_percent=None if pi_raw is None else _number("PI", pi_raw, line),
        has_pi=pi_raw is not None,
        exceptions=_bits("EXC", fields.get("EXC"), line),
        alarms=_bits("ALARM", fields.get("ALARM"), line),
        device_time_s=_wall_clock_s(date, clock),
    )


@dataclass(slots=True)
class MasimoAsciiDecoder:
    """Line framer and decoder for ASCII 1.

    Lines are split on CR or LF. A run of more than MAX_LINE_BYTES without a line end is
    dropped (counted as skipped bytes) up to the next line end, so noise cannot grow the
    buffer. Lines that are not data lines are skipped; garbled data lines count as bad frames.
    """

    stats: DecoderStats = field(default_factory=DecoderStats)
    _pending: bytes = b""
    _discarding: bool = False  # inside an over-long run, until the next line end

    def feed(self, data: bytes) -> list[Reading]:
        """SpO2, pulse and (when the line has it) PI readings for every line completed."""
        *lines, rest = LINE_END.split(self._pending + bytes(data))
        readings: list[Reading] = []
        for line in lines:
            if self._discarding:
                self.stats.skipped_bytes += len(line)
                self._discarding = False
            elif line:
                readings += self._decode_line(line)
        if len(rest) > MAX_LINE_BYTES:
            self.stats.skipped_bytes += len(rest)
            self._discarding = True
            rest = b""
        self._pending = rest
        return readings

    def _decode_line(self, line: bytes) -> list[Reading]:
        """Readings of one complete line; counts what it skips."""
        if len(line) > MAX_LINE_BYTES:
            self.stats.skipped_bytes += len(line)
            return []
        try:
            decoded = decode_ascii1_line(line)
        except DecodeError:
            self.stats.bad_frames += 1
            return []
        if decoded is None:
            self.stats.skipped_bytes += len(line)
            return []
        self.stats.frames += 1
        quality = exception_quality(decoded.exceptions)
        usable = not quality & INVALIDATING
        values = [(Metric.SPO2, decoded.spo2_percent), (Metric.PULSE, decoded.pulse_bpm)]
        if decoded.has_pi:
            values.append((Metric.PI, decoded.pi_percent))
        readings = []
        for metric, value in values:
            reading = checked_reading(
                self.stats,
                metric,
                value if usable else None,
                quality,
                device_time_s=decoded.device_time_s,
            )
            if reading is not None:
                readings.append(reading)
        return readings


def _field(value: float | None, width: int, decimals: int = 0) -> str:
    """A zero-padded number as the device prints it, or dashes in the same shape."""
    if value is None:
        return "-" * (width - decimals - 1) + "." + "-" * decimals if decimals else "-" * width
    return f"{value:0{width}.{decimals}f}"


def encode_ascii1_line(
    spo2_percent: int | None,
    pulse_bpm: int | None,
    pi_percent: float | None = None,
    *,
    exceptions: int = EXC_MASIMO_SET,
    alarms: int = 0,
    device_time_s: float | None = None,
    serial_number: str = "0000000000",
) -> bytes:
    """One Rad-8 style ASCII 1 line with CR LF (None = dashes, as the device prints them)."""
    if spo2_percent is not None and not 0 <= spo2_percent <= 100:
        raise ValueError(f"SpO2 {spo2_percent} out of range")
    if pulse_bpm is not None and not 0 <= pulse_bpm <= 999:
        raise ValueError(f"pulse {pulse_bpm} does not fit 3 digits")
    if pi_percent is not None and not 0 <= pi_percent < 100:
        raise ValueError(f"PI {pi_percent} does not fit NN.NN")
    prefix = ""
    if device_time_s is not None:
        prefix = time.strftime("%m/%d/%y %H:%M:%S ", time.gmtime(int(device_time_s)))
    return (
        f"{prefix}SN={serial_number} SPO2={_field(spo2_percent, 3)}% "
        f"BPM={_field(pulse_bpm, 3)} PI={_field(pi_percent, 5, 2)}% "
        f"SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+-- "
        f"ALARM={alarms:04X} EXC={exceptions:06X}\r\n"
    ).encode("ascii")


PROTOCOLS = (
    ProtocolSpec(
        name=PROTOCOL_NAME,
        title="Masimo Rad-8 / Radical-5 / Radical-7 ASCII 1 serial output, 1 line/s",
        transports=frozenset({"serial"}),
        new_decoder=MasimoAsciiDecoder,
        metrics=frozenset({Metric.SPO2, Metric.PULSE, Metric.PI}),
        serial=SerialSettings(baudrate=9600),
        notes="Set the device's serial output to ASCII 1 (AS1) in menu level 3.",
    ),
)
