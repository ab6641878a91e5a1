"""Versioned schema migrations for the gateway's SQLite store.

`PRAGMA user_version` holds the number of migrations applied. A migration is appended, never
edited: a box in a village may skip many versions between updates.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer pulsegate."""


def _v1_initial(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE patients (
            id TEXT PRIMARY KEY,
            tier TEXT NOT NULL CHECK (tier IN ('red', 'yellow', 'green')),
            profile TEXT NOT NULL CHECK (profile IN ('default', 'copd')),
            created_s REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE devices (
            id TEXT PRIMARY KEY,
            protocol TEXT NOT NULL,
            transport TEXT NOT NULL,
            created_s REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE bindings (
            id INTEGER PRIMARY KEY,
            device_id TEXT NOT NULL REFERENCES devices(id),
            patient_id TEXT NOT NULL REFERENCES patients(id),
            start_s REAL NOT NULL,
            end_s REAL
        )"""
    )
    db.execute("CREATE INDEX bindings_device ON bindings(device_id, start_s)")
    db.execute(
        """CREATE TABLE readings (
            id INTEGER PRIMARY KEY,
            ts_s REAL NOT NULL,
            patient_id TEXT,
            device_id TEXT NOT NULL,
            metric TEXT NOT NULL,
            value REAL,
            quality INTEGER NOT NULL DEFAULT 0,
            site TEXT
        )"""
    )
    db.execute("CREATE INDEX readings_patient_ts ON readings(patient_id, ts_s)")
    db.execute(
        """CREATE TABLE alerts (
            id TEXT PRIMARY KEY,
            patient_id TEXT NOT NULL,
            rule TEXT NOT NULL,
            priority TEXT NOT NULL,
            tier TEXT NOT NULL,
            profile TEXT NOT NULL,
            status TEXT NOT NULL,
            onset_s REAL NOT NULL,
            updated_s REAL NOT NULL,
            resolved_s REAL,
            acked_s REAL,
            acked_by TEXT,
            details TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX alerts_patient_rule ON alerts(patient_id, rule, status)")
    db.execute(
        """CREATE TABLE alert_events (
            id INTEGER PRIMARY KEY,
            alert_id TEXT NOT NULL REFERENCES alerts(id),
            kind TEXT NOT NULL,
            ts_s REAL NOT NULL,
            details TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            priority INTEGER NOT NULL,
            topic TEXT NOT NULL,
            message_id TEXT NOT NULL UNIQUE,
            payload TEXT NOT NULL,
            created_s REAL NOT NULL,
            sent_s REAL
        )"""
    )
    db.execute("CREATE INDEX outbox_pending ON outbox(sent_s, priority, id)")
    db.execute(
        """CREATE TABLE detector_state (
            patient_id TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            updated_s REAL NOT NULL
        )"""
    )


MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (_v1_initial,)


def migrate(db: sqlite_utils.Database) -> int:
    """Apply the migrations not yet applied, each in its own transaction; returns the version."""
    version: int = db.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise SchemaTooNewError(
            f"database schema version {version} is newer than this pulsegate "
            f"({len(MIGRATIONS)}); install the newer pulsegate again"
        )
    for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            migration(db)
            db.execute(f"PRAGMA user_version = {number}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    return len(MIGRATIONS)
