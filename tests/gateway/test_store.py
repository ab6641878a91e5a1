"""The store: migrations, batch atomicity, the alert lifecycle and the outbox order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alerts.engine import RuleEvent, Transition
from alerts.lifecycle import Alert, AlertEventKind, AlertStatus
from alerts.rules import Priority, Profile, RuleId, Tier
from gateway.migrations import MIGRATIONS
from gateway.reminders import send_due_reminders
from gateway.store import Patient, ReadingRow, Store, StoreError
from sync.payload import OutboxMessage, alert_event_message

PATIENT = Patient("p-1", Tier.RED, Profile.DEFAULT)


def message(alert: Alert, kind: AlertEventKind, ts_s: float) -> OutboxMessage:
    return alert_event_message("pg", "site", alert, kind, ts_s)


def event(
    transition: Transition, ts_s: int, rule: RuleId = RuleId.S1, latching: bool = True
) -> RuleEvent:
    return RuleEvent(rule, transition, ts_s, Priority.HIGH, latching, {"window_median": 86.0})


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store.open(tmp_path / "db" / "pulsegate.db", "gw-1")
    opened.add_patient(PATIENT, 0.0)
    return opened


def test_schema_is_migrated_once_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    Store.open(path, "gw").close()
    reopened = Store.open(path, "gw")
    assert reopened.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert reopened.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert reopened.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    store = Store.open(path, "gw")
    store.db.execute("PRAGMA user_version = 999")
    store.close()
    with pytest.raises(StoreError, match="newer than this pulsegate"):
        Store.open(path, "gw")


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not usable"):
        Store.open(path, "gw")


def test_batch_is_all_or_nothing(store: Store) -> None:
    def broken(alert: Alert, kind: AlertEventKind, ts_s: float) -> OutboxMessage:
        raise RuntimeError("payload failed")

    rows = [ReadingRow(10.0, "p-1", "dev", "spo2_percent", 86.0, 0)]
    with pytest.raises(RuntimeError):
        store.write_batch(rows, [(PATIENT, event(Transition.ONSET, 10))], {}, broken, 11.0)
    assert store.count("readings") == store.count("alerts") == store.count("outbox") == 0


def test_latched_alert_waits_for_an_ack_after_it_resolves(store: Store) -> None:
    raised = store.write_batch([], [(PATIENT, event(Transition.ONSET, 100))], {}, message, 100.0)
    assert [(a.status, k) for a, k in raised] == [(AlertStatus.OPEN, AlertEventKind.RAISED)]
    resolved = store.write_batch(
        [], [(PATIENT, event(Transition.RESOLVED, 500))], {}, message, 500.0
    )
    assert [(a.status, k) for a, k in resolved] == [(AlertStatus.RESOLVED, AlertEventKind.RESOLVED)]
    assert len(store.list_alerts(open_only=True)) == 1
    acked = store.ack(raised[0][0].id[:8], "dr-wang", 600.0, message)
    assert acked.status is AlertStatus.CLOSED
    assert store.list_alerts(open_only=True) == []
    kinds = [row["kind"] for row in store.db.query("SELECT kind FROM alert_events ORDER BY id")]
    assert kinds == ["raised", "resolved", "acked"]
    assert store.count("outbox") == 3


def test_non_latching_alert_closes_by_itself(store: Store) -> None:
    store.write_batch(
        [], [(PATIENT, event(Transition.ONSET, 100, latching=False))], {}, message, 100.0
    )
    store.write_batch(
        [], [(PATIENT, event(Transition.RESOLVED, 900, latching=False))], {}, message, 900.0
    )
    assert store.list_alerts(open_only=True) == []
    with pytest.raises(StoreError, match="nothing to acknowledge"):
        store.ack(store.list_alerts()[0]["id"], "x", 1000.0, message)


def test_one_live_alert_per_patient_and_rule(store: Store) -> None:
    store.write_batch([], [(PATIENT, event(Transition.ONSET, 100))], {}, message, 100.0)
    store.write_batch([], [(PATIENT, event(Transition.RESOLVED, 500))], {}, message, 500.0)
    again = store.write_batch([], [(PATIENT, event(Transition.ONSET, 700))], {}, message, 700.0)
    assert [a.status for a, _ in again] == [AlertStatus.OPEN]
    assert store.count("alerts") == 1


def test_replaying_the_same_onset_does_not_duplicate_the_outbox(tmp_path: Path) -> None:
    ids = []
    for run in range(2):
        store = Store.open(tmp_path / f"run{run}.db", "gw-1")
        store.add_patient(PATIENT, 0.0)
        store.write_batch([], [(PATIENT, event(Transition.ONSET, 100))], {}, message, 100.0)
        ids.append([row.message_id for row in store.pending_messages(10)])
        store.close()
    assert ids[0] == ids[1] and len(ids[0]) == 1


def test_outbox_drains_most_urgent_first_then_oldest(store: Store) -> None:
    for priority, message_id in [(2, "summary-1"), (0, "alert-1"), (1, "status-1"), (0, "alert-2")]:
        store.db.execute(
            "INSERT INTO outbox (priority, topic, message_id, payload, created_s)"
            " VALUES (?, 't', ?, '{}', 0)",
            [priority, message_id],
        )
    pending = store.pending_messages(10)
    assert [row.message_id for row in pending] == ["alert-1", "alert-2", "status-1", "summary-1"]
    store.mark_sent([pending[0].id], 5.0)
    assert [row.message_id for row in store.pending_messages(1)] == ["alert-2"]
    assert store.outbox_backlog() == {0: 1, 1: 1, 2: 1}


def test_the_alert_watermark_is_the_oldest_unsent_alert_event(store: Store) -> None:
    assert store.synced_through_s(1000.0) == 1000.0  # nothing waits: synced up to now
    for priority, message_id, created_s in [(0, "a1", 100.0), (0, "a2", 200.0), (2, "s1", 50.0)]:
        store.db.execute(
            "INSERT INTO outbox (priority, topic, message_id, payload, created_s)"
            " VALUES (?, 't', ?, '{}', ?)",
            [priority, message_id, created_s],
        )
    assert store.synced_through_s(1000.0) == 100.0  # a summary held back does not count
    first = store.pending_messages(1)[0]
    store.mark_sent([first.id], 300.0)
    assert store.synced_through_s(1000.0) == 200.0
    store.mark_sent([row.id for row in store.pending_messages(10)], 400.0)
    assert store.synced_through_s(1000.0) == 1000.0


def test_binding_needs_an_existing_patient(store: Store) -> None:
    store.ensure_device("dev-1", "berrymed-bci", "ble", 0.0)
    with pytest.raises(StoreError, match="no patient 'nobody'"):
        store.bind("dev-1", "nobody", 1.0)
    store.bind("dev-1", "p-1", 1.0)
    assert store.current_bindings() == {"dev-1": "p-1"}


def test_reminders_renotify_and_escalate_with_outbox_rows(store: Store) -> None:
    s3 = RuleEvent(RuleId.S3, Transition.ONSET, 0, Priority.MEDIUM, False, {})
    store.write_batch([], [(PATIENT, event(Transition.ONSET, 0)), (PATIENT, s3)], {}, message, 0.0)
    assert send_due_reminders(store, 299.0, message) == []
    kinds = {(a.rule, k) for a, k in send_due_reminders(store, 300.0, message)}
    assert kinds == {(RuleId.S1, AlertEventKind.RENOTIFIED)}  # HIGH in red: every 5 min
    escalated = send_due_reminders(store, 4 * 3600.0, message)
    assert (RuleId.S3, AlertEventKind.ESCALATED) in {(a.rule, k) for a, k in escalated}
    rows = store.list_alerts(open_only=True)
    assert {r["rule"]: r["priority"] for r in rows}["S3"] == "HIGH"
    store.ack(store.list_alerts()[0]["id"], "dr", 4 * 3600.0 + 1, message)
    outbox_kinds = [json.loads(r.payload)["event"] for r in store.pending_messages(50)]
    assert outbox_kinds.count("renotified") >= 2
    assert "escalated" in outbox_kinds
