"""`pulsegate hub` commands on a database filled by the store (no broker needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fhir.resources.R4B.bundle import Bundle

from alerts.lifecycle import AlertEventKind, AlertStatus
from alerts.rules import Priority
from gateway.cli import main
from sync.hub_messages import parse_alert_event
from sync.hub_store import HubStore
from sync.payload import alert_event_message
from tests.sync.test_hub_messages import ONSET_S, make_alert

OPEN_ID = "aaaaaaaa-0000-5000-8000-000000000001"
CLOSED_ID = "bbbbbbbb-0000-5000-8000-000000000002"


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = str(tmp_path / "hub.db")
    store = HubStore.open(url)
    for alert_id, status, priority in (
        (OPEN_ID, AlertStatus.OPEN, Priority.HIGH),
        (CLOSED_ID, AlertStatus.CLOSED, Priority.MEDIUM),
    ):
        alert = make_alert(id=alert_id, status=status, priority=priority)
        message = alert_event_message(
            "pulsegate", "village-1", alert, AlertEventKind.RAISED, ONSET_S
        )
        event = parse_alert_event("village-1", "gw-1", message.payload.encode())
        store.record_alert_event(event, ONSET_S + 1, "test")
    store.close()
    return url


def invoke(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    config = tmp_path / "empty.toml"
    config.write_text("")
    result = CliRunner().invoke(main, ["--config", str(config), "hub", *args])
    return result.exit_code, result.stdout, result.stderr


def test_alerts_lists_live_first_and_open_hides_closed(tmp_path: Path, db: str) -> None:
    code, out, _ = invoke(tmp_path, "alerts", "--db", db)
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == [OPEN_ID[:8], CLOSED_ID[:8]]
    assert "HIGH   S1  open     p-0042" in lines[0]
    code, out, _ = invoke(tmp_path, "alerts", "--open", "--json", "--db", db)
    assert [json.loads(line)["alert_id"] for line in out.splitlines()] == [OPEN_ID]


def test_ack_without_a_broker_is_queued_and_shown(tmp_path: Path, db: str) -> None:
    code, out, _ = invoke(tmp_path, "ack", OPEN_ID[:8], "--by", "dr-li", "--db", db)
    assert code == 0, out
    assert out.startswith(f"acknowledged {OPEN_ID} (S1 p-0042 on village-1/gw-1)")
    store = HubStore.open(db)
    [pending] = store.pending_acks()
    store.close()
    body = json.loads(pending.payload)
    assert (pending.topic, body["alert_id"], body["acked_by"]) == (
        "pulsegate/village-1/gw-1/ack",
        OPEN_ID,
        "dr-li",
    )
    _, out, _ = invoke(tmp_path, "alerts", "--open", "--db", db)
    assert "(ack by dr-li sent, not yet applied)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ack", CLOSED_ID[:8]), f"error: alert {CLOSED_ID} is already closed"),
        (("ack", OPEN_ID, "--by", ""), "error: --by: 1-64 printable characters"),
        (("ack", OPEN_ID, "--broker", "mqtt://"), "error: broker 'mqtt://': expected"),
    ],
)
def test_ack_refuses_what_it_cannot_do(
    tmp_path: Path, db: str, args: tuple[str, ...], message: str
) -> None:
    code, _, err = invoke(tmp_path, *args, "--db", db)
    assert code in (1, 2)
    assert err.startswith(message)


def test_export_json_lines_carry_the_events(tmp_path: Path, db: str) -> None:
    code, out, _ = invoke(tmp_path, "export", "--open", "--db", db)
    assert code == 0
    [row] = [json.loads(line) for line in out.splitlines()]
    assert row["alert_id"] == OPEN_ID
    assert [event["event"] for event in row["events"]] == ["raised"]


def test_export_fhir_writes_a_valid_bundle(tmp_path: Path, db: str) -> None:
    target = tmp_path / "bundle.json"
    code, _, _ = invoke(tmp_path, "export", "--fhir", "--db", db, "-o", str(target))
    assert code == 0
    bundle = json.loads(target.read_text())
    Bundle.model_validate(bundle)
    kinds = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
    assert kinds == ["Observation", "DetectedIssue", "Observation", "DetectedIssue"]


def test_gateways_with_none_heard_yet(tmp_path: Path) -> None:
    code, out, _ = invoke(tmp_path, "gateways", "--db", str(tmp_path / "new.db"))
    assert (code, out) == (0, "no gateways heard from yet\n")


def test_an_unusable_database_is_one_line(tmp_path: Path) -> None:
    code, _, err = invoke(tmp_path, "alerts", "--db", str(tmp_path / "no" / "such" / "hub.db"))
    assert code == 1
    assert err.startswith("error: cannot open the hub database ")
    assert len(err.splitlines()) == 1


def test_run_refuses_a_group_that_is_not_one_topic_level(tmp_path: Path) -> None:
    code, _, err = invoke(tmp_path, "run", "--broker", "mqtt://127.0.0.1", "--group", "a/b")
    assert code == 2
    assert err == "error: --group 'a/b': one topic level, without / + # $ or spaces\n"
