"""The day- and night-level rules run by the daemon's daily job against a real store: 16 days
of synthetic readings in, alerts with their events and outbox rows out, once per local day."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from alerts.lifecycle import Alert, AlertEventKind
from alerts.rules import Profile, Tier
from devices.clock import ScaledClock
from devices.protocols.reading import Metric
from gateway import daily_job, retention
from gateway.config import ConfigError, parse_config
from gateway.daemon import Daemon, StoreWorker
from gateway.daily_job import DailyJob, due_day, is_due
from gateway.day_history import local_midnight_s, one_hz_grid
from gateway.ingest import Ingest
from gateway.store import Patient, ReadingRow, Store
from sync.payload import OutboxMessage, alert_event_message

OFFSET_S = 8 * 3600  # China
HOUR_S = 3600
DAY = dt.date(2026, 3, 16)  # the morning evaluated
NOW_S = local_midnight_s(DAY, OFFSET_S) + 8 * HOUR_S  # 08:00 local
RED, NEW = "p-red", "p-new"
BASE_RHR = (60.0, 61.0, 59.0, 60.0, 62.0, 58.0, 60.0)


def at(day: dt.date, hour: float) -> int:
    """UTC epoch second of `hour` o'clock local time on `day`."""
    return local_midnight_s(day, OFFSET_S) + round(hour * HOUR_S)


def before(days: int) -> dt.date:
    return DAY - dt.timedelta(days=days)


def block(
    patient: str, device: str, metric: str, start_s: int, values: np.ndarray, step_s: int = 1
) -> list[ReadingRow]:
    return [
        ReadingRow(float(start_s + i * step_s), patient, device, metric, float(v), 0)
        for i, v in enumerate(values)
    ]


