"""The township hub's database: alerts, their events, gateway status and acknowledgements.

One schema, two engines: SQLite (a file; one hub process) or PostgreSQL (a
`postgresql://` URL; several hub processes sharing one MQTT subscription write to it). The SQL
is the common subset of both (`INSERT ... ON CONFLICT`, `CASE`, no engine functions).

De-duplication is the database's job: every received message is inserted under its
`message_id` PRIMARY KEY with `ON CONFLICT DO NOTHING`, and the alert row is only touched when
that insert added a row. A message delivered twice, to one process or to two, is stored once.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sync import hub_data
from sync.hub_data_messages import DataRecord
from sync.hub_messages import CLOSED_STATUS, AlertEvent, StatusReport
from sync.hub_settings import ensure_settings_tables
from sync.hub_sql import Engine, HubStoreError, Transaction, open_engine, redacted_url
from sync.payload import OutboxMessage

__all__ = ["HubStore", "HubStoreError", "PendingAck", "redacted_url"]

SCHEMA_VERSION = "1"
MAX_REJECTED_BYTES = 65536
# pg_advisory_xact_lock key: two hubs starting together create the schema one after the other.
_PG_SCHEMA_LOCK = 0x70756C7365

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS hub_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS hub_alerts (
        alert_id TEXT PRIMARY KEY, site TEXT NOT NULL, gateway TEXT NOT NULL,
        patient TEXT NOT NULL, rule TEXT NOT NULL, priority TEXT NOT NULL,
        priority_rank INTEGER NOT NULL, tier TEXT NOT NULL, profile TEXT NOT NULL,
        status TEXT NOT NULL, onset_s DOUBLE PRECISION NOT NULL,
        event_s DOUBLE PRECISION NOT NULL, details TEXT NOT NULL, acked_by TEXT,
        first_received_s DOUBLE PRECISION NOT NULL,
        hub_acked_by TEXT, hub_acked_s DOUBLE PRECISION)""",
    "CREATE INDEX IF NOT EXISTS hub_alerts_triage ON hub_alerts (priority_rank, onset_s)",
    """CREATE TABLE IF NOT EXISTS hub_events (
        message_id TEXT PRIMARY KEY, alert_id TEXT NOT NULL, event TEXT NOT NULL,
        status TEXT NOT NULL, event_s DOUBLE PRECISION NOT NULL, historical INTEGER NOT NULL,
        received_s DOUBLE PRECISION NOT NULL, received_by TEXT NOT NULL,
        payload TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS hub_events_alert ON hub_events (alert_id, event_s)",
    """CREATE TABLE IF NOT EXISTS hub_gateways (
        site TEXT NOT NULL, gateway TEXT NOT NULL, state TEXT,
        will_fired INTEGER NOT NULL DEFAULT 0, status_s DOUBLE PRECISION,
        status_rank INTEGER, synced_through_s DOUBLE PRECISION, backlog INTEGER,
        last_seen_s DOUBLE PRECISION NOT NULL, will_received_s DOUBLE PRECISION,
        PRIMARY KEY (site, gateway))""",
    """CREATE TABLE IF NOT EXISTS hub_status (
        message_id TEXT PRIMARY KEY, site TEXT NOT NULL, gateway TEXT NOT NULL,
        state TEXT NOT NULL, will INTEGER NOT NULL, event_s DOUBLE PRECISION NOT NULL,
        synced_through_s DOUBLE PRECISION, backlog INTEGER,
        received_s DOUBLE PRECISION NOT NULL, payload TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS hub_acks (
        message_id TEXT PRIMARY KEY, alert_id TEXT NOT NULL, site TEXT NOT NULL,
        gateway TEXT NOT NULL, acked_by TEXT NOT NULL, acked_at_s DOUBLE PRECISION NOT NULL,
        topic TEXT NOT NULL, payload TEXT NOT NULL, published_s DOUBLE PRECISION)""",
    """CREATE TABLE IF NOT EXISTS hub_rejected (
        received_s DOUBLE PRECISION NOT NULL, topic TEXT NOT NULL, reason TEXT NOT NULL,
        payload_hex TEXT NOT NULL)""",
)

_INSERT_EVENT = (
    "INSERT INTO hub_events (message_id, alert_id, event, status, event_s, historical,"
    " received_s, received_by, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (message_id) DO NOTHING"
)
# The alert row follows its newest event, whatever order events arrive in.
_UPSERT_ALERT = (
    "INSERT INTO hub_alerts (alert_id, site, gateway, patient, rule, priority, priority_rank,"
    " tier, profile, status, onset_s, event_s, details, acked_by, first_received_s)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (alert_id) DO UPDATE SET priority = excluded.priority,"
    " priority_rank = excluded.priority_rank, tier = excluded.tier,"
    " profile = excluded.profile, status = excluded.status, event_s = excluded.event_s,"
    " details = excluded.details, acked_by = COALESCE(excluded.acked_by, hub_alerts.acked_by)"
    " WHERE excluded.event_s >= hub_alerts.event_s"
)
_TOUCH_GATEWAY = (
    "INSERT INTO hub_gateways (site, gateway, last_seen_s) VALUES (?, ?, ?)"
    " ON CONFLICT (site, gateway) DO UPDATE SET last_seen_s = CASE"
    " WHEN excluded.last_seen_s > hub_gateways.last_seen_s THEN excluded.last_seen_s"
    " ELSE hub_gateways.last_seen_s END"
)
_INSERT_STATUS = (
    "INSERT INTO hub_status (message_id, site, gateway, state, will, event_s,"
    " synced_through_s, backlog, received_s, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (message_id) DO NOTHING"
)
# A gateway's state is its newest report by (event time, rank): a Will carries the time of
# the connect it was registered at, so it ranks after that connect's birth.
_SET_GATEWAY_STATE = (
    "UPDATE hub_gateways SET state = ?, will_fired = ?, status_s = ?, status_rank = ?,"
    " synced_through_s = ?, backlog = ?,"
    " will_received_s = CASE WHEN ? = 1 THEN ? ELSE will_received_s END"
    " WHERE site = ? AND gateway = ? AND (status_s IS NULL OR status_s < ?"
    " OR (status_s = ? AND status_rank <= ?))"
)


# Live alerts first, then by priority, the longest waiting first (one parameter: closed).
_TRIAGE_ORDER = "CASE WHEN status = ? THEN 1 ELSE 0 END, priority_rank, onset_s, alert_id"


def _with_details(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        row["details"] = json.loads(row["details"])
    return rows


@dataclass(frozen=True, slots=True)
class PendingAck:
    message_id: str
    alert_id: str
    topic: str
    payload: str


class HubStore:
    """The hub's tables on SQLite or PostgreSQL; every method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @classmethod
    def open(cls, url: str) -> HubStore:
        """`postgresql://...` or a SQLite file path; creates the schema if it is missing."""
        try:
            engine = open_engine(url)
        except HubStoreError as exc:
            raise HubStoreError(f"cannot open the {exc}") from exc
        store = cls(engine)
        try:
            store._run_schema()
        except HubStoreError:
            engine.close()
            raise
        return store

    def close(self) -> None:
        self._engine.close()

    def _tx(self) -> AbstractContextManager[Transaction]:
        return self._engine.transaction()

    def _run_schema(self) -> None:
        """Create the tables once. Never re-run the DDL on an existing schema: even with
        IF NOT EXISTS, CREATE INDEX locks its table and would deadlock with running hubs."""
        with self._tx() as tx:
            if self._engine.is_postgres:
                tx.run("SELECT pg_advisory_xact_lock(?)", (_PG_SCHEMA_LOCK,))
                exists = tx.rows("SELECT to_regclass('hub_meta') IS NOT NULL AS found")
            else:
                exists = tx.rows(
                    "SELECT 1 AS found FROM sqlite_master WHERE type = 'table'"
                    " AND name = 'hub_meta'"
                )
            if exists and exists[0]["found"]:
                ensure_settings_tables(tx, self._engine.is_postgres)
                hub_data.upgrade_schema(tx)  # an older hub database gains the newer tables
                return
            for statement in SCHEMA:
                tx.run(statement)
            tx.run(
                "INSERT INTO hub_meta (key, value) VALUES ('schema_version', ?)"
                " ON CONFLICT (key) DO NOTHING",
                (SCHEMA_VERSION,),
            )
            ensure_settings_tables(tx, self._engine.is_postgres)
            hub_data.upgrade_schema(tx)

    def transaction(self) -> AbstractContextManager[Transaction]:
        """One transaction on the hub database, for the tables of sync.hub_settings."""
        return self._engine.transaction()

    def record_alert_event(self, event: AlertEvent, received_s: float, received_by: str) -> bool:
        """Store one alert event; False if its message_id was already stored (a no-op)."""
        with self._tx() as tx:
            added = tx.run(
                _INSERT_EVENT,
                (
                    event.message_id,
                    event.alert_id,
                    event.event,
                    event.status,
                    event.event_s,
                    int(event.historical),
                    received_s,
                    received_by,
                    event.payload,
                ),
            )
            if not added:
                return False
            tx.run(
                _UPSERT_ALERT,
                (
                    event.alert_id,
                    event.site,
                    event.gateway,
                    event.patient,
                    event.rule,
                    event.priority,
                    event.priority_rank,
                    event.tier,
                    event.profile,
                    event.status,
                    event.onset_s,
                    event.event_s,
                    json.dumps(event.details, sort_keys=True),
                    event.acked_by,
                    received_s,
                ),
            )
            tx.run(_TOUCH_GATEWAY, (event.site, event.gateway, received_s))
        return True

    def record_status(self, report: StatusReport, received_s: float, retained: bool) -> bool:
        """Store a status report; False if already stored. A retained copy (replayed by the
        broker on subscribe) does not count as the gateway being seen now."""
        seen_s = report.event_s if retained else received_s
        will = int(report.will)
        with self._tx() as tx:
            added = tx.run(
                _INSERT_STATUS,
                (
                    report.message_id,
                    report.site,
                    report.gateway,
                    report.state.value,
                    will,
                    report.event_s,
                    report.synced_through_s,
                    report.backlog,
                    received_s,
                    report.payload,
                ),
            )
            if not added:
                return False
            tx.run(_TOUCH_GATEWAY, (report.site, report.gateway, seen_s))
            tx.run(
                _SET_GATEWAY_STATE,
                (
                    report.state.value,
                    will,
                    report.event_s,
                    report.rank,
                    report.synced_through_s,
                    report.backlog,
                    will,
                    received_s,
                    report.site,
                    report.gateway,
                    report.event_s,
                    report.event_s,
                    report.rank,
                ),
            )
        return True

    def record_rejected(self, topic: str, payload: bytes, reason: str, received_s: float) -> None:
        """Keep a message that does not follow the schema, for someone to look at."""
        with self._tx() as tx:
            tx.run(
                "INSERT INTO hub_rejected (received_s, topic, reason, payload_hex)"
                " VALUES (?, ?, ?, ?)",
                (received_s, topic, reason, payload[:MAX_REJECTED_BYTES].hex()),
            )

    def patient_alerts(self, site: str, gateway: str, patient: str) -> list[dict[str, Any]]:
        """Every alert of one patient of one gateway, in the order of `list_alerts`."""
        with self._tx() as tx:
            rows = tx.rows(
                "SELECT * FROM hub_alerts WHERE site = ? AND gateway = ? AND patient = ?"
                f" ORDER BY {_TRIAGE_ORDER}",
                (site, gateway, patient, CLOSED_STATUS),
            )
        return _with_details(rows)

    def list_alerts(self, open_only: bool, limit: int) -> list[dict[str, Any]]:
        """Alerts across gateways: live ones first, then by priority, oldest onset first."""
        where = "WHERE status <> ?" if open_only else ""
        params: tuple[Any, ...] = (CLOSED_STATUS,) if open_only else ()
        with self._tx() as tx:
            rows = tx.rows(
                f"SELECT * FROM hub_alerts {where} ORDER BY {_TRIAGE_ORDER} LIMIT ?",
                (*params, CLOSED_STATUS, limit),
            )
        return _with_details(rows)

    def find_alerts(self, id_prefix: str) -> list[dict[str, Any]]:
        """Alerts whose id starts with `id_prefix` (the list shows the first 8 characters)."""
        with self._tx() as tx:
            return tx.rows(
                "SELECT * FROM hub_alerts WHERE substr(alert_id, 1, ?) = ? ORDER BY alert_id",
                (len(id_prefix), id_prefix),
            )

    def alert_events(self, alert_id: str) -> list[dict[str, Any]]:
        with self._tx() as tx:
            return tx.rows(
                "SELECT message_id, event, status, event_s, historical, received_s"
                " FROM hub_events WHERE alert_id = ? ORDER BY event_s, message_id",
                (alert_id,),
            )

    def record_ack(
        self, alert: dict[str, Any], message: OutboxMessage, acked_by: str, acked_at_s: float
    ) -> None:
        """Queue the acknowledgement `message` for `alert` (published by `mark_ack_published`)."""
        with self._tx() as tx:
            tx.run(
                "INSERT INTO hub_acks (message_id, alert_id, site, gateway, acked_by,"
                " acked_at_s, topic, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (message_id) DO NOTHING",
                (
                    message.message_id,
                    alert["alert_id"],
                    alert["site"],
                    alert["gateway"],
                    acked_by,
                    acked_at_s,
                    message.topic,
                    message.payload,
                ),
            )
            tx.run(
                "UPDATE hub_alerts SET hub_acked_by = ?, hub_acked_s = ? WHERE alert_id = ?",
                (acked_by, acked_at_s, alert["alert_id"]),
            )

    def pending_acks(self) -> list[PendingAck]:
        """Acknowledgements not yet accepted by the broker, oldest first."""
        with self._tx() as tx:
            rows = tx.rows(
                "SELECT message_id, alert_id, topic, payload FROM hub_acks"
                " WHERE published_s IS NULL ORDER BY acked_at_s, message_id"
            )
        return [PendingAck(**row) for row in rows]

    def mark_ack_published(self, message_id: str, published_s: float) -> None:
        with self._tx() as tx:
            tx.run(
                "UPDATE hub_acks SET published_s = ? WHERE message_id = ? AND published_s IS NULL",
                (published_s, message_id),
            )

    def list_gateways(self) -> list[dict[str, Any]]:
        with self._tx() as tx:
            return tx.rows("SELECT * FROM hub_gateways ORDER BY site, gateway")

    def count(self, table: str) -> int:
        """Rows in one of the hub's tables (for status lines and tests)."""
        known = {"hub_alerts", "hub_events", "hub_status", "hub_acks", "hub_rejected"}
        if table not in known | set(hub_data.DATA_TABLES):
            raise ValueError(f"not a hub table: {table}")
        with self._tx() as tx:
            return int(tx.rows(f"SELECT count(*) AS n FROM {table}")[0]["n"])

    def record_data(self, record: DataRecord, received_s: float) -> bool:
        """Store a device record, gap, summary or raw-data chunk; False if already stored."""
        with self._tx() as tx:
            added = hub_data.record_data(tx, record, received_s)
            if added:
                tx.run(_TOUCH_GATEWAY, (record.site, record.gateway, received_s))
        return added

    def patient_summaries(
        self, site: str, gateway: str, patient: str, since_s: float, until_s: float | None = None
    ) -> list[dict[str, Any]]:
        """A patient's minute rows (minute_s, metric, n, missing, min, median, max, quality)
        from `since_s` (up to `until_s`), oldest first."""
        with self._tx() as tx:
            return hub_data.patient_summaries(tx, (site, gateway, patient), since_s, until_s)

    def gap_records(
        self,
        *,
        site: str | None = None,
        gateway: str | None = None,
        patient: str | None = None,
        since_s: float = 0.0,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Closed data gaps that ended at or after `since_s`, newest first."""
        filters = {"site": site, "gateway": gateway, "patient": patient}
        with self._tx() as tx:
            return hub_data.gap_records(tx, filters, since_s, limit)

    def device_records(
        self,
        *,
        site: str | None = None,
        gateway: str | None = None,
        patient: str | None = None,
        since_s: float = 0.0,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Device events (silent, no_signal, back) from `since_s`, newest first."""
        filters = {"site": site, "gateway": gateway, "patient": patient}
        with self._tx() as tx:
            return hub_data.device_records(tx, filters, since_s, limit)

    def devices_without_data(self) -> list[dict[str, Any]]:
        """Devices whose data gap is still open (their newest event is silent or no_signal)."""
        with self._tx() as tx:
            return hub_data.devices_without_data(tx)
