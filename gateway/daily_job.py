"""The day- and night-level rules in the daemon (S5, S6, H3, T3, T5; CLINICAL_RULES.md 1.10).

Once per local day, after the night window ends (07:00 local, `[detector] utc_offset_h`), for
each patient: read the history the rules need from the store, aggregate it (alerts/daily.py),
evaluate the rules (alerts/nightly.py, alerts/baseline.py), and write the resulting events
through the store's alert lifecycle, so that alerts, their events and their outbox rows are
committed in one transaction like every other alert. The local date evaluated last is kept
per patient (`day_rule_evaluations`): a restart never evaluates a day twice, and a box that
was off at 07:00 evaluates the latest morning when it is back.

The morning of date D evaluates: S6 on the night 22:00 (D-1) - 07:00 (D); H3 and T5 on the
nights (00:00-07:00) up to D; S5 and T3 on the calendar days up to D-1, the last complete day.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from alerts.baseline import (
    H3_BASELINE_NIGHTS,
    S5_BASELINE_DAYS,
    T3_DAYS,
    T5_BASELINE_NIGHTS,
    DayOutcome,
    evaluate_h3,
    evaluate_s5,
    evaluate_t3,
    evaluate_t5,
)
from alerts.daily import HOUR_S, NightValue, SpO2Day, TemperatureDay, local_date
from alerts.day_rules import DAY_RULES, day_rule_event, night_rule_event
from alerts.events import RuleEvent
from alerts.nightly import NightlySummary, NightStatus, summarise_night
from alerts.rules import Priority, RuleId
from gateway import day_history
from gateway.day_history import FloatArray
from gateway.periodic import AlertEvents, Periodic
from gateway.store import MessageFactory, Patient, Store

log = logging.getLogger(__name__)
T = TypeVar("T")

RUN_EVERY_S = 60.0  # wall-clock seconds between two looks at whether a day is due
S5_DAYS = S5_BASELINE_DAYS + 1  # the evaluated day and its 14-day baseline
H3_NIGHTS = H3_BASELINE_NIGHTS + 2  # the last 2 nights (onset run), each with 28 before it
T5_NIGHTS = T5_BASELINE_NIGHTS + 2
T3_DAYS_READ = T3_DAYS + 1  # the onset run and the day before it
_DAY = dt.timedelta(days=1)
DAY_LEVEL_RULES = (RuleId.S6, *DAY_RULES)


class StoreCaller(Protocol):
    """The daemon's StoreWorker: runs a function on the store's own thread."""

    store: Store

    async def call(self, func: Callable[..., T], *args: Any) -> T: ...


def due_day(now_s: float, utc_offset_s: int) -> dt.date:
    """The latest morning whose night has ended: today after 07:00 local, else yesterday."""
    return local_date(now_s - day_history.NIGHT_END_H * HOUR_S, utc_offset_s)


def is_due(last: dt.date | None, due: dt.date) -> bool:
    """A day is due when it is after the last evaluated one; also when the last one lies more
    than a day ahead (the clock was wrong then, or the UTC offset changed by a lot)."""
    return last is None or due > last or last - due > _DAY


# -- on the store's thread --------------------------------------------------------------------


def last_evaluated(store: Store) -> dict[str, dt.date]:
    rows = store.db.execute("SELECT patient_id, last_day FROM day_rule_evaluations")
    return {patient_id: dt.date.fromisoformat(day) for patient_id, day in rows}


def mark_evaluated(store: Store, patient_id: str, day: dt.date, now_s: float) -> None:
    with store.transaction():
        store.db.execute(
            "INSERT INTO day_rule_evaluations (patient_id, last_day, evaluated_s)"
            " VALUES (?, ?, ?) ON CONFLICT (patient_id) DO UPDATE"
            " SET last_day = excluded.last_day, evaluated_s = excluded.evaluated_s",
            [patient_id, day.isoformat(), now_s],
        )


def live_alerts(store: Store, patient_id: str) -> dict[RuleId, Priority]:
    """The patient's day- and night-level alerts whose condition is present, by rule."""
    return store.live_priorities(patient_id, DAY_LEVEL_RULES)


# -- reading and evaluating one patient's morning ---------------------------------------------


@dataclass(frozen=True, slots=True)
class History:
    """What one morning's evaluation reads, oldest first."""

    spo2_days: list[SpO2Day]
    previous_night_spo2: FloatArray
    last_night_spo2: FloatArray
    pulse_nights: list[NightValue]
    skin_nights: list[NightValue]
    temperature_days: list[TemperatureDay]


