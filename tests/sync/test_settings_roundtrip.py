"""Per-patient settings end to end, all real: `pulsegate hub settings` -> `pulsegate hub run`
-> mosquitto -> the daemon (simulated patients) applies them -> an S2 threshold override
changes what is raised -> the echo reaches the hub -> the daemon restarts with them."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Broker
from tests.sync.conftest import HubProcess, publish, run_cli, wait_until
from tests.sync.daemon_process import gateway_config, start_simulated

GATEWAY, SITE = "gw-settings", "village-3"
PATIENT = "demo-healthy"  # SpO2 about 97 %: never an S2 on the default table (<= 92 %)


def daemon_config(tmp_path: Path, port: int) -> Path:
    return gateway_config(tmp_path, port, gateway_id=GATEWAY, site=SITE)


def start_daemon(config: Path) -> subprocess.Popen[bytes]:
    return start_simulated(config, "--speed", "20")


def is_s2_raised(message: dict[str, Any]) -> bool:
    return (message.get("patient"), message.get("rule"), message.get("event")) == (
        PATIENT,
        "S2",
        "raised",
    )


def wait_online(status: Any, seen: int) -> int:
    """Wait for the daemon's next "online" after `seen` of them; how many there are now."""
    births = wait_until(
        lambda: len(status.wait_for(lambda m: m.get("state") == "online", timeout_s=0.1)) > seen,
        timeout_s=30,
    )
    assert births, "the daemon did not come online"
    return seen + 1


def stop(daemon: subprocess.Popen[bytes]) -> None:
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0


def hub_rows(hub_db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(hub_db) as conn:
        return conn.execute(sql).fetchall()


def listed(empty_config: Path, hub_db: Path) -> dict[str, Any]:
    result = run_cli(empty_config, "hub", "settings", "--list", "--json", "--db", str(hub_db))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    return next((row for row in rows if row["patient"] == PATIENT), {})


def shown(config: Path) -> dict[str, Any]:
    result = run_cli(config, "patients", "show", PATIENT, "--json")
    assert result.returncode == 0, result.stderr
    shown_settings: dict[str, Any] = json.loads(result.stdout)
    return shown_settings


@pytest.mark.broker
def test_hospital_settings_are_applied_echoed_and_survive_a_restart(
    tmp_path: Path,
    broker: Broker,
    subscribe: Any,
    start_hub: Callable[..., HubProcess],
    empty_config: Path,
) -> None:
    hub_db = tmp_path / "hub.db"
    start_hub(broker.port, str(hub_db))
    alerts = subscribe(broker.port, f"pulsegate/{SITE}/{GATEWAY}/alerts")
    status = subscribe(broker.port, f"pulsegate/{SITE}/{GATEWAY}/status")
    config = daemon_config(tmp_path, broker.port)
    daemon = start_daemon(config)
    try:
        births = wait_online(status, 0)
        sent = run_cli(
            empty_config,
            "hub",
            "settings",
            f"{SITE}/{GATEWAY}",
            PATIENT,
            "--tier",
            "green",
            "--override",
            "S2.threshold=98",
            "--by",
            "dr-li",
            "--db",
            str(hub_db),
        )
        assert sent.returncode == 0, sent.stderr
        assert "settings version 1" in sent.stdout

        # The override is in force: 97 % is now an S2 for this patient, with the new limit.
        raised = alerts.wait_for(is_s2_raised, timeout_s=60)
        assert raised, "no S2 alert for the healthy patient after the override"
        assert raised[0]["details"]["limit"] == 98.0
        # The echo reached the hub, which now lists version 1 as active.
        entry = wait_until(lambda: listed(empty_config, hub_db).get("active"), timeout_s=30)
        assert entry == {
            "issued_by": "dr-li",
            "overrides": {"S2": {"threshold": 98}},
            "profile": "default",
            "source": "hospital",
            "tier": "green",
        }
        assert listed(empty_config, hub_db)["request"]["state"] == "active"

        # Invalid settings, even newer, are refused with the reason and change nothing.
        [(request_payload,)] = hub_rows(hub_db, "SELECT payload FROM hub_settings_requests")
        bad = {**json.loads(request_payload), "version": 2, "message_id": "m-bad"}
        bad["overrides"] = {"S2": {"threshold": 20}}
        topic = f"pulsegate/{SITE}/{GATEWAY}/settings"
        publish(broker.port, [(topic, json.dumps(bad))])
        rejected = wait_until(
            lambda: hub_rows(
                hub_db,
                "SELECT version, active_version, details FROM hub_settings_echoes"
                " WHERE kind = 'settings-rejected'",
            ),
            timeout_s=30,
        )
        assert rejected and rejected[0][:2] == (2, 1)
        assert "S2.threshold: expected above 50" in json.loads(rejected[0][2])["reason"]
        stop(daemon)

        after = shown(config)
        assert (after["version"], after["source"], after["tier"]) == (1, "hospital", "green")
        assert after["overrides"] == {"S2": {"threshold": 98}}

        # Restarted: still version 1; the original message delivered again changes nothing.
        daemon = start_daemon(config)
        wait_online(status, births)
        publish(broker.port, [(topic, request_payload)])
        ignored = wait_until(
            lambda: [r for r in shown(config)["history"] if r["outcome"] == "ignored"],
            timeout_s=30,
        )
        assert ignored and ignored[0]["version"] == 1
        stop(daemon)
    finally:
        daemon.kill()
        daemon.wait()
    final = shown(config)
    assert (final["version"], final["overrides"]) == (1, {"S2": {"threshold": 98}})
    outcomes = [row["outcome"] for row in reversed(final["history"])]
    assert outcomes == ["applied", "rejected", "ignored"]
    echoes = hub_rows(hub_db, "SELECT kind FROM hub_settings_echoes ORDER BY event_s")
    assert [kind for (kind,) in echoes].count("settings-active") >= 1
