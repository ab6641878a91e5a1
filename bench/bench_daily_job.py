"""What one morning of the day- and night-level rules costs the store's thread.

    .venv/bin/python bench/bench_daily_job.py [--patients 10]

Builds a store with 25 h of 1 Hz readings (SpO2, pulse, PI) for every patient, then times:
1. reading one patient's SpO2 for that 25-h range (what `spo2_day` reads, the biggest single
   store call of the job) from the tables behind the `readings` view (id range + the patient's
   series ids, as gateway/day_history.py does), against the simple alternative, the view with
   an id range (a `ts_s` range on the view would scan every stored reading);
2. the numpy side: grid + `aggregate_spo2_days` for that day, and one S6 night summary;
3. an estimate of one patient's whole morning: the read time per hour times the hours a morning
   reads (15 x 25 h SpO2 days, 30 + 16 nights of 7 h, 2 nights of 9 h, 4 days of temperatures),
   with every range as full of readings as this one.
Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from alerts.daily import aggregate_spo2_days  # noqa: E402
from alerts.nightly import summarise_night  # noqa: E402
from alerts.rules import Profile, Tier  # noqa: E402
from devices.protocols.reading import Metric  # noqa: E402
from gateway.day_history import one_hz_grid, read_rows  # noqa: E402
from gateway.store import Patient, Store  # noqa: E402

RANGE_S = 25 * 3600
START_S = 1_773_500_400  # a local midnight - 1 h, UTC+8
METRICS = ("spo2_percent", "pulse_bpm", "pi_percent")
MORNING_HOURS = 15 * 25 + (30 + 16) * 7 + 2 * 9 + 4 * 24


def build(store: Store, patients: int) -> int:
    """Every patient's 1 Hz readings, written straight into the tables behind the view."""
    rows = []
    series = 0
    for p in range(patients):
        store.add_patient(Patient(f"p{p}", Tier.RED, Profile.DEFAULT), 0.0)
        for metric in METRICS:
            series += 1
            store.db.execute(
                "INSERT INTO reading_series (id, device_id, metric, patient_id, site)"
                " VALUES (?, ?, ?, ?, '')",
                [series, f"ox{p}", metric, f"p{p}"],
            )
    values = 96.0 + np.round(np.sin(np.arange(RANGE_S) / 600.0))
    for second in range(RANGE_S):
        ts_s = START_S + second
        for n in range(series):
            rows.append(((ts_s << 16) + n, float(ts_s), n + 1, float(values[second]), 0))
    with store.transaction():
        store.db.conn.executemany(
            "INSERT INTO reading_samples (id, ts_s, series_id, value, quality)"
            " VALUES (?, ?, ?, ?, ?)",
            rows,
        )
    return len(rows)


def best_of(runs: int, func) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        begin = time.perf_counter()
        func()
        times.append(time.perf_counter() - begin)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(Path(folder) / "bench.db", "bench")
        begin = time.perf_counter()
        total = build(store, args.patients)
        print(
            f"{total:,} readings ({args.patients} patients x 3 metrics x 25 h at 1 Hz) "
            f"written in {time.perf_counter() - begin:.1f} s"
        )
        end_s = START_S + RANGE_S
        direct_s = best_of(3, lambda: read_rows(store, "p3", Metric.SPO2, START_S, end_s))
        view_s = best_of(
            3,
            lambda: store.db.execute(
                "SELECT ts_s, value, quality, site FROM readings"
                " WHERE id >= ? AND id < ? AND patient_id = ? AND metric = ?",
                [START_S << 16, end_s << 16, "p3", "spo2_percent"],
            ).fetchall(),
        )
        print(
            f"one patient's SpO2 over 25 h: tables {direct_s * 1000:.0f} ms, "
            f"view {view_s * 1000:.0f} ms ({view_s / direct_s:.1f}x)"
        )
        rows = read_rows(store, "p3", Metric.SPO2, START_S, end_s)
        grid_s = best_of(3, lambda: one_hz_grid(START_S, RANGE_S, rows, Metric.SPO2))
        grid = one_hz_grid(START_S, RANGE_S, rows, Metric.SPO2)
        day_s = best_of(3, lambda: aggregate_spo2_days(START_S, grid, 8 * 3600))
        night_s = best_of(3, lambda: summarise_night(grid[: 9 * 3600]))
        print(
            f"grid {grid_s * 1000:.0f} ms, S5 day aggregate {day_s * 1000:.0f} ms, "
            f"S6 night summary {night_s * 1000:.0f} ms"
        )
        per_hour_s = (direct_s + grid_s) / 25
        print(
            f"estimate, one patient's morning ({MORNING_HOURS} h of ranges, as dense as "
            f"these): {per_hour_s * MORNING_HOURS:.1f} s of store-thread time in calls of "
            f"<= {(direct_s + grid_s + day_s) * 1000:.0f} ms"
        )
        store.close()


if __name__ == "__main__":
    main()
