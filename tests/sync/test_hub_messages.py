"""Status and ack payloads, topics, and the hub's checks of what it receives."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.lifecycle import Alert, AlertEventKind, AlertStatus
from alerts.rules import Priority, Profile, RuleId, Tier
from sync.hub_messages import parse_alert_event, parse_status
from sync.payload import (
    GatewayState,
    OutboxPriority,
    PayloadError,
    ack_message,
    alert_event_message,
    parse_ack,
    shared_filter,
    split_topic,
    status_message,
    topic_filter,
)

ONSET_S = 1_780_000_000.0


def make_alert(**changes: Any) -> Alert:
    fields: dict[str, Any] = {
        "id": "0b6f3c1e-2a51-5d8e-9f4a-1c2d3e4f5a6b",
        "gateway_id": "gw-1",
        "patient_id": "p-0042",
        "rule": RuleId.S1,
        "priority": Priority.HIGH,
        "tier": Tier.RED,
        "profile": Profile.DEFAULT,
        "status": AlertStatus.OPEN,
        "onset_s": ONSET_S,
        "details": {"window_median": 86.0, "window_s": 30, "limit": 88.0},
    }
    fields.update(changes)
    return Alert(**fields)


def alert_payload(**changes: Any) -> dict[str, Any]:
    message = alert_event_message(
        "pulsegate", "village-1", make_alert(), AlertEventKind.RAISED, ONSET_S + 5
    )
    body: dict[str, Any] = json.loads(message.payload)
    body.update(changes)
    return body


def test_the_gateways_alert_payload_parses_back_field_by_field() -> None:
    message = alert_event_message(
        "pulsegate", "village-1", make_alert(), AlertEventKind.RAISED, ONSET_S + 5
    )
    event = parse_alert_event("village-1", "gw-1", message.payload.encode())
    assert (event.message_id, event.alert_id) == (message.message_id, make_alert().id)
    assert (event.patient, event.rule, event.priority, event.event) == (
        "p-0042",
        "S1",
        "HIGH",
        "raised",
    )
    assert (event.onset_s, event.event_s) == (ONSET_S, ONSET_S + 5)
    assert event.details["window_median"] == 86.0
    assert (event.priority_rank, event.historical, event.acked_by) == (0, False, None)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"schema": 2}, "schema 2"),
        ({"kind": "status"}, "kind 'status'"),
        ({"gateway": "gw-2"}, "came on the topic of village-1/gw-1"),
        ({"patient": ""}, "patient"),
        ({"patient": "x" * 200}, "patient"),
        ({"patient": "p\u0000"}, "patient"),
        ({"event_time": "yesterday"}, "event_time"),
        ({"onset_time": "2026-11-23T03:14:20"}, "no time zone"),
        ({"details": [1, 2]}, "details"),
        ({"historical": "yes"}, "historical"),
    ],
)
def test_a_malformed_alert_payload_is_refused_with_the_reason(
    changes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_alert_event("village-1", "gw-1", json.dumps(alert_payload(**changes)).encode())


def test_words_a_newer_gateway_may_send_are_accepted_and_unknown_priorities_rank_first() -> None:
    body = alert_payload(rule="X9", event="escalated", status="escalated", priority="URGENT")
    body["historical"] = True
    event = parse_alert_event("village-1", "gw-1", json.dumps(body).encode())
    assert (event.rule, event.event, event.historical) == ("X9", "escalated", True)
    assert event.priority_rank == 0


@given(st.binary(max_size=300))
def test_garbage_is_only_ever_a_payload_error(data: bytes) -> None:
    for parse in (parse_alert_event, parse_status):
        with contextlib.suppress(PayloadError):
            parse("village-1", "gw-1", data)
    with contextlib.suppress(PayloadError):
        parse_ack(data)


@given(
    st.dictionaries(
        st.sampled_from(["schema", "kind", "state", "will", "backlog"]),
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    )
)
def test_odd_status_objects_are_only_ever_a_payload_error(body: dict[str, Any]) -> None:
    with contextlib.suppress(PayloadError):
        parse_status("village-1", "gw-1", json.dumps(body).encode())


def test_status_messages_round_trip_and_the_will_is_marked() -> None:
    birth = status_message(
        "pulsegate",
        "village-1",
        "gw-1",
        GatewayState.ONLINE,
        ONSET_S,
        synced_through_s=ONSET_S - 60,
        backlog=3,
    )
    will = status_message(
        "pulsegate",
        "village-1",
        "gw-1",
        GatewayState.OFFLINE,
        ONSET_S,
        synced_through_s=ONSET_S - 60,
        backlog=3,
        will=True,
    )
    assert birth.topic == will.topic == "pulsegate/village-1/gw-1/status"
    assert birth.priority is OutboxPriority.STATUS
    assert birth.message_id != will.message_id
    parsed_birth = parse_status("village-1", "gw-1", birth.payload.encode())
    parsed_will = parse_status("village-1", "gw-1", will.payload.encode())
    assert (parsed_birth.state, parsed_birth.will, parsed_birth.backlog) == (
        GatewayState.ONLINE,
        False,
        3,
    )
    assert parsed_birth.synced_through_s == ONSET_S - 60
    assert (parsed_will.state, parsed_will.will) == (GatewayState.OFFLINE, True)
    # Same event time: the Will ranks after the birth it was registered with.
    assert parsed_will.rank > parsed_birth.rank
    unknown = status_message(
        "pulsegate",
        "village-1",
        "gw-1",
        GatewayState.ONLINE,
        ONSET_S,
        synced_through_s=None,
        backlog=None,
    )
    assert json.loads(unknown.payload)["synced_through"] is None
    assert parse_status("village-1", "gw-1", unknown.payload.encode()).synced_through_s is None


def test_the_ack_payload_carries_its_fields_and_a_stable_id() -> None:
    message = ack_message("pulsegate", "village-1", "gw-1", "alert-1", "dr-wang", ONSET_S)
    again = ack_message("pulsegate", "village-1", "gw-1", "alert-1", "dr-wang", ONSET_S)
    assert message == again
    assert message.topic == "pulsegate/village-1/gw-1/ack"
    body = json.loads(message.payload)
    assert body == {
        "schema": 1,
        "kind": "ack",
        "message_id": message.message_id,
        "alert_id": "alert-1",
        "gateway": "gw-1",
        "site": "village-1",
        "acked_by": "dr-wang",
        "acked_at": "2026-05-28T20:26:40.000Z",
    }
    command = parse_ack(message.payload.encode())
    assert (command.alert_id, command.acked_by, command.acked_at_s) == (
        "alert-1",
        "dr-wang",
        ONSET_S,
    )
    with pytest.raises(PayloadError, match="kind"):
        parse_ack(json.dumps({**body, "kind": "alert"}))


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("pulsegate/village-1/gw-1/alerts", ("village-1", "gw-1", "alerts")),
        ("county/a/pulsegate/v/g/status", None),
        ("pulsegate/village-1/alerts", None),
        ("pulsegate//gw-1/alerts", None),
        ("other/village-1/gw-1/alerts", None),
    ],
)
def test_split_topic(topic: str, expected: tuple[str, str, str] | None) -> None:
    if expected is None:
        with pytest.raises(PayloadError):
            split_topic("pulsegate", topic)
    else:
        assert split_topic("pulsegate", topic) == expected


def test_split_topic_with_a_multi_level_prefix_and_the_filters() -> None:
    assert split_topic("county/a", "county/a/v/g/status") == ("v", "g", "status")
    assert topic_filter("pulsegate", "alerts") == "pulsegate/+/+/alerts"
    assert shared_filter("hub", "pulsegate/+/+/alerts") == "$share/hub/pulsegate/+/+/alerts"
