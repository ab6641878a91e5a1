"""The gateway side of the link, with a real daemon and a real mosquitto: a retained birth
and a Last Will on the status topic, and acknowledgements from the hospital applied locally
and echoed upstream."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sync.hub_store import HubStore
from sync.payload import ack_message
from tests.conftest import Broker
from tests.sync.conftest import publish, wait_until
from tests.sync.daemon_process import gateway_config, start_simulated

GATEWAY, SITE = "gw-down", "village-2"
STATUS = f"pulsegate/{SITE}/{GATEWAY}/status"


def start_daemon(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    config = gateway_config(tmp_path, port, gateway_id=GATEWAY, site=SITE)
    return start_simulated(config, "--speed", "20")


@pytest.mark.broker
def test_hospital_ack_is_applied_and_echoed_and_offline_is_said_on_stop(
    tmp_path: Path, broker: Broker, subscribe: Any
) -> None:
    subscriber = subscribe(broker.port, f"pulsegate/{SITE}/{GATEWAY}/alerts")
    presence = subscribe(broker.port, STATUS)
    daemon = start_daemon(tmp_path, broker.port)
    try:
        births = presence.wait_for(lambda m: m.get("state") == "online", timeout_s=20)
        assert births and births[0]["kind"] == "status" and births[0]["will"] is False
        raised = subscriber.wait_for(
            lambda m: m.get("rule") == "S1" and m.get("event") == "raised", timeout_s=40
        )
        assert raised, "no S1 alert from the simulated desaturation"
        alert_id = raised[0]["alert_id"]
        ack = ack_message("pulsegate", SITE, GATEWAY, alert_id, "dr-li", time.time())
        publish(broker.port, [(ack.topic, ack.payload)])
        publish(broker.port, [(ack.topic, ack.payload)])  # a duplicate is harmless
        publish(broker.port, [(ack.topic, "not json")])  # so is garbage
        echoed = subscriber.wait_for(
            lambda m: m.get("alert_id") == alert_id and m.get("event") == "acked", timeout_s=20
        )
        assert len(echoed) == 1
        assert echoed[0]["acked_by"] == "dr-li"
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
    finally:
        daemon.kill()
    with sqlite3.connect(tmp_path / "data" / "pulsegate.db") as conn:
        status, acked_by = conn.execute(
            "SELECT status, acked_by FROM alerts WHERE id = ?", [alert_id]
        ).fetchone()
    assert status in {"acked", "closed"}
    assert acked_by == "dr-li"
    offline = presence.wait_for(lambda m: m.get("state") == "offline", timeout_s=10)
    assert offline and offline[-1]["will"] is False


@pytest.mark.broker
def test_a_killed_gateway_leaves_its_last_will_and_the_hub_flags_it(
    tmp_path: Path, broker: Broker, subscribe: Any, start_hub: Callable[..., Any]
) -> None:
    hub_db = str(tmp_path / "hub.db")
    start_hub(broker.port, hub_db)
    watcher = subscribe(broker.port, STATUS)
    daemon = start_daemon(tmp_path, broker.port)
    try:
        births = watcher.wait_for(lambda m: m.get("state") == "online", timeout_s=20)
        assert births and births[-1]["synced_through"] is not None  # read before connecting
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
    finally:
        daemon.kill()
    # The broker notices after 1.5 keep-alive periods (5 s here) and publishes the will.
    will = watcher.wait_for(lambda m: m.get("will") is True, timeout_s=20)
    assert will and will[0]["state"] == "offline"
    # The Will was set at the connect its birth announced, and with the newest watermark.
    assert will[0]["event_time"] == births[-1]["event_time"]
    assert will[0]["synced_through"] is not None
    late = subscribe(broker.port, STATUS)  # a hospital that starts later sees it too (retained)
    assert late.wait_for(lambda m: m.get("will") is True, timeout_s=10)

    def gateway() -> dict[str, Any] | None:
        store = HubStore.open(hub_db)
        try:
            rows = [row for row in store.list_gateways() if row["gateway"] == GATEWAY]
        finally:
            store.close()
        return rows[0] if rows and rows[0]["will_fired"] else None

    flagged = wait_until(gateway, timeout_s=10)
    assert flagged, "the hub did not flag the gateway's Last Will"
    assert flagged["state"] == "offline"
