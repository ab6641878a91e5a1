"""The daily budget with many summaries in flight at once (through a real mosquitto): the
bytes handed to paho are reserved, so the day ends at most one message past the budget, the
stored count is exactly the acknowledged bytes, and a hand-off given up frees its bytes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.daemon import StoreWorker
from gateway.store import Store
from gateway.uplink_budget import BudgetedOutbox, bytes_on, local_day
from gateway.uplink_devices import queue_messages
from gateway.uplink_raw import drop_oldest_unsent_raw
from sync import publisher as publisher_module
from sync.payload import OutboxMessage, OutboxPriority, OutboxRow
from sync.publisher import BrokerSettings, Publisher
from tests.conftest import Broker, Subscriber, free_port

PREFIX = "pulsegate/village-1/gw-1"
UTC_OFFSET_S = 8 * 3600
MAX_INFLIGHT = 20


class PeakOutbox(BudgetedOutbox):
    """The daemon's outbox, remembering the most rows it had reserved at once."""

    peak_rows = 0

    def try_reserve(self, row: OutboxRow) -> bool:
        reserved = super().try_reserve(row)
        self.peak_rows = max(self.peak_rows, len(self.reservations))
        return reserved


def queue(store: Store, priority: OutboxPriority, n: int) -> None:
    leaf = priority.name.lower()
    messages = [
        (
            OutboxMessage(
                priority,
                f"{PREFIX}/{leaf}",
                f"{leaf}-{i}",
                json.dumps({"kind": leaf, "i": i, "pad": "x" * (300 + i % 200)}),
            ),
            time.time() - 86_400 + i,
        )
        for i in range(n)
    ]
    with store.transaction():
        queue_messages(store, messages)


def sent_rows(store: Store) -> tuple[int, int]:
    """(rows marked sent, their payload + topic bytes in UTF-8)."""
    count, size = store.db.execute(
        "SELECT count(*), coalesce(sum(length(CAST(payload AS BLOB))"
        " + length(CAST(topic AS BLOB))), 0) FROM outbox WHERE sent_s IS NOT NULL"
    ).fetchone()
    return int(count), int(size)


