"""`pulsegate hub` as real processes against a real mosquitto (and a real PostgreSQL)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from alerts.lifecycle import AlertEventKind
from sync.hub_store import HubStore
from sync.payload import alert_event_message
from tests.conftest import Broker
from tests.sync.conftest import HubProcess, Postgres, cli, publish, run_cli, wait_until
from tests.sync.daemon_process import gateway_config
from tests.sync.test_hub_messages import ONSET_S, make_alert

DESAT_PATIENT = "demo-desaturation"
ALERTS_TOPIC = "pulsegate/village-1/gw-1/alerts"

StartHub = Callable[..., HubProcess]


def alert_messages(count: int, gateway: str = "gw-1") -> list[tuple[str, str]]:
    """`count` distinct raised events (one alert each) as a gateway would publish them."""
    messages = []
    for n in range(count):
        alert = make_alert(
            id=f"{n:08d}-0000-5000-8000-000000000000", gateway_id=gateway, onset_s=ONSET_S + n
        )
        message = alert_event_message(
            "pulsegate", "village-1", alert, AlertEventKind.RAISED, ONSET_S + n
        )
        messages.append((message.topic, message.payload))
    return messages


def count_events(db: str) -> int:
    store = HubStore.open(db)
    try:
        return store.count("hub_events")
    finally:
        store.close()


def stats(hub: HubProcess) -> dict[str, int]:
    match = re.search(r"(\d+) stored, (\d+) duplicates, (\d+) rejected", hub.log())
    assert match, hub.log()
    return dict(zip(("stored", "duplicate", "rejected"), map(int, match.groups()), strict=True))


@pytest.mark.broker
def test_a_redelivered_duplicate_is_stored_once_and_garbage_is_set_aside(
    tmp_path: Path, broker: Broker, start_hub: StartHub
) -> None:
    db = str(tmp_path / "hub.db")
    hub = start_hub(broker.port, db)
    [first, second] = alert_messages(2)
    publish(broker.port, [first, first, (ALERTS_TOPIC, "{not json"), second])
    assert wait_until(lambda: count_events(db) == 2, timeout_s=10), hub.log()

    assert hub.stop() == 0
    assert stats(hub) == {"stored": 2, "duplicate": 1, "rejected": 1}
    assert "rejected a message on pulsegate/village-1/gw-1/alerts: not UTF-8 JSON" in hub.log()
    assert "Traceback" not in hub.log()
    store = HubStore.open(db)
    assert (store.count("hub_alerts"), store.count("hub_rejected")) == (2, 1)
    store.close()


@pytest.mark.broker
def test_the_gateways_desaturation_alert_reaches_the_hub_exactly_once(
    tmp_path: Path, broker: Broker, start_hub: StartHub, empty_config: Path
) -> None:
    db = str(tmp_path / "hub.db")
    hub = start_hub(broker.port, db)
    gateway = run_cli(
        gateway_config(tmp_path, broker.port, gateway_id="gw-test", site="village-1"),
        "run", "--simulate", "--duration", "6", "--speed", "100", "--quiet",
    )  # fmt: skip
    assert gateway.returncode == 0, gateway.stderr

    def s1_alerts() -> list[dict[str, Any]]:
        store = HubStore.open(db)
        try:
            rows = store.list_alerts(open_only=False, limit=100)
        finally:
            store.close()
        return [r for r in rows if (r["patient"], r["rule"]) == (DESAT_PATIENT, "S1")]

    [alert] = wait_until(s1_alerts, timeout_s=10)
    assert (alert["site"], alert["gateway"], alert["priority"]) == ("village-1", "gw-test", "HIGH")
    store = HubStore.open(db)
    raised = [e for e in store.alert_events(alert["alert_id"]) if e["event"] == "raised"]
    store.close()
    assert len(raised) == 1
    listed = run_cli(empty_config, "hub", "alerts", "--open", "--db", db)
    assert listed.returncode == 0, listed.stderr
    line = next(ln for ln in listed.stdout.splitlines() if alert["alert_id"][:8] in ln)
    assert re.search(r"HIGH\s+S1\s+open\s+demo-desaturation\s+village-1/gw-test", line), line
    # Sorted for triage: no line below a HIGH alert may come before it with a lower priority.
    priorities = [ln.split()[1] for ln in listed.stdout.splitlines()]
    assert priorities == sorted(priorities, key=["HIGH", "MEDIUM", "LOW", "INFO"].index)
    assert hub.stop() == 0
    assert stats(hub)["duplicate"] == 0


@pytest.mark.broker
def test_two_hubs_on_one_shared_subscription_store_every_alert_once_in_postgresql(
    broker: Broker, postgres: Postgres, start_hub: StartHub
) -> None:
    db = postgres.new_database()
    hubs = [start_hub(broker.port, db, f"hub-{name}") for name in ("a", "b")]
    count = 61
    messages = alert_messages(count)
    # Everything, then everything again (a gateway replaying its backlog). The group hands
    # messages out in turn; with an odd count, a copy reaches the other hub than its original.
    publish(broker.port, messages + messages)
    assert wait_until(lambda: count_events(db) == count, timeout_s=20)
    time.sleep(0.5)  # let the last duplicates land before counting them
    for hub in hubs:
        assert hub.stop() == 0, hub.log()
    per_hub = [stats(hub) for hub in hubs]
    assert sum(s["stored"] for s in per_hub) == count, per_hub
    assert sum(s["duplicate"] for s in per_hub) == count, per_hub
    # Both hubs stored and both threw copies away: the load was shared and the database,
    # not the process, de-duplicated.
    assert all(s["stored"] > 0 and s["duplicate"] > 0 for s in per_hub), per_hub
    store = HubStore.open(db)
    try:
        assert (store.count("hub_events"), store.count("hub_alerts")) == (count, count)
    finally:
        store.close()


@pytest.mark.broker
def test_hub_ack_is_published_to_the_gateways_ack_topic(
    tmp_path: Path, broker: Broker, start_hub: StartHub, subscribe: Any, empty_config: Path
) -> None:
    db = str(tmp_path / "hub.db")
    hub = start_hub(broker.port, db)
    [first, second] = alert_messages(2)
    publish(broker.port, [first, second])
    assert wait_until(lambda: count_events(db) == 2, timeout_s=10)
    downlink = subscribe(broker.port, "pulsegate/+/+/ack")
    first_id = json.loads(first[1])["alert_id"]
    second_id = json.loads(second[1])["alert_id"]

    # With --broker: sent at once, confirmed by a PUBACK.
    now = run_cli(
        empty_config, "hub", "ack", first_id[:8], "--by", "dr-li", "--db", db,
        "--broker", f"mqtt://127.0.0.1:{broker.port}",
    )  # fmt: skip
    assert now.returncode == 0, now.stderr
    assert "sent on pulsegate/village-1/gw-1/ack" in now.stdout
    [ack] = downlink.wait_for(lambda m: m["alert_id"] == first_id, timeout_s=10)
    assert {k: ack[k] for k in ("kind", "alert_id", "acked_by", "gateway", "site")} == {
        "kind": "ack",
        "alert_id": first_id,
        "acked_by": "dr-li",
        "gateway": "gw-1",
        "site": "village-1",
    }
    assert abs(time.time() - _epoch(ack["acked_at"])) < 30
    assert [topic for topic, _ in downlink.messages] == ["pulsegate/village-1/gw-1/ack"]

    # Without --broker: queued in the database, the running hub sends it.
    later = run_cli(empty_config, "hub", "ack", second_id, "--by", "dr-wang", "--db", db)
    assert later.returncode == 0, later.stderr
    assert "the running hub sends it" in later.stdout
    [ack2] = downlink.wait_for(lambda m: m["alert_id"] == second_id, timeout_s=15)
    assert ack2["acked_by"] == "dr-wang"
    assert ack2["message_id"] != ack["message_id"]
    store = HubStore.open(db)
    assert wait_until(lambda: store.pending_acks() == [], timeout_s=10)
    store.close()
    assert hub.stop() == 0


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


FAKE_GATEWAY = """
import sys, time
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sync.payload import GatewayState, status_message

