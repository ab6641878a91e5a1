"""What the transports and the CLI need to know about a protocol, as plain data.

Every protocol module in this package exposes `PROTOCOLS: tuple[ProtocolSpec, ...]`; the catalog
collects them. A `StreamDecoder` is the sans-I/O object a transport feeds with raw bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from devices.protocols.reading import BodySite, Metric, Quality, Reading, is_plausible

Transport = Literal["ble", "serial", "file"]


@dataclass(slots=True)
class DecoderStats:
    """Counters a decoder keeps so the daemon can report bad links and odd devices."""

    frames: int = 0
    skipped_bytes: int = 0
    bad_frames: int = 0
    dropped_values: int = 0


class StreamDecoder(Protocol):
    """Bytes in, readings out. Buffers partial frames between calls; never does I/O."""

    stats: DecoderStats

    def feed(self, data: bytes) -> list[Reading]:
        """Consume `data` (any length, any split) and return the readings completed by it."""
        ...


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """Line settings of a serial device (pyserial vocabulary)."""

    baudrate: int
    bytesize: int = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: float = 1


@dataclass(frozen=True, slots=True)
class ProtocolSpec:
    """One protocol: its name, how to recognise it, how to start it and how to decode it."""

    name: str
    title: str
    transports: frozenset[Transport]
    new_decoder: Callable[[], StreamDecoder]
    metrics: frozenset[Metric]
    ble_service_uuids: tuple[str, ...] = ()
    ble_notify_uuids: tuple[str, ...] = ()
    ble_write_uuid: str | None = None
    name_patterns: tuple[str, ...] = ()
    serial: SerialSettings | None = None
    start_commands: tuple[bytes, ...] = ()
    keepalive_command: bytes | None = None
    keepalive_interval_s: float | None = None
    notes: str = field(default="")


def quality_from_bits(bits: int, table: tuple[tuple[int, Quality], ...]) -> Quality:
    """The Quality flags a device's status bits stand for (`table`: (bit mask, flag) pairs)."""
    quality = Quality.OK
    for mask, flag in table:
        if bits & mask:
            quality |= flag
    return quality


def checked_reading(
    stats: DecoderStats,
    metric: Metric,
    value: float | None,
    quality: Quality = Quality.OK,
    *,
    device_time_s: float | None = None,
    site: BodySite | None = None,
) -> Reading | None:
    """A reading for `value`, or None (counted) when the value is physiologically impossible.

    A `value` of None is a sentinel the device sent on purpose: it is kept, as a missing value.
    """
    if value is not None and not is_plausible(metric, value):
        stats.dropped_values += 1
        return None
    return Reading(metric, value, quality, device_time_s, site)


@dataclass(frozen=True, slots=True)
class Recording:
    """A device's stored recording (e.g. a night on a ring oximeter) decoded into readings.

    Every reading carries `device_time_s` (UTC epoch seconds as the device's clock gave it).
    """

    format: str
    start_time_s: float | None
    interval_s: float
    readings: tuple[Reading, ...]
    model: str = ""


@dataclass(frozen=True, slots=True)
class RecordingFormat:
    """A file format of stored recordings that `pulsegate convert` can read."""

    name: str
    title: str
    looks_like: Callable[[bytes], bool]
    read: Callable[[bytes], Recording]
