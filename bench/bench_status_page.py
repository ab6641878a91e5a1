"""What the status page costs the box: server time and size of one page.

    .venv/bin/python bench/bench_status_page.py [--patients 20] [--hours 3]

A store with PATIENTS patients, each with an oximeter (SpO2, pulse, PI at 1 Hz) and a
thermometer (a reading every 10 min) for HOURS hours, and an open alert each; then:
- `first page`: reading the page's data with an empty series cache (the whole 3-hour window,
  as after a restart) — this is also the simple alternative, re-reading the window each time;
- `next page`: the incremental cache after 30 s of new data (the page refreshes every 30 s);
- `render`: sparklines and the Jinja2 template, on the event loop;
- the page's size, raw and gzip-compressed (aiohttp does not compress by default).

Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from alerts.engine import RuleEvent, Transition  # noqa: E402
from alerts.lifecycle import Alert, AlertEventKind  # noqa: E402
from alerts.rules import Priority, Profile, RuleId, Tier  # noqa: E402
from gateway.store import Patient, ReadingRow, Store  # noqa: E402
from gateway.web import words  # noqa: E402
from gateway.web.local_app import LINK_TEXT, VITAL_SPECS, _sparklines  # noqa: E402
from gateway.web.local_data import SeriesCache, gather_page  # noqa: E402
from gateway.web.render import Renderer  # noqa: E402
from sync.payload import OutboxMessage, alert_event_message  # noqa: E402

NOW_S = 1_800_000_000.0


def message(alert: Alert, kind: AlertEventKind, ts_s: float) -> OutboxMessage:
    return alert_event_message("pulsegate", "bench", alert, kind, ts_s)


def batch(patients: list[Patient], second_s: float) -> list[ReadingRow]:
    rows = []
    for i, patient in enumerate(patients):
        ox = f"ox-{i}"
        rows.append(ReadingRow(second_s, patient.id, ox, "spo2_percent", 95.0 + i % 4, 0))
        rows.append(ReadingRow(second_s, patient.id, ox, "pulse_bpm", 70.0 + i % 20, 0))
        rows.append(ReadingRow(second_s, patient.id, ox, "pi_percent", 2.0, 0))
        if int(second_s) % 600 == 0:
            rows.append(ReadingRow(second_s, patient.id, f"th-{i}", "temp_c", 36.8, 0, "axillary"))
    return rows


def fill(store: Store, count: int, hours: float) -> list[Patient]:
    patients = [Patient(f"p-{i:03d}", Tier.RED, Profile.DEFAULT) for i in range(count)]
    for i, patient in enumerate(patients):
        store.add_patient(patient, NOW_S)
        for device in (f"ox-{i}", f"th-{i}"):
            store.ensure_device(device, "bench", "simulated", NOW_S)
            store.bind(device, patient.id, NOW_S - hours * 3600)
    start_s = NOW_S - hours * 3600
    for minute in range(int(hours * 60)):
        rows = [r for s in range(60) for r in batch(patients, start_s + minute * 60 + s)]
        store.write_batch(rows, [], {}, message, NOW_S)
    events = [
        (p, RuleEvent(RuleId.S2, Transition.ONSET, int(NOW_S - 600), Priority.HIGH, True, {}))
        for p in patients
    ]
    store.write_batch([], events, {}, message, NOW_S)
    return patients


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--hours", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "pulsegate.db", "bench")
        patients = fill(store, args.patients, args.hours)
        firsts, nexts, renders = [], [], []
        renderer = Renderer()
        now_s, html = NOW_S, ""
        for _ in range(5):
            started = time.perf_counter()
            page = gather_page(store, SeriesCache(), now_s)
            firsts.append(time.perf_counter() - started)
        cache = SeriesCache()  # as the daemon builds it: 5 minutes of readings per store call
        slices = []
        while True:
            started = time.perf_counter()
            done = cache.refresh(store, now_s, max_span_s=300)
            slices.append(time.perf_counter() - started)
            if done:
                break
        for _ in range(5):
            for _ in range(30):
                store.write_batch(batch(patients, now_s), [], {}, message, now_s)
                now_s += 1
            started = time.perf_counter()
            page = gather_page(store, cache, now_s)
            nexts.append(time.perf_counter() - started)
            started = time.perf_counter()
            html = renderer.render(
                "zh", "local.html", page=page, gateway="bench",
                sparklines=_sparklines(page), vital_specs=VITAL_SPECS, link_class="up",
                link_text=LINK_TEXT["up"], notice=None, csrf="x" * 32, can_ack=True,
                reports=True, rule_names=words.RULE_NAMES, tier_names=words.TIER_NAMES,
                priority_names=words.PRIORITY_NAMES, status_names=words.STATUS_NAMES,
                device_states=words.DEVICE_STATES, metric_names=words.METRIC_NAMES,
            )  # fmt: skip
            renders.append(time.perf_counter() - started)
        store.close()
    raw = html.encode()
    first_ms, next_ms = median_ms(firsts), median_ms(nexts)
    print(f"status page, {args.patients} patients, {args.hours:g} h of 1 Hz oximetry each")
    print(f"  first page, one read of the whole window: {first_ms:8.1f} ms  (median of 5)")
    print(
        f"  first page in 5-minute slices: {len(slices)} store calls,"
        f" longest {max(slices) * 1000:.1f} ms"
    )
    print(f"  next page (30 s of new data):             {next_ms:8.1f} ms")
    print(f"    rows read: {cache.scanned_rows}")
    print(f"  render (sparklines + template):           {median_ms(renders):8.1f} ms")
    print(f"  page size: {len(raw) / 1000:.1f} kB, gzip {len(gzip.compress(raw)) / 1000:.1f} kB")
    print(f"  re-reading the window for every page instead: {first_ms / next_ms:.0f}x the time")


if __name__ == "__main__":
    main()
