"""Retention: old raw readings become per-minute summaries, the size ceiling drops the oldest
raw readings first, alerts and the outbox are never touched, and the log says what happened."""

from __future__ import annotations

import asyncio
import json
import random
import statistics
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.engine import RuleEvent, Transition
from alerts.lifecycle import Alert, AlertEventKind
from alerts.rules import Priority, Profile, RuleId, Tier
from devices.clock import ScaledClock
from devices.simulator import DEMO_PATIENTS, run_patient
from gateway import retention
from gateway.config import parse_config
from gateway.daemon import Daemon, StoreWorker
from gateway.ingest import Ingest
from gateway.retention import (
    RetentionPolicy,
    apply_ceiling,
    apply_retention,
    expire_summaries,
    summarise,
)
from gateway.store import Patient, ReadingRow, Store
from sync.payload import OutboxMessage, alert_event_message

DAY_S = 86_400
T0_S = 1_800_000_000.0  # a minute boundary
PATIENT = Patient("p-1", Tier.RED, Profile.DEFAULT)


def message(alert: Alert, kind: AlertEventKind, ts_s: float) -> OutboxMessage:
    return alert_event_message("pg", "site", alert, kind, ts_s)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # (ts_s, series, value, quality) -> (minute, series, n, missing, min, median, max, q)
        ([(0.0, 1, 97.0, 0), (1.0, 1, 95.0, 4), (2.0, 1, 96.0, 0)], [(0, 1, 3, 0, 95, 96, 97, 4)]),
        ([(0.0, 1, None, 1), (59.0, 1, 90.0, 0)], [(0, 1, 1, 1, 90, 90, 90, 1)]),
        (
            [(59.0, 1, 90.0, 0), (60.0, 1, 91.0, 0)],
            [(0, 1, 1, 0, 90, 90, 90, 0), (60, 1, 1, 0, 91, 91, 91, 0)],
        ),
        ([(5.0, 2, None, 16)], [(0, 2, 0, 1, None, None, None, 16)]),
        (
            [(0.0, 1, 1.0, 0), (1.0, 1, 2.0, 0), (1.5, 2, 7.0, 0)],
            [(0, 1, 2, 0, 1, 1.5, 2, 0), (0, 2, 1, 0, 7, 7, 7, 0)],
        ),
    ],
)
def test_summarise_per_series_and_minute(
    rows: list[tuple[float, int, float | None, int]], expected: list[tuple[object, ...]]
) -> None:
    got = [
        (m.minute_s, m.series_id, m.n, m.missing, m.min, m.median, m.max, m.quality)
        for m in summarise(rows)
    ]
    assert got == expected


