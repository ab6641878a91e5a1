"""Upstream bytes per patient-day for 1 Hz monitoring: summaries + typical alerts + device
status records, built by the gateway's own payload code for one simulated day.

Counts each message's MQTT PUBLISH on the wire (fixed header, topic, packet id, properties,
payload) and its PUBACK. Compares the gateway's choice (15-minute batches, zlib+base64 when it
is smaller) with the simple alternatives (plain JSON columns; 10-minute batches).

    .venv/bin/python bench/bench_upstream.py
"""

from __future__ import annotations

import random
from collections.abc import Callable

from alerts.lifecycle import Alert, AlertEventKind, AlertStatus
from alerts.rules import Priority, Profile, RuleId, Tier
from gateway.retention import summarise
from sync import summaries
from sync.delivery import EXPIRY_S
from sync.payload import OutboxMessage, alert_event_message
from sync.records import DeviceEvent, DeviceEventKind, Gap, record_message
from sync.summaries import MinuteRow, summary_message

DAY_S = 86_400
T0_S = 1_800_000_000
PREFIX, SITE, GATEWAY, PATIENT = "pulsegate", "village-01", "gw-0001", "p-3f9a21c0"
METRICS = ("spo2_percent", "pulse_bpm", "pi_percent", "temp_c")
PUBACK_BYTES = 4


def wire_bytes(message: OutboxMessage) -> int:
    """PUBLISH (QoS 1, MQTT v5) + PUBACK bytes of one message."""
    expiry = 5 if message.priority in EXPIRY_S else 0  # property id + 4-byte interval
    variable = 2 + len(message.topic.encode()) + 2 + 1 + expiry
    remaining = variable + len(message.payload.encode())
    length_bytes = 1 if remaining < 128 else 2 if remaining < 16_384 else 3
    return 1 + length_bytes + remaining + PUBACK_BYTES


def simulated_day(seed: int = 7) -> list[tuple[float, int, float | None, int]]:
    """(ts_s, metric index, value, quality) for 24 h at 1 Hz, with a night-time dip, motion,
    a 20-minute probe-off and four thermometer readings."""
    rng = random.Random(seed)
    rows: list[tuple[float, int, float | None, int]] = []
    for s in range(DAY_S):
        probe_off = 30_000 <= s < 31_200
        dip = 2.5 if 7_200 <= s % DAY_S < 21_600 and rng.random() < 0.3 else 0.0
        spo2 = None if probe_off else float(round(rng.gauss(96.5 - dip, 0.8)))
        pulse = None if probe_off else float(round(rng.gauss(72, 4)))
        pi = None if probe_off else round(max(0.2, rng.gauss(2.4, 0.5)), 2)
        quality = 1 if probe_off else (8 if rng.random() < 0.02 else 0)
        for index, value in enumerate((spo2, pulse, pi)):
            rows.append((T0_S + s, index, value, quality))
    rows += [(T0_S + h * 3600 + 5.0, 3, 36.6 + h / 100, 0) for h in (8, 12, 16, 20)]
    return rows


def summary_messages(minutes: list[MinuteRow], batch_s: int) -> list[OutboxMessage]:
    messages = []
    for start_s in range(T0_S, T0_S + DAY_S, batch_s):
        batch = [m for m in minutes if start_s <= m.minute_s < start_s + batch_s]
        span = (start_s, start_s + batch_s)
        messages.append(summary_message(PREFIX, SITE, GATEWAY, PATIENT, span, batch))
    return messages


def typical_alerts() -> list[OutboxMessage]:
    """A day with a night-time S2 (raised, re-notified twice, resolved, acked) and a Q1."""
    s2 = Alert("a-s2", GATEWAY, PATIENT, RuleId.S2, Priority.HIGH, Tier.RED, Profile.DEFAULT,
               AlertStatus.OPEN, T0_S + 9_000.0,
               {"window_median": 92.0, "window_s": 60, "limit": 93.0})  # fmt: skip
    q1 = Alert("a-q1", GATEWAY, PATIENT, RuleId.Q1, Priority.LOW, Tier.RED, Profile.DEFAULT,
               AlertStatus.OPEN, T0_S + 30_060.0,
               {"window_s": 60, "invalid_fraction": 1.0})  # fmt: skip
    events = [
        (s2, AlertEventKind.RAISED, 9_000),
        (s2, AlertEventKind.RAISED, 9_300),
        (s2, AlertEventKind.RAISED, 9_600),
        (s2, AlertEventKind.RESOLVED, 10_200),
        (s2, AlertEventKind.ACKED, 10_800),
        (q1, AlertEventKind.RAISED, 30_060),
        (q1, AlertEventKind.CLOSED, 31_201),
    ]
    return [alert_event_message(PREFIX, SITE, a, k, T0_S + at) for a, k, at in events]


def status_records() -> list[OutboxMessage]:
    """The probe-off stretch as no-signal, back and a gap; and one silent device."""
    reasons = ("no finger in the probe",)
    records = [
        DeviceEvent("ox-1", PATIENT, DeviceEventKind.NO_SIGNAL, T0_S + 31_000.0,
                    T0_S + 29_999.0, reasons),
        DeviceEvent("ox-1", PATIENT, DeviceEventKind.BACK, T0_S + 31_200.0, T0_S + 29_999.0,
                    reasons),
        Gap("ox-1", PATIENT, T0_S + 29_999.0, T0_S + 31_200.0, reasons),
        DeviceEvent("ox-1", PATIENT, DeviceEventKind.SILENT, T0_S + 50_120.0, T0_S + 50_000.0,
                    ("no data; link waiting: device not found",)),
    ]  # fmt: skip
    return [record_message(PREFIX, SITE, GATEWAY, r) for r in records]


def total_kb(messages: list[OutboxMessage]) -> float:
    return sum(wire_bytes(m) for m in messages) / 1000


def main() -> None:
    minutes = [
        MinuteRow(m.minute_s, METRICS[m.series_id], m.n, m.missing, m.min, m.median, m.max,
                  m.quality)
        for m in summarise(simulated_day())
    ]  # fmt: skip
    alerts, records = typical_alerts(), status_records()
    print("upstream bytes per patient-day, 1 Hz SpO2/pulse/PI + 4 temperatures")
    print(f"  alerts ({len(alerts)} events):          {total_kb(alerts):7.1f} kB")
    print(f"  status records ({len(records)}):         {total_kb(records):7.1f} kB")
    variants: list[tuple[str, int, Callable[..., tuple[str, object]]]] = [
        ("15-min batches, zlib+base64 when smaller", 900, summaries.encode_metrics),
        ("15-min batches, plain JSON columns", 900, lambda m: (summaries.ENCODING_JSON, m)),
        ("10-min batches, zlib+base64 when smaller", 600, summaries.encode_metrics),
        ("10-min batches, plain JSON columns", 600, lambda m: (summaries.ENCODING_JSON, m)),
    ]
    original = summaries.encode_metrics
    for label, batch_s, encode in variants:
        summaries.encode_metrics = encode  # type: ignore[assignment]
        try:
            batch = summary_messages(minutes, batch_s)
        finally:
            summaries.encode_metrics = original
        total = total_kb(batch) + total_kb(alerts) + total_kb(records)
        mark = "  <- what the gateway sends" if batch_s == 900 and encode is original else ""
        print(
            f"  summaries, {label}: {len(batch)} messages, {total_kb(batch):6.1f} kB;"
            f" day total {total:6.1f} kB{mark}"
        )
    print("  target: < 100 kB per patient-day")


if __name__ == "__main__":
    main()
