"""The technical rules that look across devices and across the day, once a minute: Q5 device
disagreement and Q3 missed scheduled reading (CLINICAL_RULES.md 1.10; the decisions are the
pure functions of alerts/disagreement.py and alerts/schedule.py).

Q5 reads the last 10 minutes of SpO2 and pulse of the patients who have had two oximeters,
by device. Q3 keeps, per scheduled patient and metric, the newest valid reading and how far
the stored readings were looked through (in memory, and in `reading_schedules` every 10
minutes), so each minute reads only the readings since the last look (a quarter of an hour
back, for readings that arrive late), at most an hour of them per store call. Events go
through the store's alert lifecycle like every other rule's: alert, event and outbox row in
one transaction.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from alerts.channels import LOW_CONFIDENCE, gate
from alerts.disagreement import WINDOW_S, DeviceSeries, compare, q5_event
from alerts.events import RuleEvent
from alerts.lifecycle import AlertEventKind, AlertStatus
from alerts.rules import RuleId
from alerts.schedule import (
    EARLY_S,
    due_slots,
    format_slots,
    missed_in_a_row,
    parse_slots,
    q3_decision,
)
from devices.protocols.reading import Metric
from gateway.daily_job import StoreCaller
from gateway.migrations import reading_id_floor
from gateway.periodic import AlertEvents, Periodic
from gateway.store import MessageFactory, Patient, Store

log = logging.getLogger(__name__)

LOOK_EVERY_S = 60.0  # wall-clock seconds between two looks
LAG_S = 10  # the newest seconds may still be on their way to the store
LATE_MARGIN_S = 15 * 60  # Q3 looks this far back again, for readings that came in late
SCAN_CHUNK_S = 3600  # at most this much of the readings per store call
# How far Q3 read is kept in memory and written to the store at most this often (a commit a
# minute per schedule would cost the SD card more than the readings); a restart reads the
# readings since the last write again.
RECORD_EVERY_S = 600.0
SCHEDULED_METRICS = (Metric.SPO2, Metric.TEMP)


# -- Q5: two oximeters on one patient ----------------------------------------------------------


def oximeter_windows(store: Store, end_s: int) -> dict[str, dict[str, DeviceSeries]]:
    """Per patient with at least two oximeters in the window [end_s - 10 min, end_s), each
    device's SpO2 and pulse on a 1 Hz grid (NaN where not usable or of low confidence)."""
    series: dict[int, tuple[str, str, Metric]] = {}
    devices: dict[str, set[str]] = defaultdict(set)
    for series_id, device_id, metric, patient_id in store.db.execute(
        "SELECT id, device_id, metric, patient_id FROM reading_series"
        " WHERE metric IN (?, ?) AND patient_id != ''",
        [Metric.SPO2.value, Metric.PULSE.value],
    ):
        series[series_id] = (patient_id, device_id, Metric(metric))
        devices[patient_id].add(device_id)
    wanted = {sid: key for sid, key in series.items() if len(devices[key[0]]) >= 2}
    if not wanted:
        return {}
    start_s = end_s - WINDOW_S
    grid: dict[tuple[str, str, Metric], np.ndarray] = {}
    marks = ", ".join("?" * len(wanted))
    for ts_s, series_id, value, quality in store.db.execute(
        "SELECT ts_s, series_id, value, quality FROM reading_samples"
        f" WHERE id >= ? AND id < ? AND series_id IN ({marks})",
        [reading_id_floor(start_s), reading_id_floor(end_s), *wanted],
    ):
        patient_id, device_id, metric = wanted[series_id]
        usable = gate(metric, value, quality)
        if math.isnan(usable) or quality & LOW_CONFIDENCE:
            continue
        key = (patient_id, device_id, metric)
        if key not in grid:
            grid[key] = np.full(WINDOW_S, np.nan)
        grid[key][int(ts_s) - start_s] = usable
    windows: dict[str, dict[str, DeviceSeries]] = defaultdict(dict)
    empty = np.full(WINDOW_S, np.nan)
    for (patient_id, device_id, metric), values in grid.items():
        if metric is Metric.SPO2:
            pulse = grid.get((patient_id, device_id, Metric.PULSE), empty)
            windows[patient_id][device_id] = DeviceSeries(values, pulse)
    return {patient: found for patient, found in windows.items() if len(found) >= 2}


