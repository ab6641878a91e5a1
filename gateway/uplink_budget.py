"""The daily data budget: bytes acknowledged by the broker are counted per local day and
priority (uplink_bytes, so a restart does not reset them); once today's count reaches the
optional cap (`[mqtt] daily_budget_kb`, 0 = none), summaries and raw data wait for the next
local day. Alerts and device status records are never held back.

Counted are the bytes of each acknowledged message's payload and topic (as stored; MQTT
headers and the `historical` flag are not). Messages handed to the MQTT client but not yet
acknowledged hold their bytes in memory (gateway/uplink_reservations.py), so however many are
in flight the cap is overshot by at most one message; only acknowledged bytes are stored.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.config import Config
from gateway.retention import StoreCaller
from gateway.store import Store
from gateway.uplink_reservations import HELD_WHEN_OVER_BUDGET, Reservations
from sync.payload import OutboxPriority, OutboxRow

log = logging.getLogger(__name__)


def local_day(now_s: float, utc_offset_s: int) -> str:
    """The local date (YYYY-MM-DD) at `now_s`."""
    return time.strftime("%Y-%m-%d", time.gmtime(now_s + utc_offset_s))


def bytes_on(store: Store, day: str) -> dict[int, tuple[int, int]]:
    """priority -> (bytes, messages) acknowledged on local `day`."""
    rows = store.db.execute(
        "SELECT priority, bytes, messages FROM uplink_bytes WHERE day = ?", [day]
    )
    return {int(priority): (int(n), int(count)) for priority, n, count in rows}


def is_over_budget(store: Store, day: str, budget_bytes: int) -> bool:
    if not budget_bytes:
        return False
    return sum(n for n, _ in bytes_on(store, day).values()) >= budget_bytes


def pending_within_budget(
    store: Store,
    limit: int,
    day: str,
    budget_bytes: int,
    reserved_bytes: int = 0,
    skip_ids: Collection[int] = (),
) -> tuple[list[OutboxRow], int]:
    """Unsent outbox rows, most urgent first, oldest first within a priority, but not those
    in `skip_ids` (in flight), and without the summaries and raw data when today's
    acknowledged bytes plus `reserved_bytes` reach the budget; and today's acknowledged bytes."""
    acknowledged_bytes = sum(n for n, _ in bytes_on(store, day).values())
    held = bool(budget_bytes) and acknowledged_bytes + reserved_bytes >= budget_bytes
    least_urgent = OutboxPriority(HELD_WHEN_OVER_BUDGET - 1) if held else OutboxPriority.RAW
    candidates = store.db.execute(  # ids only, from the index: in-flight rows are not read
        "SELECT id FROM outbox WHERE sent_s IS NULL AND priority <= ?"
        " ORDER BY priority, id LIMIT ?",
        [int(least_urgent), limit + len(skip_ids)],
    )
    ids = [outbox_id for (outbox_id,) in candidates if outbox_id not in skip_ids][:limit]
    rows: list[OutboxRow] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows += (
            OutboxRow(*row)
            for row in store.db.execute(
                "SELECT id, priority, topic, message_id, payload, created_s FROM outbox"
                f" WHERE id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
        )
    rows.sort(key=lambda row: (row.priority, row.id))
    return rows, acknowledged_bytes


def mark_sent_counted(store: Store, outbox_ids: Sequence[int], now_s: float, day: str) -> int:
    """Mark rows sent and add their bytes to `day`'s count, in one transaction (a row
    already marked is neither marked nor counted again); returns the bytes added."""
    ids = list(outbox_ids)
    with store.transaction():
        counted: dict[int, tuple[int, int]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            unsent = store.db.execute(
                "SELECT id, priority,"
                " length(CAST(payload AS BLOB)) + length(CAST(topic AS BLOB))"
                f" FROM outbox WHERE id IN ({','.join('?' * len(chunk))}) AND +sent_s IS NULL",
                chunk,  # "+": look rows up by id, not by walking every unsent row's index entry
            ).fetchall()
            for _, priority, size in unsent:
                n, count = counted.get(priority, (0, 0))
                counted[priority] = (n + size, count + 1)
            store.db.conn.executemany(
                "UPDATE outbox SET sent_s = ? WHERE id = ?",
                [(now_s, outbox_id) for outbox_id, _, _ in unsent],
            )
        store.db.conn.executemany(
            "INSERT INTO uplink_bytes (day, priority, bytes, messages) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (day, priority) DO UPDATE SET bytes = bytes + excluded.bytes,"
            " messages = messages + excluded.messages",
            [(day, priority, n, count) for priority, (n, count) in counted.items()],
        )
    return sum(n for n, _ in counted.values())


@dataclass
class BudgetedOutbox:
    """The publisher's view of the outbox (sync.publisher.Outbox), with the budget."""

    worker: StoreCaller
    budget_bytes: int
    utc_offset_s: int
    now_s: Callable[[], float] = time.time
    _held_day: str | None = None
    reservations: Reservations = field(init=False)

    def __post_init__(self) -> None:
        self.reservations = Reservations(self.budget_bytes)

    async def pending(self, limit: int) -> list[OutboxRow]:
        """Up to `limit` rows to publish: unsent, not in flight, within the budget."""
        day = local_day(self.now_s(), self.utc_offset_s)
        reserved = self.reservations
        args = (limit, day, self.budget_bytes, reserved.reserved_bytes, reserved.ids())
        try:
            rows, acknowledged_bytes = await self.worker.call(
                pending_within_budget, self.worker.store, *args
            )
        except sqlite3.Error as exc:
            log.error("cannot read the outbox: %s", exc)
            return []
        self.reservations.acknowledged_bytes = acknowledged_bytes  # today's, from the store
        held = bool(self.budget_bytes) and acknowledged_bytes >= self.budget_bytes
        if held and self._held_day != day:
            self._held_day = day
            log.warning(
                "today's data budget (%d kB) is used: summaries and raw data wait for"
                " tomorrow; alerts and status records still go",
                self.budget_bytes // 1000,
            )
        return rows

    def try_reserve(self, row: OutboxRow) -> bool:
        """Hold `row`'s bytes before it is handed to the MQTT client; False when it is a
        summary or raw row and the budget is used up (acknowledged plus in flight)."""
        return self.reservations.try_reserve(row)

    def release(self, outbox_ids: Sequence[int]) -> None:
        """Hand-offs given up (refused, PUBACK overdue): their bytes are free again."""
        self.reservations.release(outbox_ids)

    async def mark_sent(self, outbox_ids: Sequence[int]) -> None:
        """Mark rows sent; if the store refuses, they are sent again later (same ids)."""
        now_s = self.now_s()
        day = local_day(now_s, self.utc_offset_s)
        try:
            counted_bytes = await self.worker.call(
                mark_sent_counted, self.worker.store, outbox_ids, now_s, day
            )
        except sqlite3.Error as exc:
            log.error("cannot mark %d outbox rows sent: %s", len(outbox_ids), exc)
            self.reservations.release(outbox_ids)
            return
        self.reservations.settle(outbox_ids, counted_bytes)


def budgeted_outbox(worker: StoreCaller, config: Config) -> BudgetedOutbox:
    return BudgetedOutbox(worker, config.mqtt.daily_budget_kb * 1000, config.detector.utc_offset_s)


def uplink_status(store: Store, config: Config, now_s: float) -> dict[str, Any]:
    """For `pulsegate status`: the outbox backlog per priority and today's bytes."""
    backlog = store.outbox_backlog()
    day = local_day(now_s, config.detector.utc_offset_s)
    budget_bytes = config.mqtt.daily_budget_kb * 1000
    return {
        "backlog": {p.name.lower(): backlog.get(int(p), 0) for p in OutboxPriority},
        "day": day,
        "bytes_today": sum(n for n, _ in bytes_on(store, day).values()),
        "budget_bytes": budget_bytes,
        "held": is_over_budget(store, day, budget_bytes),
    }


def uplink_line(info: dict[str, Any]) -> str:
    """One line of `pulsegate status` from `uplink_status`."""
    backlog = ", ".join(f"{name} {n}" for name, n in info["backlog"].items())
    budget = info["budget_bytes"]
    cap = f" of a {budget / 1000:,.0f} kB daily budget" if budget else ""
    held = " (summaries and raw data wait for tomorrow)" if info["held"] else ""
    return f"uplink: backlog {backlog}; {info['bytes_today'] / 1000:,.1f} kB sent today{cap}{held}"
