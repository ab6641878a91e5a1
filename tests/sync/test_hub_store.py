"""The hub database, the same tests on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alerts.lifecycle import AlertEventKind, AlertStatus
from alerts.rules import Priority
from sync.hub_messages import AlertEvent, StatusReport, parse_alert_event, parse_status
from sync.hub_store import HubStore, HubStoreError
from sync.payload import GatewayState, ack_message, alert_event_message, status_message
from tests.sync.conftest import Postgres
from tests.sync.test_hub_messages import ONSET_S, make_alert


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HubStore]:
    if request.param == "sqlite":
        url = str(tmp_path / "hub.db")
    else:
        postgres: Postgres = request.getfixturevalue("postgres")
        url = postgres.new_database()
    hub_store = HubStore.open(url)
    yield hub_store
    hub_store.close()


def event(
    kind: AlertEventKind = AlertEventKind.RAISED, at_s: float = 5, **alert: Any
) -> AlertEvent:
    message = alert_event_message(
        "pulsegate", "village-1", make_alert(**alert), kind, ONSET_S + at_s
    )
    return parse_alert_event("village-1", alert.get("gateway_id", "gw-1"), message.payload.encode())


def status(state: GatewayState, at_s: float, will: bool = False, backlog: int = 0) -> StatusReport:
    message = status_message(
        "pulsegate",
        "village-1",
        "gw-1",
        state,
        ONSET_S + at_s,
        synced_through_s=ONSET_S + at_s - 10,
        backlog=backlog,
        will=will,
    )
    return parse_status("village-1", "gw-1", message.payload.encode())


def test_a_redelivered_message_is_stored_once(store: HubStore) -> None:
    raised = event()
    assert store.record_alert_event(raised, ONSET_S + 6, "hub-a") is True
    assert store.record_alert_event(raised, ONSET_S + 7, "hub-b") is False
    assert store.count("hub_events") == 1
    [alert] = store.list_alerts(open_only=True, limit=10)
    assert (alert["alert_id"], alert["status"], alert["first_received_s"]) == (
        raised.alert_id,
        "open",
        ONSET_S + 6,
    )
    assert alert["details"] == {"window_median": 86.0, "window_s": 30, "limit": 88.0}


def test_the_alert_follows_its_newest_event_whatever_the_arrival_order(store: HubStore) -> None:
    closed = event(AlertEventKind.CLOSED, at_s=300, status=AlertStatus.CLOSED)
    acked = event(AlertEventKind.ACKED, at_s=100, status=AlertStatus.ACKED, acked_by="dr-li")
    raised = event(AlertEventKind.RAISED, at_s=5)
    for item in (closed, acked, raised):  # a replayed backlog, newest first
        store.record_alert_event(item, ONSET_S + 400, "hub-a")
    [alert] = store.list_alerts(open_only=False, limit=10)
    assert (alert["status"], alert["event_s"]) == ("closed", ONSET_S + 300)
    assert store.list_alerts(open_only=True, limit=10) == []
    events = store.alert_events(raised.alert_id)
    assert [row["event"] for row in events] == ["raised", "acked", "closed"]


def test_alerts_are_listed_live_first_then_by_priority_then_oldest(store: HubStore) -> None:
    rows = [
        ("a-medium-old", "MEDIUM", 0, "open"),
        ("a-high-new", "HIGH", 50, "open"),
        ("a-high-old", "HIGH", 10, "acked"),
        ("a-high-closed", "HIGH", 1, "closed"),
        ("a-low", "LOW", 0, "open"),
    ]
    for alert_id, priority, onset, state in rows:
        store.record_alert_event(
            event(
                id=alert_id,
                priority=Priority(priority),
                onset_s=ONSET_S + onset,
                status=AlertStatus(state),
            ),
            ONSET_S + 100,
            "hub-a",
        )
    listed = [row["alert_id"] for row in store.list_alerts(open_only=False, limit=10)]
    assert listed == ["a-high-old", "a-high-new", "a-medium-old", "a-low", "a-high-closed"]
    live = [row["alert_id"] for row in store.list_alerts(open_only=True, limit=2)]
    assert live == ["a-high-old", "a-high-new"]


def test_find_alerts_by_prefix(store: HubStore) -> None:
    for alert_id in ("abc-1", "abd-2"):
        store.record_alert_event(event(id=alert_id), ONSET_S, "hub-a")
    assert [row["alert_id"] for row in store.find_alerts("ab")] == ["abc-1", "abd-2"]
    assert [row["alert_id"] for row in store.find_alerts("abd")] == ["abd-2"]
    assert store.find_alerts("zz") == []


def test_gateway_state_follows_birth_will_and_rebirth_in_any_order(store: HubStore) -> None:
    birth = status(GatewayState.ONLINE, at_s=0)
    will = status(GatewayState.OFFLINE, at_s=0, will=True, backlog=4)  # set at the same connect
    rebirth = status(GatewayState.ONLINE, at_s=600, backlog=0)
    assert store.record_status(will, ONSET_S + 90, retained=False)
    assert store.record_status(birth, ONSET_S + 95, retained=True)  # late replay of the birth
    [gateway] = store.list_gateways()
    assert (gateway["state"], gateway["will_fired"], gateway["backlog"]) == ("offline", 1, 4)
    assert gateway["will_received_s"] == ONSET_S + 90
    assert gateway["last_seen_s"] == ONSET_S + 90  # a retained replay is not a sighting
    assert store.record_status(will, ONSET_S + 99, retained=True) is False
    store.record_status(rebirth, ONSET_S + 601, retained=False)
    [gateway] = store.list_gateways()
    assert (gateway["state"], gateway["will_fired"], gateway["last_seen_s"]) == (
        "online",
        0,
        ONSET_S + 601,
    )
    assert gateway["synced_through_s"] == ONSET_S + 590
    assert gateway["will_received_s"] == ONSET_S + 90  # kept: when it was last lost
    assert store.count("hub_status") == 3


def test_acks_wait_until_published(store: HubStore) -> None:
    store.record_alert_event(event(), ONSET_S + 6, "hub-a")
    [alert] = store.find_alerts(make_alert().id[:8])
    message = ack_message("pulsegate", "village-1", "gw-1", alert["alert_id"], "dr-li", ONSET_S)
    store.record_ack(alert, message, "dr-li", ONSET_S + 60)
    store.record_ack(alert, message, "dr-li", ONSET_S + 60)  # a repeated command: one ack
    [pending] = store.pending_acks()
    assert (pending.message_id, pending.topic) == (message.message_id, message.topic)
    assert json.loads(pending.payload)["acked_by"] == "dr-li"
    [listed] = store.list_alerts(open_only=True, limit=1)
    assert (listed["hub_acked_by"], listed["hub_acked_s"]) == ("dr-li", ONSET_S + 60)
    store.mark_ack_published(message.message_id, ONSET_S + 61)
    assert store.pending_acks() == []
    assert store.count("hub_acks") == 1


def test_rejected_messages_are_kept_aside(store: HubStore) -> None:
    store.record_rejected("pulsegate/v/g/alerts", b"\x00\xffnot json", "not UTF-8 JSON", 1.0)
    assert store.count("hub_rejected") == 1
    with pytest.raises(ValueError, match="not a hub table"):
        store.count("sqlite_master")


def test_opening_the_schema_twice_is_harmless(tmp_path: Path) -> None:
    url = str(tmp_path / "hub.db")
    HubStore.open(url).close()
    again = HubStore.open(url)
    assert again.count("hub_alerts") == 0
    again.close()


def test_an_unreachable_database_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HubStoreError, match=r"cannot open the hub database postgresql://u@") as err:
        HubStore.open("postgresql://u:secret@127.0.0.1:1/hub?connect_timeout=2")
    assert "secret" not in str(err.value)
    with pytest.raises(HubStoreError, match="cannot open the hub database"):
        HubStore.open(str(tmp_path / "missing-dir" / "hub.db"))
