"""The daemon in-process: a full disk delays writes but loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest

from alerts.events import RuleEvent, Transition
from alerts.rules import Priority, Profile, RuleId, Tier
from devices.clock import ScaledClock
from devices.simulator import DEMO_PATIENTS, SimulatedPatient, run_patient
from gateway.config import Config, parse_config
from gateway.daemon import Daemon, StoreWorker, UnwrittenBatch, commit_due
from gateway.ingest import Ingest
from gateway.store import Patient, ReadingRow, Store

UNLIMITED_PAGES = 1_073_741_823


def fill_free_space(store: Store) -> None:
    """Take the room left in the capped file's pages, so the next batch finds none."""
    for size in (4096, 512, 64, 8):
        with contextlib.suppress(sqlite3.OperationalError):
            while True:
                store.db.conn.execute("INSERT INTO filler VALUES (zeroblob(?))", [size])


class RecordingIngest(Ingest):
    """The real ingest, keeping a copy of every row it hands to the batch writer."""

    def __init__(self) -> None:
        super().__init__()
        self.drained: list[ReadingRow] = []

    def drain(self, before_s: float) -> list[ReadingRow]:
        rows = super().drain(before_s)
        self.drained.extend(rows)
        return rows


def start_one_patient(
    config: Config, store: Store, sim: SimulatedPatient, speed: float
) -> tuple[Daemon, StoreWorker, asyncio.Event, asyncio.Task[None]]:
    """The daemon in process, with one simulated patient wearing its oximeter and
    thermometer at `speed` times real time, its ingest a RecordingIngest; set the event to
    stop it, then await the task."""
    store.add_patient(Patient(sim.patient_id, Tier(sim.tier), Profile(sim.profile)), 0.0)
    store.ensure_device(sim.oximeter_id, "berrymed-bci", "simulated", 0.0)
    store.bind(sim.oximeter_id, sim.patient_id, 0.0)
    ingest = RecordingIngest()
    ingest.add_device(sim.oximeter_id, "berrymed-bci")
    ingest.add_device(sim.thermometer_id, "hts")
    clock = ScaledClock(speed)

    async def source(sink):  # type: ignore[no-untyped-def]
        await run_patient(sim, clock, sink)

    worker = StoreWorker(store)
    daemon = Daemon(config, worker, clock, ingest, [source])
    stop = asyncio.Event()
    return daemon, worker, stop, asyncio.create_task(daemon.run(stop))


async def test_a_full_disk_delays_readings_but_loses_none(tmp_path: Path) -> None:
    config = parse_config(
        {"gateway": {"data_dir": str(tmp_path)}, "store": {"batch_interval_s": 0.2}}
    )
    store = Store.open(config.database_path, "gw")
    daemon, worker, stop, running = start_one_patient(config, store, DEMO_PATIENTS[0], 20)
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
    # Every second the daemon decoded is stored, those it read while the disk was full too.
    # (Not necessarily every simulated second: at 20x on a busy machine two seconds' frames
    # can arrive within one second and be stamped with it.)
    assert isinstance(daemon.ingest, RecordingIngest)
    decoded = sorted(row.ts_s for row in daemon.ingest.drained if row.metric == "spo2_percent")
    assert len(seconds) > 80
    assert seconds == decoded


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


@pytest.mark.parametrize(
    ("waiting", "waited_s", "forced", "due"),
    [
        (10, 1.0, False, False),  # a small box's batch waits for more readings ...
        (90, 1.0, False, True),  # ... until there are enough
        (10, 30.0, False, True),  # ... or it has waited long enough
        (1, 0.0, True, True),  # an alert event or a detector state goes at once
        (0, 0.0, True, True),
    ],
)
def test_when_a_batch_is_committed(waiting: int, waited_s: float, forced: bool, due: bool) -> None:
    assert commit_due(waiting, waited_s, forced, min_rows=90, max_delay_s=30.0) is due


async def test_a_small_box_gathers_readings_per_commit_but_commits_an_alert_at_once(
    tmp_path: Path,
) -> None:
    config = parse_config(
        {"gateway": {"data_dir": str(tmp_path)}, "store": {"batch_interval_s": 0.2}}
    )
    assert (config.store.min_commit_readings, config.store.max_commit_delay_s) == (90, 30.0)
    store = Store.open(config.database_path, "gw")
    # The desaturation, 40 times real time: 24 readings a batch, well under 90.
    daemon, worker, stop, running = start_one_patient(config, store, DEMO_PATIENTS[1], 40)
    raised_at: float | None = None
    for _ in range(400):
        await asyncio.sleep(0.1)
        rows = await worker.call(store.list_alerts)
        if any(row["rule"] in {"S1", "S2"} for row in rows):
            raised_at = await worker.call(store.last_reading_s)
            break
    stop.set()
    await running
    worker.shutdown()
    [(stored,)] = store.db.execute("SELECT count(*) FROM readings")
    store.close()
    assert raised_at is not None, "no desaturation alert"
    # The alert was committed with the readings up to its onset, while the box was running.
    assert raised_at >= min(row["onset_s"] for row in rows if row["rule"] in {"S1", "S2"})
    # Most turns kept their readings for a later commit (every turn committed: about 24
    # readings a commit).
    assert daemon.batches_kept > daemon.batches, (daemon.batches_kept, daemon.batches)
    assert stored > 200  # and all of them were stored in the end
