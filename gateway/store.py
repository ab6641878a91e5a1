"""The gateway's SQLite store (through sqlite-utils): patients, devices and their bindings,
readings, alerts, the outbox and the detector's carried state.

WAL with synchronous=FULL: a transaction that returned is on disk, through SIGKILL and power
loss. Readings arrive in batches (one transaction a second); an alert, its event and its outbox
row are written in the same transaction. One Store object is used from one thread at a time.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from alerts.engine import RuleEvent, Transition
from alerts.lifecycle import (
    Alert,
    AlertEventKind,
    AlertStatus,
    alert_id,
    on_ack,
    on_onset,
    on_resolved,
)
from alerts.rules import Priority, Profile, RuleId, Tier
from gateway.migrations import SchemaTooNewError, migrate
from sync.payload import OutboxMessage, OutboxPriority, OutboxRow

MessageFactory = Callable[[Alert, AlertEventKind, float], OutboxMessage]
# A new database's page size. Each commit appends whole pages to the WAL (one a second, each
# touching the newest readings page, its parent and page 1): 1 KiB pages write about a third
# fewer bytes per reading than SQLite's default 4 KiB (bench/bench_store.py). An existing
# database keeps the page size it was created with.
PAGE_SIZE_BYTES = 1024


class StoreError(RuntimeError):
    """A request the store cannot satisfy; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Patient:
    id: str
    tier: Tier
    profile: Profile


@dataclass(frozen=True, slots=True)
class ReadingRow:
    ts_s: float
    patient_id: str | None
    device_id: str
    metric: str
    value: float | None
    quality: int
    site: str | None = None