async def read_history(
    worker: StoreCaller, patient_id: str, day: dt.date, utc_offset_s: int
) -> History:
    """The patient's history for the morning of `day`, one store call per day or night."""
    store = worker.store
    spo2_days = [
        await worker.call(day_history.spo2_day, store, patient_id, day - k * _DAY, utc_offset_s)
        for k in range(S5_DAYS, 0, -1)
    ]
    nights = [
        await worker.call(day_history.spo2_night, store, patient_id, day - k * _DAY, utc_offset_s)
        for k in (1, 0)
    ]
    pulse = [
        await worker.call(
            day_history.resting_pulse_night, store, patient_id, day - k * _DAY, utc_offset_s
        )
        for k in range(H3_NIGHTS - 1, -1, -1)
    ]
    skin = [
        await worker.call(
            day_history.skin_temperature_night, store, patient_id, day - k * _DAY, utc_offset_s
        )
        for k in range(T5_NIGHTS - 1, -1, -1)
    ]
    temperatures = await worker.call(
        day_history.temperature_days,
        store,
        patient_id,
        day - T3_DAYS_READ * _DAY,
        day - _DAY,
        utc_offset_s,
    )
    return History(spo2_days, nights[0], nights[1], pulse, skin, temperatures)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One patient's morning: each rule's outcome on its latest day or night, and the events."""

    night: NightlySummary
    latest: dict[RuleId, DayOutcome]
    events: list[RuleEvent]


def evaluate_morning(
    patient: Patient,
    day: dt.date,
    history: History,
    live: dict[RuleId, Priority],
    ts_s: int,
) -> Evaluation:
    """Evaluate every day- and night-level rule for the morning of `day`."""
    previous = summarise_night(history.previous_night_spo2, patient.profile)
    night = summarise_night(history.last_night_spo2, patient.profile, previous)
    outcomes = {
        RuleId.S5: (evaluate_s5(history.spo2_days, patient.profile), day - _DAY),
        RuleId.H3: (evaluate_h3(history.pulse_nights), day),
        RuleId.T5: (evaluate_t5(history.skin_nights), day),
        RuleId.T3: (evaluate_t3(history.temperature_days), day - _DAY),
    }
    events = []
    s6 = night_rule_event(night, day, live.get(RuleId.S6), ts_s)
    if s6 is not None:
        events.append(s6)
    latest: dict[RuleId, DayOutcome] = {}
    for rule, (rule_outcomes, latest_day) in outcomes.items():
        event = day_rule_event(rule, rule_outcomes, latest_day, patient.tier, live.get(rule), ts_s)
        if event is not None:
            events.append(event)
        found = [outcome for outcome in rule_outcomes if outcome.day == latest_day]
        if found:
            latest[rule] = found[0]
    return Evaluation(night, latest, events)


def _summary_line(evaluation: Evaluation) -> str:
    night = evaluation.night
    parts = [f"S6 {night.status.value}"]
    if night.status is not NightStatus.INDETERMINATE:
        parts = [f"S6 {night.status.value} (ODI3 {night.odi3_per_hour:.1f}/h)"]
    for rule in DAY_RULES:
        outcome = evaluation.latest.get(rule)
        parts.append(f"{rule} {outcome.condition.value if outcome else 'no data'}")
    return ", ".join(parts)


# -- the daemon's job -------------------------------------------------------------------------


@dataclass(slots=True)
class DailyJob:
    """Evaluates the day- and night-level rules for every patient once per local day, in a
    task of its own, so that the batch loop that calls `tick` is never held up by it."""

    utc_offset_s: int
    make_message: MessageFactory
    every_s: float = RUN_EVERY_S
    periodic: Periodic = field(init=False)

    def __post_init__(self) -> None:
        self.periodic = Periodic(self.every_s)

    def tick(self, worker: StoreCaller, now_s: float) -> AlertEvents:
        """Called often (the batch loop): returns the alert events of a run that has finished,
        and starts a run if none is going and `every_s` of wall time passed since the last."""
        return self.periodic.tick(lambda: self._supervised(worker, now_s))

    async def stop(self) -> None:
        """Cancel a run in progress (what it committed stays; the rest is done next time)."""
        await self.periodic.stop()

    async def _supervised(self, worker: StoreCaller, now_s: float) -> AlertEvents:
        """One run; its errors are logged and the days not done are tried again next time."""
        try:
            produced, _ = await self.run(worker, now_s)
        except sqlite3.Error as exc:
            log.error("cannot evaluate the day- and night-level rules (%s); trying again", exc)
            return []
        # Supervisor boundary: the daily rules must never stop the continuous monitoring.
        except Exception:
            log.exception("the day- and night-level rules failed; trying again later")
            return []
        return produced

    async def run(
        self, worker: StoreCaller, now_s: float
    ) -> tuple[AlertEvents, list[tuple[str, dt.date]]]:
        """Evaluate every patient whose morning is due; returns the alert events written and
        the (patient, day) pairs evaluated."""
        day = due_day(now_s, self.utc_offset_s)
        last = await worker.call(last_evaluated, worker.store)
        patients = await worker.call(worker.store.list_patients)
        produced: AlertEvents = []
        evaluated: list[tuple[str, dt.date]] = []
        for patient in patients:
            if not is_due(last.get(patient.id), day):
                continue
            produced += await self._evaluate(worker, patient, day, now_s)
            await worker.call(mark_evaluated, worker.store, patient.id, day, now_s)
            evaluated.append((patient.id, day))
        return produced, evaluated

    async def _evaluate(
        self, worker: StoreCaller, patient: Patient, day: dt.date, now_s: float
    ) -> AlertEvents:
        try:
            history = await read_history(worker, patient.id, day, self.utc_offset_s)
            live = await worker.call(live_alerts, worker.store, patient.id)
            evaluation = await asyncio.to_thread(
                evaluate_morning, patient, day, history, live, int(now_s)
            )
        except sqlite3.Error:
            raise
        # Supervisor boundary: a bug in one patient's day rules must not stop the monitoring.
        except Exception:
            log.exception(
                "day rules failed for patient %s on %s; that day is skipped", patient.id, day
            )
            return []
        log.info("day rules for %s on %s: %s", patient.id, day, _summary_line(evaluation))
        pairs = [(patient, event) for event in evaluation.events]
        return await worker.call(worker.store.write_batch, [], pairs, {}, self.make_message, now_s)
