"""The in-memory byte reservations of messages in flight: the budget is never overshot by more
than one message, alerts are never refused, and every reservation ends."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.uplink_reservations import Reservations, message_bytes
from sync.payload import OutboxPriority, OutboxRow


def row(outbox_id: int, priority: OutboxPriority, payload: str = "{}") -> OutboxRow:
    return OutboxRow(outbox_id, int(priority), "t/x", f"m{outbox_id}", payload, 0.0)


def test_message_bytes_counts_payload_and_topic_in_utf8() -> None:
    assert message_bytes(row(1, OutboxPriority.SUMMARY, '{"name":"张"}')) == 14 + 3


def test_summaries_are_refused_once_acknowledged_plus_reserved_bytes_reach_the_budget() -> None:
    reservations = Reservations(budget_bytes=100, acknowledged_bytes=40)
    assert reservations.try_reserve(row(1, OutboxPriority.SUMMARY, "x" * 47))  # 40 + 50 < 100
    assert reservations.try_reserve(row(2, OutboxPriority.RAW, "x" * 47))  # 90 < 100: goes
    assert reservations.reserved_bytes == 100
    assert not reservations.try_reserve(row(3, OutboxPriority.SUMMARY))
    assert not reservations.try_reserve(row(4, OutboxPriority.RAW))
    assert len(reservations) == 2


def test_alerts_and_status_are_never_refused_but_their_bytes_are_reserved() -> None:
    reservations = Reservations(budget_bytes=10, acknowledged_bytes=10)
    assert reservations.try_reserve(row(1, OutboxPriority.ALERT, "x" * 7))
    assert reservations.try_reserve(row(2, OutboxPriority.STATUS, "x" * 7))
    assert reservations.reserved_bytes == 20


def test_without_a_budget_nothing_is_refused() -> None:
    reservations = Reservations(budget_bytes=0, acknowledged_bytes=10**9)
    assert reservations.try_reserve(row(1, OutboxPriority.RAW))


def test_reserving_a_row_twice_holds_its_bytes_once() -> None:
    reservations = Reservations(budget_bytes=1000)
    assert reservations.try_reserve(row(1, OutboxPriority.SUMMARY, "x" * 10))
    assert reservations.try_reserve(row(1, OutboxPriority.SUMMARY, "x" * 10))
    assert reservations.reserved_bytes == 13


def test_released_bytes_are_free_again_and_settled_ones_become_acknowledged() -> None:
    reservations = Reservations(budget_bytes=30)
    assert reservations.try_reserve(row(1, OutboxPriority.SUMMARY, "x" * 17))  # 20 bytes
    assert reservations.try_reserve(row(2, OutboxPriority.SUMMARY, "x" * 17))
    assert not reservations.try_reserve(row(3, OutboxPriority.SUMMARY))
    reservations.release([2, 99])  # 99 was never reserved
    assert reservations.reserved_bytes == 20
    assert reservations.try_reserve(row(3, OutboxPriority.SUMMARY))  # 20 + 5 < 30
    reservations.release([3])
    reservations.settle([1], counted_bytes=20)
    assert (reservations.reserved_bytes, reservations.acknowledged_bytes) == (0, 20)
    assert len(reservations) == 0
    assert reservations.try_reserve(row(4, OutboxPriority.SUMMARY, "x" * 7))  # 20 < 30
    assert not reservations.try_reserve(row(5, OutboxPriority.SUMMARY))  # 30 reached


@given(
    budget_bytes=st.integers(1, 5_000),
    acknowledged_bytes=st.integers(0, 5_000),
    payload_sizes=st.lists(st.integers(0, 600), max_size=60),
    acked_every=st.integers(1, 10),
)
def test_what_is_handed_out_never_passes_the_budget_by_more_than_one_message(
    budget_bytes: int, acknowledged_bytes: int, payload_sizes: list[int], acked_every: int
) -> None:
    reservations = Reservations(budget_bytes, acknowledged_bytes)
    handed: list[OutboxRow] = []
    for outbox_id, size in enumerate(payload_sizes):
        candidate = row(outbox_id, OutboxPriority.SUMMARY, "x" * size)
        if reservations.try_reserve(candidate):
            handed.append(candidate)
        if outbox_id % acked_every == 0 and handed:  # a PUBACK and mark_sent come back
            acked = handed.pop(0)
            reservations.settle([acked.id], message_bytes(acked))
    for acked in handed:
        reservations.settle([acked.id], message_bytes(acked))
    largest_bytes = max((3 + size for size in payload_sizes), default=0)
    assert reservations.reserved_bytes == 0
    highest_bytes = max(acknowledged_bytes, budget_bytes - 1 + largest_bytes)
    assert reservations.acknowledged_bytes <= highest_bytes
    if reservations.acknowledged_bytes < budget_bytes:  # nothing was refused
        assert reservations.acknowledged_bytes == acknowledged_bytes + sum(
            3 + size for size in payload_sizes
        )