class Store:
    """All durable state of one gateway."""

    def __init__(self, db: sqlite_utils.Database, gateway_id: str) -> None:
        self.db = db
        self.gateway_id = gateway_id

    @classmethod
    def open(
        cls, path: Path, gateway_id: str, connect: Callable[[Path], Any] | None = None
    ) -> Store:
        """Open (creating and migrating as needed) the database at `path`. `connect` makes
        the DB-API connection (default: the sqlite3 module in autocommit mode); the power-cut
        tests pass one that runs SQLite over a crash-simulating VFS."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = (connect or _connect)(path)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the database {path}: {exc}") from exc
        db = sqlite_utils.Database(conn)
        try:
            db.execute("PRAGMA busy_timeout = 10000")
            db.execute(f"PRAGMA page_size = {PAGE_SIZE_BYTES}")  # no effect once created
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            migrate(db)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"the database {path} is not usable: {exc}") from exc
        except SchemaTooNewError as exc:
            conn.close()
            raise StoreError(f"{path}: {exc}") from exc
        return cls(db, gateway_id)

    def close(self) -> None:
        self.db.conn.close()

    def file_path(self) -> Path | None:
        """The database file (None for a database in memory)."""
        row = self.db.execute("PRAGMA database_list").fetchone()
        return Path(row[2]) if row is not None and row[2] else None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- patients, devices, bindings -------------------------------------------------------

    def add_patient(self, patient: Patient, now_s: float) -> None:
        if self.get_patient(patient.id) is not None:
            raise StoreError(f"patient {patient.id!r} already exists")
        with self.transaction():
            self.db.table("patients").insert(
                {
                    "id": patient.id,
                    "tier": patient.tier.value,
                    "profile": patient.profile.value,
                    "created_s": now_s,
                }
            )

    def get_patient(self, patient_id: str) -> Patient | None:
        rows = list(self.db.query("SELECT * FROM patients WHERE id = ?", [patient_id]))
        return _patient(rows[0]) if rows else None

    def list_patients(self) -> list[Patient]:
        return [_patient(row) for row in self.db.query("SELECT * FROM patients ORDER BY id")]

    def ensure_device(self, device_id: str, protocol: str, transport: str, now_s: float) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT INTO devices (id, protocol, transport, created_s) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET protocol = excluded.protocol, "
                "transport = excluded.transport",
                [device_id, protocol, transport, now_s],
            )

    def bind(self, device_id: str, patient_id: str, at_s: float) -> None:
        """From `at_s` on, readings of `device_id` belong to `patient_id`."""
        if self.get_patient(patient_id) is None:
            raise StoreError(f"no patient {patient_id!r}; add it with `pulsegate patients add`")
        with self.transaction():
            self.db.execute(
                "UPDATE bindings SET end_s = ? WHERE device_id = ? AND end_s IS NULL",
                [at_s, device_id],
            )
            self.db.execute(
                "INSERT INTO bindings (device_id, patient_id, start_s) VALUES (?, ?, ?)",
                [device_id, patient_id, at_s],
            )

    def binding_history(self) -> dict[str, list[tuple[float, float | None, str]]]:
        """device id -> every binding (start, end or None, patient), oldest first."""
        history: dict[str, list[tuple[float, float | None, str]]] = {}
        rows = self.db.execute(
            "SELECT device_id, start_s, end_s, patient_id FROM bindings ORDER BY start_s, id"
        )
        for device_id, start_s, end_s, patient_id in rows:
            history.setdefault(device_id, []).append((start_s, end_s, patient_id))
        return history

    def current_bindings(self) -> dict[str, str]:
        """device id -> patient id, for bindings still open."""
        rows = self.db.query("SELECT device_id, patient_id FROM bindings WHERE end_s IS NULL")
        return {row["device_id"]: row["patient_id"] for row in rows}

    def binding_start_s(self, device_id: str) -> float | None:
        """When the open binding of `device_id` started (None: not bound)."""
        row = self.db.execute(
            "SELECT max(start_s) FROM bindings WHERE device_id = ? AND end_s IS NULL", [device_id]
        ).fetchone()
        return None if row[0] is None else float(row[0])

    # -- the batch: readings, alert events, detector state, in one transaction ---------------

    def write_batch(
        self,
        readings: Sequence[ReadingRow],
        rule_events: Iterable[tuple[Patient, RuleEvent]],
        detector_states: dict[str, dict[str, Any]],
        make_message: MessageFactory,
        now_s: float,
    ) -> list[tuple[Alert, AlertEventKind]]:
        """Store one batch atomically; returns the alert events it produced."""
        produced: list[tuple[Alert, AlertEventKind]] = []
        with self.transaction():
            self.db.conn.executemany(
                "INSERT INTO readings (ts_s, patient_id, device_id, metric, value, quality, site) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (r.ts_s, r.patient_id, r.device_id, r.metric, r.value, r.quality, r.site)
                    for r in readings
                ],
            )
            for patient, event in rule_events:
                result = self._apply_rule_event(patient, event, make_message)
                if result is not None:
                    produced.append(result)
            for patient_id, state in detector_states.items():
                self.db.execute(
                    "INSERT OR REPLACE INTO detector_state (patient_id, state, updated_s) "
                    "VALUES (?, ?, ?)",
                    [patient_id, json.dumps(state, separators=(",", ":")), now_s],
                )
        return produced

    def _apply_rule_event(
        self, patient: Patient, event: RuleEvent, make_message: MessageFactory
    ) -> tuple[Alert, AlertEventKind] | None:
        live = self.live_alert(patient.id, event.rule)
        if event.transition is Transition.ONSET:
            status, kind = on_onset(live.status if live else None)
            if live is None or live.status is AlertStatus.CLOSED:
                alert = Alert(
                    id=alert_id(self.gateway_id, patient.id, event.rule, event.ts_s),
                    gateway_id=self.gateway_id,
                    patient_id=patient.id,
                    rule=event.rule,
                    priority=event.priority,
                    tier=patient.tier,
                    profile=patient.profile,
                    status=status,
                    onset_s=event.ts_s,
                    details=event.stats,
                )
                self._insert_alert(alert, event.ts_s)
            else:
                alert = dataclasses.replace(live, status=status)
        elif live is None:
            return None
        else:
            status, kind = on_resolved(live.status, event.latching)
            alert = dataclasses.replace(live, status=status)
        if kind is None:
            return None
        self.record_event(alert, kind, event.ts_s, event.stats, make_message)
        return alert, kind

    def ack(
        self, alert_ref: str, acked_by: str, now_s: float, make_message: MessageFactory
    ) -> Alert:
        """Acknowledge an alert by id (or a unique id prefix of at least 6 characters)."""
        with self.transaction():
            alert = self._find_alert(alert_ref)
            status, kind = on_ack(alert.status)
            if kind is None:
                raise StoreError(f"alert {alert.id} is {alert.status}; nothing to acknowledge")
            alert = dataclasses.replace(alert, status=status, acked_by=acked_by)
            self.db.execute(
                "UPDATE alerts SET acked_s = ?, acked_by = ? WHERE id = ?",
                [now_s, acked_by, alert.id],
            )
            self.record_event(alert, kind, now_s, {}, make_message)
        return alert

    def _find_alert(self, alert_ref: str) -> Alert:
        if len(alert_ref) < 6:
            raise StoreError("give at least the first 6 characters of the alert id")
        rows = list(self.db.query("SELECT * FROM alerts WHERE id LIKE ? || '%'", [alert_ref]))
        if not rows:
            raise StoreError(f"no alert {alert_ref!r}; see `pulsegate alerts`")
        if len(rows) > 1:
            raise StoreError(f"{alert_ref!r} matches {len(rows)} alerts; give more of the id")
        return self.alert_from_row(rows[0])

    def live_alert(self, patient_id: str, rule: RuleId) -> Alert | None:
        """The patient's alert of `rule` that is not closed, if any (at most one)."""
        rows = list(
            self.db.query(
                "SELECT * FROM alerts WHERE patient_id = ? AND rule = ? AND status != 'closed' "
                "ORDER BY onset_s DESC LIMIT 1",
                [patient_id, rule.value],
            )
        )
        return self.alert_from_row(rows[0]) if rows else None

    def live_priorities(self, patient_id: str, rules: Sequence[RuleId]) -> dict[RuleId, Priority]:
        """The priority of each of `rules` whose condition is present for the patient (alert
        open or acknowledged)."""
        names = [rule.value for rule in rules]
        rows = self.db.execute(
            "SELECT rule, priority FROM alerts WHERE patient_id = ? AND status IN ('open', 'acked')"
            f" AND rule IN ({', '.join('?' * len(names))})",
            [patient_id, *names],
        )
        return {RuleId(rule): Priority(priority) for rule, priority in rows}

    def escalate(
        self, alert: Alert, priority: Priority, now_s: float, make_message: MessageFactory
    ) -> Alert:
        """Raise a live alert's priority, with its ESCALATED event and outbox row (call inside
        a transaction)."""
        self.db.execute("UPDATE alerts SET priority = ? WHERE id = ?", [priority.value, alert.id])
        escalated = dataclasses.replace(alert, priority=priority)
        self.record_event(escalated, AlertEventKind.ESCALATED, now_s, {}, make_message)
        return escalated

    def _insert_alert(self, alert: Alert, now_s: float) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO alerts (id, patient_id, rule, priority, tier, profile, status,"
            " onset_s, updated_s, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                alert.id,
                alert.patient_id,
                alert.rule.value,
                alert.priority.value,
                alert.tier.value,
                alert.profile.value,
                alert.status.value,
                alert.onset_s,
                now_s,
                json.dumps(alert.details),
            ],
        )

    def record_event(
        self,
        alert: Alert,
        kind: AlertEventKind,
        ts_s: float,
        details: dict[str, Any],
        make_message: MessageFactory,
    ) -> None:
        self.db.execute(
            "UPDATE alerts SET status = ?, updated_s = ?,"
            " resolved_s = CASE WHEN ? IN ('resolved', 'closed') THEN ? ELSE resolved_s END"
            " WHERE id = ?",
            [alert.status.value, ts_s, kind.value, ts_s, alert.id],
        )
        self.db.execute(
            "INSERT INTO alert_events (alert_id, kind, ts_s, details) VALUES (?, ?, ?, ?)",
            [alert.id, kind.value, ts_s, json.dumps(details)],
        )
        message = make_message(alert, kind, ts_s)
        self.db.execute(
            "INSERT OR IGNORE INTO outbox (priority, topic, message_id, payload, created_s) "
            "VALUES (?, ?, ?, ?, ?)",
            [int(message.priority), message.topic, message.message_id, message.payload, ts_s],
        )

    def alert_from_row(self, row: dict[str, Any]) -> Alert:
        return Alert(
            id=row["id"],
            gateway_id=self.gateway_id,
            patient_id=row["patient_id"],
            rule=RuleId(row["rule"]),
            priority=Priority(row["priority"]),
            tier=Tier(row["tier"]),
            profile=Profile(row["profile"]),
            status=AlertStatus(row["status"]),
            onset_s=row["onset_s"],
            details=json.loads(row["details"]),
            acked_by=row["acked_by"],
        )

    # -- queries ------------------------------------------------------------------------------

    def list_alerts(self, open_only: bool = False, limit: int = 100) -> list[dict[str, Any]]:
        where = "WHERE status != 'closed'" if open_only else ""
        return list(
            self.db.query(f"SELECT * FROM alerts {where} ORDER BY onset_s DESC LIMIT ?", [limit])
        )

    def detector_states(self) -> dict[str, dict[str, Any]]:
        rows = self.db.query("SELECT patient_id, state FROM detector_state")
        return {row["patient_id"]: json.loads(row["state"]) for row in rows}

    def pending_messages(self, limit: int) -> list[OutboxRow]:
        """Unsent outbox messages, most urgent first, oldest first within a priority."""
        rows = self.db.query(
            "SELECT id, priority, topic, message_id, payload, created_s FROM outbox"
            " WHERE sent_s IS NULL "
            "ORDER BY priority, id LIMIT ?",
            [limit],
        )
        return [OutboxRow(**row) for row in rows]

    def mark_sent(self, outbox_ids: Sequence[int], now_s: float) -> None:
        with self.transaction():
            self.db.conn.executemany(
                "UPDATE outbox SET sent_s = ? WHERE id = ? AND sent_s IS NULL",
                [(now_s, outbox_id) for outbox_id in outbox_ids],
            )

    def outbox_backlog(self) -> dict[int, int]:
        rows = self.db.query(
            "SELECT priority, count(*) AS n FROM outbox WHERE sent_s IS NULL GROUP BY priority"
        )
        return {row["priority"]: row["n"] for row in rows}

    def synced_through_s(self, now_s: float) -> float:
        """The alert watermark: every alert message (outbox priority ALERT) with an event time
        before this was acknowledged by the broker; `now_s` when none is waiting."""
        row = self.db.execute(
            "SELECT min(created_s) FROM outbox"
            " WHERE sent_s IS NULL AND priority = ? AND created_s > 0",
            [int(OutboxPriority.ALERT)],
        ).fetchone()
        return now_s if row[0] is None else min(float(row[0]), now_s)

    def latest_readings(self) -> list[dict[str, Any]]:
        """The newest reading of each (device, metric)."""
        return list(
            self.db.query(
                "SELECT device_id, patient_id, metric, value, quality, max(ts_s) AS ts_s "
                "FROM readings GROUP BY device_id, metric ORDER BY device_id, metric"
            )
        )

    def last_reading_s(self) -> float | None:
        """Time of the newest stored reading (ids are time-ordered: no scan)."""
        row = self.db.execute(
            "SELECT ts_s FROM reading_samples ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return None if row is None else float(row[0])

    def count(self, table: str) -> int:
        return self.db[table].count


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)


def _patient(row: dict[str, Any]) -> Patient:
    return Patient(row["id"], Tier(row["tier"]), Profile(row["profile"]))
