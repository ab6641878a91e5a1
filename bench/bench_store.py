"""What storing 1 Hz readings costs the SD card, and how big the database gets in a year.

    .venv/bin/python bench/bench_store.py [--seconds 900]

1. Bytes written to disk per reading, from /proc/self/io `write_bytes` (what this process made
   dirty in the page cache: WAL frames, checkpoints into the database file, the wal-index;
   counted in 4 KiB pages, as the kernel writes them). A reading is one stored row: one metric
   of one device for one second. Each patient wears an oximeter (SpO2, pulse, PI at 1 Hz) and
   a thermometer (one value a minute); one transaction a second unless a column says otherwise:
   - `lean 4K`: the store alone (migration 3: series ids, time-ordered ids, no extra index) in
     a database with SQLite's default 4 KiB pages (databases created before 1 KiB pages);
   - `lean`: the same in a new database (1 KiB pages, `store.PAGE_SIZE_BYTES`);
   - `v1`: the first schema (text columns, index on patient and time), same SQL as before;
   - `1 commit/reading`: the simple alternative, the lean store with a transaction per row;
   - `state/batch 4K`: readings and every fed patient's detector state in each batch, 4 KiB
     pages (the daemon before its state was checkpointed);
   - `state/batch`: the same with 1 KiB pages;
   - `daemon`: what the daemon writes with 1 s batches: 1 KiB pages, the detector state saved
     only when forced or once a minute of data (gateway/checkpoints.py); the thermometer
     reading each minute forces a save of that patient (real thermometers read far less often);
   - `daemon, 3 s batches`: the daemon with store.batch_interval_s = 3, every batch committed;
   - `daemon, 3 s, >= 90/commit`: the defaults: 3 s batches, and a batch of fewer than
     store.min_commit_readings readings waits (up to store.max_commit_delay_s) for the next;
   - `lean, 5 s batches`: the lean store with store.batch_interval_s = 5.
2. Database size: bytes per raw row and per per-minute summary row, measured on a day-sized
   sample at 20 patients, then extrapolated to a year with `retention_days` of raw readings.
3. The start-up `PRAGMA quick_check`: MB/s on this machine.

Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlite_utils  # noqa: E402

from alerts.rules import Profile, Tier  # noqa: E402
from devices.clock import WallClock  # noqa: E402
from gateway.config import parse_config  # noqa: E402
from gateway.daemon import Daemon, StoreWorker, commit_due  # noqa: E402
from gateway.ingest import Ingest  # noqa: E402
from gateway.migrations import MIGRATIONS  # noqa: E402
from gateway.retention import roll_up_chunk, used_bytes  # noqa: E402
from gateway.store import Patient, ReadingRow, Store  # noqa: E402

T0_S = 1_800_000_000
OXIMETER_METRICS = ("spo2_percent", "pulse_bpm", "pi_percent")
DAY_S = 86_400
OLD_PAGE_SIZE_BYTES = 4096  # SQLite's default, which databases created before kept
Batch = list[ReadingRow]


def write_bytes() -> int:
    with open("/proc/self/io") as io:
        for line in io:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    raise RuntimeError("no write_bytes in /proc/self/io")


def second_of_readings(patients: int, second: int, rng: random.Random) -> Batch:
    """One second of readings: 3 oximeter metrics a patient, a temperature each minute."""
    ts_s = float(T0_S + second)
    rows = []
    for i in range(patients):
        patient, device = f"patient-{i:03d}", f"ble-oximeter-{i:03d}"
        rows.append(ReadingRow(ts_s, patient, device, "spo2_percent", rng.randint(93, 99), 0))
        rows.append(ReadingRow(ts_s, patient, device, "pulse_bpm", rng.randint(58, 95), 0))
        rows.append(
            ReadingRow(ts_s, patient, device, "pi_percent", round(rng.uniform(0.5, 9), 2), 0)
        )
        if second % 60 == i % 60:
            temp_c = round(rng.uniform(36.2, 37.4), 2)
            rows.append(ReadingRow(ts_s, patient, f"ble-thermo-{i:03d}", "temp_c", temp_c, 0))
    return rows


def open_lean(path: Path, patients: int, page_size_bytes: int | None = None) -> Store:
    """A store with `patients` patients; `page_size_bytes` creates the file with that page
    size first (as a database created by an older pulsegate)."""

    def connect(db_path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA page_size = {page_size_bytes}")
        conn.execute("PRAGMA journal_mode = WAL")  # writes the header: the size is fixed
        return conn

    store = Store.open(path, "bench", connect if page_size_bytes else None)
    for i in range(patients):
        store.add_patient(Patient(f"patient-{i:03d}", Tier.RED, Profile.DEFAULT), T0_S)
    return store


def bytes_per_reading(
    patients: int, seconds: int, write: Callable[[Batch], None], rng: random.Random
) -> float:
    batches = [second_of_readings(patients, s, rng) for s in range(seconds)]
    rows = sum(len(b) for b in batches)
    before = write_bytes()
    for batch in batches:
        write(batch)
    return (write_bytes() - before) / rows


def lean(patients: int, seconds: int, workdir: Path, page_size_bytes: int | None = None) -> float:
    store = open_lean(workdir / f"lean{page_size_bytes}.db", patients, page_size_bytes)
    try:
        return bytes_per_reading(
            patients,
            seconds,
            lambda b: store.write_batch(b, [], {}, _no_message, 0),
            random.Random(1),
        )
    finally:
        store.close()


def lean_batched(patients: int, seconds: int, workdir: Path, batch_s: int) -> float:
    """The lean store with `store.batch_interval_s = batch_s`: one transaction per batch_s."""
    store = open_lean(workdir / f"lean{batch_s}.db", patients)
    pending: Batch = []

    def write(batch: Batch) -> None:
        pending.extend(batch)
        if int(batch[0].ts_s) % batch_s == batch_s - 1:
            store.write_batch(pending, [], {}, _no_message, 0)
            pending.clear()

    try:
        return bytes_per_reading(patients, seconds, write, random.Random(1))
    finally:
        store.close()


def one_commit_per_reading(patients: int, seconds: int, workdir: Path) -> float:
    store = open_lean(workdir / "single.db", patients)

    def write(batch: Batch) -> None:
        for row in batch:
            store.write_batch([row], [], {}, _no_message, 0)

    try:
        return bytes_per_reading(patients, seconds, write, random.Random(1))
    finally:
        store.close()


def v1(patients: int, seconds: int, workdir: Path) -> float:
    conn = sqlite3.connect(workdir / "v1.db", isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = FULL"):
        conn.execute(f"PRAGMA {pragma}")
    MIGRATIONS[0](sqlite_utils.Database(conn))

    def write(batch: Batch) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO readings (ts_s, patient_id, device_id, metric, value, quality, site) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (r.ts_s, r.patient_id, r.device_id, r.metric, r.value, r.quality, r.site)
                for r in batch
            ],
        )
        conn.execute("COMMIT")

    try:
        return bytes_per_reading(patients, seconds, write, random.Random(1))
    finally:
        conn.close()


def lean_with_detector_state(
    patients: int,
    seconds: int,
    workdir: Path,
    every_batch: bool,
    page_size_bytes: int | None = None,
    batch_s: int = 1,
    min_commit_readings: int = 1,
) -> float:
    """The daemon's batch: readings and the detector states it saves, one transaction every
    `batch_s` seconds; `every_batch`: every fed patient's state in every batch, as before
    checkpoints; `min_commit_readings`: a batch with fewer readings (and no alert event or
    state) waits for the next, for at most the daemon's max_commit_delay_s (simulated)."""
    config = parse_config({"gateway": {"data_dir": str(workdir)}})
    max_delay_s = config.store.max_commit_delay_s
    name = f"daemon-{every_batch}-{page_size_bytes}-{batch_s}-{min_commit_readings}.db"
    store = open_lean(workdir / name, patients, page_size_bytes)
    daemon = Daemon(config, StoreWorker(store), WallClock(), Ingest())
    daemon.patients = {p.id: p for p in store.list_patients()}
    pending: Batch = []

    waiting: Batch = []
    waiting_states: dict[str, Any] = {}
    waiting_since_s: list[float] = []

    def write(second: Batch) -> None:
        pending.extend(second)
        if int(second[0].ts_s) % batch_s != batch_s - 1:
            return
        batch = list(pending)
        pending.clear()
        events, states = daemon._detect(batch)
        if every_batch:
            fed = {row.patient_id for row in batch if row.patient_id is not None}
            states = {p: daemon.detectors[p].to_json(with_tails=False) for p in fed}
        waiting.extend(batch)
        waiting_states.update(states)
        waiting_since_s[:] = waiting_since_s or [batch[0].ts_s]
        waited_s = batch[-1].ts_s - waiting_since_s[0]
        forced = bool(events or waiting_states)
        if not commit_due(len(waiting), waited_s, forced, min_commit_readings, max_delay_s):
            return
        store.write_batch(waiting, events, waiting_states, daemon._message, waiting[0].ts_s)
        waiting.clear()
        waiting_states.clear()
        waiting_since_s.clear()

    try:
        return bytes_per_reading(patients, seconds, write, random.Random(1))
    finally:
        daemon.worker.shutdown()
        store.close()


