"""The start-up check of the database, the full check in the background, and what happens
when either finds it corrupt.

At start-up every table is checked (`PRAGMA quick_check(TABLE)`: each b-tree's structure and
records) except the two that make up nearly all of the file, the raw readings and their
per-minute summaries (BULK_TABLES): milliseconds, where the whole file's check takes about a
minute for a year's database here (2.4 GB, 20 patients: `bench/bench_year.py`) and longer on
a Raspberry Pi, a minute with no monitoring after every power cut. The whole file is checked
in the background instead (gateway/db_check.py); when that finds damage, or a store call of
the daemon meets it (gateway/daemon.py StoreWorker), a marker is left beside the database
(`pulsegate.db.check-failed`) and the daemon stops, and the next start
checks the whole file while systemd's start timeout is extended (EXTEND_TIMEOUT_USEC), so a
long check is never mistaken for a hang.

A database SQLite calls corrupt (or not a database at all) is moved aside under a timestamped
name, with its WAL, and a new one is created. What must not be lost is copied across, row by
row, skipping what cannot be read: patients, devices and bindings (the box's setup), unsent
outbox messages and the alerts they announce, every alert not yet closed with its events, the
detector state, the per-patient settings, display names and reading schedules, and the
contacts with the SMS attempts of the alerts kept. Raw readings and summaries stay in the moved
file for offline recovery.
Any other failure (locked, unreadable, permission) is an error, never a reason to move data.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.notify import Notifier
from gateway.store import Store, StoreError

log = logging.getLogger(__name__)

_CORRUPT_ERRORS = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
_SIDE_FILES = ("-wal", "-shm")
_MAX_SKIPS = 64  # attempts to read past unreadable pages of one table
PROGRESS_EVERY_S = 5.0
EXTEND_START_US = 30_000_000  # each progress report gives the check 30 s more
BULK_TAIL_S = 3600  # the newest hour of readings and of summaries is read at start-up
BULK_TABLES = frozenset({"reading_samples", "reading_minutes"})  # checked in the background
# ... but their newest rows (where an SD card that lied about a flush before a power cut left
# damage, and what a start reads: the detectors' recent samples) and oldest (retention) are
# read at start-up, every column, so SQLite meets damage there before the daemon does.
_BULK_TAIL_READS = (
    "SELECT sum(ts_s), sum(series_id), sum(value), sum(quality) FROM reading_samples"
    f" WHERE id >= (SELECT max(id) FROM reading_samples) - ({BULK_TAIL_S} << 16)",
    "SELECT * FROM (SELECT * FROM reading_samples ORDER BY id LIMIT 1000)",
    "SELECT sum(series_id), sum(n), sum(missing), sum(value_min), sum(value_median),"
    " sum(value_max), sum(quality) FROM reading_minutes"
    f" WHERE minute_s >= (SELECT max(minute_s) FROM reading_minutes) - {BULK_TAIL_S}",
)
_MARKER_SUFFIX = ".check-failed"


@dataclass(frozen=True, slots=True)
class SalvageReport:
    problem: str
    moved_to: Path
    copied: dict[str, int] = field(default_factory=dict)


def is_corruption(exc: BaseException | None) -> bool:
    """True for SQLite's "malformed" and "not a database" errors."""
    return isinstance(exc, sqlite3.DatabaseError) and getattr(
        exc, "sqlite_errorname", ""
    ).startswith(_CORRUPT_ERRORS)


def find_corruption(
    path: Path, on_progress: Callable[[], None] | None = None, full: bool = True
) -> str | None:
    """None when `path` is missing or passes `PRAGMA quick_check` (`full`: the whole file;
    else every table but BULK_TABLES); else what is wrong. The check runs on its own thread;
    `on_progress` is called every few seconds meanwhile."""
    if not path.exists():
        return None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="quick-check") as executor:
        future = executor.submit(_quick_check, path, full)
        while True:
            try:
                return future.result(timeout=PROGRESS_EVERY_S)
            except TimeoutError:
                if on_progress is not None:
                    on_progress()


