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


def _v2_device_status(db: sqlite_utils.Database) -> None:
    """The live state of each device link (connected, last data, RSSI, battery, last error)."""
    db.execute(
        """CREATE TABLE device_status (
            device_id TEXT PRIMARY KEY,
            transport TEXT NOT NULL,
            address TEXT NOT NULL,
            protocol TEXT NOT NULL,
            state TEXT NOT NULL,
            rssi_dbm INTEGER,
            battery_percent REAL,
            last_data_s REAL,
            connected_since_s REAL,
            last_error TEXT,
            reconnects INTEGER NOT NULL DEFAULT 0,
            bytes_received INTEGER NOT NULL DEFAULT 0,
            updated_s REAL NOT NULL
        )"""
    )


_SECOND = "(CAST({x} AS INTEGER) - ({x} < CAST({x} AS INTEGER)))"  # floor() of a REAL
# A reading's id is its second shifted left this many bits plus a counter within the second
# (migration 3, whose text is frozen, writes the 16 literally).
READING_ID_SECOND_SHIFT = 16


def reading_id_floor(second_s: float) -> int:
    """The smallest reading id of `second_s` (ids of [a, b) are reading_id_floor(a) up to,
    not including, reading_id_floor(b))."""
    return int(second_s) << READING_ID_SECOND_SHIFT


def _v3_lean_readings(db: sqlite_utils.Database) -> None:
    """Readings in about a fifth of the space and a tenth of the writes: each row names its
    (device, metric, patient, site) series by a small integer, and its id is the second
    shifted left 16 bits plus a counter, so rows sit in time order and a time range is an id
    range (no secondary index to update on every commit). `readings` stays as a view with the
    old columns, and inserting into it still works (an INSTEAD OF trigger), so readers and
    writers of the old table are unchanged. At most 65,536 readings per second."""
    db.execute(
        """CREATE TABLE reading_series (
            id INTEGER PRIMARY KEY,
            device_id TEXT NOT NULL,
            metric TEXT NOT NULL,
            patient_id TEXT NOT NULL DEFAULT '',
            site TEXT NOT NULL DEFAULT '',
            UNIQUE (device_id, metric, patient_id, site)
        )"""
    )
    db.execute(
        """CREATE TABLE reading_samples (
            id INTEGER PRIMARY KEY,
            ts_s REAL NOT NULL,
            series_id INTEGER NOT NULL REFERENCES reading_series(id),
            value REAL,
            quality INTEGER NOT NULL DEFAULT 0
        )"""
    )
    db.execute(
        "INSERT INTO reading_series (device_id, metric, patient_id, site) SELECT DISTINCT"
        " device_id, metric, ifnull(patient_id, ''), ifnull(site, '') FROM readings"
    )
    second = _SECOND.format(x="r.ts_s")
    db.execute(
        "INSERT INTO reading_samples (id, ts_s, series_id, value, quality)"
        f" SELECT ({second} << 16) + row_number() OVER (PARTITION BY {second} ORDER BY r.id) - 1,"
        " r.ts_s, s.id, r.value, r.quality FROM readings r JOIN reading_series s"
        " ON s.device_id = r.device_id AND s.metric = r.metric"
        " AND s.patient_id = ifnull(r.patient_id, '') AND s.site = ifnull(r.site, '')"
    )
    db.execute("DROP TABLE readings")
    db.execute(
        """CREATE VIEW readings AS
        SELECT s.id AS id, s.ts_s AS ts_s, nullif(r.patient_id, '') AS patient_id,
            r.device_id AS device_id, r.metric AS metric, s.value AS value,
            s.quality AS quality, nullif(r.site, '') AS site
        FROM reading_samples s JOIN reading_series r ON r.id = s.series_id"""
    )
    base = f"({_SECOND.format(x='NEW.ts_s')} << 16)"
    db.execute(
        f"""CREATE TRIGGER readings_insert INSTEAD OF INSERT ON readings
        BEGIN
            INSERT OR IGNORE INTO reading_series (device_id, metric, patient_id, site)
            VALUES (NEW.device_id, NEW.metric, ifnull(NEW.patient_id, ''), ifnull(NEW.site, ''));
            INSERT INTO reading_samples (id, ts_s, series_id, value, quality)
            SELECT ifnull((SELECT max(id) + 1 FROM reading_samples
                           WHERE id BETWEEN {base} AND {base} + 65535), {base}),
                NEW.ts_s, s.id, NEW.value, ifnull(NEW.quality, 0)
            FROM reading_series s
            WHERE s.device_id = NEW.device_id AND s.metric = NEW.metric
                AND s.patient_id = ifnull(NEW.patient_id, '') AND s.site = ifnull(NEW.site, '');
        END"""
    )


def _v4_retention(db: sqlite_utils.Database) -> None:
    """Per-minute summaries of raw readings (kept after the raw rows are deleted), and a log
    of what maintenance did to the data (roll-ups, the disk ceiling, salvage, clock fixes)."""
    db.execute(
        """CREATE TABLE reading_minutes (
            minute_s INTEGER NOT NULL,
            series_id INTEGER NOT NULL REFERENCES reading_series(id),
            n INTEGER NOT NULL,
            missing INTEGER NOT NULL,
            value_min REAL,
            value_median REAL,
            value_max REAL,
            quality INTEGER NOT NULL,
            PRIMARY KEY (minute_s, series_id)
        ) WITHOUT ROWID"""
    )
    db.execute(
        """CREATE TABLE maintenance_log (
            id INTEGER PRIMARY KEY,
            ts_s REAL NOT NULL,
            kind TEXT NOT NULL,
            details TEXT NOT NULL
        )"""
    )


