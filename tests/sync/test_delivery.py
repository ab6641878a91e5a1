"""Publishing an outbox row: the historical flag and the message expiry (pure)."""

from __future__ import annotations

import json

import pytest

from sync.delivery import EXPIRY_S, HISTORICAL_AFTER_S, flag_historical, prepare
from sync.payload import OutboxPriority, OutboxRow

NOW_S = 1_800_000_000.0
PAYLOAD = '{"kind":"alert","message_id":"m-1"}'


def row(priority: OutboxPriority, age_s: float, payload: str = PAYLOAD) -> OutboxRow:
    return OutboxRow(1, int(priority), "t", "m-1", payload, NOW_S - age_s)


def test_a_fresh_alert_goes_as_stored_without_properties() -> None:
    assert prepare(row(OutboxPriority.ALERT, 5), NOW_S) == (PAYLOAD, None)


def test_a_late_alert_is_flagged_in_the_payload_and_a_user_property_and_never_expires() -> None:
    payload, properties = prepare(row(OutboxPriority.ALERT, HISTORICAL_AFTER_S + 1), NOW_S)
    assert json.loads(payload) == {"historical": True, **json.loads(PAYLOAD)}
    assert properties is not None
    assert properties.UserProperty == [("historical", "true")]
    assert not hasattr(properties, "MessageExpiryInterval")


@pytest.mark.parametrize(
    "priority", [OutboxPriority.STATUS, OutboxPriority.SUMMARY, OutboxPriority.RAW]
)
def test_status_summaries_and_raw_carry_their_expiry(priority: OutboxPriority) -> None:
    payload, properties = prepare(row(priority, 1), NOW_S)
    assert payload == PAYLOAD
    assert properties is not None
    assert properties.MessageExpiryInterval == EXPIRY_S[priority]
    assert not hasattr(properties, "UserProperty")


def test_a_row_without_a_known_time_is_never_historical() -> None:
    unknown = OutboxRow(1, int(OutboxPriority.ALERT), "t", "m-1", PAYLOAD)
    assert prepare(unknown, NOW_S) == (PAYLOAD, None)


@pytest.mark.parametrize("payload", ["{}", "[1]", "not json", '{"historical":true,"a":1}'])
def test_flagging_leaves_what_it_cannot_or_need_not_flag(payload: str) -> None:
    assert flag_historical(payload) == payload
