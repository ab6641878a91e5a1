"""Real faults between the daemon (a real process with the simulator) and a real mosquitto:
the broker SIGKILLed and restarted ten times, and a blackholed link (a fault proxy that drops
bytes without closing anything). No alert event may be lost or shown twice, urgent messages
go before the backlog, and the outbox holds until the link is back."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from sync.payload import OutboxPriority
from tests.conftest import Broker
from tests.sync.conftest import run_cli, wait_until
from tests.sync.daemon_process import (
    GATEWAY_ID,
    SITE,
    DaemonProcess,
    gateway_config,
    outbox,
    unsent_alert_ids,
)
from tests.sync.fault_tools import FaultProxy, PersistentSubscriber

KILLS = 10
KEEPALIVE_S = 5
FILLER_ROWS = 2000
FILLER_TOPIC = f"pulsegate/{SITE}/{GATEWAY_ID}/summaries"


def kill_and_restart(broker: Broker, down_s: float) -> None:
    """SIGKILL mosquitto (no goodbye to anyone), wait, start it again on the same port."""
    assert broker.process is not None
    broker.process.kill()
    broker.process.wait()
    broker.process = None
    time.sleep(down_s)
    broker.start()


def queue_summary_backlog(data_dir: Path, rows: int) -> None:
    """Lower-priority outbox rows (SUMMARY), written beside the daemon as its own would be."""
    now_s = time.time()
    with sqlite3.connect(data_dir / "pulsegate.db", timeout=10) as conn:
        conn.executemany(
            "INSERT INTO outbox (priority, topic, message_id, payload, created_s)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (
                    int(OutboxPriority.SUMMARY),
                    FILLER_TOPIC,
                    f"backlog-{i}",
                    f'{{"kind":"test-backlog","message_id":"backlog-{i}"}}',
                    now_s,
                )
                for i in range(rows)
            ],
        )


def all_alert_ids(data_dir: Path) -> set[str]:
    rows = outbox(
        data_dir, f"SELECT message_id FROM outbox WHERE priority = {OutboxPriority.ALERT}"
    )
    return {str(row[0]) for row in rows}


def hub_event_ids(db: Path) -> list[str]:
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=10) as conn:
        return [row[0] for row in conn.execute("SELECT message_id FROM hub_events")]


@pytest.mark.broker
def test_ten_broker_kills_lose_no_alert_and_show_none_twice(
    tmp_path: Path, broker: Broker, start_hub: Any, empty_config: Path
) -> None:
    data_dir = tmp_path / "data"
    hub_db = tmp_path / "hub.db"
    hub = start_hub(broker.port, str(hub_db))
    watcher = PersistentSubscriber(broker.port, "pulsegate/#", "watcher")
    daemon = DaemonProcess.start(
        gateway_config(tmp_path, broker.port), "--simulate", "--speed", "20"
    )
    try:
        time.sleep(2.0)  # sessions and subscriptions reach the broker's autosave (1 s)
        for kill in range(KILLS):
            if kill == KILLS - 1:
                # The last, longer outage: alerts pile up, then a summary backlog behind them.
                # It comes last because a SIGKILLed broker loses what it queued for the
                # subscriber since its last autosave: a kill during the drain would test
                # mosquitto's persistence, not the gateway's.
                broker.process.kill()  # type: ignore[union-attr]
                broker.process.wait()  # type: ignore[union-attr]
                broker.process = None
                assert wait_until(lambda: unsent_alert_ids(data_dir), timeout_s=20)
                queue_summary_backlog(data_dir, FILLER_ROWS)
                backlog_alerts = unsent_alert_ids(data_dir)
                broker.start()
            else:
                kill_and_restart(broker, down_s=0.5)
            time.sleep(2.0)
        # The link stays up now: everything queued must drain.
        assert wait_until(
            lambda: not outbox(data_dir, "SELECT 1 FROM outbox WHERE sent_s IS NULL"), 30
        )
        assert daemon.stop() == 0
    finally:
        daemon.stop()
    expected = all_alert_ids(data_dir)
    assert len(expected) >= 5, daemon.log()
    try:
        assert watcher.wait_for_ids(expected, timeout_s=20) == set()
        received = watcher.message_ids()
    finally:
        watcher.close()
    assert wait_until(lambda: set(hub_event_ids(hub_db)) >= expected, timeout_s=20), hub.log()
    assert hub.stop() == 0

    # The hub shows every alert event once: its events are exactly the gateway's.
    stored = hub_event_ids(hub_db)
    assert sorted(stored) == sorted(expected)
    listed = run_cli(empty_config, "hub", "alerts", "--json", "--db", str(hub_db))
    alert_ids = re.findall(r'"alert_id": "([0-9a-f-]+)"', listed.stdout)
    assert len(alert_ids) == len(set(alert_ids)) > 0
    # Every backlog alert reached the subscriber before the first summary of the backlog.
    first_backlog = next(i for i, m in enumerate(received) if m.startswith("backlog-"))
    assert backlog_alerts
    assert all(received.index(m) < first_backlog for m in backlog_alerts)
    assert {m for m in received if m.startswith("backlog-")} == {
        f"backlog-{i}" for i in range(FILLER_ROWS)
    }
    print(
        f"alert events {len(expected)}, deliveries to the subscriber {len(received)}"
        f" ({len(received) - len(set(received))} redelivered), broker kills {KILLS}"
    )


def _seconds_until(predicate: Any, timeout_s: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.1)
    return None


@pytest.mark.broker
def test_blackholed_link_is_detected_by_keepalive_and_the_outbox_drains_after(
    tmp_path: Path, broker: Broker
) -> None:
    data_dir = tmp_path / "data"
    proxy = FaultProxy(broker.port)
    watcher = PersistentSubscriber(broker.port, "pulsegate/+/+/alerts", "watcher")
    config = gateway_config(tmp_path, proxy.port, keepalive_s=KEEPALIVE_S)
    daemon = DaemonProcess.start(config, "--simulate", "--speed", "20")
    try:
        assert wait_until(watcher.message_ids, timeout_s=30), daemon.log()
        proxy.blackhole()
        lost = _seconds_until(lambda: "lost the broker" in daemon.log(), timeout_s=4 * KEEPALIVE_S)
        # paho pings after KEEPALIVE_S of silence and gives up KEEPALIVE_S after that.
        assert lost is not None, daemon.log()
        assert lost <= 2 * KEEPALIVE_S + 3
        seen_before = set(watcher.message_ids())
        assert wait_until(lambda: unsent_alert_ids(data_dir), timeout_s=30), daemon.log()
        held = unsent_alert_ids(data_dir)
        time.sleep(1.0)
        assert held <= unsent_alert_ids(data_dir)  # still held: nothing marks them sent
        assert not held & set(watcher.message_ids())
        proxy.forward()
        assert watcher.wait_for_ids(held, timeout_s=45) == set(), daemon.log()
        assert wait_until(lambda: not held & unsent_alert_ids(data_dir), timeout_s=10)
        assert daemon.stop() == 0
    finally:
        daemon.stop()
        watcher.close()
        proxy.close()
    log = daemon.log()
    assert "Traceback" not in log
    assert log.count("connected to the broker") >= 2
    print(
        f"blackhole detected after {lost:.1f} s; held {len(held)}, seen before {len(seen_before)}"
    )