class Worker:
    """The store called directly (what StoreWorker does on its thread)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def call(self, func, *args):  # type: ignore[no-untyped-def]
        return func(*args)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """Three days of readings every 10 s from two devices, and an unsent alert on day one."""
    opened = Store.open(tmp_path / "pulsegate.db", "gw")
    opened.add_patient(PATIENT, T0_S)
    rng = random.Random(3)
    for hour in range(72):
        rows = [
            ReadingRow(T0_S + hour * 3600 + s, "p-1", device, metric, float(rng.randint(85, 99)), 0)
            for s in range(0, 3600, 10)
            for device, metric in (("ox-1", "spo2_percent"), ("th-1", "temp_c"))
        ]
        opened.write_batch(rows, [], {}, message, T0_S)
    onset = RuleEvent(RuleId.S1, Transition.ONSET, int(T0_S) + 50, Priority.HIGH, True, {})
    opened.write_batch([], [(PATIENT, onset)], {}, message, T0_S + 60)
    yield opened
    opened.close()


def raw_by_minute(store: Store) -> dict[tuple[int, str], list[float]]:
    minutes: dict[tuple[int, str], list[float]] = defaultdict(list)
    for ts_s, device, value in store.db.execute("SELECT ts_s, device_id, value FROM readings"):
        minutes[(int(ts_s // 60) * 60, device)].append(value)
    return minutes


def summaries(store: Store) -> dict[tuple[int, str], tuple[int, float, float, float]]:
    rows = store.db.execute(
        "SELECT m.minute_s, s.device_id, m.n, m.value_min, m.value_median, m.value_max"
        " FROM reading_minutes m JOIN reading_series s ON s.id = m.series_id"
    )
    return {(minute, device): (n, lo, mid, hi) for minute, device, n, lo, mid, hi in rows}


def log_entries(store: Store, kind: str) -> list[dict[str, float]]:
    rows = store.db.execute("SELECT details FROM maintenance_log WHERE kind = ?", [kind])
    return [json.loads(row[0]) for row in rows]


async def test_readings_older_than_the_retention_period_become_minute_summaries(
    store: Store,
) -> None:
    before = raw_by_minute(store)
    outbox_before = store.pending_messages(100)
    newest_s = T0_S + 72 * 3600 - 10
    removed = await apply_retention(Worker(store), RetentionPolicy(1.0, 0), now_s=newest_s + 5)

    cutoff_s = (newest_s - DAY_S) // 60 * 60
    [(oldest_left,)] = store.db.execute("SELECT min(ts_s) FROM readings")
    assert oldest_left == cutoff_s
    rolled = {key: values for key, values in before.items() if key[0] < cutoff_s}
    assert removed == sum(len(v) for v in rolled.values())
    assert summaries(store) == {
        key: (len(v), min(v), statistics.median(v), max(v)) for key, v in rolled.items()
    }
    assert store.pending_messages(100) == outbox_before  # the day-one alert is still unsent
    assert len(store.list_alerts(open_only=True)) == 1
    assert log_entries(store, "retention") == [{"removed": removed, "before_s": newest_s - DAY_S}]


async def test_a_clock_years_ahead_deletes_nothing_recent(store: Store) -> None:
    count = store.count("readings")
    far_future_s = T0_S + 20 * 365 * DAY_S
    removed = await apply_retention(Worker(store), RetentionPolicy(2.0, 0), now_s=far_future_s)
    # The cut-off follows the newest reading, not the clock: only day one goes.
    assert 0 < removed < count / 2


async def test_summaries_older_than_their_retention_period_are_deleted(store: Store) -> None:
    newest_s = T0_S + 72 * 3600 - 10
    await apply_retention(Worker(store), RetentionPolicy(1.0, 0), now_s=newest_s + 5)
    rolled = summaries(store)
    keep_all = RetentionPolicy(1.0, 0, summary_retention_days=0)
    assert await expire_summaries(Worker(store), keep_all, now_s=newest_s + 5) == 0
    policy = RetentionPolicy(1.0, 0, summary_retention_days=2.0)
    # A clock years ahead: the cut-off follows the newest reading, as for raw readings.
    deleted = await expire_summaries(Worker(store), policy, now_s=T0_S + 20 * 365 * DAY_S)

    cutoff_s = newest_s - 2 * DAY_S
    assert summaries(store) == {key: v for key, v in rolled.items() if key[0] >= cutoff_s}
    assert deleted == len(rolled) - len(summaries(store)) > 0
    assert min(minute for minute, _ in summaries(store)) >= cutoff_s
    assert log_entries(store, "summaries_expired") == [{"deleted": deleted, "before_s": cutoff_s}]
    assert len(store.list_alerts(open_only=True)) == 1  # alerts are never touched
    assert await expire_summaries(Worker(store), policy, now_s=newest_s + 5) == 0


async def test_above_the_ceiling_the_oldest_raw_readings_go_first(store: Store) -> None:
    used = retention.used_bytes(store)
    ceiling = used - 200_000
    outbox_before = store.pending_messages(100)
    removed = await apply_ceiling(Worker(store), RetentionPolicy(30.0, ceiling), T0_S)

    assert removed > 0
    assert retention.used_bytes(store) <= ceiling
    [(oldest_left,)] = store.db.execute("SELECT min(ts_s) FROM readings")
    [(newest_summary,)] = store.db.execute("SELECT max(minute_s) FROM reading_minutes")
    assert newest_summary < oldest_left  # strictly the oldest went
    assert store.pending_messages(100) == outbox_before
    [entry] = log_entries(store, "ceiling")
    assert entry["removed"] == removed and entry["oldest_raw_s"] == oldest_left


async def test_a_ceiling_below_what_alerts_need_drops_every_raw_reading_and_says_so(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    outbox_before = store.pending_messages(100)
    await apply_ceiling(Worker(store), RetentionPolicy(30.0, 1), T0_S)
    assert store.count("readings") == 0
    assert store.pending_messages(100) == outbox_before
    assert len(store.list_alerts()) == 1
    assert any("no raw readings left" in r.getMessage() for r in caplog.records)


async def test_the_daemon_runs_retention_periodically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "FIRST_RUN_AFTER_S", 0.5)
    config = parse_config(
        {
            "gateway": {"data_dir": str(tmp_path)},
            # min_commit_readings 1: today's readings are stored by the first run at 0.5 s
            "store": {"batch_interval_s": 0.2, "retention_days": 1, "min_commit_readings": 1},
        }
    )
    store = Store.open(config.database_path, "gw")
    clock = ScaledClock(20)
    old_s = clock.now_s() - 3 * DAY_S
    store.write_batch(
        [ReadingRow(old_s + s, None, "ox-old", "spo2_percent", 97.0, 0) for s in range(120)],
        [],
        {},
        message,
        old_s,
    )
    sim = DEMO_PATIENTS[0]
    ingest = Ingest()
    ingest.add_device(sim.oximeter_id, "berrymed-bci")
    ingest.add_device(sim.thermometer_id, "hts")

    async def source(sink):  # type: ignore[no-untyped-def]
        await run_patient(sim, clock, sink)

    worker = StoreWorker(store)
    daemon = Daemon(config, worker, clock, ingest, [source])
    stop = asyncio.Event()
    running = asyncio.create_task(daemon.run(stop))
    await asyncio.sleep(2.0)
    stop.set()
    await running
    worker.shutdown()
    try:
        devices = {row[0] for row in store.db.execute("SELECT DISTINCT device_id FROM readings")}
        [(summarised,)] = store.db.execute("SELECT sum(n) FROM reading_minutes")
    finally:
        store.close()
    assert "ox-old" not in devices and sim.oximeter_id in devices  # today's stay raw
    assert summarised == 120  # the old device's two minutes were rolled up
