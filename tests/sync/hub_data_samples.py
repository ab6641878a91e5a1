"""Device records, gaps, summaries and raw-data chunks as the gateway's own code makes them,
for the hub's tests."""

from __future__ import annotations

from sync.payload import OutboxMessage
from sync.records import DeviceEvent, DeviceEventKind, Gap, record_message
from sync.summaries import MinuteRow, RawChunk, raw_message, summary_message

PREFIX = "pulsegate"
SITE = "village-1"
GATEWAY = "gw-1"
PATIENT = "p-0042"
T0_S = 1_800_000_000  # a whole minute
REASONS = ("no data; link waiting: device not found", "no finger in the probe")


def device_message(
    kind: DeviceEventKind = DeviceEventKind.SILENT, at_s: float = 300, device: str = "ox-1"
) -> OutboxMessage:
    event = DeviceEvent(device, PATIENT, kind, T0_S + at_s, T0_S + 100, REASONS)
    return record_message(PREFIX, SITE, GATEWAY, event)


def gap_message(start_s: float = 100, end_s: float = 3700, device: str = "ox-1") -> OutboxMessage:
    return record_message(
        PREFIX, SITE, GATEWAY, Gap(device, PATIENT, T0_S + start_s, T0_S + end_s, REASONS)
    )


def minute_rows(start_s: int, minutes: int, spo2_base: float = 95.0) -> list[MinuteRow]:
    """SpO2 every minute (one minute without any value) and pulse every other minute."""
    rows = []
    for i in range(minutes):
        minute_s = start_s + 60 * i
        if i == 3:
            rows.append(MinuteRow(minute_s, "spo2_percent", 0, 60, None, None, None, 1))
        else:
            median = spo2_base + i % 3
            rows.append(
                MinuteRow(minute_s, "spo2_percent", 58, 2, median - 1.5, median, median + 1, 0)
            )
        if i % 2 == 0:
            rows.append(MinuteRow(minute_s, "pulse_bpm", 60, 0, 70.0, 72.5, 80.0, 0))
    return rows


def summary(start_offset_s: int = 0, minutes: int = 15, patient: str = PATIENT) -> OutboxMessage:
    start_s = T0_S + start_offset_s
    span = (start_s, start_s + 60 * minutes)
    return summary_message(PREFIX, SITE, GATEWAY, patient, span, minute_rows(start_s, minutes))


def raw_chunk(
    request_id: str, index: int, count: int, start_offset_s: float, seconds: int = 600
) -> OutboxMessage:
    """One chunk: SpO2 every second, the fifth second of each ten missing (probe off)."""
    start_s = T0_S + start_offset_s
    rows = [
        (start_s + s + 0.25, "spo2_percent", None if s % 10 == 4 else 90.0 + s % 7, 0)
        for s in range(seconds)
    ]
    chunk = RawChunk(request_id, PATIENT, index, count, start_s, start_s + seconds, rows)
    return raw_message(PREFIX, SITE, GATEWAY, chunk)