def q5_events(
    store: Store, patients: dict[str, Patient], now_s: float
) -> list[tuple[Patient, RuleEvent]]:
    end_s = int(now_s) - LAG_S
    events = []
    for patient_id, window in oximeter_windows(store, end_s).items():
        patient = patients.get(patient_id)
        if patient is None:
            continue
        live = store.live_priorities(patient_id, (RuleId.Q5,)).get(RuleId.Q5)
        event = q5_event(compare(window), live, end_s)
        if event is not None:
            events.append((patient, event))
    return events


# -- Q3: scheduled readings --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Schedule:
    patient_id: str
    metric: Metric
    slots_min: tuple[int, ...]
    set_s: float
    checked_until_s: float
    last_valid_s: float | None


def schedules(store: Store) -> list[Schedule]:
    return [
        Schedule(p, Metric(m), parse_slots(slots), set_s, checked, last)
        for p, m, slots, set_s, checked, last in store.db.execute(
            "SELECT patient_id, metric, slots, set_s, checked_until_s, last_valid_s"
            " FROM reading_schedules ORDER BY patient_id, metric"
        )
    ]


def set_schedule(store: Store, patient_id: str, metric: Metric, slots: str, now_s: float) -> str:
    """Set (or replace) a patient's schedule of `metric`; slots before now never count.
    Returns the slots as stored (ScheduleError for bad slots)."""
    text = format_slots(parse_slots(slots))
    with store.transaction():
        store.db.execute(
            "INSERT INTO reading_schedules"
            " (patient_id, metric, slots, set_s, checked_until_s, last_valid_s)"
            " VALUES (?, ?, ?, ?, ?, NULL) ON CONFLICT (patient_id, metric) DO UPDATE SET"
            " slots = excluded.slots, set_s = excluded.set_s,"
            " checked_until_s = excluded.checked_until_s, last_valid_s = NULL",
            [patient_id, metric.value, text, now_s, now_s - EARLY_S],
        )
    return text


def clear_schedule(store: Store, patient_id: str) -> int:
    """Remove the patient's schedules; returns how many there were."""
    with store.transaction():
        cursor = store.db.execute(
            "DELETE FROM reading_schedules WHERE patient_id = ?", [patient_id]
        )
    return int(cursor.rowcount)


def series_of(store: Store, patient_id: str, metric: Metric) -> list[int]:
    """The patient's reading series of `metric` (one per device and body site)."""
    return [
        int(row[0])
        for row in store.db.execute(
            "SELECT id FROM reading_series WHERE patient_id = ? AND metric = ?",
            [patient_id, metric.value],
        )
    ]


def newest_valid_s(
    store: Store, metric: Metric, series: list[int], start_s: float, end_s: float
) -> float | None:
    """The newest reading of `metric` in `series` with a usable value in [start_s, end_s)."""
    if not series:
        return None
    cursor = store.db.execute(
        "SELECT ts_s, value, quality FROM reading_samples WHERE id >= ? AND id < ?"
        f" AND series_id IN ({', '.join('?' * len(series))}) ORDER BY id DESC",
        [reading_id_floor(start_s), reading_id_floor(end_s), *series],
    )
    for ts_s, value, quality in cursor:
        if not math.isnan(gate(metric, value, quality)):
            return float(ts_s)
    return None


def record_look(store: Store, schedule: Schedule, until_s: float, last_s: float | None) -> None:
    with store.transaction():
        store.db.execute(
            "UPDATE reading_schedules SET checked_until_s = ?, last_valid_s = ?"
            " WHERE patient_id = ? AND metric = ? AND set_s = ?",
            [until_s, last_s, schedule.patient_id, schedule.metric.value, schedule.set_s],
        )