def _quick_check(path: Path, full: bool = True) -> str | None:
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the database {path}: {exc}") from exc
    try:
        return quick_check(conn, full)
    except sqlite3.DatabaseError as exc:
        if is_corruption(exc):
            return str(exc)
        raise StoreError(f"cannot check the database {path}: {exc}") from exc
    finally:
        conn.close()


def quick_check(conn: sqlite3.Connection, full: bool = True) -> str | None:
    """None when `PRAGMA quick_check` passes (`full`: the whole file, else every table but
    BULK_TABLES, and their newest and oldest rows read); else the first problems it names.
    sqlite3.DatabaseError as SQLite raises."""
    conn.execute("PRAGMA busy_timeout = 10000")
    if full:
        problems = [row[0] for row in conn.execute("PRAGMA quick_check(20)")]
    else:
        names = _table_names(conn)
        tables = [name for name in names if name not in BULK_TABLES]
        problems = [
            row[0]
            for table in tables
            for row in conn.execute("SELECT * FROM pragma_quick_check(?)", [table])
            if row[0] != "ok"
        ] or ["ok"]
        if problems == ["ok"] and BULK_TABLES.issubset(names):
            for sql in _BULK_TAIL_READS:
                conn.execute(sql).fetchall()
    return None if problems == ["ok"] else "; ".join(problems[:3])


