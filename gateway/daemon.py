"""The daemon: devices -> decode -> store -> detector -> outbox -> MQTT, in one asyncio process.

SQLite work runs on one dedicated thread (`StoreWorker`); paho runs its own network thread;
everything else is the event loop. SIGINT/SIGTERM stop it cleanly: the last batch is written
before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import sqlite3
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from alerts.channels import Sample, build_channels
from alerts.engine import PatientDetector, RuleEvent
from alerts.lifecycle import Alert, AlertEventKind
from alerts.rules import WindowRule
from alerts.spot import TemperatureReading
from devices.clock import Clock
from devices.protocols.reading import Metric, Quality
from gateway import retention
from gateway.checkpoints import Checkpoints, catch_up, temperatures_replayable
from gateway.config import Config
from gateway.daily_job import DailyJob
from gateway.db_check import EVERY_S, FIRST_AFTER_S, BackgroundCheck
from gateway.ingest import Ingest
from gateway.notify import Notifier
from gateway.patient_settings import patients_with_overrides
from gateway.reminders import send_due_reminders
from gateway.salvage import is_corruption, stop_for_damage
from gateway.settings_detector import NO_OVERRIDES, refit_detector, rules_for
from gateway.settings_downlink import apply_settings_downlink
from gateway.sms_escalation import SmsEscalation
from gateway.store import Patient, ReadingRow, Store, StoreError
from gateway.technical_rules import TechnicalRules
from gateway.timekeeper import Timekeeper, shift_rows, shift_stored_readings
from gateway.uplink import Uplink, answer_raw_request
from gateway.uplink_budget import budgeted_outbox
from gateway.web import server as status_page
from sync.payload import (
    GatewayState,
    OutboxMessage,
    PayloadError,
    ack_topic,
    alert_event_message,
    parse_ack,
    status_message,
    status_topic,
)
from sync.publisher import BrokerSettings, Presence, Publisher
from sync.raw_request import RAW_REQUEST_LEAF, raw_request_topic
from sync.settings_payload import SETTINGS_LEAF, settings_topic

log = logging.getLogger(__name__)
T = TypeVar("T")
BINDINGS_REFRESH_S = 5.0
SHUTDOWN_DRAIN_S = 3.0
HEALTH_BATCHES = 5  # unhealthy when the batch writer has not turned for this many intervals
# Readings a refused batch keeps in memory (disk full, I/O error) until the store takes them:
# about 11 minutes of 50 patients' oximeters, or 9 hours of one, in about 14 MB; beyond it the
# oldest readings are dropped (and said so), never alert events.
MAX_UNWRITTEN_ROWS = 100_000
BytesSink = Callable[[str, float, bytes], Awaitable[None]]
DeviceSource = Callable[[BytesSink], Coroutine[Any, Any, None]]


class Observer(Protocol):
    """Who wants to see what the daemon does (the console in a demo run)."""

    def on_rows(self, rows: Sequence[ReadingRow]) -> None: ...

    def on_alert(self, alert: Alert, kind: AlertEventKind, ts_s: float) -> None: ...

    def on_listening(self, url: str) -> None:
        """The status page accepts connections at `url`."""


class StoreWorker:
    """The store on its own thread: every call is queued to that one thread. A call that
    finds the database damaged (SQLite's "malformed" or "not a database") is reported to
    `on_damage` before its error is raised to the caller."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.on_damage: Callable[[str], None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    async def call(self, func: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)
        except (sqlite3.DatabaseError, StoreError) as exc:
            damage = exc if isinstance(exc, sqlite3.DatabaseError) else exc.__cause__
            if self.on_damage is not None and is_corruption(damage):
                self.on_damage(str(damage))
            raise

    def shutdown(self) -> None:
        """Finish queued store calls and stop the thread (the store stays open)."""
        self._executor.shutdown(wait=True)


def commit_due(
    waiting_rows: int, waited_s: float, forced: bool, min_rows: int, max_delay_s: float
) -> bool:
    """Whether a batch's turn commits what waits, or keeps it for the next turn. A commit costs
    the SD card at least one 4 KiB page whatever it holds, so a small box gathers `min_rows`
    readings first, for at most `max_delay_s`; alert events and detector states (`forced`)
    are committed at once."""
    return forced or waiting_rows >= min_rows or waited_s >= max_delay_s


@dataclass(slots=True)
class UnwrittenBatch:
    """What the next commit must write: the new batch, with the batches kept for it (too few
    readings yet: `commit_due`) and the ones the store refused (disk full, I/O error), kept
    and retried; at most `max_rows` readings, the oldest dropped first."""

    max_rows: int = MAX_UNWRITTEN_ROWS
    since_monotonic_s: float | None = None  # when its oldest readings were added
    rows: list[ReadingRow] = field(default_factory=list)
    events: list[tuple[Patient, RuleEvent]] = field(default_factory=list)
    states: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(
        self,
        rows: Sequence[ReadingRow],
        events: Sequence[tuple[Patient, RuleEvent]],
        states: dict[str, dict[str, Any]],
    ) -> int:
        """Adds a batch; returns how many of the oldest readings were dropped to make room."""
        if self.since_monotonic_s is None and (rows or events or states):
            self.since_monotonic_s = time.monotonic()
        self.rows.extend(rows)
        self.events.extend(events)
        self.states.update(states)
        excess = len(self.rows) - self.max_rows
        if excess <= 0:
            return 0
        del self.rows[:excess]
        return excess


@dataclass(slots=True)
class Daemon:
    config: Config
    worker: StoreWorker
    clock: Clock
    ingest: Ingest
    sources: list[DeviceSource] = field(default_factory=list)
    observer: Observer | None = None
    publisher: Publisher | None = None
    detectors: dict[str, PatientDetector] = field(default_factory=dict)
    patients: dict[str, Patient] = field(default_factory=dict)
    overrides: dict[str, str] = field(default_factory=dict)  # patient -> overrides JSON
    notifier: Notifier = field(default_factory=Notifier)
    backlog: int = 0
    synced_through_s: float | None = None  # the outbox's alert watermark (Store.synced_through_s)
    _downlink_tasks: set[asyncio.Task[None]] = field(default_factory=set)
    batches: int = 0
    batches_failed: int = 0
    batches_kept: int = 0  # turns whose readings waited for a later commit (commit_due)
    last_write_monotonic_s: float = field(default_factory=time.monotonic)  # commit or refusal
    _unwritten: UnwrittenBatch = field(default_factory=UnwrittenBatch)
    checkpoints: Checkpoints = field(default_factory=Checkpoints)
    db_check_timing_s: tuple[float, float] = (FIRST_AFTER_S, EVERY_S)  # first after, then every
    damaged: str | None = None  # damage found in the database: the daemon stopped for it
    _stop: asyncio.Event | None = None
    _db_path: Path | None = None
    daily_job: DailyJob = field(init=False)
    technical_rules: TechnicalRules = field(init=False)

    def __post_init__(self) -> None:
        self.daily_job = DailyJob(self.config.detector.utc_offset_s, self._message)
        self.technical_rules = TechnicalRules(self.config.detector.utc_offset_s, self._message)
        if self.config.mqtt.enabled:
            mqtt = self.config.mqtt
            settings = BrokerSettings(
                host=mqtt.host,
                port=mqtt.port,
                client_id=mqtt.client_id or f"pulsegate-{self.config.gateway.id}",
                keepalive_s=mqtt.keepalive_s,
                max_inflight=mqtt.max_inflight,
                security=mqtt.security(),  # reads the password file: ConfigError if it cannot
            )
            gateway = self.config.gateway
            presence = Presence(
                status_topic=status_topic(mqtt.topic_prefix, gateway.site, gateway.id),
                status_payload=self._status_payload,
                now_s=self.clock.now_s,
                downlink_topics=(
                    ack_topic(mqtt.topic_prefix, gateway.site, gateway.id),
                    raw_request_topic(mqtt.topic_prefix, gateway.site, gateway.id),
                    settings_topic(mqtt.topic_prefix, gateway.site, gateway.id),
                ),
                on_downlink=self._on_downlink,
            )
            outbox = budgeted_outbox(self.worker, self.config)  # [mqtt] daily_budget_kb
            self.publisher = Publisher(settings, outbox, presence)

    def _status_payload(self, state: GatewayState, will: bool, event_s: float) -> str:
        """The retained status message: online / offline, and how far the hospital is synced
        (as of the last look at the outbox; called on paho's thread for the Last Will)."""
        mqtt, gateway = self.config.mqtt, self.config.gateway
        message = status_message(
            mqtt.topic_prefix,
            gateway.site,
            gateway.id,
            state,
            event_s,
            synced_through_s=self.synced_through_s,
            backlog=None if will else self.backlog,
            will=will,
        )
        return message.payload

    def _on_downlink(self, topic: str, payload: bytes) -> None:
        if topic.endswith(f"/{RAW_REQUEST_LEAF}"):  # the hospital asks for raw readings
            work = answer_raw_request(self.worker, self.config, topic, payload, time.time())
        elif topic.endswith(f"/{SETTINGS_LEAF}"):  # per-patient settings from the hospital
            work = self._apply_settings(topic, payload)
        else:
            work = self._apply_ack(topic, payload)
        task = asyncio.get_running_loop().create_task(work)
        self._downlink_tasks.add(task)
        task.add_done_callback(self._downlink_tasks.discard)

    async def _apply_settings(self, topic: str, payload: bytes) -> None:
        """Settings from the hospital applied (or refused) with their echo, then in force."""
        now_s = self.clock.now_s()
        if await apply_settings_downlink(self.worker, self.config, topic, payload, now_s):
            await self._refresh_patients()
            if self.publisher is not None:
                self.publisher.wakeup.set()

    async def _apply_ack(self, topic: str, payload: bytes) -> None:
        """An acknowledgement from the hospital: applied like a local one (and echoed up)."""
        try:
            command = parse_ack(payload)
        except PayloadError as exc:
            log.warning("ignoring a malformed message on %s: %s", topic, exc)
            return
        if command.gateway != self.config.gateway.id:
            log.warning("ignoring an ack for gateway %s on %s", command.gateway, topic)
            return
        try:
            alert = await self.worker.call(
                self.worker.store.ack,
                command.alert_id,
                command.acked_by,
                command.acked_at_s,
                self._message,
            )
        except StoreError as exc:
            log.info("ack %s from the hospital not applied: %s", command.message_id, exc)
            return
        except sqlite3.Error as exc:
            log.error("cannot record the hospital's ack of %s: %s", command.alert_id, exc)
            return
        log.info("alert %s acknowledged by %s at the hospital", alert.id, command.acked_by)
        self._announce([(alert, AlertEventKind.ACKED)])

    async def ack(self, alert_ref: str, acked_by: str) -> Alert:
        """Acknowledge an alert as `pulsegate ack` does (StoreError when it cannot be); the
        acked event goes upstream. Used by the status page."""
        alert = await self.worker.call(
            self.worker.store.ack, alert_ref, acked_by, self.clock.now_s(), self._message
        )
        self._announce([(alert, AlertEventKind.ACKED)])
        return alert

    def _message(self, alert: Alert, kind: AlertEventKind, ts_s: float) -> OutboxMessage:
        gateway = self.config.gateway
        return alert_event_message(self.config.mqtt.topic_prefix, gateway.site, alert, kind, ts_s)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set (or SIGINT/SIGTERM), then write the last batch and return."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        self._stop = stop
        self._db_path = await self.worker.call(self.worker.store.file_path)
        self.worker.on_damage = self._damage_met
        await self._refresh_patients()
        await self._restore_detectors()
        tasks = [asyncio.create_task(source(self._on_bytes)) for source in self.sources]
        policy = retention.policy_of(self.config.store)
        tasks.append(
            asyncio.create_task(
                retention.maintain(self.worker, policy, self.clock.now_s, stop, self._clock_trusted)
            )
        )
        uplink = Uplink(self.worker, self.config, self.clock.now_s)  # status records, summaries
        tasks.append(asyncio.create_task(uplink.run(stop)))
        tasks.append(asyncio.create_task(status_page.serve(self, stop)))  # [web] listen
        sms = SmsEscalation(self.worker, self.config, self.clock.now_s)  # [sms] enabled
        tasks.append(asyncio.create_task(sms.run(stop)))
        publisher_task = None
        if self.publisher is not None:
            publisher_task = asyncio.create_task(self.publisher.run(stop))
        else:
            log.info("no broker configured: alerts are kept in the local outbox")
        if self._db_path is not None:
            check = BackgroundCheck(self._db_path, *self.db_check_timing_s)
            tasks.append(asyncio.create_task(check.run(stop, self._stop_for_salvage)))
        watchdog_task = asyncio.create_task(self._watchdog(stop))
        self.notifier.ready(f"{len(self.sources)} device sources, {len(self.patients)} patients")
        try:
            await self._batch_loop(stop)
        finally:
            self.notifier.stopping()
            watchdog_task.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.daily_job.stop()
            await self.technical_rules.stop()
            await self._write_batch(final=True)
            if self.publisher is not None and publisher_task is not None:
                stop.set()
                await publisher_task
                self.publisher.wakeup.set()
                left = await self.publisher.drain(SHUTDOWN_DRAIN_S)
                if left:
                    log.info("%d messages unacknowledged at exit; they stay in the outbox", left)
                self.publisher.close()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    def _stop_for_salvage(self, problem: str) -> None:
        """The background check found damage (and left the marker): stop, so that the next
        start salvages the database."""
        self.damaged = problem
        if self._stop is not None:
            self._stop.set()

    def _damage_met(self, problem: str) -> None:
        """A store call met damage: leave the marker and stop, as the background check does."""
        if self.damaged is not None or self._db_path is None:
            return
        stop_for_damage(self._db_path, problem)
        self._stop_for_salvage(problem)

    def is_healthy(self) -> bool:
        """The batch writer and the publisher's loop are turning. A store that refuses
        batches (a full disk) is not a hang: a restart would lose the readings kept for it."""
        now = time.monotonic()
        batch_ok = now - self.last_write_monotonic_s < HEALTH_BATCHES * self._interval_s + 5
        publisher_ok = self.publisher is None or self.publisher.is_alive(now)
        return batch_ok and publisher_ok

    @property
    def _interval_s(self) -> float:
        return self.config.store.batch_interval_s

    async def _watchdog(self, stop: asyncio.Event) -> None:
        """Ping systemd's watchdog while healthy; a stuck daemon stops pinging and is restarted."""
        interval_s = self.notifier.watchdog_interval_s
        if interval_s is None:
            return
        while not stop.is_set():
            if self.is_healthy():
                self.notifier.watchdog()
            else:
                log.warning("not healthy: withholding the watchdog ping")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)

    async def _on_bytes(self, device_id: str, received_s: float, data: bytes) -> None:
        flags = 0 if self._clock_trusted() else int(Quality.CLOCK_UNTRUSTED)
        self.ingest.on_bytes(device_id, received_s, data, flags)

    def _clock_trusted(self) -> bool:
        return not isinstance(self.clock, Timekeeper) or self.clock.trusted

    async def _observe_clock(self) -> None:
        """When the clock has just become trusted, move what was stamped before onto the
        corrected time line: readings in memory and stored, and the detectors' position."""
        if not isinstance(self.clock, Timekeeper) or (fix := self.clock.observe()) is None:
            return
        self.ingest.retime(fix.shift_s, int(Quality.CLOCK_UNTRUSTED))
        self._unwritten.rows[:] = shift_rows(self._unwritten.rows, fix)
        for detector in self.detectors.values():
            if detector.next_slot_s is not None:
                detector.next_slot_s += fix.shift_s
        self.checkpoints.save_all = True  # the saved positions are on the old time line
        try:
            await self.worker.call(
                shift_stored_readings, self.worker.store, fix, self.clock.now_s()
            )
        except sqlite3.Error as exc:
            log.error("stored readings keep their uncorrected times (flagged): %s", exc)

    async def _batch_loop(self, stop: asyncio.Event) -> None:
        interval_s = self.config.store.batch_interval_s
        since_refresh_s = 0.0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
            await self._observe_clock()
            await self._write_batch()  # the final flush comes after the sources stopped
            since_refresh_s += interval_s
            if since_refresh_s >= BINDINGS_REFRESH_S:
                since_refresh_s = 0.0
                await self._refresh_patients()
                await self._send_reminders()
            if not stop.is_set():  # day- and night-level rules, Q3 and Q5: once a minute
                now_s = self.clock.now_s()
                self._announce(self.daily_job.tick(self.worker, now_s))
                self._announce(self.technical_rules.tick(self.worker, self.patients, now_s))

    async def _send_reminders(self) -> None:
        """Re-notify unacknowledged alerts and escalate the ones that escalate."""
        try:
            produced = await self.worker.call(
                send_due_reminders, self.worker.store, self.clock.now_s(), self._message
            )
        except sqlite3.Error as exc:
            log.error("cannot record alert reminders (%s); trying again shortly", exc)
            return
        self._announce(produced)

    def _announce(self, produced: list[tuple[Alert, AlertEventKind]]) -> None:
        if self.observer is not None:
            for alert, kind in produced:
                self.observer.on_alert(alert, kind, self.clock.now_s())
        if produced and self.publisher is not None:
            self.publisher.wakeup.set()

    async def _refresh_patients(self) -> None:
        backlog = await self.worker.call(self.worker.store.outbox_backlog)
        self.backlog = sum(backlog.values())
        self.synced_through_s = await self.worker.call(
            self.worker.store.synced_through_s, self.clock.now_s()
        )
        patients, self.overrides = await self.worker.call(
            patients_with_overrides, self.worker.store
        )
        self.patients = {p.id: p for p in patients}

    async def _restore_detectors(self) -> None:
        """Each detector's saved state from the store, then its recent samples rebuilt and the
        readings stored since the save replayed (see gateway.checkpoints)."""
        states = await self.worker.call(self.worker.store.detector_states)
        replayed_s = 0
        for patient_id, state in states.items():
            patient = self.patients.get(patient_id)
            if patient is None:
                continue
            detector = PatientDetector.from_json(state, patient.tier, patient.profile)
            detector.rules = self._rules_of(patient)  # the patient's overrides, if any
            replayed_s += await self.worker.call(catch_up, self.worker.store, detector, patient_id)
            self.detectors[patient_id] = detector
            self.checkpoints.saved.add(patient_id)
        if states:
            log.info("detectors restored: %d patients, %d s replayed", len(states), replayed_s)

    async def _write_batch(self, final: bool = False) -> None:
        # Bindings first: a reading belongs to whoever wore the device at its second.
        with contextlib.suppress(sqlite3.Error):
            self.ingest.binding_history = await self.worker.call(self.worker.store.binding_history)
        before_s = math.inf if final else self.clock.now_s() - self.config.detector.lag_s
        rows = self.ingest.drain(before_s)
        events, states = self._detect(rows, final)
        pending = self._unwritten
        dropped = pending.add(rows, events, states)
        if dropped:
            log.error(
                "dropped the %d oldest readings kept in memory for the database, which still"
                " refuses them; alert events are kept: free disk space or check the storage",
                dropped,
            )
        store = self.config.store
        waited_s = time.monotonic() - (pending.since_monotonic_s or time.monotonic())
        forced = final or bool(pending.events or pending.states)
        if not commit_due(
            len(pending.rows), waited_s, forced, store.min_commit_readings, store.max_commit_delay_s
        ):
            self.last_write_monotonic_s = time.monotonic()  # the writer turned: it waits
            self.batches_kept += 1
            return
        try:
            produced = await self.worker.call(
                self.worker.store.write_batch,
                pending.rows,
                pending.events,
                pending.states,
                self._message,
                self.clock.now_s(),
            )
        except sqlite3.Error as exc:
            self.batches_failed += 1
            self.last_write_monotonic_s = time.monotonic()
            log.error(
                "cannot write %d readings to the database (%s); keeping them in memory and "
                "retrying: free disk space or check the storage",
                len(pending.rows),
                exc,
            )
            return
        self._unwritten = UnwrittenBatch()
        self.last_write_monotonic_s = time.monotonic()
        self.batches += 1
        _log_committed(pending.rows, produced)
        if self.observer is not None:
            self.observer.on_rows(pending.rows)
        self._announce(produced)

    def _detect(
        self, rows: Sequence[ReadingRow], final: bool = False
    ) -> tuple[list[tuple[Patient, RuleEvent]], dict[str, dict[str, Any]]]:
        """Run each patient's detector over the new seconds; the states to save with them."""
        per_patient: dict[str, list[Sample]] = defaultdict(list)
        temperatures: dict[str, list[TemperatureReading]] = defaultdict(list)
        for row in rows:
            if row.patient_id not in self.patients:
                continue
            if row.metric == Metric.TEMP:
                if row.value is not None:
                    temperatures[row.patient_id].append((row.ts_s, row.value, row.site))
            else:
                per_patient[row.patient_id].append((row.ts_s, row.metric, row.value, row.quality))
        events: list[tuple[Patient, RuleEvent]] = []
        for patient_id in per_patient.keys() | temperatures.keys():
            patient = self.patients[patient_id]
            previous = self.detectors.get(patient_id)
            detector = self._detector_for(patient)
            first_event = len(events)
            built = build_channels(per_patient.get(patient_id, []))
            late = False
            if built is not None:
                start_s, channels = built
                late = detector.next_slot_s is not None and start_s < detector.next_slot_s
                events.extend((patient, event) for event in detector.step(start_s, channels))
                if late and detector.next_slot_s is not None:
                    slot_s, tail_len = detector.next_slot_s, detector.tail_len
                    self.checkpoints.skipped_late(patient_id, slot_s, tail_len)
            readings = sorted(temperatures.get(patient_id, []))
            last_temp_s = detector.temperature.last_reading_s if detector.temperature else None
            events.extend((patient, event) for event in detector.step_temperatures(readings))
            replayable = temperatures_replayable(
                readings, built[0] if built else None, detector.next_slot_s, last_temp_s
            )
            rebuild = detector is not previous or late or not replayable
            self.checkpoints.fed(patient_id, rebuild or len(events) > first_event)
        newest_s = max((row.ts_s for row in rows), default=None)
        states: dict[str, dict[str, Any]] = {}
        for patient_id in self.checkpoints.take(newest_s, final):
            detector = self.detectors[patient_id]
            tails = self.checkpoints.with_tails(patient_id, detector.next_slot_s)
            states[patient_id] = detector.to_json(with_tails=tails)
        events.sort(key=lambda pair: pair[1].ts_s)
        return events, states

    def _detector_for(self, patient: Patient) -> PatientDetector:
        """The patient's detector, refitted when its tier, profile or overrides changed."""
        rules = self._rules_of(patient)
        detector = self.detectors.get(patient.id)
        wanted = (patient.tier, patient.profile, rules)
        if detector is None or (detector.tier, detector.profile, detector.rules) != wanted:
            detector = refit_detector(detector, patient.tier, patient.profile, rules)
            self.detectors[patient.id] = detector
        return detector

    def _rules_of(self, patient: Patient) -> tuple[WindowRule, ...]:
        overrides = self.overrides.get(patient.id, NO_OVERRIDES)
        try:
            return rules_for(patient.tier, patient.profile, overrides)
        except ValueError as exc:  # stored settings are checked first: not expected
            log.error("patient %s: overrides not usable (%s); using the defaults", patient.id, exc)
            return rules_for(patient.tier, patient.profile, NO_OVERRIDES)


def _log_committed(
    rows: Sequence[ReadingRow], produced: list[tuple[Alert, AlertEventKind]]
) -> None:
    """One debug line per committed batch: what is now durable (the durability tests read it)."""
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "committed readings=%d newest_s=%s alert_events=%s",
            len(rows),
            max((row.ts_s for row in rows), default="-"),
            ",".join(f"{alert.id}:{kind.value}" for alert, kind in produced) or "-",
        )
