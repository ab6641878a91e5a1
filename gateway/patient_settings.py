"""Per-patient settings in the store: versioned, applied in one transaction, echoed upstream.

A settings change (from the hospital over MQTT, or `pulsegate patients set` on the box) is one
SQLite transaction: the new version, the patient's tier and profile, the saved detector state
refitted to the new rules, a log row and the echo in the outbox. A hospital version that is
not newer than the active one changes nothing (a redelivered or reordered message); invalid
settings are refused with a reason and change nothing either. A local change takes the next
version, so the hospital, which sees it in the echo, numbers its next change above it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from alerts.engine import PatientDetector
from alerts.rules import Profile, Tier
from gateway.settings_detector import detector_for_settings, rules_for
from gateway.store import Patient, Store, StoreError
from sync.payload import OutboxMessage
from sync.settings_payload import (
    ActiveSettings,
    PatientSettings,
    SettingsCommand,
    Source,
    active_echo,
    rejected_echo,
)

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    APPLIED = "applied"
    IGNORED = "ignored"  # not newer than the active version
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class EchoRoute:
    """Where echoes go: the gateway's topic prefix and site (its id is the store's)."""

    prefix: str
    site: str


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    active: ActiveSettings | None  # in force afterwards (None: no such patient)
    reason: str = ""


SettingsEdit = Callable[[PatientSettings], PatientSettings]


def active_settings(store: Store, patient_id: str) -> ActiveSettings | None:
    """The settings in force for `patient_id` (version 0: never changed); None: no patient."""
    rows = list(
        store.db.query(
            "SELECT p.id, p.tier AS patient_tier, p.profile AS patient_profile, p.created_s,"
            " s.version, s.tier, s.profile, s.overrides, s.source, s.issued_by, s.applied_s"
            " FROM patients p LEFT JOIN patient_settings s ON s.patient_id = p.id"
            " WHERE p.id = ?",
            [patient_id],
        )
    )
    if not rows:
        return None
    row = rows[0]
    if row["version"] is None:
        defaults = PatientSettings(Tier(row["patient_tier"]), Profile(row["patient_profile"]))
        return ActiveSettings(patient_id, 0, defaults, Source.LOCAL, "", row["created_s"])
    settings = PatientSettings(Tier(row["tier"]), Profile(row["profile"]), row["overrides"])
    return ActiveSettings(
        patient_id,
        row["version"],
        settings,
        Source(row["source"]),
        row["issued_by"],
        row["applied_s"],
    )


def overrides_by_patient(store: Store) -> dict[str, str]:
    """patient id -> its overrides (canonical JSON), for patients that have any."""
    rows = store.db.execute("SELECT patient_id, overrides FROM patient_settings")
    return {patient_id: overrides for patient_id, overrides in rows if overrides != "{}"}


def apply_hospital_settings(
    store: Store, command: SettingsCommand, route: EchoRoute, now_s: float
) -> Result:
    """Apply a settings message from the hospital, in one transaction with its echo."""
    with store.transaction():
        active = active_settings(store, command.patient)
        if active is None:
            reason = f"no patient {command.patient!r} on gateway {store.gateway_id}"
            result = Result(Outcome.REJECTED, None, reason)
        elif command.version <= active.version:
            reason = f"version {command.version} is not newer than the active {active.version}"
            result = Result(Outcome.IGNORED, active, reason)
        elif command.settings is None:
            result = Result(Outcome.REJECTED, active, command.problem)
        else:
            new = ActiveSettings(
                command.patient,
                command.version,
                command.settings,
                Source.HOSPITAL,
                command.issued_by,
                now_s,
            )
            _write(store, active, new, command.message_id)
            result = Result(Outcome.APPLIED, new)
        if result.outcome is Outcome.REJECTED:
            version = active.version if active is not None else 0
            echo = rejected_echo(
                route.prefix, route.site, store.gateway_id, command, result.reason, version, now_s
            )
        else:
            assert result.active is not None
            echo = active_echo(
                route.prefix, route.site, store.gateway_id, result.active, command.message_id
            )
        _log(store, command, result, now_s)
        _queue(store, echo, now_s)
    return result


def set_local_settings(
    store: Store,
    patient_id: str,
    edit: SettingsEdit,
    issued_by: str,
    route: EchoRoute,
    now_s: float,
) -> ActiveSettings:
    """Change a patient's settings on the box: the next version, source local, echoed up.
    `edit` makes the new settings from the active ones (raising ValueError if it cannot)."""
    with store.transaction():
        active = active_settings(store, patient_id)
        if active is None:
            raise StoreError(f"no patient {patient_id!r}; add it with `pulsegate patients add`")
        settings = edit(active.settings)
        new = ActiveSettings(
            patient_id, active.version + 1, settings, Source.LOCAL, issued_by, now_s
        )
        _write(store, active, new, None)
        _log(store, None, Result(Outcome.APPLIED, new), now_s)
        _queue(store, active_echo(route.prefix, route.site, store.gateway_id, new, None), now_s)
    return new


def _write(store: Store, old: ActiveSettings, new: ActiveSettings, message_id: str | None) -> None:
    settings = new.settings
    store.db.execute(
        "INSERT INTO patient_settings (patient_id, version, tier, profile, overrides, source,"
        " issued_by, message_id, applied_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (patient_id) DO UPDATE SET version = excluded.version,"
        " tier = excluded.tier, profile = excluded.profile, overrides = excluded.overrides,"
        " source = excluded.source, issued_by = excluded.issued_by,"
        " message_id = excluded.message_id, applied_s = excluded.applied_s",
        [
            new.patient,
            new.version,
            settings.tier.value,
            settings.profile.value,
            settings.overrides_json,
            new.source.value,
            new.issued_by,
            message_id,
            new.applied_s,
        ],
    )
    store.db.execute(
        "UPDATE patients SET tier = ?, profile = ? WHERE id = ?",
        [settings.tier.value, settings.profile.value, new.patient],
    )
    _refit_saved_state(store, new.patient, old.settings, settings)


def _refit_saved_state(
    store: Store, patient_id: str, old: PatientSettings, new: PatientSettings
) -> None:
    """The saved detector state as a daemon would refit it, for a daemon that is not running
    (a running one refits its own and saves that with its next batch)."""
    row = store.db.execute(
        "SELECT state FROM detector_state WHERE patient_id = ?", [patient_id]
    ).fetchone()
    if row is None:
        return
    saved: dict[str, Any] = json.loads(row[0])
    detector = PatientDetector.from_json(saved, old.tier, old.profile)
    detector.rules = rules_for(old.tier, old.profile, old.overrides_json)  # what it ran
    detector = detector_for_settings(detector, new)
    state = detector.to_json(with_tails=bool(saved.get("tails")))
    store.db.execute(
        "UPDATE detector_state SET state = ? WHERE patient_id = ?", [json.dumps(state), patient_id]
    )


def _log(store: Store, command: SettingsCommand | None, result: Result, now_s: float) -> None:
    """One row per settings change received: `command` from the hospital, None locally."""
    active = result.active
    applied = result.outcome is Outcome.APPLIED and active is not None
    payload: dict[str, Any] = {}
    if applied and active is not None:
        payload = {
            "tier": active.settings.tier.value,
            "profile": active.settings.profile.value,
            "overrides": active.settings.overrides,
        }
    if command is not None:
        patient_id, version, source = command.patient, command.version, Source.HOSPITAL
    else:
        assert active is not None
        patient_id, version, source = active.patient, active.version, Source.LOCAL
    store.db.execute(
        "INSERT INTO patient_settings_log (patient_id, version, source, message_id, outcome,"
        " reason, payload, ts_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            patient_id,
            version,
            source.value,
            command.message_id if command is not None else None,
            result.outcome.value,
            result.reason,
            json.dumps(payload, sort_keys=True),
            now_s,
        ],
    )


def _queue(store: Store, message: OutboxMessage, now_s: float) -> None:
    """Into the outbox; the same echo twice (a redelivered message) is stored once."""
    store.db.execute(
        "INSERT OR IGNORE INTO outbox (priority, topic, message_id, payload, created_s)"
        " VALUES (?, ?, ?, ?, ?)",
        [int(message.priority), message.topic, message.message_id, message.payload, now_s],
    )


def settings_log(store: Store, patient_id: str, limit: int = 10) -> list[dict[str, Any]]:
    """The latest settings changes received for a patient, newest first."""
    return list(
        store.db.query(
            "SELECT version, source, message_id, outcome, reason, ts_s FROM patient_settings_log"
            " WHERE patient_id = ? ORDER BY id DESC LIMIT ?",
            [patient_id, limit],
        )
    )


def patients_with_overrides(store: Store) -> tuple[list[Patient], dict[str, str]]:
    """Every patient and the overrides of those that have any, read in one statement (so a
    tier and the overrides made for it are never mixed with another version's)."""
    rows = store.db.execute(
        "SELECT p.id, p.tier, p.profile, s.overrides FROM patients p"
        " LEFT JOIN patient_settings s ON s.patient_id = p.id ORDER BY p.id"
    ).fetchall()
    patients = [Patient(row[0], Tier(row[1]), Profile(row[2])) for row in rows]
    return patients, {row[0]: row[3] for row in rows if row[3] not in (None, "{}")}