def apply_q3(
    store: Store,
    patient: Patient,
    missed: dict[str, int],
    now_s: float,
    make_message: MessageFactory,
) -> AlertEvents:
    """The patient's Q3 decision applied in one transaction."""
    live = store.live_alert(patient.id, RuleId.Q3)
    present = None
    if live is not None and live.status in (AlertStatus.OPEN, AlertStatus.ACKED):
        present = live.priority
    decision = q3_decision(missed, patient.tier, present, int(now_s))
    if decision.event is not None:
        return store.write_batch([], [(patient, decision.event)], {}, make_message, now_s)
    if decision.escalate_to is not None and live is not None:
        with store.transaction():
            escalated = store.escalate(live, decision.escalate_to, now_s, make_message)
        return [(escalated, AlertEventKind.ESCALATED)]
    return []


# -- the daemon's job ----------------------------------------------------------------------------


@dataclass(slots=True)
class TechnicalRules:
    """Q5 and Q3 for every patient once a minute, in a task of its own (like the daily job)."""

    utc_offset_s: int
    make_message: MessageFactory
    every_s: float = LOOK_EVERY_S
    periodic: Periodic = field(init=False)
    # per schedule (patient, metric, set time): how far it was read, the newest valid reading,
    # and when that was last written to the store (monotonic)
    _looked: dict[tuple[str, str, float], tuple[float, float | None, float]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        self.periodic = Periodic(self.every_s)

    def tick(self, worker: StoreCaller, patients: dict[str, Patient], now_s: float) -> AlertEvents:
        """Called by the batch loop: the events of a finished look; starts the next when due."""
        return self.periodic.tick(lambda: self._supervised(worker, dict(patients), now_s))

    async def stop(self) -> None:
        await self.periodic.stop()

    async def _supervised(
        self, worker: StoreCaller, patients: dict[str, Patient], now_s: float
    ) -> AlertEvents:
        try:
            return await self.look(worker, patients, now_s)
        except sqlite3.Error as exc:
            log.error("cannot evaluate Q3/Q5 (%s); trying again in a minute", exc)
            return []

    async def look(
        self, worker: StoreCaller, patients: dict[str, Patient], now_s: float
    ) -> AlertEvents:
        """One look at every patient: Q5, then Q3; returns the alert events written."""
        store = worker.store
        produced: AlertEvents = []
        events = await worker.call(q5_events, store, patients, now_s)
        if events:
            produced += await worker.call(
                store.write_batch, [], events, {}, self.make_message, now_s
            )
        missed: dict[str, dict[str, int]] = defaultdict(dict)
        for schedule in await worker.call(schedules, store):
            if schedule.patient_id in patients:
                missed[schedule.patient_id][schedule.metric.value] = await self._missed(
                    worker, schedule, now_s
                )
        for patient_id, per_metric in missed.items():
            produced += await worker.call(
                apply_q3, store, patients[patient_id], per_metric, now_s, self.make_message
            )
        return produced

    async def _missed(self, worker: StoreCaller, schedule: Schedule, now_s: float) -> int:
        """Slots of `schedule` missed in a row, after reading what came since the last look."""
        key = (schedule.patient_id, schedule.metric.value, schedule.set_s)
        checked_s, last_s, recorded_s = self._looked.get(
            key, (schedule.checked_until_s, schedule.last_valid_s, -math.inf)
        )
        until_s = now_s - LAG_S
        start_s = max(checked_s - LATE_MARGIN_S, schedule.set_s - EARLY_S)
        series = await worker.call(series_of, worker.store, schedule.patient_id, schedule.metric)
        newest = None
        high_s = until_s
        while newest is None and high_s > start_s:  # newest first: usually found at once
            low_s = max(start_s, high_s - SCAN_CHUNK_S)
            newest = await worker.call(
                newest_valid_s, worker.store, schedule.metric, series, low_s, high_s
            )
            high_s = low_s
        if newest is not None and (last_s is None or newest > last_s):
            last_s = newest
        monotonic_s = time.monotonic()
        if monotonic_s - recorded_s >= RECORD_EVERY_S:
            await worker.call(record_look, worker.store, schedule, until_s, last_s)
            recorded_s = monotonic_s
        self._looked[key] = (until_s, last_s, recorded_s)
        due = due_slots(schedule.slots_min, schedule.set_s, now_s, self.utc_offset_s)
        return missed_in_a_row(due, last_s)
