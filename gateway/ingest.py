"""From device bytes to stored rows: decode, stamp, attribute to the bound patient, and reduce
waveform-rate streams to one value per device, metric and second.

Decode errors are caught here, and only here: counted, logged once in a while, never fatal.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field

from devices.protocols.catalog import get_protocol
from devices.protocols.reading import INVALIDATING, DecodeError, Quality, Reading
from devices.protocols.spec import StreamDecoder
from gateway.store import ReadingRow

log = logging.getLogger(__name__)
_DECODE_ERROR_LOG_EVERY = 100
# A second's readings go to whoever wore the device at the end of that second (a binding
# made during a second covers it).
_END_OF_SECOND = 0.999


@dataclass(slots=True)
class _Bucket:
    values: list[float] = field(default_factory=list)
    quality: int = 0
    missing_quality: int = 0
    flags: int = 0  # added by the gateway (e.g. CLOCK_UNTRUSTED), whatever the value
    site: str | None = None


@dataclass(slots=True)
class DeviceInput:
    device_id: str
    protocol: str
    decoder: StreamDecoder
    decode_errors: int = 0
    last_seen_s: float | None = None


class Ingest:
    """Per-device decoders and per-second buckets of decoded readings."""

    def __init__(self) -> None:
        self.devices: dict[str, DeviceInput] = {}
        # device -> [(start_s, end_s or None, patient)]: who wore the device when
        self.binding_history: dict[str, list[tuple[float, float | None, str]]] = {}
        self._buckets: dict[tuple[str, str, int], _Bucket] = defaultdict(_Bucket)

    def add_device(self, device_id: str, protocol: str) -> None:
        self.devices[device_id] = DeviceInput(
            device_id, protocol, get_protocol(protocol).new_decoder()
        )

    def on_bytes(self, device_id: str, received_s: float, data: bytes, flags: int = 0) -> int:
        """Decode bytes that `device_id` sent at `received_s`; returns how many readings.
        `flags` (Quality bits, e.g. CLOCK_UNTRUSTED) are added to every reading's quality."""
        device = self.devices[device_id]
        device.last_seen_s = received_s
        try:
            readings = device.decoder.feed(data)
        except DecodeError as exc:
            device.decode_errors += 1
            if device.decode_errors % _DECODE_ERROR_LOG_EVERY == 1:
                log.warning("%s: %s (%d so far)", device_id, exc, device.decode_errors)
            return 0
        for reading in readings:
            self._add(device_id, received_s, reading, flags)
        return len(readings)

    def _add(self, device_id: str, received_s: float, reading: Reading, flags: int = 0) -> None:
        ts_s = reading.device_time_s if reading.device_time_s is not None else received_s
        bucket = self._buckets[(device_id, reading.metric.value, math.floor(ts_s))]
        if reading.value is None or reading.quality & INVALIDATING:
            bucket.missing_quality |= int(reading.quality)
        else:
            bucket.values.append(reading.value)
            bucket.quality |= int(reading.quality)
        bucket.flags |= flags
        if reading.site is not None:
            bucket.site = reading.site.value

    def retime(self, shift_s: int, flag: int) -> None:
        """Move every pending second by `shift_s` and clear `flag` (a clock correction)."""
        moved: dict[tuple[str, str, int], _Bucket] = defaultdict(_Bucket)
        for (device_id, metric, second), bucket in self._buckets.items():
            bucket.flags &= ~flag
            moved[(device_id, metric, second + shift_s)] = bucket
        self._buckets = moved

    def patient_at(self, device_id: str, ts_s: float) -> str | None:
        """The patient bound to `device_id` at `ts_s` (None: nobody)."""
        for start_s, end_s, patient_id in reversed(self.binding_history.get(device_id, [])):
            if start_s <= ts_s and (end_s is None or ts_s < end_s):
                return patient_id
        return None

    def drain(self, before_s: float) -> list[ReadingRow]:
        """Rows for every second that ended before `before_s`, one per device and metric."""
        ready = sorted(key for key in self._buckets if key[2] + 1 <= before_s)
        rows = []
        for key in ready:
            device_id, metric, second = key
            bucket = self._buckets.pop(key)
            if bucket.values:
                value: float | None = round(statistics.median(bucket.values), 2)
                quality = bucket.quality
            else:
                value, quality = None, bucket.missing_quality or int(Quality.SENSOR_FAULT)
            rows.append(
                ReadingRow(
                    float(second),
                    self.patient_at(device_id, second + _END_OF_SECOND),
                    device_id,
                    metric,
                    value,
                    quality | bucket.flags,
                    bucket.site,
                )
            )
        return rows
