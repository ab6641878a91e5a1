"""Q5 (two oximeters disagree) and Q3 (a scheduled reading missed) against a real store, as
the daemon runs them once a minute; and `pulsegate patients schedule`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from alerts.lifecycle import Alert, AlertEventKind
from alerts.rules import Profile, Tier
from devices.clock import ScaledClock
from devices.protocols.reading import Metric, Quality
from gateway.cli import main
from gateway.config import parse_config
from gateway.daemon import Daemon, StoreWorker
from gateway.ingest import Ingest
from gateway.store import Patient, ReadingRow, Store
from gateway.technical_rules import LAG_S, TechnicalRules, schedules, set_schedule
from sync.payload import OutboxMessage, alert_event_message

OFFSET_S = 8 * 3600  # China
CHINA = dt.timezone(dt.timedelta(hours=8))
DAY0_S = dt.datetime(2027, 3, 1, tzinfo=CHINA).timestamp()  # 00:00 local
HOUR_S = 3600
RED = Patient("p-red", Tier.RED, Profile.DEFAULT)
YELLOW = Patient("p-yellow", Tier.YELLOW, Profile.DEFAULT)


def message(alert: Alert, kind: AlertEventKind, ts_s: float) -> OutboxMessage:
    return alert_event_message("pulsegate", "village-1", alert, kind, ts_s)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "pulsegate.db", "gw-1")
    for patient in (RED, YELLOW):
        opened.add_patient(patient, DAY0_S - 86_400)
    yield opened
    opened.close()


class Caller:
    """The daemon's StoreWorker, in the test's thread."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def call(self, func: Any, *args: Any) -> Any:
        return func(*args)


def oximeter_rows(
    patient: str, device: str, start_s: float, seconds: int, spo2: float, quality: int = 0
) -> list[ReadingRow]:
    rows = []
    for i in range(seconds):
        ts_s = start_s + i
        rows.append(ReadingRow(ts_s, patient, device, Metric.SPO2.value, spo2, quality))
        rows.append(ReadingRow(ts_s, patient, device, Metric.PULSE.value, 72.0, quality))
    return rows


def events_of(store: Store, rule: str) -> list[tuple[str, str]]:
    return [
        (row["kind"], row["priority"])
        for row in store.db.query(
            "SELECT e.kind, a.priority FROM alert_events e JOIN alerts a ON a.id = e.alert_id"
            " WHERE a.rule = ? ORDER BY e.id",
            [rule],
        )
    ]


def look(store: Store, now_s: float) -> list[tuple[Alert, AlertEventKind]]:
    rules = TechnicalRules(OFFSET_S, message)
    patients = {p.id: p for p in store.list_patients()}
    return asyncio.run(rules.look(Caller(store), patients, now_s))


def test_two_oximeters_apart_for_ten_minutes_raise_q5_and_agreeing_clears_it(
    store: Store,
) -> None:
    start_s = DAY0_S + 10 * HOUR_S
    rows = oximeter_rows(RED.id, "clip", start_s, 620, 97.0)
    rows += oximeter_rows(RED.id, "ring", start_s, 620, 91.0)
    store.write_batch(rows, [], {}, message, start_s + 620)
    produced = look(store, start_s + 620 + LAG_S)
    assert [(a.rule.value, a.priority.value, k) for a, k in produced] == [
        ("Q5", "LOW", AlertEventKind.RAISED)
    ]
    details = produced[0][0].details
    assert details["devices"] == "clip / ring"
    assert details["min_spo2_difference_points"] == 6.0
    (outbox,) = store.db.execute("SELECT count(*) FROM outbox").fetchone()
    assert outbox == 1
    assert look(store, start_s + 620 + LAG_S + 60) == []  # still apart: one alert

    later_s = start_s + 620
    rows = oximeter_rows(RED.id, "clip", later_s, 620, 97.0)
    rows += oximeter_rows(RED.id, "ring", later_s, 620, 96.0)
    store.write_batch(rows, [], {}, message, later_s + 620)
    produced = look(store, later_s + 620 + LAG_S)
    assert [(a.rule.value, k) for a, k in produced] == [("Q5", AlertEventKind.CLOSED)]
    assert events_of(store, "Q5") == [("raised", "LOW"), ("closed", "LOW")]


