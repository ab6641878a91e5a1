"""The daemon in-process: a full disk delays writes but loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

from alerts.events import RuleEvent, Transition
from alerts.rules import Priority, Profile, RuleId, Tier
from devices.clock import ScaledClock
from devices.simulator import DEMO_PATIENTS, run_patient
from gateway.config import parse_config
from gateway.daemon import Daemon, StoreWorker, UnwrittenBatch
from gateway.ingest import Ingest
from gateway.store import Patient, ReadingRow, Store

UNLIMITED_PAGES = 1_073_741_823


def fill_free_space(store: Store) -> None:
    """Take the room left in the capped file's pages, so the next batch finds none."""
    for size in (4096, 512, 64, 8):
        with contextlib.suppress(sqlite3.OperationalError):
            while True:
                store.db.conn.execute("INSERT INTO filler VALUES (zeroblob(?))", [size])


async def test_a_full_disk_delays_readings_but_loses_none(tmp_path: Path) -> None:
    config = parse_config(
        {"gateway": {"data_dir": str(tmp_path)}, "store": {"batch_interval_s": 0.2}}
    )
    store = Store.open(config.database_path, "gw")
    sim = DEMO_PATIENTS[0]
    store.add_patient(Patient(sim.patient_id, Tier(sim.tier), Profile(sim.profile)), 0.0)
    store.ensure_device(sim.oximeter_id, "berrymed-bci", "simulated", 0.0)
    store.bind(sim.oximeter_id, sim.patient_id, 0.0)
    ingest = Ingest()
    ingest.add_device(sim.oximeter_id, "berrymed-bci")
    ingest.add_device(sim.thermometer_id, "hts")
    clock = ScaledClock(20)

    async def source(sink):  # type: ignore[no-untyped-def]
        await run_patient(sim, clock, sink)

    worker = StoreWorker(store)
    daemon = Daemon(config, worker, clock, ingest, [source])
    stop = asyncio.Event()
    running = asyncio.create_task(daemon.run(stop))
    await asyncio.sleep(1.0)
    # SQLite's own "database or disk is full": no page may be added any more.
    await worker.call(store.db.execute, "CREATE TABLE filler (data BLOB)")
    pages = await worker.call(lambda: store.db.execute("PRAGMA page_count").fetchone()[0])
    await worker.call(store.db.execute, f"PRAGMA max_page_count = {pages}")
    await worker.call(fill_free_space, store)
    # Readings need more than the room left in their last page; refused for longer than the
    # watchdog's health window (5 intervals + 5 s), the daemon must still count as healthy.
    await asyncio.sleep(7.0)
    failed = daemon.batches_failed
    healthy_while_full = daemon.is_healthy()
    await worker.call(store.db.execute, f"PRAGMA max_page_count = {UNLIMITED_PAGES}")
    await asyncio.sleep(1.5)
    stop.set()
    await running
    worker.shutdown()

    assert failed > 0
    assert healthy_while_full  # no watchdog restart, which would lose the kept readings
    assert daemon.is_healthy()
    seconds = [
        row[0]
        for row in store.db.execute(
            "SELECT ts_s FROM readings WHERE metric = 'spo2_percent' ORDER BY ts_s"
        )
    ]
    store.close()
    # One row per simulated second from the first to the last: no gap where the disk was full.
    assert len(seconds) > 80
    assert seconds == [seconds[0] + i for i in range(len(seconds))]


def test_readings_kept_for_a_refusing_store_are_bounded_and_alert_events_are_not() -> None:
    patient = Patient("p-1", Tier.RED, Profile.DEFAULT)
    onset = RuleEvent(RuleId.S1, Transition.ONSET, 10, Priority.HIGH, True, {})
    kept = UnwrittenBatch(max_rows=5)

    def rows(first_s: int, count: int) -> list[ReadingRow]:
        return [
            ReadingRow(float(first_s + i), "p-1", "ox-1", "spo2_percent", 97.0, 0)
            for i in range(count)
        ]

    assert kept.add(rows(0, 3), [(patient, onset)], {"p-1": {"at": 3}}) == 0
    assert kept.add(rows(3, 4), [], {"p-1": {"at": 7}}) == 2  # the two oldest go
    assert [row.ts_s for row in kept.rows] == [2.0, 3.0, 4.0, 5.0, 6.0]
    assert kept.events == [(patient, onset)]
    assert kept.states == {"p-1": {"at": 7}}
