"""The vocabulary every decoder speaks: metrics, quality flags, readings and `DecodeError`.

Pure values only. Decoders import this module and nothing else of pulsegate; the detector,
the store and the sync side import it to name what they handle.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag, StrEnum


class Metric(StrEnum):
    """What a reading measures; the value is what is stored and sent, units in the name."""

    SPO2 = "spo2_percent"
    PULSE = "pulse_bpm"
    PI = "pi_percent"
    TEMP = "temp_c"
    RESP_RATE = "resp_rate_per_min"
    RR_INTERVAL = "rr_interval_ms"
    BATTERY = "battery_percent"


class Quality(IntFlag):
    """Why a reading should be trusted less, or not at all; stored as an integer bit mask."""

    OK = 0
    FINGER_OUT = 0x01
    SEARCHING = 0x02
    LOW_PERFUSION = 0x04
    MOTION = 0x08
    SENSOR_FAULT = 0x10
    LOW_SIGNAL = 0x20
    CLOCK_UNTRUSTED = 0x40


# Flags that make a value unusable (the value is reported missing); the others lower confidence.
INVALIDATING = Quality.FINGER_OUT | Quality.SEARCHING | Quality.SENSOR_FAULT


class BodySite(StrEnum):
    """Where a temperature was taken (Health Thermometer 0x2A1D vocabulary, plus skin)."""

    AXILLARY = "axillary"
    BODY = "body"
    EAR = "ear"
    FINGER = "finger"
    GI_TRACT = "gi_tract"
    ORAL = "oral"
    RECTAL = "rectal"
    TOE = "toe"
    TYMPANIC = "tympanic"
    FOREHEAD = "forehead"
    SKIN = "skin"


# Physiologically possible ranges; outside them a value is dropped (PROTOCOLS.md section 7.2,
# CLINICAL_RULES.md section 1.9). Inclusive bounds.
PLAUSIBLE_RANGE: dict[Metric, tuple[float, float]] = {
    Metric.SPO2: (35.0, 100.0),
    Metric.PULSE: (25.0, 250.0),
    Metric.PI: (0.0, 30.0),
    Metric.TEMP: (25.0, 45.0),
    Metric.RESP_RATE: (3.0, 80.0),
    Metric.RR_INTERVAL: (200.0, 3000.0),
    Metric.BATTERY: (0.0, 100.0),
}


def is_plausible(metric: Metric, value: float) -> bool:
    """True when `value` is inside the physiologically possible range of `metric`."""
    low, high = PLAUSIBLE_RANGE[metric]
    return low <= value <= high


@dataclass(frozen=True, slots=True)
class Reading:
    """One measured value as a device reported it.

    `value` is None when the device sent a sentinel ("no value"); `quality` says why.
    `device_time_s` is UTC epoch seconds when the device stamps its own data, else None
    (the transport stamps the time of arrival).
    """

    metric: Metric
    value: float | None
    quality: Quality = Quality.OK
    device_time_s: float | None = None
    site: BodySite | None = None


class DecodeError(ValueError):
    """Bytes that claim to be of `protocol` but are malformed at `offset`."""

    def __init__(self, protocol: str, offset: int, data: bytes, reason: str) -> None:
        self.protocol = protocol
        self.offset = offset
        self.data = bytes(data)
        self.reason = reason
        super().__init__(f"{protocol}: {reason} at offset {offset} in {self.data.hex(' ')}")
