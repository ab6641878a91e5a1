"""Per-patient settings in the store: version ordering, idempotent redelivery, rejection that
changes nothing, one transaction with the echo, and the saved detector state refitted."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.engine import PatientDetector
from alerts.rules import Channel, Profile, RuleId, Tier
from gateway.patient_settings import (
    EchoRoute,
    Outcome,
    active_settings,
    apply_hospital_settings,
    overrides_by_patient,
    set_local_settings,
    settings_log,
)
from gateway.store import Patient, Store, StoreError
from sync.settings_payload import (
    PatientSettings,
    SettingsCommand,
    Source,
    make_settings,
)

ROUTE = EchoRoute("pg", "village-1")
PATIENT = Patient("p-1", Tier.GREEN, Profile.DEFAULT)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "db" / "pulsegate.db", "gw-1")
    opened.add_patient(PATIENT, 0.0)
    yield opened
    opened.close()


def command(
    version: int,
    tier: str = "red",
    overrides: dict[str, Any] | None = None,
    patient: str = PATIENT.id,
    message_id: str | None = None,
) -> SettingsCommand:
    settings = make_settings(tier, "default", overrides or {})
    return SettingsCommand(
        message_id or str(uuid.uuid4()),
        "gw-1",
        "village-1",
        patient,
        version,
        "dr-li",
        1000.0,
        settings,
    )


def echoes(store: Store) -> list[dict[str, Any]]:
    rows = store.db.execute(
        "SELECT payload FROM outbox WHERE topic = 'pg/village-1/gw-1/settings-echo' ORDER BY id"
    )
    return [json.loads(payload) for (payload,) in rows]


def test_a_patient_never_changed_runs_version_0_with_its_tier_and_no_overrides(
    store: Store,
) -> None:
    active = active_settings(store, PATIENT.id)
    assert active is not None
    assert (active.version, active.settings) == (0, PatientSettings(Tier.GREEN, Profile.DEFAULT))
    assert active_settings(store, "nobody") is None


def test_a_newer_version_is_applied_with_tier_and_overrides_and_echoed(store: Store) -> None:
    result = apply_hospital_settings(
        store, command(3, "red", {"S2": {"threshold": 90}}), ROUTE, 5.0
    )
    assert result.outcome is Outcome.APPLIED
    active = active_settings(store, PATIENT.id)
    assert active is not None
    assert (active.version, active.source, active.issued_by) == (3, Source.HOSPITAL, "dr-li")
    assert active.settings.overrides == {"S2": {"threshold": 90}}
    patient = store.get_patient(PATIENT.id)
    assert patient is not None and patient.tier is Tier.RED  # the rest of the box sees it
    assert overrides_by_patient(store) == {PATIENT.id: '{"S2":{"threshold":90}}'}
    [echo] = echoes(store)
    assert echo["kind"] == "settings-active"
    assert (echo["version"], echo["tier"], echo["source"]) == (3, "red", "hospital")
    assert echo["overrides"] == {"S2": {"threshold": 90}}


def test_an_older_or_equal_version_changes_nothing_and_a_redelivery_echoes_once(
    store: Store,
) -> None:
    first = command(5, "red")
    apply_hospital_settings(store, first, ROUTE, 1.0)
    for _ in range(3):  # the broker delivers the same message again
        assert apply_hospital_settings(store, first, ROUTE, 2.0).outcome is Outcome.IGNORED
    older = apply_hospital_settings(store, command(4, "yellow"), ROUTE, 3.0)
    assert older.outcome is Outcome.IGNORED
    assert "not newer than the active 5" in older.reason
    active = active_settings(store, PATIENT.id)
    assert active is not None and (active.version, active.settings.tier) == (5, Tier.RED)
    # one echo for the applied message (its redeliveries answer with the same message id)
    # and one for the older message, saying which version is active
    kinds = [(e["kind"], e["version"], e["in_reply_to"]) for e in echoes(store)]
    assert kinds[0] == ("settings-active", 5, first.message_id)
    assert len(kinds) == 2 and kinds[1][:2] == ("settings-active", 5)
    outcomes = [row["outcome"] for row in settings_log(store, PATIENT.id)]
    assert outcomes == ["ignored", "ignored", "ignored", "ignored", "applied"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(versions=st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=12))
def test_in_any_delivery_order_the_highest_version_wins(
    tmp_path: Path, versions: list[int]
) -> None:
    store = Store.open(tmp_path / f"{uuid.uuid4()}.db", "gw-1")
    store.add_patient(PATIENT, 0.0)
    tiers = ["red", "yellow", "green"]
    for version in versions:
        apply_hospital_settings(store, command(version, tiers[version % 3]), ROUTE, version)
    active = active_settings(store, PATIENT.id)
    assert active is not None
    assert active.version == max(versions)
    assert active.settings.tier.value == tiers[max(versions) % 3]
    applied = [row for row in settings_log(store, PATIENT.id, 100) if row["outcome"] == "applied"]
    running_max = [v for i, v in enumerate(versions) if v > max(versions[:i], default=0)]
    assert [row["version"] for row in reversed(applied)] == running_max
    store.close()


def test_invalid_settings_are_rejected_with_the_reason_and_change_nothing(store: Store) -> None:
    apply_hospital_settings(store, command(1, "yellow"), ROUTE, 1.0)
    invalid = SettingsCommand(
        "m-bad", "gw-1", "village-1", PATIENT.id, 2, "", 0.0, None, "overrides: unknown rule(s): S9"
    )
    result = apply_hospital_settings(store, invalid, ROUTE, 2.0)
    assert result.outcome is Outcome.REJECTED
    active = active_settings(store, PATIENT.id)
    assert active is not None and (active.version, active.settings.tier) == (1, Tier.YELLOW)
    rejected = echoes(store)[-1]
    assert rejected["kind"] == "settings-rejected"
    assert (rejected["version"], rejected["active_version"]) == (2, 1)
    assert rejected["reason"] == "overrides: unknown rule(s): S9"
    assert rejected["in_reply_to"] == "m-bad"


def test_settings_for_an_unknown_patient_are_rejected(store: Store) -> None:
    result = apply_hospital_settings(store, command(1, patient="ghost"), ROUTE, 1.0)
    assert result.outcome is Outcome.REJECTED
    assert "no patient 'ghost'" in result.reason
    assert store.count("patient_settings") == 0
    assert echoes(store)[-1]["active_version"] == 0


def test_a_failure_inside_the_transaction_leaves_settings_patient_and_outbox_unchanged(
    store: Store,
) -> None:
    apply_hospital_settings(store, command(1, "yellow"), ROUTE, 1.0)
    before = store.count("outbox")
    store.db.execute(
        "CREATE TRIGGER no_outbox BEFORE INSERT ON outbox BEGIN SELECT RAISE(FAIL, 'disk'); END"
    )
    with pytest.raises(sqlite3.IntegrityError):
        apply_hospital_settings(store, command(2, "red", {"S2": {"threshold": 90}}), ROUTE, 2.0)
    store.db.execute("DROP TRIGGER no_outbox")
    active = active_settings(store, PATIENT.id)
    assert active is not None and (active.version, active.settings.overrides) == (1, {})
    patient = store.get_patient(PATIENT.id)
    assert patient is not None and patient.tier is Tier.YELLOW
    assert store.count("outbox") == before
    assert [row["outcome"] for row in settings_log(store, PATIENT.id)] == ["applied"]


def test_a_local_change_takes_the_next_version_and_goes_up_as_an_echo(store: Store) -> None:
    apply_hospital_settings(store, command(4, "yellow"), ROUTE, 1.0)
    settings = make_settings("yellow", "copd", {"S1": {"window_s": 45}})
    new = set_local_settings(store, PATIENT.id, lambda _old: settings, "nurse-1", ROUTE, 2.0)
    assert (new.version, new.source, new.issued_by) == (5, Source.LOCAL, "nurse-1")
    echo = echoes(store)[-1]
    assert (echo["version"], echo["source"], echo["in_reply_to"]) == (5, "local", None)
    assert echo["profile"] == "copd"
    # the hospital's own version 5, sent before it heard of the local change, is not applied
    assert apply_hospital_settings(store, command(5), ROUTE, 3.0).outcome is Outcome.IGNORED


def test_a_local_change_for_an_unknown_patient_is_a_clear_error(store: Store) -> None:
    with pytest.raises(StoreError, match="no patient 'ghost'"):
        set_local_settings(store, "ghost", lambda s: s, "nurse-1", ROUTE, 1.0)


def test_the_saved_detector_state_keeps_an_active_rule_and_restarts_its_clear_run(
    store: Store,
) -> None:
    """A daemon that is not running finds, at its next start, the state it would have had
    after refitting: S2 still active (its alert is not forgotten), its clear run restarted."""
    detector = PatientDetector(Tier.GREEN, Profile.DEFAULT)
    low = np.full(400, 90.0)
    detector.step(0, {Channel.SPO2: low})
    high = np.full(200, 97.0)  # clearing has started (S2 clears after 600 s at >= 94)
    detector.step(400, {Channel.SPO2: high})
    assert detector.rule_states[RuleId.S2].active
    assert detector.rule_states[RuleId.S2].clear_run_s > 0
    store.db.execute(
        "INSERT INTO detector_state (patient_id, state, updated_s) VALUES (?, ?, 0)",
        [PATIENT.id, json.dumps(detector.to_json(with_tails=False))],
    )
    apply_hospital_settings(store, command(1, "green", {"S2": {"threshold": 95}}), ROUTE, 1.0)
    state = store.detector_states()[PATIENT.id]
    restored = PatientDetector.from_json(state, Tier.GREEN, Profile.DEFAULT).rule_states
    assert restored[RuleId.S2].active
    assert restored[RuleId.S2].clear_run_s == 0
    assert restored[RuleId.S1] == detector.rule_states[RuleId.S1]  # S1 did not change: kept
