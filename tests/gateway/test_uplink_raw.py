"""Raw readings on request from a real store, and the ceiling dropping unsent raw data first
(never an unsent alert), with the maintenance log saying so."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from alerts.engine import RuleEvent, Transition
from alerts.lifecycle import Alert, AlertEventKind
from alerts.rules import Priority, Profile, RuleId, Tier
from devices.protocols.reading import Metric
from gateway.config import parse_config
from gateway.daemon import StoreWorker
from gateway.retention import RetentionPolicy, apply_ceiling, used_bytes
from gateway.store import Patient, ReadingRow, Store
from gateway.uplink import answer_raw_request
from gateway.uplink_devices import Topics
from gateway.uplink_raw import drop_oldest_unsent_raw, queue_raw_answer
from sync.payload import OutboxMessage, OutboxPriority, alert_event_message
from sync.raw_request import parse_raw_request, raw_request_message
from sync.summaries import decode_metrics

T0_S = 1_800_000_000
TOPICS = Topics("pulsegate", "village-1", "gw-1")
PATIENT = Patient("p-1", Tier.RED, Profile.DEFAULT)


def message(alert: Alert, kind: AlertEventKind, ts_s: float) -> OutboxMessage:
    return alert_event_message("pulsegate", "village-1", alert, kind, ts_s)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "pulsegate.db", "gw-1")
    store.add_patient(PATIENT, T0_S)
    rows = [
        ReadingRow(T0_S + s, patient, "ox", Metric.SPO2, 90.0 + s % 9, 0)
        for s in range(1800)
        for patient in ("p-1", "p-2")
    ]
    store.write_batch(rows, [], {}, message, T0_S + 1800)
    return store


def raw_rows(store: Store) -> list[dict[str, object]]:
    rows = store.db.execute(
        "SELECT payload FROM outbox WHERE priority = ? ORDER BY id", [int(OutboxPriority.RAW)]
    )
    return [json.loads(payload) for (payload,) in rows]


def test_a_request_is_answered_in_chunks_with_exactly_the_range_and_only_once(
    store: Store,
) -> None:
    request = raw_request_message(
        "pulsegate", "village-1", "gw-1", "p-1", (T0_S + 100, T0_S + 1000)
    )
    parsed = parse_raw_request(request.payload)
    assert queue_raw_answer(store, parsed, TOPICS, T0_S + 2000) == 2
    assert queue_raw_answer(store, parsed, TOPICS, T0_S + 2001) == 0  # a repeated request
    chunks = raw_rows(store)
    assert [(c["chunk"], c["chunks"], c["request_id"]) for c in chunks] == [
        (0, 2, parsed.message_id),
        (1, 2, parsed.message_id),
    ]
    seconds = []
    for chunk in chunks:
        metrics = decode_metrics(str(chunk["encoding"]), chunk["metrics"])
        start_s = parsed.start_s + 600 * chunks.index(chunk)
        seconds += [start_s + t for t in metrics["spo2_percent"]["t"]]
        assert metrics["spo2_percent"]["value"][0] == 90 + (start_s - T0_S) % 9
    assert seconds == [float(T0_S + s) for s in range(100, 1000)]


def test_garbage_and_other_gateways_requests_queue_nothing(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    config = parse_config({"gateway": {"id": "gw-1", "site": "village-1"}})
    worker = StoreWorker(store)
    other = raw_request_message("pulsegate", "village-1", "gw-2", "p-1", (T0_S, T0_S + 60))
    with caplog.at_level(logging.WARNING):
        for payload in (
            b"not json",
            b'{"schema": 1, "kind": "raw_request"}',
            other.payload.encode(),
        ):
            asyncio.run(answer_raw_request(worker, config, "t/raw-request", payload, T0_S))
    worker.shutdown()
    assert raw_rows(store) == []
    assert len([r for r in caplog.records if "raw-data request" in r.message]) == 3


def test_dropping_unsent_raw_data_takes_the_oldest_first(store: Store) -> None:
    for i in range(3):
        span = (T0_S + 60 * i, T0_S + 60 * (i + 1))
        request = raw_request_message("pulsegate", "village-1", "gw-1", "p-1", span)
        queue_raw_answer(store, parse_raw_request(request.payload), TOPICS, T0_S + 2000 + i)
    assert drop_oldest_unsent_raw(store, T0_S + 3000, limit=2) == 2
    [left] = raw_rows(store)
    assert left["start_time"] == "2027-01-15T08:02:00.000Z"


def _raise_alert(store: Store) -> None:
    event = RuleEvent(RuleId.S1, Transition.ONSET, T0_S + 5, Priority.HIGH, True, {})
    store.write_batch([], [(PATIENT, event)], {}, message, T0_S + 5)


def test_the_ceiling_drops_unsent_raw_data_oldest_first_and_never_an_alert(
    store: Store,
) -> None:
    _raise_alert(store)
    for i in range(3):
        span = (T0_S + 600 * i, T0_S + 600 * (i + 1))
        request = raw_request_message("pulsegate", "village-1", "gw-1", "p-1", span)
        queue_raw_answer(store, parse_raw_request(request.payload), TOPICS, T0_S + 2000 + i)
    worker = StoreWorker(store)
    ceiling = used_bytes(store) - 1  # anything dropped brings it under
    asyncio.run(apply_ceiling(worker, RetentionPolicy(7, ceiling), T0_S + 3000))
    worker.shutdown()
    backlog = store.outbox_backlog()
    assert backlog.get(OutboxPriority.ALERT) == 1
    assert OutboxPriority.RAW not in backlog
    [(details,)] = store.db.execute(
        "SELECT details FROM maintenance_log WHERE kind = 'outbox_raw_dropped'"
    )
    assert json.loads(details) == {"dropped": 3}
