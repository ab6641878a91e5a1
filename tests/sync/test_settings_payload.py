"""The settings downlink and its echo: round trip, validation with a reason, and garbage in
any shape is a PayloadError or a rejection, never a crash."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.rules import Profile, Tier
from sync.payload import PayloadError
from sync.settings_payload import (
    ActiveSettings,
    Source,
    active_echo,
    make_settings,
    parse_settings,
    rejected_echo,
    settings_message,
)


def message(**changes: Any) -> bytes:
    body = json.loads(
        settings_message(
            "pg", "v-1", "gw-1", "p-1", 7, make_settings("red", "copd", {}), "dr-li", 1000.0
        ).payload
    )
    body.update(changes)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


def test_a_settings_message_round_trips() -> None:
    settings = make_settings("yellow", "default", {"S2": {"threshold": 90, "window_s": 90}})
    built = settings_message("pg", "v-1", "gw-1", "p-1", 3, settings, "dr-li", 1000.0)
    assert built.topic == "pg/v-1/gw-1/settings"
    parsed = parse_settings(built.payload)
    assert (parsed.message_id, parsed.gateway, parsed.site) == (built.message_id, "gw-1", "v-1")
    assert (parsed.patient, parsed.version, parsed.issued_by) == ("p-1", 3, "dr-li")
    assert parsed.issued_at_s == 1000.0
    assert parsed.settings == settings and parsed.problem == ""


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"tier": "purple"}, "tier: 'purple' is not red, yellow, green"),
        ({"profile": None}, "profile: 'None' is not default, copd"),
        ({"overrides": {"S2": {"threshold": 40}}}, "overrides: S2.threshold: expected above 50"),
        ({"overrides": {"Z9": {"window_s": 3}}}, "overrides: unknown rule(s): Z9"),
        ({"overrides": {"S2": 90}}, "overrides: 'S2': expected an object"),
        ({"overrides": [1]}, "overrides: expected a JSON object"),
        ({"issued_at": "yesterday"}, "issued_at: 'yesterday' is not an ISO 8601 time"),
    ],
)
def test_invalid_settings_come_back_with_the_reason(changes: dict[str, Any], problem: str) -> None:
    parsed = parse_settings(message(**changes))
    assert parsed.settings is None
    assert parsed.problem.startswith(problem), parsed.problem
    assert parsed.version == 7  # still answerable: the box says why it refused


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"kind": "ack"}, "kind 'ack' is not 'settings'"),
        ({"version": 0}, "version: expected an integer"),
        ({"version": "7"}, "version: expected an integer"),
        ({"version": True}, "version: expected an integer"),
        ({"patient": ""}, "patient: expected a printable string"),
        ({"message_id": None}, "message_id: expected a printable string"),
        ({"schema": 2}, "schema 2 is not 1"),
    ],
)
def test_a_message_that_cannot_be_answered_is_a_payload_error(
    changes: dict[str, Any], error: str
) -> None:
    with pytest.raises(PayloadError, match=error):
        parse_settings(message(**changes))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)


@settings(deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_are_parsed_or_refused_with_a_payload_error(payload: bytes) -> None:
    with contextlib.suppress(PayloadError):  # anything else would fail the test
        parse_settings(payload)


@settings(deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["kind", "version", "tier", "profile", "overrides", "issued_at", "patient"]
        ),
        json_values,
    )
)
def test_any_fields_are_parsed_rejected_or_refused(changes: dict[str, Any]) -> None:
    try:
        parsed = parse_settings(message(**changes))
    except PayloadError:
        return
    assert (parsed.settings is None) == bool(parsed.problem)
    if parsed.settings is not None:
        parsed.settings.rules()  # valid settings always make a rule table


def test_the_echo_of_a_redelivered_message_is_the_same_message() -> None:
    settings = make_settings("red", "default", {"S1": {"window_s": 20}})
    active = ActiveSettings("p-1", 4, settings, Source.HOSPITAL, "dr-li", 50.0)
    first = active_echo("pg", "v-1", "gw-1", active, "m-1")
    assert first == active_echo("pg", "v-1", "gw-1", active, "m-1")
    assert first.message_id != active_echo("pg", "v-1", "gw-1", active, "m-2").message_id
    body = json.loads(first.payload)
    assert first.topic == "pg/v-1/gw-1/settings-echo"
    assert body["kind"] == "settings-active"
    assert (body["version"], body["source"], body["in_reply_to"]) == (4, "hospital", "m-1")
    assert (body["tier"], body["profile"]) == (Tier.RED.value, Profile.DEFAULT.value)
    assert body["overrides"] == {"S1": {"window_s": 20}}


def test_a_rejection_echo_carries_the_reason_and_the_version_still_active() -> None:
    command = parse_settings(message(tier="purple"))
    echo = json.loads(rejected_echo("pg", "v-1", "gw-1", command, "bad tier", 2, 60.0).payload)
    assert echo["kind"] == "settings-rejected"
    assert (echo["version"], echo["active_version"], echo["reason"]) == (7, 2, "bad tier")
    assert echo["in_reply_to"] == command.message_id
