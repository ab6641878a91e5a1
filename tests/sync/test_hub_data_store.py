"""The hub's tables of device records, gaps, summaries and raw readings, and the queries the
CLI and the dashboard read; the same tests on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from sync import hub_data
from sync.hub_data_messages import (
    parse_devices_message,
    parse_raw_answer,
    parse_summary,
)
from sync.hub_raw_requests import (
    RESEND_UNANSWERED_S,
    list_raw_requests,
    queue_raw_request,
    raw_readings,
    send_pending_raw_requests,
)
from sync.hub_sql import open_engine
from sync.hub_store import SCHEMA, HubStore
from sync.payload import OutboxMessage
from sync.raw_request import raw_request_message
from sync.records import DeviceEventKind
from tests.conftest import Broker
from tests.sync.conftest import Postgres, wait_until
from tests.sync.hub_data_samples import (
    GATEWAY,
    PATIENT,
    PREFIX,
    SITE,
    T0_S,
    device_message,
    gap_message,
    raw_chunk,
    summary,
)
from tests.sync.test_hub_messages import ONSET_S, make_alert
from tests.sync.test_hub_store import event

KEY = (SITE, GATEWAY, PATIENT)
LATEST_VERSION = max(version for version, _ in hub_data.SCHEMA_STEPS)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "hub.db")
    postgres: Postgres = request.getfixturevalue("postgres")
    return postgres.new_database()


@pytest.fixture
def store(url: str) -> Iterator[HubStore]:
    hub_store = HubStore.open(url)
    yield hub_store
    hub_store.close()


def store_message(store: HubStore, message: OutboxMessage, received_s: float = T0_S + 9000) -> bool:
    payload = message.payload.encode()
    leaf = message.topic.rsplit("/", 1)[1]
    parse = {"devices": parse_devices_message, "summaries": parse_summary, "raw": parse_raw_answer}
    return store.record_data(parse[leaf](SITE, GATEWAY, payload), received_s)


def test_a_redelivered_summary_is_a_no_op_and_minutes_are_kept_once(store: HubStore) -> None:
    first = summary(0)
    assert store_message(store, first) is True
    assert store_message(store, first, T0_S + 9999) is False
    assert store.count("hub_summary_messages") == 1
    assert store.count("hub_summaries") == 15 + 8  # SpO2 every minute, pulse every other
    rows = store.patient_summaries(SITE, GATEWAY, PATIENT, T0_S)
    assert [(r["minute_s"], r["metric"]) for r in rows[:3]] == [
        (T0_S, "pulse_bpm"),
        (T0_S, "spo2_percent"),
        (T0_S + 60, "spo2_percent"),
    ]
    probe_off = next(
        r for r in rows if (r["minute_s"], r["metric"]) == (T0_S + 180, "spo2_percent")
    )
    assert (probe_off["n"], probe_off["missing"], probe_off["median"]) == (0, 60, None)
    assert rows[1] == {
        "minute_s": T0_S,
        "metric": "spo2_percent",
        "n": 58,
        "missing": 2,
        "min": 93.5,
        "median": 95.0,
        "max": 96.0,
        "quality": 0,
    }


def test_patient_summaries_reads_one_patient_from_since_to_until(store: HubStore) -> None:
    for offset_s in (0, 900, 1800):
        store_message(store, summary(offset_s))
    store_message(store, summary(0, patient="p-other"))
    rows = store.patient_summaries(SITE, GATEWAY, PATIENT, T0_S + 900, T0_S + 1800)
    assert {r["minute_s"] for r in rows} == {T0_S + 900 + 60 * i for i in range(15)}
    everything = store.patient_summaries(SITE, GATEWAY, PATIENT, 0)
    assert len(everything) == 3 * 23
    assert [r["minute_s"] for r in everything] == sorted(r["minute_s"] for r in everything)
    assert store.patient_summaries(SITE, "gw-2", PATIENT, 0) == []


def test_gap_and_device_records_are_stored_once_and_filtered(store: HubStore) -> None:
    messages = [
        device_message(DeviceEventKind.SILENT, 220),
        device_message(DeviceEventKind.BACK, 3700),
        gap_message(100, 3700),
        gap_message(5000, 5600),
        device_message(DeviceEventKind.NO_SIGNAL, 400, device="ox-2"),
    ]
    assert [store_message(store, m) for m in messages + messages[:2]] == [True] * 5 + [False] * 2
    gaps = store.gap_records()
    assert [(g["start_s"], g["end_s"], g["duration_s"]) for g in gaps] == [
        (T0_S + 5000, T0_S + 5600, 600),
        (T0_S + 100, T0_S + 3700, 3600),
    ]
    assert gaps[1]["reasons"][0] == "no data; link waiting: device not found"
    assert [g["start_s"] for g in store.gap_records(since_s=T0_S + 4000)] == [T0_S + 5000]
    assert store.gap_records(gateway="gw-2") == []
    assert len(store.gap_records(site=SITE, gateway=GATEWAY, patient=PATIENT, limit=1)) == 1
    events = store.device_records(gateway=GATEWAY)
    assert [(e["device"], e["event"]) for e in events] == [
        ("ox-1", "back"),
        ("ox-2", "no_signal"),
        ("ox-1", "silent"),
    ]
    assert [e["device"] for e in store.devices_without_data()] == ["ox-2"]  # ox-1 is back


def test_a_raw_answer_is_stored_per_reading_and_overlaps_are_kept_once(store: HubStore) -> None:
    request = raw_request_message(PREFIX, SITE, GATEWAY, PATIENT, (T0_S, T0_S + 1200))
    assert queue_raw_request(store, request, "dr-li", T0_S + 5) is True
    assert queue_raw_request(store, request, "dr-li", T0_S + 6) is False
    first = raw_chunk(request.message_id, 0, 2, 0)
    assert store_message(store, first) is True
    assert store_message(store, first) is False
    [listed] = list_raw_requests(store)
    assert (listed["chunks_received"], listed["chunks"], listed["readings"]) == (1, 2, 600)
    assert (listed["start_s"], listed["end_s"], listed["requested_by"]) == (
        T0_S,
        T0_S + 1200,
        "dr-li",
    )
    # Another request's chunk overlapping the first by 300 s adds only the new seconds.
    store_message(store, raw_chunk("another-request", 0, 1, 300))
    assert store.count("hub_raw_readings") == 900
    rows = raw_readings(store, KEY, T0_S + 2, T0_S + 6)
    assert [(r["ts_ms"], r["value"]) for r in rows] == [
        ((T0_S + 2) * 1000 + 250, 92.0),
        ((T0_S + 3) * 1000 + 250, 93.0),
        ((T0_S + 4) * 1000 + 250, None),
        ((T0_S + 5) * 1000 + 250, 95.0),
    ]


def test_a_database_of_the_older_schema_gains_the_new_tables_and_keeps_its_alerts(
    url: str,
) -> None:
    engine = open_engine(url)  # the schema as hubs created it before these tables existed
    with engine.transaction() as tx:
        for statement in SCHEMA:
            tx.run(statement)
        tx.run("INSERT INTO hub_meta (key, value) VALUES ('schema_version', '1')")
    engine.close()
    old = HubStore(open_engine(url))
    old.record_alert_event(event(), ONSET_S + 6, "hub-a")
    old.close()

    store = HubStore.open(url)
    try:
        assert store_message(store, summary(0)) is True
        assert store.count("hub_summaries") == 23
        assert [a["alert_id"] for a in store.list_alerts(open_only=False, limit=5)] == [
            make_alert().id
        ]
        with store.transaction() as tx:
            [row] = tx.rows("SELECT value FROM hub_meta WHERE key = 'schema_version'")
        assert int(row["value"]) == LATEST_VERSION
    finally:
        store.close()
    again = HubStore.open(url)  # opening it again runs no step twice
    assert again.count("hub_summaries") == 23
    again.close()


def connected_client(port: int) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert wait_until(client.is_connected, timeout_s=10)
    return client


@pytest.mark.broker
def test_a_raw_request_is_published_once_and_again_only_while_unanswered(
    tmp_path: Path, broker: Broker, subscribe: Any
) -> None:
    store = HubStore.open(str(tmp_path / "hub.db"))
    downlink = subscribe(broker.port, f"{PREFIX}/+/+/raw-request")
    client = connected_client(broker.port)
    try:
        request = raw_request_message(PREFIX, SITE, GATEWAY, PATIENT, (T0_S, T0_S + 1200))
        queue_raw_request(store, request, "dr-li", time.time())
        assert send_pending_raw_requests(client, store, 10) == 1
        assert send_pending_raw_requests(client, store, 10) == 0  # sent, not yet due again

        def unanswered_for(seconds: float) -> None:
            with store.transaction() as tx:
                tx.run("UPDATE hub_raw_requests SET published_s = ?", (time.time() - seconds,))

        unanswered_for(RESEND_UNANSWERED_S + 1)
        assert send_pending_raw_requests(client, store, 10) == 1
        store_message(store, raw_chunk(request.message_id, 0, 2, 0))  # an answer came
        unanswered_for(RESEND_UNANSWERED_S + 1)
        assert send_pending_raw_requests(client, store, 10) == 0
        assert len(downlink.wait_for(lambda m: True, timeout_s=5)) == 2
        time.sleep(0.5)
        assert [m["message_id"] for _, m in downlink.messages] == [request.message_id] * 2
    finally:
        client.disconnect()
        client.loop_stop()
        store.close()
