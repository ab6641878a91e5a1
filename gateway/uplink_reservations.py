"""Bytes handed to the MQTT client but not yet acknowledged, held against the daily budget (pure).

The publisher hands paho many messages ahead of their PUBACKs, and the store counts a message's
bytes only when the row is marked sent (gateway/uplink_budget.py). In between, the bytes are
reserved here, in memory: a summary or raw row is handed out only while today's acknowledged
bytes plus the reserved ones are below the budget, so the day ends at most one message past
it however many rows are in flight. Alerts and device status rows are never refused, but
their bytes are reserved too (they count against the same budget once acknowledged).

A reservation ends when its row is marked sent (its bytes are then in the store's count) or
when its hand-off is given up (the broker refused it, its PUBACK is overdue). Nothing here is
persisted: after a restart only acknowledged bytes count, as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sync.payload import OutboxPriority, OutboxRow

HELD_WHEN_OVER_BUDGET = OutboxPriority.SUMMARY  # this priority and less urgent ones wait


def message_bytes(row: OutboxRow) -> int:
    """The bytes the budget counts for `row`: its payload and topic in UTF-8 (as the store's
    `length(CAST(... AS BLOB))` in mark_sent_counted)."""
    return len(row.payload.encode()) + len(row.topic.encode())


@dataclass(slots=True)
class Reservations:
    """Today's acknowledged bytes (as last read from the store) and the bytes in flight."""

    budget_bytes: int  # 0: no budget
    acknowledged_bytes: int = 0
    reserved_bytes: int = 0
    _by_id: dict[int, int] = field(default_factory=dict)  # outbox id -> reserved bytes

    def __len__(self) -> int:
        return len(self._by_id)

    def ids(self) -> frozenset[int]:
        """The outbox ids reserved now (a copy: safe to hand to another thread)."""
        return frozenset(self._by_id)

    def is_used_up(self) -> bool:
        """Acknowledged and reserved bytes together reach the budget (never without one)."""
        used_bytes = self.acknowledged_bytes + self.reserved_bytes
        return bool(self.budget_bytes) and used_bytes >= self.budget_bytes

    def try_reserve(self, row: OutboxRow) -> bool:
        """Reserve `row`'s bytes before it is handed out; False (nothing reserved) for a
        summary or raw row once the budget is used up. A row already reserved stays so."""
        if row.id in self._by_id:
            return True
        if row.priority >= HELD_WHEN_OVER_BUDGET and self.is_used_up():
            return False
        size_bytes = message_bytes(row)
        self._by_id[row.id] = size_bytes
        self.reserved_bytes += size_bytes
        return True

    def release(self, outbox_ids: Iterable[int]) -> None:
        """End the reservations of hand-offs given up (unknown ids are ignored)."""
        for outbox_id in outbox_ids:
            self.reserved_bytes -= self._by_id.pop(outbox_id, 0)

    def settle(self, outbox_ids: Iterable[int], counted_bytes: int) -> None:
        """Rows marked sent: their reservations end, and the `counted_bytes` the store
        added to today's count join the acknowledged bytes."""
        self.release(outbox_ids)
        self.acknowledged_bytes += counted_bytes
