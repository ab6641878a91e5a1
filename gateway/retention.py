"""Bounded storage: raw readings older than `retention_days` are rolled up into per-minute
summaries (n, missing, min, median, max and the OR of the quality flags, per reading series and
minute) and deleted; summaries older than `summary_retention_days` are deleted; above the
database size ceiling the oldest raw readings go first, rolled up the same way, and the
maintenance log says so. Alerts, their events and the outbox are never
touched here: an unsent alert is never deleted.

Work is done one chunk (10 minutes of readings) per store call, so the batch writer, which
shares the store's thread, is never held up for long. The cut-off is taken from the newest
stored reading as well as the clock, so a clock that jumps years ahead deletes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from gateway.config import StoreConfig
from gateway.migrations import reading_id_floor
from gateway.store import Store
from gateway.uplink_raw import drop_oldest_unsent_raw

log = logging.getLogger(__name__)
T = TypeVar("T")

SECONDS_PER_DAY = 86_400
CHUNK_S = 600  # readings rolled up per store call
FIRST_RUN_AFTER_S = 30.0
INTERVAL_S = 600.0


class StoreCaller(Protocol):
    """The daemon's StoreWorker: runs a function on the store's own thread."""

    store: Store

    async def call(self, func: Callable[..., T], *args: Any) -> T: ...


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    retention_days: float
    max_database_bytes: int  # 0: no ceiling
    summary_retention_days: float = 0.0  # 0: summaries are kept for good


@dataclass(frozen=True, slots=True)
class Minute:
    """The summary of one series over one minute."""

    minute_s: int
    series_id: int
    n: int
    missing: int
    min: float | None
    median: float | None
    max: float | None
    quality: int


def summarise(rows: list[tuple[float, int, float | None, int]]) -> list[Minute]:
    """(ts_s, series_id, value, quality) rows -> one Minute per series and minute."""
    groups: dict[tuple[int, int], list[tuple[float | None, int]]] = defaultdict(list)
    for ts_s, series_id, value, quality in rows:
        groups[(int(ts_s // 60) * 60, series_id)].append((value, quality))
    minutes = []
    for (minute_s, series_id), members in sorted(groups.items()):
        values = [v for v, _ in members if v is not None]
        quality = 0
        for _, flags in members:
            quality |= flags
        minutes.append(
            Minute(
                minute_s,
                series_id,
                len(values),
                len(members) - len(values),
                min(values) if values else None,
                statistics.median(values) if values else None,
                max(values) if values else None,
                quality,
            )
        )
    return minutes


def used_bytes(store: Store) -> int:
    """Bytes of the database in use (pages not on the free list)."""
    page_size, pages, free = (
        store.db.execute(f"PRAGMA {name}").fetchone()[0]
        for name in ("page_size", "page_count", "freelist_count")
    )
    return int(page_size * (pages - free))


def oldest_raw_s(store: Store) -> float | None:
    row = store.db.execute("SELECT ts_s FROM reading_samples ORDER BY id LIMIT 1").fetchone()
    return None if row is None else float(row[0])


def newest_raw_s(store: Store) -> float | None:
    row = store.db.execute("SELECT ts_s FROM reading_samples ORDER BY id DESC LIMIT 1").fetchone()
    return None if row is None else float(row[0])


def newest_summary_s(store: Store) -> float | None:
    row = store.db.execute("SELECT max(minute_s) FROM reading_minutes").fetchone()
    return None if row[0] is None else float(row[0]) + 60


def expire_summaries_chunk(store: Store, before_s: float, chunk_s: int = CHUNK_S) -> int:
    """Delete the oldest per-minute summaries before `before_s`, at most `chunk_s` seconds of
    them; returns how many were deleted."""
    oldest = store.db.execute("SELECT min(minute_s) FROM reading_minutes").fetchone()[0]
    if oldest is None or oldest >= before_s:
        return 0
    with store.transaction():
        cursor = store.db.execute(
            "DELETE FROM reading_minutes WHERE minute_s < ?", [min(before_s, oldest + chunk_s)]
        )
    return int(cursor.rowcount)


def roll_up_chunk(store: Store, before_s: float, chunk_s: int = CHUNK_S) -> int:
    """Summarise and delete the oldest raw readings, at most `chunk_s` seconds of them and
    none at or after `before_s` (rounded down to a minute); returns how many were deleted."""
    oldest = oldest_raw_s(store)
    if oldest is None or oldest >= before_s // 60 * 60:
        return 0
    end_s = int(oldest // 60) * 60 + chunk_s
    if before_s < end_s:
        end_s = int(before_s // 60) * 60
    end_id = reading_id_floor(end_s)
    with store.transaction():
        rows = store.db.execute(
            "SELECT ts_s, series_id, value, quality FROM reading_samples WHERE id < ?", [end_id]
        ).fetchall()
        store.db.conn.executemany(
            "INSERT INTO reading_minutes (minute_s, series_id, n, missing, value_min,"
            " value_median, value_max, quality) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            # A minute summarised twice (late readings): merged; the median of the larger part.
            " ON CONFLICT (minute_s, series_id) DO UPDATE"
            " SET n = n + excluded.n, missing = missing + excluded.missing,"
            " value_min = coalesce(min(value_min, excluded.value_min), value_min,"
            " excluded.value_min),"
            " value_max = coalesce(max(value_max, excluded.value_max), value_max,"
            " excluded.value_max),"
            " value_median = CASE WHEN excluded.n > n THEN excluded.value_median"
            " ELSE value_median END,"
            " quality = quality | excluded.quality",
            [
                (m.minute_s, m.series_id, m.n, m.missing, m.min, m.median, m.max, m.quality)
                for m in summarise(rows)
            ],
        )
        store.db.execute("DELETE FROM reading_samples WHERE id < ?", [end_id])
    return len(rows)


def record(store: Store, now_s: float, kind: str, details: dict[str, Any]) -> None:
    """Note in the maintenance log what was done to the data."""
    with store.transaction():
        store.db.execute(
            "INSERT INTO maintenance_log (ts_s, kind, details) VALUES (?, ?, ?)",
            [now_s, kind, json.dumps(details, sort_keys=True)],
        )


async def apply_retention(worker: StoreCaller, policy: RetentionPolicy, now_s: float) -> int:
    """Roll up every raw reading older than the retention period; returns rows removed."""
    newest = await worker.call(newest_raw_s, worker.store)
    if newest is None:
        return 0
    before_s = min(now_s, newest) - policy.retention_days * SECONDS_PER_DAY
    removed = 0
    while chunk := await worker.call(roll_up_chunk, worker.store, before_s):
        removed += chunk
    if removed:
        log.info("rolled up %d raw readings older than %.0f days", removed, policy.retention_days)
        details = {"removed": removed, "before_s": before_s}
        await worker.call(record, worker.store, now_s, "retention", details)
    return removed


async def expire_summaries(worker: StoreCaller, policy: RetentionPolicy, now_s: float) -> int:
    """Delete every summary older than the summary retention period; returns rows deleted."""
    if not policy.summary_retention_days:
        return 0
    raw_s = await worker.call(newest_raw_s, worker.store)
    summary_s = await worker.call(newest_summary_s, worker.store)
    newest = [newest_s for newest_s in (raw_s, summary_s) if newest_s is not None]
    if not newest:
        return 0
    before_s = min(now_s, max(newest)) - policy.summary_retention_days * SECONDS_PER_DAY
    deleted = 0
    while chunk := await worker.call(expire_summaries_chunk, worker.store, before_s):
        deleted += chunk
    if deleted:
        log.info(
            "deleted %d per-minute summaries older than %.0f days",
            deleted,
            policy.summary_retention_days,
        )
        details = {"deleted": deleted, "before_s": before_s}
        await worker.call(record, worker.store, now_s, "summaries_expired", details)
    return deleted


async def apply_ceiling(worker: StoreCaller, policy: RetentionPolicy, now_s: float) -> int:
    """Above the size ceiling, drop the unsent raw-data outbox rows (oldest first), then roll
    up the oldest raw readings until under it (or none are left); returns readings removed.
    Summaries, alerts and the rest of the outbox are never dropped."""
    if not policy.max_database_bytes:
        return 0
    used = await worker.call(used_bytes, worker.store)
    while used > policy.max_database_bytes:
        if not await worker.call(drop_oldest_unsent_raw, worker.store, now_s):
            break
        used = await worker.call(used_bytes, worker.store)
    removed = 0
    while used > policy.max_database_bytes:
        chunk = await worker.call(roll_up_chunk, worker.store, float("inf"))
        if not chunk:
            log.error(
                "the database uses %d MB, above the %d MB ceiling, with no raw readings left"
                " to drop: raise store.max_database_mb or free the disk",
                used // 1_000_000,
                policy.max_database_bytes // 1_000_000,
            )
            break
        removed += chunk
        used = await worker.call(used_bytes, worker.store)
    if removed:
        oldest = await worker.call(oldest_raw_s, worker.store)
        log.warning(
            "database above its %d MB ceiling: rolled up the %d oldest raw readings early",
            policy.max_database_bytes // 1_000_000,
            removed,
        )
        details = {"removed": removed, "oldest_raw_s": oldest, "used_bytes": used}
        await worker.call(record, worker.store, now_s, "ceiling", details)
    return removed


async def maintain(
    worker: StoreCaller,
    policy: RetentionPolicy,
    now_s: Callable[[], float],
    stop: asyncio.Event,
    may_delete: Callable[[], bool] = lambda: True,
) -> None:
    """The daemon's periodic task: retention, then the ceiling, every INTERVAL_S. Nothing is
    rolled up by age while `may_delete()` is false (the clock is not trusted)."""
    delay_s = FIRST_RUN_AFTER_S
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay_s)
        if stop.is_set():
            return
        delay_s = INTERVAL_S
        try:
            if may_delete():
                await apply_retention(worker, policy, now_s())
                await expire_summaries(worker, policy, now_s())
            await apply_ceiling(worker, policy, now_s())
        except sqlite3.Error as exc:
            log.error("retention could not run (%s); it is tried again later", exc)


def policy_of(config: StoreConfig) -> RetentionPolicy:
    return RetentionPolicy(
        config.retention_days,
        int(config.max_database_mb * 1_000_000),
        config.summary_retention_days,
    )
