"""The hub's tables of device records, data gaps, per-minute summaries and raw readings, on
SQLite or PostgreSQL (same SQL), and the queries the CLI and the dashboard read them with.

De-duplication, as for alerts: each received message is inserted under its `message_id`
PRIMARY KEY with ON CONFLICT DO NOTHING, and its rows are only written when that insert added
a row, so a redelivered message is a no-op. Summary minutes are keyed by (site, gateway,
patient, metric, minute_s) and raw readings by (site, gateway, patient, metric, ts_ms): a
minute or a reading that two messages both carry (two overlapping raw requests) is kept once,
the first one received.

Schema steps: `hub_meta.schema_version` says which steps a hub database has had; opening an
older database runs the missing ones (in the schema transaction, under the PostgreSQL schema
lock), so a hub upgraded in place gains the new tables and keeps its alerts.

Tables (times are UTC epoch seconds; `reasons` is a JSON list of texts):
- hub_device_events: a device went silent / lost the signal / came back (one row a message).
- hub_gaps: a closed data gap of a device, start_s to end_s.
- hub_summary_messages + hub_summaries: one row per patient, metric and minute (n, missing,
  min, median, max in the metric's unit, quality flags).
- hub_raw_requests: what the hub asked for (published_s once the broker took it);
  hub_raw_chunks + hub_raw_readings: the answers, one row per reading (ts_ms in ms).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sync.hub_data_messages import DataRecord, DeviceRecord, GapRecord, RawAnswer, Summary
from sync.hub_sql import HubStoreError, Transaction

SCHEMA_VERSION_KEY = "schema_version"
ROWS_PER_INSERT = 100  # multi-row VALUES; 100 rows x 9 columns stays under SQLite's 999
DATA_SCHEMA = (
    """CREATE TABLE hub_device_events (
        message_id TEXT PRIMARY KEY, site TEXT NOT NULL, gateway TEXT NOT NULL,
        patient TEXT NOT NULL, device TEXT NOT NULL, event TEXT NOT NULL,
        event_s DOUBLE PRECISION NOT NULL, since_s DOUBLE PRECISION NOT NULL,
        reasons TEXT NOT NULL, historical INTEGER NOT NULL,
        received_s DOUBLE PRECISION NOT NULL, payload TEXT NOT NULL)""",
    "CREATE INDEX hub_device_events_device ON hub_device_events (site, gateway, device, event_s)",
    "CREATE INDEX hub_device_events_time ON hub_device_events (event_s)",
    """CREATE TABLE hub_gaps (
        message_id TEXT PRIMARY KEY, site TEXT NOT NULL, gateway TEXT NOT NULL,
        patient TEXT NOT NULL, device TEXT NOT NULL, start_s DOUBLE PRECISION NOT NULL,
        end_s DOUBLE PRECISION NOT NULL, duration_s BIGINT NOT NULL, reasons TEXT NOT NULL,
        historical INTEGER NOT NULL, received_s DOUBLE PRECISION NOT NULL,
        payload TEXT NOT NULL)""",
    "CREATE INDEX hub_gaps_end ON hub_gaps (end_s)",
    """CREATE TABLE hub_summary_messages (
        message_id TEXT PRIMARY KEY, site TEXT NOT NULL, gateway TEXT NOT NULL,
        patient TEXT NOT NULL, start_s DOUBLE PRECISION NOT NULL,
        end_s DOUBLE PRECISION NOT NULL, minutes INTEGER NOT NULL, historical INTEGER NOT NULL,
        received_s DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE hub_summaries (
        site TEXT NOT NULL, gateway TEXT NOT NULL, patient TEXT NOT NULL, metric TEXT NOT NULL,
        minute_s BIGINT NOT NULL, n INTEGER NOT NULL, missing INTEGER NOT NULL,
        min DOUBLE PRECISION, median DOUBLE PRECISION, max DOUBLE PRECISION,
        quality BIGINT NOT NULL, message_id TEXT NOT NULL,
        PRIMARY KEY (site, gateway, patient, minute_s, metric))""",
    """CREATE TABLE hub_raw_requests (
        message_id TEXT PRIMARY KEY, site TEXT NOT NULL, gateway TEXT NOT NULL,
        patient TEXT NOT NULL, start_s DOUBLE PRECISION NOT NULL,
        end_s DOUBLE PRECISION NOT NULL, requested_by TEXT NOT NULL,
        requested_s DOUBLE PRECISION NOT NULL, topic TEXT NOT NULL, payload TEXT NOT NULL,
        published_s DOUBLE PRECISION)""",
    """CREATE TABLE hub_raw_chunks (
        message_id TEXT PRIMARY KEY, request_id TEXT NOT NULL, site TEXT NOT NULL,
        gateway TEXT NOT NULL, patient TEXT NOT NULL, chunk INTEGER NOT NULL,
        chunks INTEGER NOT NULL, start_s DOUBLE PRECISION NOT NULL,
        end_s DOUBLE PRECISION NOT NULL, readings INTEGER NOT NULL,
        historical INTEGER NOT NULL, received_s DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX hub_raw_chunks_request ON hub_raw_chunks (request_id)",
    """CREATE TABLE hub_raw_readings (
        site TEXT NOT NULL, gateway TEXT NOT NULL, patient TEXT NOT NULL, metric TEXT NOT NULL,
        ts_ms BIGINT NOT NULL, value DOUBLE PRECISION, quality BIGINT NOT NULL,
        message_id TEXT NOT NULL,
        PRIMARY KEY (site, gateway, patient, ts_ms, metric))""",
)
# (version, statements): a database at a lower schema_version runs the statements.
SCHEMA_STEPS: tuple[tuple[int, tuple[str, ...]], ...] = ((2, DATA_SCHEMA),)
DATA_TABLES = (
    "hub_device_events",
    "hub_gaps",
    "hub_summary_messages",
    "hub_summaries",
    "hub_raw_requests",
    "hub_raw_chunks",
    "hub_raw_readings",
)


def upgrade_schema(tx: Transaction) -> int:
    """Run the schema steps this database has not had; returns its schema version now."""
    rows = tx.rows("SELECT value FROM hub_meta WHERE key = ?", (SCHEMA_VERSION_KEY,))
    try:
        current = int(rows[0]["value"]) if rows else 1
    except ValueError as exc:
        raise HubStoreError(
            f"hub_meta.schema_version {rows[0]['value']!r} is not a number"
        ) from exc
    for version, statements in SCHEMA_STEPS:
        if version > current:
            for statement in statements:
                tx.run(statement)
            current = version
    tx.run(
        "INSERT INTO hub_meta (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (SCHEMA_VERSION_KEY, str(current)),
    )
    return current


def _insert_many(tx: Transaction, head: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """`head` (INSERT INTO t (columns) VALUES) for many rows, ON CONFLICT DO NOTHING."""
    for first in range(0, len(rows), ROWS_PER_INSERT):
        batch = rows[first : first + ROWS_PER_INSERT]
        marks = "(" + ", ".join("?" * len(batch[0])) + ")"
        params = tuple(value for row in batch for value in row)
        tx.run(f"{head} {', '.join([marks] * len(batch))} ON CONFLICT DO NOTHING", params)


def _record_device(tx: Transaction, record: DeviceRecord, received_s: float) -> int:
    return tx.run(
        "INSERT INTO hub_device_events (message_id, site, gateway, patient, device, event,"
        " event_s, since_s, reasons, historical, received_s, payload)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
        (
            record.message_id,
            record.site,
            record.gateway,
            record.patient,
            record.device,
            record.event,
            record.event_s,
            record.since_s,
            json.dumps(list(record.reasons)),
            int(record.historical),
            received_s,
            record.payload,
        ),
    )


def _record_gap(tx: Transaction, gap: GapRecord, received_s: float) -> int:
    return tx.run(
        "INSERT INTO hub_gaps (message_id, site, gateway, patient, device, start_s, end_s,"
        " duration_s, reasons, historical, received_s, payload)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
        (
            gap.message_id,
            gap.site,
            gap.gateway,
            gap.patient,
            gap.device,
            gap.start_s,
            gap.end_s,
            gap.duration_s,
            json.dumps(list(gap.reasons)),
            int(gap.historical),
            received_s,
            gap.payload,
        ),
    )


def _record_summary(tx: Transaction, summary: Summary, received_s: float) -> int:
    added = tx.run(
        "INSERT INTO hub_summary_messages (message_id, site, gateway, patient, start_s, end_s,"
        " minutes, historical, received_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (message_id) DO NOTHING",
        (
            summary.message_id,
            summary.site,
            summary.gateway,
            summary.patient,
            summary.start_s,
            summary.end_s,
            len(summary.minutes),
            int(summary.historical),
            received_s,
        ),
    )
    if added and summary.minutes:
        key = (summary.site, summary.gateway, summary.patient)
        rows = [
            (*key, m.metric, m.minute_s, m.n, m.missing, m.min, m.median, m.max, m.quality,
             summary.message_id)
            for m in summary.minutes
        ]  # fmt: skip
        _insert_many(
            tx,
            "INSERT INTO hub_summaries (site, gateway, patient, metric, minute_s, n, missing,"
            " min, median, max, quality, message_id) VALUES",
            rows,
        )
    return added


def _record_raw(tx: Transaction, answer: RawAnswer, received_s: float) -> int:
    added = tx.run(
        "INSERT INTO hub_raw_chunks (message_id, request_id, site, gateway, patient, chunk,"
        " chunks, start_s, end_s, readings, historical, received_s)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
        (
            answer.message_id,
            answer.request_id,
            answer.site,
            answer.gateway,
            answer.patient,
            answer.chunk,
            answer.chunks,
            answer.start_s,
            answer.end_s,
            len(answer.readings),
            int(answer.historical),
            received_s,
        ),
    )
    if added and answer.readings:
        key = (answer.site, answer.gateway, answer.patient)
        rows = [
            (*key, r.metric, r.ts_ms, r.value, r.quality, answer.message_id)
            for r in answer.readings
        ]
        _insert_many(
            tx,
            "INSERT INTO hub_raw_readings (site, gateway, patient, metric, ts_ms, value,"
            " quality, message_id) VALUES",
            rows,
        )
    return added


def record_data(tx: Transaction, record: DataRecord, received_s: float) -> bool:
    """Store one received record in `tx`; False if its message id was already stored."""
    if isinstance(record, DeviceRecord):
        added = _record_device(tx, record, received_s)
    elif isinstance(record, GapRecord):
        added = _record_gap(tx, record, received_s)
    elif isinstance(record, Summary):
        added = _record_summary(tx, record, received_s)
    else:
        added = _record_raw(tx, record, received_s)
    return bool(added)


def _where(
    filters: dict[str, Any], time_column: str, since_s: float
) -> tuple[str, tuple[Any, ...]]:
    """WHERE clause of the given equality filters (None: any) and `time_column >= since_s`."""
    terms = [f"{time_column} >= ?"]
    params: list[Any] = [since_s]
    for column, value in filters.items():
        if value is not None:
            terms.append(f"{column} = ?")
            params.append(value)
    return " WHERE " + " AND ".join(terms), tuple(params)


def _with_reasons(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        row["reasons"] = json.loads(row["reasons"])
        row["historical"] = bool(row["historical"])
    return rows


def patient_summaries(
    tx: Transaction, key: tuple[str, str, str], since_s: float, until_s: float | None
) -> list[dict[str, Any]]:
    """Minute rows of (site, gateway, patient) from `since_s` (to `until_s`), oldest first."""
    until = "" if until_s is None else " AND minute_s < ?"
    return tx.rows(
        "SELECT minute_s, metric, n, missing, min, median, max, quality FROM hub_summaries"
        " WHERE site = ? AND gateway = ? AND patient = ? AND minute_s >= ?"
        f"{until} ORDER BY minute_s, metric",
        (*key, since_s) if until_s is None else (*key, since_s, until_s),
    )


def gap_records(
    tx: Transaction, filters: dict[str, Any], since_s: float, limit: int
) -> list[dict[str, Any]]:
    """Gaps that ended at or after `since_s`, newest first."""
    where, params = _where(filters, "end_s", since_s)
    return _with_reasons(
        tx.rows(
            "SELECT message_id, site, gateway, patient, device, start_s, end_s, duration_s,"
            f" reasons, historical, received_s FROM hub_gaps{where}"
            " ORDER BY start_s DESC, message_id LIMIT ?",
            (*params, limit),
        )
    )


def device_records(
    tx: Transaction, filters: dict[str, Any], since_s: float, limit: int
) -> list[dict[str, Any]]:
    """Device events from `since_s`, newest first."""
    where, params = _where(filters, "event_s", since_s)
    return _with_reasons(
        tx.rows(
            "SELECT message_id, site, gateway, patient, device, event, event_s, since_s,"
            f" reasons, historical, received_s FROM hub_device_events{where}"
            " ORDER BY event_s DESC, message_id LIMIT ?",
            (*params, limit),
        )
    )


def devices_without_data(tx: Transaction) -> list[dict[str, Any]]:
    """Devices whose newest event is not `back`: a gap still open (silent or no signal)."""
    return _with_reasons(
        tx.rows(
            "SELECT message_id, site, gateway, patient, device, event, event_s, since_s,"
            " reasons, historical, received_s FROM hub_device_events d"
            " WHERE event <> 'back' AND event_s = (SELECT max(event_s) FROM hub_device_events e"
            " WHERE e.site = d.site AND e.gateway = d.gateway AND e.device = d.device)"
            " ORDER BY since_s, site, gateway, device"
        )
    )
