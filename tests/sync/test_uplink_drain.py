"""The outbox drains through a real mosquitto after a long offline period: alerts first, then
status records, then the summary backlog; late messages say they are historical; the daily
budget holds summaries back but never an alert, and the bytes are counted in the store."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.daemon import StoreWorker
from gateway.store import Store
from gateway.uplink_budget import BudgetedOutbox, bytes_on, local_day
from gateway.uplink_devices import queue_messages
from sync.payload import OutboxMessage, OutboxPriority
from sync.publisher import BrokerSettings, Publisher
from tests.conftest import Broker, free_port

PREFIX = "pulsegate/village-1/gw-1"
DAY_AGO_S = time.time() - 86_400


def queue(store: Store, priority: OutboxPriority, leaf: str, n: int, created_s: float) -> None:
    messages = [
        (
            OutboxMessage(
                priority,
                f"{PREFIX}/{leaf}",
                f"{leaf}-{created_s:.0f}-{i}",
                json.dumps({"kind": leaf, "i": i, "pad": "x" * 400}),
            ),
            created_s + i,
        )
        for i in range(n)
    ]
    with store.transaction():
        queue_messages(store, messages)


async def publish_until(
    store: Store, port: int, budget_bytes: int, done: Any, timeout_s: float = 60
) -> None:
    worker = StoreWorker(store)
    outbox = BudgetedOutbox(worker, budget_bytes, 8 * 3600)
    publisher = Publisher(BrokerSettings("127.0.0.1", port, f"gw-{free_port()}"), outbox)
    stop = asyncio.Event()
    task = asyncio.create_task(publisher.run(stop))
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    stop.set()
    await task
    await publisher.drain(5)
    publisher.close()
    worker.shutdown()


@pytest.mark.broker
def test_after_a_long_offline_period_alerts_go_first_then_status_then_summaries(
    tmp_path: Path, broker: Broker, subscribe: Any
) -> None:
    store = Store.open(tmp_path / "pulsegate.db", "gw-1")
    queue(store, OutboxPriority.SUMMARY, "summaries", 60, DAY_AGO_S)  # the oldest rows
    queue(store, OutboxPriority.STATUS, "devices", 5, DAY_AGO_S + 100)
    queue(store, OutboxPriority.ALERT, "alerts", 3, time.time())  # the newest rows
    subscriber = subscribe(broker.port, f"{PREFIX}/#")
    asyncio.run(publish_until(store, broker.port, 0, lambda: len(subscriber.messages) >= 68))
    kinds = [body["kind"] for _, body in subscriber.messages]
    assert kinds == ["alerts"] * 3 + ["devices"] * 5 + ["summaries"] * 60
    assert [body["i"] for _, body in subscriber.messages[8:]] == list(range(60))
    historical = [body.get("historical", False) for _, body in subscriber.messages]
    assert historical == [False] * 3 + [True] * 65
    assert store.outbox_backlog() == {}
    store.close()


@pytest.mark.broker
def test_the_budget_holds_summaries_but_never_alerts_and_survives_a_restart(
    tmp_path: Path, broker: Broker, subscribe: Any
) -> None:
    path = tmp_path / "pulsegate.db"
    store = Store.open(path, "gw-1")
    queue(store, OutboxPriority.SUMMARY, "summaries", 40, DAY_AGO_S)
    subscriber = subscribe(broker.port, f"{PREFIX}/#")
    budget_bytes = 5_000  # about ten of these 450-byte messages
    asyncio.run(publish_until(store, broker.port, budget_bytes, lambda: False, timeout_s=4))
    sent = len(subscriber.messages)
    day = local_day(time.time(), 8 * 3600)
    counted, messages = bytes_on(store, day)[OutboxPriority.SUMMARY]
    assert 10 <= sent < 40
    assert messages == sent
    assert counted >= budget_bytes
    store.close()
    store = Store.open(path, "gw-1")  # a restart: the count is kept, summaries still wait
    queue(store, OutboxPriority.ALERT, "alerts", 2, time.time())
    asyncio.run(
        publish_until(
            store,
            broker.port,
            budget_bytes,
            lambda: sum(b["kind"] == "alerts" for _, b in subscriber.messages) >= 2,
        )
    )
    time.sleep(1)  # anything else would have come with the alerts
    kinds = [body["kind"] for _, body in subscriber.messages]
    assert kinds == ["summaries"] * sent + ["alerts"] * 2
    assert store.outbox_backlog() == {int(OutboxPriority.SUMMARY): 40 - sent}
    store.close()
