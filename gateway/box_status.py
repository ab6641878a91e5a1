"""What `pulsegate status` says about the box itself: is the daemon up and since when, how full
the disk and the database are, whether the clock is trusted, and when the hospital last
acknowledged a message. Read from the store (the daemon records its start in the maintenance
log), the file system and the clock, so it works while the daemon runs, or after it stopped.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from devices.protocols.reading import Quality
from gateway.config import Config
from gateway.migrations import reading_id_floor
from gateway.retention import used_bytes
from gateway.salvage import check_failed_marker
from gateway.store import Store
from gateway.timekeeper import system_clock_synchronized
from gateway.uplink_budget import uplink_line, uplink_status

log = logging.getLogger(__name__)
RECENT_S = 86_400  # flagged readings are counted over the last day (an id range, no scan)


def record_start(store: Store, now_s: float) -> None:
    """The daemon notes its start (pid) so that status can tell uptime."""
    try:
        with store.transaction():
            store.db.execute(
                "INSERT INTO maintenance_log (ts_s, kind, details) VALUES (?, 'start', ?)",
                [now_s, json.dumps({"pid": os.getpid()})],
            )
    except sqlite3.Error as exc:
        log.warning("cannot note the start in the database (%s); status shows no uptime", exc)


def _last_log(store: Store, kind: str) -> tuple[float, dict[str, Any]] | None:
    row = store.db.execute(
        "SELECT ts_s, details FROM maintenance_log WHERE kind = ? ORDER BY id DESC LIMIT 1",
        [kind],
    ).fetchone()
    return None if row is None else (float(row[0]), json.loads(row[1]))


def _is_running(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"pulsegate" in cmdline or b"gateway" in cmdline


def daemon_status(store: Store, now_s: float) -> dict[str, Any]:
    start = _last_log(store, "start")
    if start is None:
        return {"running": False, "started_s": None, "uptime_s": None}
    started_s, details = start
    running = _is_running(int(details.get("pid", -1)))
    return {
        "running": running,
        "started_s": started_s,
        "uptime_s": now_s - started_s if running else None,
    }


def disk_status(store: Store, config: Config) -> dict[str, Any]:
    path = config.database_path
    files = sum(
        Path(f"{path}{suffix}").stat().st_size
        for suffix in ("", "-wal", "-shm")
        if Path(f"{path}{suffix}").exists()
    )
    disk = shutil.disk_usage(path.parent)
    ceiling = _last_log(store, "ceiling")
    return {
        "database_files_bytes": files,
        "database_used_bytes": used_bytes(store),
        "database_ceiling_bytes": int(config.store.max_database_mb * 1_000_000),
        "disk_free_bytes": disk.free,
        "disk_total_bytes": disk.total,
        "ceiling_last_applied_s": None if ceiling is None else ceiling[0],
        "damage_found": _damage_found(path),
    }


def _damage_found(path: Path) -> str | None:
    """What the background check found wrong with the database (gateway/db_check.py)."""
    marker = check_failed_marker(path)
    try:
        return marker.read_text().strip() or "no details"
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"see {marker}: {exc.strerror}"


def clock_status(store: Store, now_s: float) -> dict[str, Any]:
    low_id = reading_id_floor(now_s - RECENT_S)
    [(flagged,)] = store.db.execute(
        "SELECT count(*) FROM reading_samples WHERE id >= ? AND quality & ?",
        [low_id, int(Quality.CLOCK_UNTRUSTED)],
    )
    correction = _last_log(store, "clock")
    return {
        "synchronized": system_clock_synchronized(),
        "now_s": now_s,
        "untrusted_readings_last_day": flagged,
        "last_correction": None if correction is None else correction[1],
    }


def sync_status(store: Store) -> dict[str, Any]:
    [(last_sent_s, sent)] = store.db.execute(
        "SELECT max(sent_s), count(sent_s) FROM outbox WHERE sent_s IS NOT NULL"
    )
    return {"last_acknowledged_s": last_sent_s, "messages_acknowledged": sent}


def gather(store: Store, config: Config, now_s: float | None = None) -> dict[str, Any]:
    now_s = time.time() if now_s is None else now_s
    return {
        "daemon": daemon_status(store, now_s),
        "disk": disk_status(store, config),
        "clock": clock_status(store, now_s),
        "sync": sync_status(store),
        "uplink": uplink_status(store, config, now_s),  # backlog per priority, bytes today
    }


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    days, seconds = divmod(seconds, 86_400)
    hours, seconds = divmod(seconds, 3600)
    return f"{days} d {hours} h {seconds // 60} min" if days else f"{hours} h {seconds // 60} min"


def _when(ts_s: float | None, now_s: float) -> str:
    if ts_s is None:
        return "never"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts_s))
    return f"{stamp} ({_duration(max(0.0, now_s - ts_s))} ago)"


def lines(info: dict[str, Any]) -> list[str]:
    """The human-readable lines of `gather`'s result."""
    daemon, disk, clock, sync = info["daemon"], info["disk"], info["clock"], info["sync"]
    now_s = clock["now_s"]
    if daemon["running"]:
        up = f"running, up {_duration(daemon['uptime_s'])}"
    else:
        started = daemon["started_s"]
        up = "not running" + (f" (last started {_when(started, now_s)})" if started else "")
    ceiling = disk["database_ceiling_bytes"]
    limit = f" of a {ceiling / 1e6:,.0f} MB ceiling" if ceiling else ""
    trust = "synchronised (trusted)" if clock["synchronized"] else "NOT synchronised"
    flagged = clock["untrusted_readings_last_day"]
    return [
        f"daemon: {up}",
        f"disk: database {disk['database_used_bytes'] / 1e6:,.1f} MB used{limit}"
        f" ({disk['database_files_bytes'] / 1e6:,.1f} MB on disk),"
        f" {disk['disk_free_bytes'] / 1e9:,.1f} GB free of"
        f" {disk['disk_total_bytes'] / 1e9:,.1f} GB",
        *(
            [f"database: DAMAGED ({damage}); the next start checks it whole and salvages it"]
            if (damage := disk["damage_found"])
            else []
        ),
        f"clock: {trust}; {flagged} readings with an untrusted time in the last day",
        f"last sync: {_when(sync['last_acknowledged_s'], now_s)}",
        *([uplink_line(info["uplink"])] if "uplink" in info else []),
    ]