def _table_names(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")]


def check_failed_marker(path: Path) -> Path:
    """The file the background check leaves beside the database at `path` when it fails."""
    return path.with_name(path.name + _MARKER_SUFFIX)


def mark_corrupt(path: Path, problem: str) -> None:
    """Make the next start check the whole of `path` (and salvage it if it is still bad)."""
    check_failed_marker(path).write_text(problem + "\n")


def stop_for_damage(path: Path, problem: str) -> None:
    """What the daemon does on finding damage, before it stops: say so, and mark `path`."""
    log.error(
        "the database %s is damaged (%s): stopping so that the next start checks it whole"
        " and salvages it",
        path,
        problem,
    )
    mark_corrupt(path, problem)


def open_checked(
    path: Path, gateway_id: str, now_s: float | None = None, notifier: Notifier | None = None
) -> Store:
    """Open the store at `path` after the integrity check, salvaging a corrupt database."""
    notifier = notifier or Notifier()

    def extend_start_timeout() -> None:
        notifier.send(f"EXTEND_TIMEOUT_USEC={EXTEND_START_US}", "STATUS=checking the database")

    marker = check_failed_marker(path)
    full = marker.exists()  # the background check found damage: check all of it now
    if full:
        log.warning("the last full check of %s failed: checking all of it", path)
    problem = find_corruption(path, extend_start_timeout, full=full)
    if problem is None and full:
        log.warning("%s passes the full check now", path)
        marker.unlink(missing_ok=True)
    if problem is None:
        try:
            return Store.open(path, gateway_id)
        except StoreError as exc:
            if not is_corruption(exc.__cause__):
                raise
            problem = str(exc.__cause__)
    report = salvage(path, gateway_id, problem, time.time() if now_s is None else now_s)
    marker.unlink(missing_ok=True)
    log.error(
        "the database %s is corrupt (%s): moved it to %s and started a new one, keeping %s",
        path,
        report.problem,
        report.moved_to,
        ", ".join(f"{n} {table}" for table, n in report.copied.items()) or "nothing",
    )
    return Store.open(path, gateway_id)


def salvage(path: Path, gateway_id: str, problem: str, now_s: float) -> SalvageReport:
    """Move the corrupt database at `path` aside, create a new one, copy what can be read."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now_s))
    moved = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", *_SIDE_FILES):
        source = Path(f"{path}{suffix}")
        if source.exists():
            source.rename(f"{moved}{suffix}")
    store = Store.open(path, gateway_id)
    try:
        copied = _copy_across(moved, store)
        with store.transaction():
            store.db.execute(
                "INSERT INTO maintenance_log (ts_s, kind, details) VALUES (?, 'salvage', ?)",
                [now_s, json.dumps({"problem": problem, "moved_to": str(moved), **copied})],
            )
    finally:
        store.close()
    return SalvageReport(problem, moved, copied)


def _copy_across(old_path: Path, store: Store) -> dict[str, int]:
    try:
        old = sqlite3.connect(old_path, isolation_level=None)
    except sqlite3.Error as exc:
        log.warning("nothing can be read from %s: %s", old_path, exc)
        return {}
    try:
        tables = _tables(old)
        outbox = [r for r in _rows(old, "outbox", tables) if r.get("sent_s") is None]
        wanted = {_alert_of(row) for row in outbox}
        alerts = [
            r for r in _rows(old, "alerts", tables) if r["status"] != "closed" or r["id"] in wanted
        ]
        alert_ids = {row["id"] for row in alerts}
        plan = {
            "patients": _rows(old, "patients", tables),
            "devices": _rows(old, "devices", tables),
            "bindings": _rows(old, "bindings", tables),
            "alerts": alerts,
            "alert_events": [
                r for r in _rows(old, "alert_events", tables) if r["alert_id"] in alert_ids
            ],
            "outbox": outbox,
            "detector_state": _rows(old, "detector_state", tables),
            "contacts": _rows(old, "contacts", tables),
            "patient_settings": _rows(old, "patient_settings", tables),
            "reading_schedules": _rows(old, "reading_schedules", tables),
            "patient_display_names": _rows(old, "patient_display_names", tables),
            "notification_attempts": [
                r for r in _rows(old, "notification_attempts", tables) if r["alert_id"] in alert_ids
            ],
        }
    finally:
        old.close()
    copied = {}
    with store.transaction():
        for table, rows in plan.items():
            copied[table] = _insert(store, table, rows)
    return {table: n for table, n in copied.items() if n}


def _tables(conn: sqlite3.Connection) -> set[str]:
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_schema")}
    except sqlite3.DatabaseError as exc:
        log.warning("the schema of the corrupt database cannot be read: %s", exc)
        return set()


def _rows(conn: sqlite3.Connection, table: str, tables: set[str]) -> list[dict[str, Any]]:
    """Every readable row of `table` in rowid order; unreadable stretches are skipped."""
    rows: list[dict[str, Any]] = []
    if table not in tables:
        return rows
    after, step = 0, 1
    for _ in range(_MAX_SKIPS):
        try:
            cursor = conn.execute(
                f"SELECT rowid AS _rowid, * FROM [{table}] NOT INDEXED WHERE rowid > ?"
                " ORDER BY rowid",
                [after],
            )
            names = [d[0] for d in cursor.description]
            for values in cursor:
                rows.append(dict(zip(names, values, strict=True)))
                after, step = rows[-1].pop("_rowid"), 1
            break
        except sqlite3.DatabaseError as exc:
            log.warning("%s: skipping unreadable rows after rowid %d (%s)", table, after, exc)
            after, step = after + step, step * 4
    return rows


def _alert_of(outbox_row: dict[str, Any]) -> str | None:
    try:
        alert = json.loads(outbox_row["payload"]).get("alert_id")
    except (ValueError, AttributeError):
        return None
    return alert if isinstance(alert, str) else None


def _insert(store: Store, table: str, rows: list[dict[str, Any]]) -> int:
    """INSERT OR IGNORE the columns the new schema still has; returns rows inserted."""
    if not rows:
        return 0
    columns = [c for c in rows[0] if c in {col.name for col in store.db[table].columns}]
    sql = (
        f"INSERT OR IGNORE INTO [{table}] ({', '.join(columns)})"
        f" VALUES ({', '.join('?' for _ in columns)})"
    )
    before = store.db.conn.total_changes
    store.db.conn.executemany(sql, [[row.get(c) for c in columns] for row in rows])
    return int(store.db.conn.total_changes - before)