def test_disagreement_under_motion_or_with_one_oximeter_raises_nothing(store: Store) -> None:
    start_s = DAY0_S + 10 * HOUR_S
    moving = int(Quality.MOTION)
    rows = oximeter_rows(RED.id, "clip", start_s, 620, 97.0)
    rows += oximeter_rows(RED.id, "ring", start_s, 620, 88.0, quality=moving)
    rows += oximeter_rows(YELLOW.id, "clip-2", start_s, 620, 85.0)  # one device only
    store.write_batch(rows, [], {}, message, start_s + 620)
    assert look(store, start_s + 620 + LAG_S) == []


def test_missed_slots_raise_a_reminder_escalate_for_red_and_a_reading_clears(
    store: Store,
) -> None:
    set_schedule(store, RED.id, Metric.TEMP, "08:00,20:00", DAY0_S)
    set_schedule(store, YELLOW.id, Metric.TEMP, "08:00,20:00", DAY0_S)
    assert look(store, DAY0_S + 9.9 * HOUR_S) == []  # 08:00 still in its grace
    raised = look(store, DAY0_S + 10.1 * HOUR_S)
    assert sorted((a.patient_id, a.priority.value, k.value) for a, k in raised) == [
        ("p-red", "LOW", "raised"),
        ("p-yellow", "LOW", "raised"),
    ]
    assert look(store, DAY0_S + 11 * HOUR_S) == []
    # 20:00 missed too: the red patient's staff are told; yellow waits for the third.
    escalated = look(store, DAY0_S + 22.1 * HOUR_S)
    assert [(a.patient_id, a.priority.value, k.value) for a, k in escalated] == [
        ("p-red", "MEDIUM", "escalated")
    ]
    # A thermometer reading arrives late for the yellow patient: that clears its reminder.
    reading = ReadingRow(DAY0_S + 22.5 * HOUR_S, YELLOW.id, "thermo", Metric.TEMP.value, 36.8, 0)
    store.write_batch([reading], [], {}, message, DAY0_S + 22.5 * HOUR_S)
    cleared = look(store, DAY0_S + 22.6 * HOUR_S)
    assert [(a.patient_id, k.value) for a, k in cleared] == [("p-yellow", "closed")]
    assert events_of(store, "Q3") == [
        ("raised", "MEDIUM"),  # the red alert, its priority now MEDIUM
        ("raised", "LOW"),
        ("escalated", "MEDIUM"),
        ("closed", "LOW"),
    ]
    (red_q3,) = [row for row in store.list_alerts() if row["patient_id"] == RED.id]
    assert json.loads(red_q3["details"])["missed_metrics"] == "temp_c"
    # The look remembers how far it read and the newest valid reading.
    by_patient = {s.patient_id: s for s in schedules(store)}
    assert by_patient[YELLOW.id].last_valid_s == reading.ts_s
    assert by_patient[RED.id].checked_until_s == DAY0_S + 22.6 * HOUR_S - LAG_S


def test_a_reading_an_hour_before_the_slot_keeps_it_and_probe_off_does_not(
    store: Store,
) -> None:
    set_schedule(store, RED.id, Metric.SPO2, "08:00", DAY0_S)
    early = ReadingRow(DAY0_S + 7.2 * HOUR_S, RED.id, "clip", Metric.SPO2.value, 97.0, 0)
    finger_out = ReadingRow(
        DAY0_S + 7.1 * HOUR_S, YELLOW.id, "clip-2", Metric.SPO2.value, None, int(Quality.FINGER_OUT)
    )
    set_schedule(store, YELLOW.id, Metric.SPO2, "08:00", DAY0_S)
    store.write_batch([early, finger_out], [], {}, message, DAY0_S + 7.2 * HOUR_S)
    produced = look(store, DAY0_S + 10.5 * HOUR_S)
    assert [(a.patient_id, k.value) for a, k in produced] == [("p-yellow", "raised")]