async def until(done: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return done()


async def publish_until_budget(store: Store, port: int, budget_bytes: int) -> PeakOutbox:
    worker = StoreWorker(store)
    outbox = PeakOutbox(worker, budget_bytes, UTC_OFFSET_S)
    settings = BrokerSettings("127.0.0.1", port, f"gw-{free_port()}", max_inflight=MAX_INFLIGHT)
    publisher = Publisher(settings, outbox)
    stop = asyncio.Event()
    task = asyncio.create_task(publisher.run(stop))
    await until(lambda: outbox.reservations.acknowledged_bytes >= budget_bytes, 60)
    await asyncio.sleep(1.5)  # anything more would go now
    stop.set()
    await task
    await publisher.drain(5)
    publisher.close()
    worker.shutdown()
    return outbox


@pytest.mark.broker
def test_a_summary_backlog_with_many_in_flight_stops_within_one_message_of_the_budget(
    tmp_path: Path, broker: Broker, subscribe: Any
) -> None:
    store = Store.open(tmp_path / "pulsegate.db", "gw-1")
    queue(store, OutboxPriority.SUMMARY, 1000)
    largest_bytes = max(
        len(payload.encode()) + len(topic.encode())
        for topic, payload in store.db.execute("SELECT topic, payload FROM outbox")
    )
    subscriber: Subscriber = subscribe(broker.port, f"{PREFIX}/#")
    budget_bytes = 50_000  # about a hundred messages: five in-flight windows
    outbox = asyncio.run(publish_until_budget(store, broker.port, budget_bytes))
    assert outbox.peak_rows > 2 * MAX_INFLIGHT  # many more than one window in flight at once
    marked, marked_bytes = sent_rows(store)
    counted_bytes, messages = bytes_on(store, local_day(time.time(), UTC_OFFSET_S))[
        OutboxPriority.SUMMARY
    ]
    assert budget_bytes <= counted_bytes < budget_bytes + largest_bytes
    assert (counted_bytes, messages) == (marked_bytes, marked)  # only acknowledged bytes stored
    assert marked < 1000
    deadline = time.monotonic() + 10
    while len(subscriber.messages) < marked and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(subscriber.messages) == marked
    assert (len(outbox.reservations), outbox.reservations.reserved_bytes) == (0, 0)
    store.close()


@contextlib.asynccontextmanager
async def frozen_broker_publisher(
    store: Store, broker: Broker
) -> AsyncIterator[tuple[StoreWorker, BudgetedOutbox, Publisher]]:
    """A publisher over the budgeted outbox, connected, then its broker frozen (SIGSTOP) until
    the block ends."""
    assert broker.process is not None
    worker = StoreWorker(store)
    outbox = BudgetedOutbox(worker, 10**9, UTC_OFFSET_S)
    settings = BrokerSettings(
        "127.0.0.1", broker.port, f"gw-{free_port()}", max_inflight=MAX_INFLIGHT
    )
    publisher = Publisher(settings, outbox)
    stop = asyncio.Event()
    task = asyncio.create_task(publisher.run(stop))
    frozen = False
    try:
        assert await until(lambda: publisher.stats.connected, 20)
        broker.process.send_signal(signal.SIGSTOP)
        frozen = True
        yield worker, outbox, publisher
    finally:
        if frozen:
            broker.process.send_signal(signal.SIGCONT)
        stop.set()
        await task
        publisher.close()
        worker.shutdown()


async def freeze_then_drop_raw_in_flight(
    store: Store, broker: Broker
) -> tuple[int, tuple[int, int]]:
    """Raw rows handed to paho while the broker is frozen, then dropped from the outbox as the
    disk ceiling does; returns the rows that were reserved and what is left reserved once
    their PUBACKs are overdue."""
    async with frozen_broker_publisher(store, broker) as (worker, outbox, publisher):
        await worker.call(queue, store, OutboxPriority.RAW, 30)
        publisher.wakeup.set()
        assert await until(lambda: len(outbox.reservations) == 30, 20)
        assert await worker.call(drop_oldest_unsent_raw, store, time.time()) == 30
        await until(lambda: len(outbox.reservations) == 0, 20)
        return 30, (len(outbox.reservations), outbox.reservations.reserved_bytes)


@pytest.mark.broker
def test_hand_offs_given_up_free_their_reserved_bytes(
    tmp_path: Path, broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publisher_module, "INFLIGHT_TIMEOUT_S", 1.0)
    store = Store.open(tmp_path / "pulsegate.db", "gw-1")
    reserved, left = asyncio.run(freeze_then_drop_raw_in_flight(store, broker))
    assert reserved == 30
    assert left == (0, 0)
    store.close()


async def hand_offs_to_a_frozen_broker(store: Store, broker: Broker) -> tuple[int, bool]:
    """A summary backlog handed to paho while the broker is frozen, then an alert: how many
    summaries were handed over, and whether the alert was handed over behind them."""
    async with frozen_broker_publisher(store, broker) as (worker, outbox, publisher):
        await worker.call(queue, store, OutboxPriority.SUMMARY, 500)
        publisher.wakeup.set()
        await until(lambda: len(outbox.reservations) > 0, 20)
        await asyncio.sleep(1.5)  # turns enough to hand over all it would
        summaries = len(outbox.reservations)
        await worker.call(queue, store, OutboxPriority.ALERT, 1)
        publisher.wakeup.set()
        alert_handed = await until(lambda: len(outbox.reservations) == summaries + 1, 20)
        return summaries, alert_handed


@pytest.mark.broker
def test_a_new_alert_waits_behind_a_few_windows_of_summaries_at_most(
    tmp_path: Path, broker: Broker
) -> None:
    store = Store.open(tmp_path / "pulsegate.db", "gw-1")
    summaries, alert_handed = asyncio.run(hand_offs_to_a_frozen_broker(store, broker))
    assert summaries == publisher_module.BULK_WINDOWS * MAX_INFLIGHT
    assert alert_handed
    store.close()