def _v5_day_rule_evaluations(db: sqlite_utils.Database) -> None:
    """The last local date whose day- and night-level rules were evaluated, per patient, so
    that a restart never evaluates a day twice."""
    db.execute(
        """CREATE TABLE day_rule_evaluations (
            patient_id TEXT PRIMARY KEY,
            last_day TEXT NOT NULL,
            evaluated_s REAL NOT NULL
        )"""
    )


def _uplink_state(db: sqlite_utils.Database) -> None:
    """What the uplink (sync/records.py, gateway/uplink.py) remembers across restarts: each
    continuous device's data state (an open gap and its reasons), each patient's summary
    watermark (minutes before it were summarised), and the bytes acknowledged per local day
    and outbox priority (the daily data budget)."""
    db.execute(
        """CREATE TABLE uplink_devices (
            device_id TEXT PRIMARY KEY,
            patient_id TEXT NOT NULL,
            state TEXT NOT NULL,
            since_s REAL NOT NULL,
            last_data_s REAL NOT NULL,
            last_valid_s REAL NOT NULL,
            reasons TEXT NOT NULL,
            checked_through_s REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE uplink_watermarks (
            patient_id TEXT PRIMARY KEY,
            summarised_through_s INTEGER NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE uplink_bytes (
            day TEXT NOT NULL,
            priority INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            messages INTEGER NOT NULL,
            PRIMARY KEY (day, priority)
        ) WITHOUT ROWID"""
    )


def _patient_display_names(db: sqlite_utils.Database) -> None:
    """A name for each patient that people on the box may read (the status page, the daily
    report): kept only on the box, never synced (messages carry the pseudonymous id)."""
    db.execute(
        """CREATE TABLE IF NOT EXISTS patient_display_names (
            patient_id TEXT PRIMARY KEY REFERENCES patients(id),
            display_name TEXT NOT NULL,
            updated_s REAL NOT NULL
        )"""
    )


def _contacts_and_notifications(db: sqlite_utils.Database) -> None:
    """Who is told of a patient's alerts (phone numbers stay on the box, never synced), and
    every attempt to tell them, with its outcome, kept with the alert."""
    db.execute(
        """CREATE TABLE contacts (
            id INTEGER PRIMARY KEY,
            patient_id TEXT NOT NULL REFERENCES patients(id),
            role TEXT NOT NULL CHECK (role IN ('family', 'doctor', 'township')),
            name TEXT NOT NULL,
            phone TEXT NOT NULL,
            language TEXT NOT NULL CHECK (language IN ('zh', 'en')),
            created_s REAL NOT NULL,
            UNIQUE (patient_id, role, phone)
        )"""
    )
    db.execute(
        """CREATE TABLE notification_attempts (
            id INTEGER PRIMARY KEY,
            alert_id TEXT NOT NULL REFERENCES alerts(id),
            contact_id INTEGER NOT NULL,
            role TEXT NOT NULL,
            phone_masked TEXT NOT NULL,
            priority TEXT NOT NULL,
            step INTEGER NOT NULL,
            attempt INTEGER NOT NULL,
            ts_s REAL NOT NULL,
            outcome TEXT NOT NULL
                CHECK (outcome IN ('sending', 'sent', 'failed', 'rejected')),
            message_ref INTEGER,
            reason TEXT,
            finished_s REAL
        )"""
    )
    db.execute(
        "CREATE INDEX notification_attempts_alert ON notification_attempts(alert_id, contact_id)"
    )


def _patient_settings(db: sqlite_utils.Database) -> None:
    """Per-patient settings (tier, profile, rule overrides) with the version that set them,
    from the hospital or the box itself; and a log of every settings change received,
    applied, ignored (not newer) or rejected (invalid). No row: version 0, the defaults."""
    db.execute(
        """CREATE TABLE patient_settings (
            patient_id TEXT PRIMARY KEY REFERENCES patients(id),
            version INTEGER NOT NULL,
            tier TEXT NOT NULL CHECK (tier IN ('red', 'yellow', 'green')),
            profile TEXT NOT NULL CHECK (profile IN ('default', 'copd')),
            overrides TEXT NOT NULL,
            source TEXT NOT NULL CHECK (source IN ('local', 'hospital')),
            issued_by TEXT NOT NULL,
            message_id TEXT,
            applied_s REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE patient_settings_log (
            id INTEGER PRIMARY KEY,
            patient_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            source TEXT NOT NULL,
            message_id TEXT,
            outcome TEXT NOT NULL CHECK (outcome IN ('applied', 'ignored', 'rejected')),
            reason TEXT NOT NULL,
            payload TEXT NOT NULL,
            ts_s REAL NOT NULL
        )"""
    )


def _reading_schedules(db: sqlite_utils.Database) -> None:
    """Per patient and metric, the local times of scheduled spot readings (Q3), when the
    schedule was set, and how far the stored readings have been looked through for the
    newest valid one (so that a minute's look reads only the readings since the last)."""
    db.execute(
        """CREATE TABLE reading_schedules (
            patient_id TEXT NOT NULL REFERENCES patients(id),
            metric TEXT NOT NULL,
            slots TEXT NOT NULL,
            set_s REAL NOT NULL,
            checked_until_s REAL NOT NULL,
            last_valid_s REAL,
            PRIMARY KEY (patient_id, metric)
        )"""
    )


MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (
    _v1_initial,
    _v2_device_status,
    _v3_lean_readings,
    _v4_retention,
    _v5_day_rule_evaluations,
    _uplink_state,
    _patient_display_names,
    _contacts_and_notifications,
    _patient_settings,
    _reading_schedules,
)


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