def _no_message(*_: object) -> object:
    raise AssertionError("no alert events in this benchmark")


def database_size(workdir: Path, hours: int, retention_days: float) -> None:
    """Size per raw row and per summary row on a sample, extrapolated to a year."""
    patients = 20
    store = open_lean(workdir / "size.db", patients)
    rng = random.Random(2)
    for start in range(0, hours * 3600, 60):
        batch = [r for s in range(start, start + 60) for r in second_of_readings(patients, s, rng)]
        store.write_batch(batch, [], {}, _no_message, 0)
    raw_rows = store.count("readings")
    empty = Store.open(workdir / "empty.db", "bench")
    base_bytes = used_bytes(empty)
    empty.close()
    raw_bytes = used_bytes(store) - base_bytes
    started = time.perf_counter()
    with sqlite3.connect(workdir / "size.db") as conn:
        conn.execute("PRAGMA quick_check").fetchall()
    check_s = time.perf_counter() - started
    file_mb = os.path.getsize(workdir / "size.db") / 1e6
    while roll_up_chunk(store, float("inf")):
        pass
    summary_rows = store.db.execute("SELECT count(*) FROM reading_minutes").fetchone()[0]
    summary_bytes = used_bytes(store) - base_bytes
    store.close()

    per_raw = raw_bytes / raw_rows
    per_summary = summary_bytes / summary_rows
    raw_rows_per_day = raw_rows * 24 / hours
    summary_rows_per_day = summary_rows * 24 / hours
    year_bytes = (
        raw_rows_per_day * retention_days * per_raw + summary_rows_per_day * 365 * per_summary
    )
    print(f"\nDatabase size, {patients} patients ({hours} h sample, {raw_rows:,} raw rows):")
    raw_mb_per_day = raw_rows_per_day * per_raw / 1e6
    print(f"  raw reading      {per_raw:6.1f} B/row  ({raw_mb_per_day:,.0f} MB a day)")
    print(
        f"  minute summary   {per_summary:6.1f} B/row  "
        f"({summary_rows_per_day * per_summary / 1e6:,.1f} MB a day)"
    )
    print(
        f"  after a year, {retention_days:g} days raw + 365 days of summaries: "
        f"{year_bytes / 1e9:.2f} GB"
    )
    check_mb_s = file_mb / check_s
    print(
        f"\nStart-up quick_check: {check_mb_s:,.0f} MB/s here ({file_mb:.0f} MB, {check_s:.2f} s)"
    )
    print(
        f"  a {year_bytes / 1e9:.1f} GB database: {year_bytes / 1e6 / check_mb_s:.0f} s here,"
        f" about {year_bytes / 25e6:.0f} s on an SD card reading 25 MB/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=900, help="simulated seconds per run")
    parser.add_argument("--hours", type=int, default=6, help="size sample, hours of readings")
    args = parser.parse_args()
    print("Bytes written per reading (1 Hz readings), from /proc/self/io:")
    columns = (
        "lean 4K",
        "lean",
        "v1",
        "1 commit/reading",
        "state/batch 4K",
        "state/batch",
        "daemon",
        "daemon, 3 s batches",
        "daemon, 3 s, >= 90/commit",
        "lean, 5 s batches",
    )
    print(f"{'patients':>8} " + " ".join(f"{c:>{max(8, len(c))}}" for c in columns))
    with tempfile.TemporaryDirectory(prefix="bench-store") as tmp:
        for patients in (1, 20, 50):
            workdir = Path(tmp) / str(patients)
            workdir.mkdir()
            figures = (
                lean(patients, args.seconds, workdir, OLD_PAGE_SIZE_BYTES),
                lean(patients, args.seconds, workdir),
                v1(patients, args.seconds, workdir),
                one_commit_per_reading(patients, max(10, args.seconds // 30), workdir),
                lean_with_detector_state(
                    patients, args.seconds, workdir, True, OLD_PAGE_SIZE_BYTES
                ),
                lean_with_detector_state(patients, args.seconds, workdir, True),
                lean_with_detector_state(patients, args.seconds, workdir, False),
                lean_with_detector_state(patients, args.seconds, workdir, False, batch_s=3),
                lean_with_detector_state(
                    patients,
                    args.seconds,
                    workdir,
                    False,
                    batch_s=3,
                    min_commit_readings=parse_config({}).store.min_commit_readings,
                ),
                lean_batched(patients, args.seconds, workdir, 5),
            )
            widths = (max(8, len(c)) for c in columns)
            cells = (f"{f:>{w}.0f}" for f, w in zip(figures, widths, strict=True))
            print(f"{patients:>8} " + " ".join(cells))
        database_size(Path(tmp), args.hours, parse_config({}).store.retention_days)


if __name__ == "__main__":
    main()