def with_dips(level: float, hours: float, per_hour: int) -> np.ndarray:
    """A night at `level` with `per_hour` dips of 4 points held 15 s (ODI3 = per_hour)."""
    out = np.full(round(hours * HOUR_S), level)
    shape = [level - k for k in (1, 2, 3, 4)]
    shape = shape + [level - 4] * 15 + shape[::-1][1:]
    for start in range(60, len(out) - HOUR_S // per_hour, HOUR_S // per_hour):
        out[start : start + len(shape)] = shape
    return out


def red_day(k: int) -> list[ReadingRow]:
    """Day `DAY - k` of the red patient: SpO2 14:00-16:00 (97 %, 92 % on the last day), the
    night ending that morning (dips on the last one), pulse and skin temperature after
    midnight (both up on the last 2 nights), a thermometer reading (fever on the last 3 days)."""
    day = before(k)
    rows = block(
        RED, "ox", "spo2_percent", at(day, 14), np.full(2 * HOUR_S, 92.0 if k == 1 else 97)
    )
    if k in (0, 1):  # the last two nights, from 22:00 the evening before
        night = with_dips(97.0, 5, 20) if k == 0 else np.full(5 * HOUR_S, 97.0)
        rows += block(RED, "ox", "spo2_percent", at(day, -2), night)
    rhr = 75.0 if k <= 1 else BASE_RHR[k % len(BASE_RHR)]
    rows += block(RED, "ox", "pulse_bpm", at(day, 0), np.full(round(1.5 * HOUR_S), rhr))
    skin = block(RED, "band", "temp_c", at(day, 0), np.full(120, 34.3 if k <= 1 else 33.0), 60)
    rows += [
        ReadingRow(r.ts_s, r.patient_id, r.device_id, r.metric, r.value, 0, "skin") for r in skin
    ]
    if 1 <= k <= 4:
        fever = 38.8 if k <= 3 else 36.8
        rows.append(ReadingRow(at(day, 9), RED, "thermo", "temp_c", fever, 0, "axillary"))
    return rows


def new_patient_day(k: int) -> list[ReadingRow]:
    """Too little history: 2 days of SpO2 (a drop on the last), a 3-h night full of dips,
    2 nights of a high pulse and 2 days of fever."""
    day = before(k)
    rows = block(
        NEW, "ox2", "spo2_percent", at(day, 14), np.full(2 * HOUR_S, 90.0 if k == 1 else 97)
    )
    rows += block(NEW, "ox2", "pulse_bpm", at(day, 0), np.full(round(1.5 * HOUR_S), 90.0))
    rows.append(ReadingRow(at(day, 9), NEW, "thermo2", "temp_c", 39.0, 0, "axillary"))
    if k == 0:
        rows += block(NEW, "ox2", "spo2_percent", at(day, -2), with_dips(97.0, 3, 40))
    return rows


def message(alert: Alert, kind: AlertEventKind, ts_s: float) -> OutboxMessage:
    return alert_event_message("pulsegate", "site", alert, kind, ts_s)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with the history, built once (its file is copied for each test)."""
    path = tmp_path_factory.mktemp("daily") / "pulsegate.db"
    store = Store.open(path, "gw")
    store.add_patient(Patient(RED, Tier.RED, Profile.DEFAULT), 0.0)
    store.add_patient(Patient(NEW, Tier.GREEN, Profile.DEFAULT), 0.0)
    for k in range(15, -1, -1):
        store.write_batch(red_day(k), [], {}, message, 0.0)
        if k <= 2:
            store.write_batch(new_patient_day(k), [], {}, message, 0.0)
    store.close()
    return path


@pytest.fixture
def store(built: Path, tmp_path: Path) -> Iterator[Store]:
    path = tmp_path / "pulsegate.db"
    shutil.copy(built, path)
    opened = Store.open(path, "gw")
    yield opened
    opened.close()


def alerts_of(store: Store, patient: str) -> dict[str, dict[str, object]]:
    rows = store.db.query("SELECT * FROM alerts WHERE patient_id = ?", [patient])
    return {row["rule"]: row for row in rows}


def counts(store: Store) -> tuple[int, int, int]:
    return (store.count("alerts"), store.count("alert_events"), store.count("outbox"))


async def run_job(store: Store, now_s: float, job: DailyJob | None = None) -> list[object]:
    worker = StoreWorker(store)
    try:
        _, evaluated = await (job or DailyJob(OFFSET_S, message)).run(worker, now_s)
    finally:
        worker.shutdown()
    return list(evaluated)


async def test_the_morning_raises_each_rule_once_with_an_outbox_row(store: Store) -> None:
    evaluated = await run_job(store, NOW_S)
    assert sorted(evaluated) == [(NEW, DAY), (RED, DAY)]

    alerts = alerts_of(store, RED)
    priorities = {rule: (row["priority"], row["status"]) for rule, row in alerts.items()}
    assert priorities == {
        "S6": ("MEDIUM", "open"),  # ODI3 20/h, newly above 15/h
        "S5": ("MEDIUM", "open"),  # 2 h at 92 % against a 97 % baseline
        "H3": ("MEDIUM", "open"),  # 75 bpm on 2 nights against 60
        "T3": ("HIGH", "open"),  # > 38.5 °C on 3 days in a row
        "T5": ("LOW", "open"),  # skin +1.3 °C on 2 nights
    }
    s6 = json.loads(str(alerts["S6"]["details"]))
    assert s6["night"] == DAY.isoformat()
    assert s6["odi3_per_hour"] == pytest.approx(20.0, abs=0.5)
    assert s6["valid_h"] == 5.0
    s5 = json.loads(str(alerts["S5"]["details"]))
    assert (s5["day"], s5["baseline_percent"]) == (before(1).isoformat(), 97.0)
    for row in alerts.values():
        assert row["onset_s"] == NOW_S
        events = list(
            store.db.query("SELECT kind FROM alert_events WHERE alert_id = ?", [row["id"]])
        )
        assert [e["kind"] for e in events] == ["raised"]
    payloads = [json.loads(row["payload"]) for row in store.db.query("SELECT payload FROM outbox")]
    assert sorted(p["rule"] for p in payloads) == ["H3", "S5", "S6", "T3", "T5"]
    assert {p["event"] for p in payloads} == {"raised"}
    assert alerts_of(store, NEW) == {}  # too little history: indeterminate, not an alert


async def test_readings_rolled_up_by_retention_still_make_the_baselines(store: Store) -> None:
    worker = StoreWorker(store)
    policy = retention.RetentionPolicy(retention_days=7, max_database_bytes=0)
    removed = await retention.apply_retention(worker, policy, NOW_S)
    worker.shutdown()
    assert removed > 100_000
    oldest_raw_s = store.db.execute("SELECT min(ts_s) FROM reading_samples").fetchone()[0]
    assert oldest_raw_s > at(before(8), 0)  # 8 of the 14 baseline nights are minutes now
    await run_job(store, NOW_S)
    alerts = alerts_of(store, RED)
    assert set(alerts) == {"S5", "S6", "H3", "T3", "T5"}
    h3 = json.loads(str(alerts["H3"]["details"]))
    # the last night: 14 nights at the base rates (8 of them as minutes) and the first at 75
    assert h3["baseline_bpm"] == pytest.approx((2 * sum(BASE_RHR) + 75) / 15)


async def test_a_morning_is_evaluated_once_even_across_a_restart(store: Store) -> None:
    await run_job(store, NOW_S)
    written = counts(store)
    assert await run_job(store, NOW_S) == []
    assert await run_job(store, NOW_S + 10 * HOUR_S) == []  # 18:00, same local day
    assert counts(store) == written
    last = {
        row["patient_id"]: row["last_day"]
        for row in store.db.query("SELECT * FROM day_rule_evaluations")
    }
    assert last == {RED: DAY.isoformat(), NEW: DAY.isoformat()}


async def test_before_seven_the_previous_morning_is_the_one_due(store: Store) -> None:
    early_s = NOW_S - 2 * HOUR_S  # 06:00 local
    assert due_day(early_s, OFFSET_S) == before(1)
    assert sorted(await run_job(store, early_s)) == [(NEW, before(1)), (RED, before(1))]
    assert "S6" not in alerts_of(store, RED)  # that night was a clear one
    assert sorted(await run_job(store, NOW_S)) == [(NEW, DAY), (RED, DAY)]
    assert "S6" in alerts_of(store, RED)


def test_a_stored_day_far_ahead_of_the_clock_is_not_trusted() -> None:
    assert is_due(None, DAY)
    assert is_due(before(1), DAY)
    assert not is_due(DAY, DAY)
    assert not is_due(DAY + dt.timedelta(days=1), DAY)  # a change of UTC offset
    assert is_due(DAY + dt.timedelta(days=400), DAY)  # written while the clock was wrong


async def test_a_clear_night_closes_s6_the_next_morning(store: Store) -> None:
    await run_job(store, NOW_S)
    clear_night = block(RED, "ox", "spo2_percent", at(DAY, 22), np.full(5 * HOUR_S, 97.0))
    store.write_batch(clear_night, [], {}, message, 0.0)
    next_day = DAY + dt.timedelta(days=1)
    assert sorted(await run_job(store, NOW_S + 24 * HOUR_S)) == [(NEW, next_day), (RED, next_day)]
    s6 = alerts_of(store, RED)["S6"]
    assert s6["status"] == "closed"
    kinds = [
        row["kind"]
        for row in store.db.query(
            "SELECT kind FROM alert_events WHERE alert_id = ? ORDER BY id", [s6["id"]]
        )
    ]
    assert kinds == ["raised", "closed"]
    events = [
        json.loads(r["payload"])["event"]
        for r in store.db.query(
            'SELECT payload FROM outbox WHERE payload LIKE \'%"rule":"S6"%\' ORDER BY id'
        )
    ]
    assert events == ["raised", "closed"]


async def test_a_failing_patient_is_logged_and_skipped_and_the_others_go_on(
    store: Store, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = daily_job.evaluate_morning

    def failing_for_red(patient: Patient, *args: object) -> object:
        if patient.id == RED:
            raise ValueError("history must be in strictly increasing date order")
        return real(patient, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(daily_job, "evaluate_morning", failing_for_red)
    with caplog.at_level(logging.ERROR, logger="gateway.daily_job"):
        assert sorted(await run_job(store, NOW_S)) == [(NEW, DAY), (RED, DAY)]
    assert f"day rules failed for patient {RED} on {DAY}; that day is skipped" in caplog.text
    assert store.count("alerts") == 0


@pytest.mark.parametrize(("table", "offset_s"), [({}, 8 * 3600), ({"utc_offset_h": -5.5}, -19_800)])
def test_the_utc_offset_comes_from_the_detector_section(
    table: dict[str, float], offset_s: int
) -> None:
    config = parse_config({"detector": table})
    assert config.detector.utc_offset_s == offset_s


@pytest.mark.parametrize("value", [14.5, -15, "8"])
def test_a_utc_offset_outside_minus_14_to_14_is_a_config_error(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^detector\.utc_offset_h: "):
        parse_config({"detector": {"utc_offset_h": value}})


async def finish(job: DailyJob, worker: StoreWorker, now_s: float) -> list[str]:
    """Let the run that `tick` started finish, and collect it with the next tick."""
    assert job.periodic.task is not None
    await job.periodic.task
    return sorted(alert.rule.value for alert, _ in job.tick(worker, now_s))


async def test_a_database_error_is_logged_and_the_day_tried_again(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    job = DailyJob(OFFSET_S, message, every_s=0.0)
    worker = StoreWorker(store)
    await worker.call(store.db.execute, "ALTER TABLE day_rule_evaluations RENAME TO moved")
    with caplog.at_level(logging.ERROR, logger="gateway.daily_job"):
        assert job.tick(worker, NOW_S) == []
        assert await finish(job, worker, NOW_S) == []
    assert "cannot evaluate the day- and night-level rules (no such table" in caplog.text
    assert job.periodic.task is not None  # the next run has started already, and fails the same way
    await job.periodic.task
    await worker.call(store.db.execute, "ALTER TABLE moved RENAME TO day_rule_evaluations")
    job.tick(worker, NOW_S)
    assert await finish(job, worker, NOW_S) == ["H3", "S5", "S6", "T3", "T5"]
    await job.stop()
    worker.shutdown()


async def test_ticks_are_a_minute_apart_and_never_wait_for_a_run(store: Store) -> None:
    job = DailyJob(OFFSET_S, message)
    worker = StoreWorker(store)
    assert job.tick(worker, NOW_S - 2 * HOUR_S) == []  # started, not awaited
    assert job.periodic.task is not None and not job.periodic.task.done()
    assert await finish(job, worker, NOW_S) == []  # the previous morning: a clear night
    assert job.periodic.task is None  # the 08:00 morning is due, but the last look was just now
    worker.shutdown()
    assert "S6" not in alerts_of(store, RED)


async def test_the_daemon_runs_the_daily_rules(store: Store, tmp_path: Path) -> None:
    config = parse_config(
        {"gateway": {"data_dir": str(tmp_path)}, "store": {"batch_interval_s": 0.1}}
    )
    worker = StoreWorker(store)
    daemon = Daemon(config, worker, ScaledClock(1.0, start_s=NOW_S), Ingest())
    stop = asyncio.Event()
    running = asyncio.create_task(daemon.run(stop))
    for _ in range(100):
        await asyncio.sleep(0.1)
        if await worker.call(store.count, "alerts") >= 5:
            break
    stop.set()
    await running
    worker.shutdown()
    assert set(alerts_of(store, RED)) == {"S5", "S6", "H3", "T3", "T5"}


def test_the_grid_drops_flagged_and_implausible_values_and_holds_sparse_ones() -> None:
    rows = [
        (100.0, 96.0, 0, None),
        (100.4, 98.0, 0, None),  # same second: the mean
        (101.0, 90.0, 0x01, None),  # finger out
        (102.0, 91.0, 0x08, None),  # motion: not at rest
        (103.0, 20.0, 0, None),  # implausible
        (104.0, None, 0, None),
    ]
    grid = one_hz_grid(100, 6, rows, Metric.SPO2)
    assert grid[0] == 97.0
    assert np.isnan(grid[1:]).all()
    moving = one_hz_grid(100, 6, rows, Metric.SPO2, resting=False)
    assert moving[2] == 91.0
    held = one_hz_grid(0, 200, [(10.0, 33.0, 0, "skin")], Metric.TEMP, hold_s=60)
    assert np.isnan(held[:10]).all() and (held[10:71] == 33.0).all() and np.isnan(held[71:]).all()