port, now = int(sys.argv[1]), time.time()
birth, will = (
    status_message("pulsegate", "village-2", "gw-9", state, now, synced_through_s=now - 30,
                   backlog=2, will=state is GatewayState.OFFLINE)
    for state in (GatewayState.ONLINE, GatewayState.OFFLINE)
)
client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-9", protocol=mqtt.MQTTv5)
client.will_set(will.topic, will.payload, qos=1, retain=True)
client.connect("127.0.0.1", port, keepalive=5)
client.loop_start()
client.publish(birth.topic, birth.payload, qos=1, retain=True).wait_for_publish(10)
print("online", flush=True)
time.sleep(60)
"""


@pytest.mark.broker
def test_hub_gateways_flags_a_gateway_whose_last_will_fired(
    tmp_path: Path, broker: Broker, start_hub: StartHub, empty_config: Path
) -> None:
    db = str(tmp_path / "hub.db")
    hub = start_hub(broker.port, db)
    with subprocess.Popen(
        [sys.executable, "-c", FAKE_GATEWAY, str(broker.port)], stdout=subprocess.PIPE, text=True
    ) as box:
        try:
            assert box.stdout is not None and box.stdout.readline().strip() == "online"

            def gateway_rows() -> list[dict[str, Any]]:
                store = HubStore.open(db)
                try:
                    return store.list_gateways()
                finally:
                    store.close()

            def gateways() -> str:
                return run_cli(empty_config, "hub", "gateways", "--db", db).stdout

            assert wait_until(gateway_rows, timeout_s=10)
            assert re.search(r"village-2/gw-9\s+online .* backlog 2\s+-$", gateways(), re.M)
            box.send_signal(signal.SIGKILL)  # the box vanishes without a DISCONNECT
            box.wait()
            fired = wait_until(lambda: gateway_rows()[0]["will_fired"], timeout_s=10)
            assert fired, hub.log()
            assert re.search(
                r"village-2/gw-9\s+offline .* LAST WILL FIRED \d+ s ago$", gateways(), re.M
            )
        finally:
            box.kill()
    assert "(its Last Will: the broker lost it)" in hub.log()
    assert hub.stop() == 0

    # A hub started later learns it from the retained status message.
    fresh_db = str(tmp_path / "fresh.db")
    late = start_hub(broker.port, fresh_db, "hub-late")
    rows = wait_until(
        lambda: [
            json.loads(line)
            for line in run_cli(
                empty_config, "hub", "gateways", "--json", "--db", fresh_db
            ).stdout.splitlines()
        ],
        timeout_s=10,
    )
    assert [(r["gateway"], r["state"], r["will_fired"]) for r in rows] == [("gw-9", "offline", 1)]
    assert late.stop() == 0


def test_hub_run_refuses_a_bad_broker_url(empty_config: Path) -> None:
    result = subprocess.run(
        cli(empty_config, "hub", "run", "--broker", "http://x", "--db", ":memory:"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: broker 'http://x': expected mqtt://HOST[:PORT]"


def test_hub_ack_of_an_unknown_alert_is_a_clear_error(tmp_path: Path, empty_config: Path) -> None:
    result = run_cli(empty_config, "hub", "ack", "deadbeef", "--db", str(tmp_path / "hub.db"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: no alert 'deadbeef'; `pulsegate hub alerts` lists them"
    )


@pytest.mark.broker
def test_a_message_the_database_could_not_take_comes_again_and_is_stored(
    broker: Broker, postgres: Postgres, start_hub: StartHub
) -> None:
    db = postgres.new_database()
    name = db.rsplit("/", 1)[1]
    hub = start_hub(broker.port, db)
    [first, second] = alert_messages(2)
    publish(broker.port, [first])
    assert wait_until(lambda: count_events(db) == 1, timeout_s=10)

    with psycopg.connect(postgres.url(), autocommit=True) as admin:
        # The database goes away under the running hub: its connections are cut and refused.
        admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (name,),
        )
        publish(broker.port, [second])
        # Kept away for two attempts: the hub keeps trying and does not give the message up.
        refused = "stays with the broker until it is stored"
        assert wait_until(lambda: hub.log().count(refused) >= 2, timeout_s=15), hub.log()
        admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")

    assert wait_until(lambda: count_events(db) == 2, timeout_s=20), hub.log()
    assert hub.stop() == 0
    assert stats(hub) == {"stored": 2, "duplicate": 0, "rejected": 0}
    assert "Traceback" not in hub.log()


@pytest.mark.broker
def test_a_hub_started_before_its_broker_waits_for_it(
    tmp_path: Path, broker: Broker, start_hub: StartHub
) -> None:
    broker.stop()
    db = str(tmp_path / "hub.db")
    hub = start_hub(broker.port, db, wait=False)
    assert wait_until(lambda: "not reachable; retrying" in hub.log(), timeout_s=10), hub.log()
    assert hub.process.poll() is None
    broker.start()
    hub.wait_subscribed()
    publish(broker.port, alert_messages(1))
    assert wait_until(lambda: count_events(db) == 1, timeout_s=10)
    assert hub.stop() == 0
    assert "Traceback" not in hub.log()
