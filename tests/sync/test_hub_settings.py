"""The hub's settings tables: echoes parsed, stored once, and the per-patient list saying what
became of the newest request; a database from before these tables gets them."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync.hub_settings import (
    list_settings,
    newest_version,
    parse_settings_echo,
    queue_settings,
    record_settings_echo,
)
from sync.hub_store import HubStore
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

SITE, GATEWAY, PATIENT = "v-1", "gw-1", "p-1"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HubStore]:
    opened = HubStore.open(str(tmp_path / "hub.db"))
    yield opened
    opened.close()


def request(store: HubStore, version: int) -> str:
    settings = make_settings("red", "default", {"S2": {"threshold": 90}})
    message = settings_message("pg", SITE, GATEWAY, PATIENT, version, settings, "dr-li", 10.0)
    queue_settings(store, message, PATIENT, version, "dr-li", 10.0 + version)
    return message.payload


def echo_active(version: int, in_reply_to: str | None) -> bytes:
    settings = make_settings("red", "default", {"S2": {"threshold": 90}})
    active = ActiveSettings(PATIENT, version, settings, Source.HOSPITAL, "dr-li", 20.0 + version)
    return active_echo("pg", SITE, GATEWAY, active, in_reply_to).payload.encode()


def test_an_echo_is_stored_once_and_the_request_becomes_active(store: HubStore) -> None:
    command = parse_settings(request(store, 1))
    assert list_settings(store)[0]["request"]["state"] == "waiting for the hub"
    echo = parse_settings_echo(SITE, GATEWAY, echo_active(1, command.message_id))
    assert record_settings_echo(store, echo, 30.0)
    assert not record_settings_echo(store, echo, 31.0)  # redelivered: stored once
    [row] = list_settings(store)
    assert (row["active_version"], row["request"]["state"]) == (1, "active")
    assert row["active"]["overrides"] == {"S2": {"threshold": 90}}
    assert newest_version(store, SITE, GATEWAY, PATIENT) == 1


def test_a_rejected_request_lists_the_reason_and_a_local_change_raises_the_version(
    store: HubStore,
) -> None:
    command = parse_settings(request(store, 2))
    refused = rejected_echo("pg", SITE, GATEWAY, command, "no patient 'p-1'", 0, 40.0)
    record_settings_echo(store, parse_settings_echo(SITE, GATEWAY, refused.payload.encode()), 41)
    assert list_settings(store)[0]["request"]["state"] == "rejected: no patient 'p-1'"
    local = parse_settings_echo(SITE, GATEWAY, echo_active(7, None))  # set on the box
    record_settings_echo(store, local, 50.0)
    assert newest_version(store, SITE, GATEWAY, PATIENT) == 7


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"kind": "settings"}, "is not a settings echo"),
        ({"gateway": "gw-2"}, "names another gateway"),
        ({"version": -1}, "version: expected an integer"),
        ({"overrides": "S2"}, "overrides: expected a JSON object"),
    ],
)
def test_an_echo_that_does_not_follow_the_schema_is_refused(
    change: dict[str, object], error: str
) -> None:
    body = {**json.loads(echo_active(1, "m-1")), **change}
    with pytest.raises(PayloadError, match=error):
        parse_settings_echo(SITE, GATEWAY, json.dumps(body).encode())


def test_a_hub_database_from_before_settings_gets_the_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    HubStore.open(str(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE hub_settings_echoes")
        conn.execute("DROP TABLE hub_settings_requests")
    reopened = HubStore.open(str(path))
    request(reopened, 1)
    assert list_settings(reopened)[0]["request"]["version"] == 1
    reopened.close()