async def test_the_daemon_looks_once_a_minute(store: Store, tmp_path: Path) -> None:
    start_s = DAY0_S + 10 * HOUR_S
    rows = oximeter_rows(RED.id, "clip", start_s, 620, 97.0)
    rows += oximeter_rows(RED.id, "ring", start_s, 620, 90.0)
    store.write_batch(rows, [], {}, message, start_s + 620)
    config = parse_config(
        {"gateway": {"data_dir": str(tmp_path)}, "store": {"batch_interval_s": 0.1}}
    )
    worker = StoreWorker(store)
    clock = ScaledClock(1.0, start_s=start_s + 620 + LAG_S)
    daemon = Daemon(config, worker, clock, Ingest())
    stop = asyncio.Event()
    running = asyncio.create_task(daemon.run(stop))
    for _ in range(100):
        await asyncio.sleep(0.1)
        if await worker.call(lambda: events_of(store, "Q5")):
            break
    stop.set()
    await running
    worker.shutdown()
    assert events_of(store, "Q5") == [("raised", "LOW")]


def invoke(config: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--config", str(config), "patients", *args])


def test_schedule_cli_sets_shows_refuses_and_clears(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[gateway]\ndata_dir = "{tmp_path}"\n')
    assert invoke(config, "add", "p-1", "--tier", "red").exit_code == 0
    empty = invoke(config, "schedule", "p-1")
    assert "p-1: no schedule (continuous monitoring only)" in empty.output
    set_ = invoke(config, "schedule", "p-1", "--spo2", "20:00,8:00,14:00", "--temp", "08:00")
    assert set_.exit_code == 0, set_.output
    assert "p-1: spo2_percent at 08:00,14:00,20:00 (missed after 2 h)" in set_.output
    shown = invoke(config, "schedule", "p-1").output
    assert "p-1: spo2_percent at 08:00,14:00,20:00" in shown
    assert "p-1: temp_c at 08:00" in shown
    bad = invoke(config, "schedule", "p-1", "--temp", "8am")
    assert bad.exit_code == 2
    assert "error: --temp: '8am': a slot is a local time HH:MM" in bad.output
    unknown = invoke(config, "schedule", "p-9", "--temp", "08:00")
    assert unknown.exit_code == 1 and "no patient 'p-9'" in unknown.output
    assert invoke(config, "schedule", "p-1", "--clear", "--temp", "08:00").exit_code == 2
    cleared = invoke(config, "schedule", "p-1", "--clear")
    assert "p-1: schedule removed" in cleared.output
    assert "no schedule" in invoke(config, "schedule", "p-1").output


def test_how_far_q3_read_is_written_every_ten_minutes_not_every_look(store: Store) -> None:
    set_schedule(store, RED.id, Metric.TEMP, "08:00", DAY0_S)
    rules = TechnicalRules(OFFSET_S, message)
    patients = {p.id: p for p in store.list_patients()}

    def look_at(hour: float) -> list[tuple[Alert, AlertEventKind]]:
        return asyncio.run(rules.look(Caller(store), patients, DAY0_S + hour * HOUR_S))

    assert [k.value for _, k in look_at(10.1)] == ["raised"]
    first = schedules(store)[0].checked_until_s
    reading = ReadingRow(DAY0_S + 10.11 * HOUR_S, RED.id, "thermo", Metric.TEMP.value, 36.6, 0)
    store.write_batch([reading], [], {}, message, reading.ts_s)
    # A look later: the reading is seen (the reminder clears), nothing more is written.
    assert [k.value for _, k in look_at(10.13)] == ["closed"]
    assert schedules(store)[0].checked_until_s == first
    assert schedules(store)[0].last_valid_s is None
