"""The daemon end to end, as a real process: simulated devices speaking BCI and HTS bytes ->
SQLite -> detector -> outbox -> a real mosquitto -> a subscriber."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Broker, free_port

DESAT_PATIENT = "demo-desaturation"


def write_config(tmp_path: Path, port: int) -> Path:
    config = tmp_path / "pulsegate.toml"
    config.write_text(
        f'[gateway]\nid = "gw-test"\nsite = "village-1"\ndata_dir = "{tmp_path / "data"}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nkeepalive_s = 5\n'
    )
    return config


def run_daemon(
    config: Path, *args: str, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(config), "run", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def query(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(tmp_path / "data" / "pulsegate.db") as conn:
        return conn.execute(sql).fetchall()


def is_desat_s1_raised(message: dict[str, Any]) -> bool:
    return (message.get("patient"), message.get("rule"), message.get("event")) == (
        DESAT_PATIENT,
        "S1",
        "raised",
    )


@pytest.mark.broker
def test_desaturation_alert_reaches_the_broker_exactly_once(
    tmp_path: Path, broker: Broker, subscribe: Any
) -> None:
    subscriber = subscribe(broker.port, "pulsegate/#")
    result = run_daemon(
        write_config(tmp_path, broker.port), "--simulate", "--duration", "30", "--speed", "20"
    )
    assert result.returncode == 0, result.stderr
    assert "ALERT HIGH S1 RAISED patient demo-desaturation" in result.stdout

    raised = subscriber.wait_for(is_desat_s1_raised, timeout_s=10)
    assert len(raised) == 1
    message = raised[0]
    assert message["schema"] == 1
    assert message["priority"] == "HIGH"
    assert (message["tier"], message["profile"], message["gateway"]) == (
        "red",
        "default",
        "gw-test",
    )
    details = message["details"]
    assert details["limit"] == 88.0
    assert details["trigger"] in {"window", "satseconds", "crossings"}
    # Whatever fired it, the saturation it fired on was at or below the critical limit.
    if details["trigger"] == "window":
        assert details["window_median"] <= 88.0
    else:
        assert details["value"] <= 88.0
    assert message["onset_time"].endswith("Z")
    topics = {topic for topic, m in subscriber.messages if m.get("alert_id") == message["alert_id"]}
    assert topics == {"pulsegate/village-1/gw-test/alerts"}

    stored = query(
        tmp_path,
        f"SELECT id, status FROM alerts WHERE patient_id = '{DESAT_PATIENT}' AND rule = 'S1'",
    )
    assert [row[0] for row in stored] == [message["alert_id"]]
    assert query(tmp_path, "SELECT count(*) FROM outbox WHERE sent_s IS NULL") == [(0,)]
    # Readings of every simulated patient are stored, SpO2 and temperature alike.
    per_metric = dict(
        query(tmp_path, "SELECT metric, count(DISTINCT patient_id) FROM readings GROUP BY metric")
    )
    assert per_metric["spo2_percent"] == 4
    assert per_metric["temp_c"] == 4
    # The probe-off patient's missing seconds are stored as missing, not as numbers.
    probe_off = query(
        tmp_path,
        "SELECT count(*) FROM readings WHERE patient_id = 'demo-probe-off'"
        " AND metric = 'spo2_percent' AND value IS NULL AND quality & 1",
    )
    assert probe_off[0][0] >= 100


@pytest.mark.broker
def test_alerts_wait_in_the_outbox_until_a_broker_is_reachable(
    tmp_path: Path, broker: Broker, subscribe: Any
) -> None:
    port = broker.port
    broker.stop()
    config = write_config(tmp_path, port)
    offline = run_daemon(config, "--simulate", "--duration", "25", "--speed", "20", "--quiet")
    assert offline.returncode == 0, offline.stderr
    waiting = query(tmp_path, "SELECT message_id FROM outbox WHERE sent_s IS NULL ORDER BY id")
    assert len(waiting) >= 2  # at least S1 and S2 raised for the desaturating patient

    broker.start()
    subscriber = subscribe(port, "pulsegate/#")
    online = run_daemon(config, "--duration", "6", "--quiet")
    assert online.returncode == 0, online.stderr
    expected = {row[0] for row in waiting}
    received = subscriber.wait_for(
        lambda m: m.get("kind") == "alert" and m["message_id"] in expected, timeout_s=10
    )
    assert {m["message_id"] for m in received} == expected
    assert query(tmp_path, "SELECT count(*) FROM outbox WHERE sent_s IS NULL") == [(0,)]


def test_daemon_without_broker_keeps_alerts_locally(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port())  # nothing listens there
    result = run_daemon(config, "--simulate", "--duration", "20", "--speed", "20", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert query(tmp_path, "SELECT count(*) FROM alerts WHERE rule = 'S1'") == [(1,)]


def test_sigterm_writes_the_last_batch_and_exits_cleanly(tmp_path: Path) -> None:
    config = tmp_path / "pulsegate.toml"
    # A long detector lag: without the final flush on SIGTERM, the last 20 s would be lost.
    config.write_text(f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n[detector]\nlag_s = 20\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--config", str(config), "run", "--simulate", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(6)
        signalled_s = time.time()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    [(newest_s, count)] = query(tmp_path, "SELECT max(ts_s), count(*) FROM readings")
    assert count > 0
    assert newest_s >= signalled_s - 3
