"""TLS, passwords and the broker's ACL, against a real mosquitto of the test's own (a throwaway
CA, `mosquitto_passwd`, `pattern write pulsegate/+/%u/#`), with the real daemon and hub."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from sync.broker_security import CONFIG_LABELS, BrokerSecurity, load_security
from tests.sync.conftest import run_cli, wait_until
from tests.sync.daemon_process import (
    GATEWAY_ID,
    SITE,
    gateway_config,
    run_daemon,
    unsent_alert_ids,
)
from tests.sync.secure_broker import PREFIX, USERS, SecureBroker, TlsClient

NOT_AUTHORIZED = 135  # MQTT v5 reason code 0x87


def tls_lines(broker: SecureBroker, user: str, password_file: Path) -> str:
    return (
        f'tls_ca_file = "{broker.ca_file}"\nusername = "{user}"\n'
        f'password_file = "{password_file}"\n'
    )


def hub_alert_rows(db: Path) -> list[tuple[str, str, str]]:
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=10) as conn:
        return conn.execute("SELECT gateway, patient, rule FROM hub_alerts").fetchall()


@pytest.mark.broker
def test_daemon_over_tls_with_password_delivers_alerts_to_the_hub(
    tmp_path: Path, secure_broker: SecureBroker, start_hub: Any
) -> None:
    hub_password = secure_broker.password_file("hub")
    hub_db = tmp_path / "hub.db"
    hub = start_hub(
        secure_broker.port,
        str(hub_db),
        "hub-1",
        "--ca-file",
        str(secure_broker.ca_file),
        "--username",
        "hub",
        "--password-file",
        str(hub_password),
    )
    config = gateway_config(
        tmp_path,
        secure_broker.port,
        host="localhost",  # the name in the broker's certificate is checked
        mqtt=tls_lines(secure_broker, GATEWAY_ID, secure_broker.password_file(GATEWAY_ID)),
    )
    result = run_daemon(config, "--simulate", "--duration", "30", "--speed", "20", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "refused" not in result.stderr

    desat = (GATEWAY_ID, "demo-desaturation", "S1")
    assert wait_until(lambda: desat in hub_alert_rows(hub_db), timeout_s=20), hub.log()
    assert unsent_alert_ids(tmp_path / "data") == set()
    status = run_cli(config, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert hub.stop() == 0
    every_output = result.stdout + result.stderr + status.stdout + hub.log()
    for password in USERS.values():
        assert password not in every_output
    assert f"u'{GATEWAY_ID}'" in secure_broker.log()  # it did log in as itself


@pytest.mark.broker
def test_a_gateway_cannot_publish_under_another_gateways_topic(
    secure_broker: SecureBroker,
) -> None:
    watcher = TlsClient(secure_broker, "hub", "watcher")
    intruder = TlsClient(secure_broker, "gw-b", "gw-b")
    try:
        watcher.subscribe(f"{PREFIX}/#")
        forged = json.dumps({"kind": "alert", "message_id": "forged-1"}).encode()
        reason = intruder.publish(f"{PREFIX}/{SITE}/gw-a/alerts", forged)
        own = intruder.publish(f"{PREFIX}/{SITE}/gw-b/alerts", b'{"own": true}')
        assert own.value == 0  # the same client may write under its own id
        assert reason.value == NOT_AUTHORIZED
        assert str(reason) == "Not authorized"
        # The broker's own message arrives; the forged one, published before it, never does.
        assert wait_until(watcher.received, timeout_s=10)
        assert [topic for topic, _ in watcher.received()] == [f"{PREFIX}/{SITE}/gw-b/alerts"]
    finally:
        intruder.close()
        watcher.close()


@pytest.mark.broker
def test_wrong_password_is_refused_with_a_clear_log_line_and_alerts_stay_queued(
    tmp_path: Path, secure_broker: SecureBroker
) -> None:
    wrong = "not-the-password-42"
    watcher = TlsClient(secure_broker, "hub", "watcher")
    try:
        watcher.subscribe(f"{PREFIX}/#")
        config = gateway_config(
            tmp_path,
            secure_broker.port,
            host="localhost",
            mqtt=tls_lines(
                secure_broker, GATEWAY_ID, secure_broker.password_file(GATEWAY_ID, wrong)
            ),
        )
        result = run_daemon(config, "--simulate", "--duration", "20", "--speed", "20", "--quiet")
        received = watcher.received()
    finally:
        watcher.close()
    assert result.returncode == 0, result.stderr
    assert "refused the connection (Not authorized)" in result.stderr
    assert "mqtt.password_file" in result.stderr
    assert wrong not in result.stderr
    assert "Traceback" not in result.stderr
    assert len(unsent_alert_ids(tmp_path / "data")) >= 2  # S1 and S2 of the desaturation
    assert received == []


def _connects(broker: SecureBroker, port: int, security: BrokerSecurity) -> bool:
    """Whether a client configured by `security` gets a successful CONNACK on `port`."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="cert", protocol=mqtt.MQTTv5)
    security.apply(client)
    accepted = threading.Event()
    done = threading.Event()

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            accepted.set()
        done.set()

    client.on_connect = on_connect
    client.on_connect_fail = lambda *_: done.set()
    client.on_disconnect = lambda *_: done.set()
    client.connect_async("localhost", port)
    client.loop_start()
    try:
        done.wait(10)
        return accepted.is_set()
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.broker
def test_client_certificate_from_config_files_is_presented(
    tmp_path: Path, secure_broker: SecureBroker
) -> None:
    cert, key = secure_broker.client_cert(GATEWAY_ID)
    password_file = secure_broker.password_file(GATEWAY_ID)

    def security(with_cert: bool) -> BrokerSecurity:
        return load_security(
            ca_file=secure_broker.ca_file,
            cert_file=cert if with_cert else None,
            key_file=key if with_cert else None,
            username=GATEWAY_ID,
            password_file=password_file,
            labels=CONFIG_LABELS,
        )

    assert _connects(secure_broker, secure_broker.cert_port, security(with_cert=True))
    assert not _connects(secure_broker, secure_broker.cert_port, security(with_cert=False))
