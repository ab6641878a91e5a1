"""The gateway daemon (simulated patients, 100x real time), a real mosquitto and a real hub
process: summaries and device / gap records reach the hub exactly once; a raw-data request
from the hub's CLI is answered and stored per reading; after a hub restart, everything the
gateway sent delivered again stores nothing twice."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sync.hub import HubSettings
from sync.hub_raw_requests import list_raw_requests, raw_readings
from sync.hub_store import HubStore
from sync.payload import OutboxPriority, iso_utc
from sync.records import GATEWAY_DOWN_REASON
from sync.summaries import decode_metrics, summary_message
from tests.conftest import Broker
from tests.sync.conftest import HubProcess, publish, run_cli, wait_until
from tests.sync.daemon_process import GATEWAY_ID, SITE, DaemonProcess, gateway_config
from tests.sync.hub_data_samples import T0_S, minute_rows
from tests.sync.test_hub import stats

StartHub = Callable[..., HubProcess]
SPEED = 100  # simulated seconds per wall second
FREEZE_WALL_S = 6  # the daemon stopped (SIGSTOP): 600 simulated seconds without data
PATIENT = "demo-healthy"
OXIMETERS = 4  # one per simulated patient
DATA_PRIORITIES = (int(OutboxPriority.STATUS), int(OutboxPriority.SUMMARY), int(OutboxPriority.RAW))


def hub_read(db: str, read: Callable[[HubStore], Any]) -> Any:
    store = HubStore.open(db)
    try:
        return read(store)
    finally:
        store.close()


def gateway_rows(data_dir: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with sqlite3.connect(data_dir / "pulsegate.db", timeout=10) as conn:
        return conn.execute(sql, params).fetchall()


def sent_data_messages(data_dir: Path) -> list[tuple[str, str, str]]:
    """(topic, message id, payload) of the device, summary and raw messages the broker took."""
    marks = ",".join("?" * len(DATA_PRIORITIES))
    rows = gateway_rows(
        data_dir,
        f"SELECT topic, message_id, payload FROM outbox WHERE sent_s IS NOT NULL"
        f" AND priority IN ({marks}) AND topic NOT LIKE '%/status' ORDER BY id",
        DATA_PRIORITIES,
    )
    return [(str(t), str(m), str(p)) for t, m, p in rows]


def hub_message_ids(store: HubStore) -> set[str]:
    with store.transaction() as tx:
        rows = tx.rows(
            "SELECT message_id FROM hub_device_events UNION ALL SELECT message_id FROM hub_gaps"
            " UNION ALL SELECT message_id FROM hub_summary_messages"
            " UNION ALL SELECT message_id FROM hub_raw_chunks"
        )
    return {row["message_id"] for row in rows}


def data_counts(store: HubStore) -> dict[str, int]:
    tables = ("hub_device_events", "hub_gaps", "hub_summary_messages", "hub_summaries",
              "hub_raw_chunks", "hub_raw_readings")  # fmt: skip
    return {table: store.count(table) for table in tables}


def gateway_readings(data_dir: Path, start_s: float, end_s: float) -> set[tuple[int, str, Any]]:
    rows = gateway_rows(
        data_dir,
        "SELECT ts_s, metric, value FROM readings WHERE patient_id = ? AND ts_s >= ? AND ts_s < ?",
        (PATIENT, start_s, end_s),
    )
    return {
        (round(ts * 1000), metric, None if v is None else round(v, 2)) for ts, metric, v in rows
    }


@pytest.mark.broker
def test_records_summaries_and_raw_data_reach_the_hub_exactly_once(
    tmp_path: Path, broker: Broker, start_hub: StartHub, empty_config: Path
) -> None:
    db = str(tmp_path / "hub.db")
    hub = start_hub(broker.port, db)
    data_dir = tmp_path / "data"
    config = gateway_config(tmp_path, broker.port, keepalive_s=30)
    daemon = DaemonProcess.start(config, "--simulate", "--speed", str(SPEED))
    try:
        # Summaries flow (15 simulated minutes each); then the box freezes for 600 simulated
        # seconds, so every oximeter goes silent, comes back, and its gap is reported.
        first = wait_until(
            lambda: hub_read(db, lambda s: s.patient_summaries(SITE, GATEWAY_ID, PATIENT, 0)),
            timeout_s=90,
        )
        assert first, daemon.log()
        daemon.process.send_signal(signal.SIGSTOP)
        time.sleep(FREEZE_WALL_S)
        daemon.process.send_signal(signal.SIGCONT)

        oximeters = {
            row[0] for row in gateway_rows(data_dir, "SELECT device_id FROM uplink_devices")
        }
        assert len(oximeters) == OXIMETERS

        def gaps_of_every_oximeter() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = hub_read(db, lambda s: s.gap_records())
            return rows if {g["device"] for g in rows} == oximeters else []

        gaps = wait_until(gaps_of_every_oximeter, timeout_s=90)
        assert gaps, daemon.log() + hub.log()
        assert all(g["duration_s"] >= 120 for g in gaps)  # silent: 2 minutes without data
        # Why, as the gateway saw it: it was not running, or (when a check fell inside the
        # freeze's catch-up) its devices sent nothing.
        assert all(
            any(r == GATEWAY_DOWN_REASON or r.startswith("no data") for r in g["reasons"])
            for g in gaps
        ), gaps
        devices = hub_read(db, lambda s: s.device_records())
        assert {(d["device"], d["event"]) for d in devices} >= {
            (device, event) for device in oximeters for event in ("silent", "back")
        }

        # A clinician asks for 15 minutes of raw readings: two chunks (10 + 5 minutes).
        start_s = first[0]["minute_s"]
        asked = run_cli(
            empty_config, "hub", "raw-request", f"{SITE}/{GATEWAY_ID}", PATIENT,
            "--from", iso_utc(start_s), "--to", iso_utc(start_s + 900), "--db", db,
        )  # fmt: skip
        assert asked.returncode == 0, asked.stderr

        def answered() -> bool:
            [request] = hub_read(db, list_raw_requests)
            return request["chunks"] == request["chunks_received"] == 2

        assert wait_until(answered, timeout_s=60), daemon.log() + hub.log()
    finally:
        daemon.process.send_signal(signal.SIGCONT)
        assert daemon.stop() == 0, daemon.log()
    key = (SITE, GATEWAY_ID, PATIENT)
    readings = hub_read(db, lambda s: raw_readings(s, key, start_s, start_s + 900))
    expected = gateway_readings(data_dir, start_s, start_s + 900)
    assert len(expected) > 900  # SpO2, pulse and PI every second
    assert {(r["ts_ms"], r["metric"], r["value"]) for r in readings} == expected

    # Exactly once: every message the broker took from the gateway is stored, once.
    sent = sent_data_messages(data_dir)
    sent_ids = {message_id for _, message_id, _ in sent}
    assert wait_until(lambda: sent_ids <= hub_read(db, hub_message_ids), timeout_s=30)
    all_ids = {str(row[0]) for row in gateway_rows(data_dir, "SELECT message_id FROM outbox")}
    assert hub_read(db, hub_message_ids) <= all_ids
    minutes = sum(
        len(columns["minute"])
        for _, _, payload in sent
        if (body := json.loads(payload))["kind"] == "summary"
        for columns in decode_metrics(body["encoding"], body["metrics"]).values()
    )
    before = hub_read(db, data_counts)
    assert before["hub_summaries"] == minutes
    backs = [d for d in hub_read(db, lambda s: s.device_records()) if d["event"] == "back"]
    assert len(backs) == before["hub_gaps"]  # a gap is reported when its device is back
    assert hub.stop() == 0
    first_run = stats(hub)
    assert first_run["rejected"] == 0, hub.log()

    # The hub is down; the gateway's messages all come again (a gateway that lost its PUBACKs
    # resends them), then one new summary; the broker queues them, in order, for the hub.
    first_log = hub.log()
    marker = summary_message(
        "pulsegate", SITE, GATEWAY_ID, "marker-patient", (T0_S, T0_S + 900), minute_rows(T0_S, 15)
    )
    publish(broker.port, [(topic, payload) for topic, _, payload in sent])
    publish(broker.port, [(marker.topic, marker.payload)])
    again = start_hub(broker.port, db)
    assert wait_until(
        lambda: hub_read(db, lambda s: s.patient_summaries(SITE, GATEWAY_ID, "marker-patient", 0)),
        timeout_s=60,
    ), again.log()
    assert again.stop() == 0
    after = hub_read(db, data_counts)
    assert after == before | {
        "hub_summary_messages": before["hub_summary_messages"] + 1,
        "hub_summaries": before["hub_summaries"] + 23,
    }
    second_run = stats(again)
    assert second_run["stored"] == 1, again.log()  # the new summary only
    assert second_run["duplicate"] >= len(sent)
    assert "Traceback" not in first_log + again.log()


def test_the_hub_subscribes_to_the_new_topics_as_shared_subscriptions() -> None:
    settings = HubSettings("127.0.0.1", 1883, "hub-1", group="township")
    assert {
        "$share/township/pulsegate/+/+/devices",
        "$share/township/pulsegate/+/+/summaries",
        "$share/township/pulsegate/+/+/raw",
    } <= set(settings.subscriptions)
    assert "pulsegate/+/+/status" in settings.subscriptions  # retained: not shared


@pytest.mark.broker
def test_garbage_on_the_new_topics_is_set_aside_and_the_rest_is_stored(
    tmp_path: Path, broker: Broker, start_hub: StartHub
) -> None:
    db = str(tmp_path / "hub.db")
    hub = start_hub(broker.port, db)
    where = f"pulsegate/{SITE}/{GATEWAY_ID}"
    good = summary_message(
        "pulsegate", SITE, GATEWAY_ID, "p-1", (T0_S, T0_S + 900), minute_rows(T0_S, 15)
    )
    body = json.loads(good.payload)
    publish(
        broker.port,
        [
            (f"{where}/summaries", "{not json"),
            (f"{where}/devices", json.dumps({"schema": 1, "kind": "gap"})),
            (f"{where}/raw", json.dumps(body | {"kind": "raw"})),
            (f"pulsegate/{SITE}/gw-other/summaries", good.payload),  # not its own topic
            (good.topic, good.payload),
        ],
    )
    assert wait_until(lambda: hub_read(db, lambda s: s.count("hub_rejected")) == 4, 20)
    assert wait_until(lambda: hub_read(db, lambda s: s.count("hub_summaries")) == 23, 20)
    assert hub.stop() == 0
    assert stats(hub) == {"stored": 1, "duplicate": 0, "rejected": 4}
    assert "rejected a message on pulsegate/village-1/gw-other/summaries: payload says" in hub.log()
    assert "Traceback" not in hub.log()
