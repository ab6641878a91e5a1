"""Contacts per patient and the record of every attempt to notify them, in the store.

Phone numbers live only in `contacts`, on the box: they are never synced, and the attempts keep
only the masked number. These functions take the `Store` and run on whichever thread owns it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from alerts.escalation import Attempt, Contact, Language, Notification, Outcome, Role
from alerts.lifecycle import Alert, AlertEventKind
from alerts.rules import Priority
from gateway.sms_text import mask_phone, normalise_phone
from gateway.store import Store, StoreError

MAX_NAME_CHARS = 64
INTERRUPTED = "interrupted: the daemon stopped during the send"


@dataclass(frozen=True, slots=True)
class EscalationWork:
    """One open alert with everything the ladder needs to decide."""

    alert: Alert
    events: list[tuple[AlertEventKind, float]]
    contacts: list[Contact]
    attempts: list[Attempt]


def add_contact(
    store: Store,
    patient_id: str,
    role: Role,
    name: str,
    phone: str,
    language: Language,
    now_s: float,
) -> Contact:
    """Add a contact for `patient_id`; raises StoreError (or PhoneError) with what to fix."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise StoreError(f"a contact's name is 1-{MAX_NAME_CHARS} printable characters")
    number = normalise_phone(phone)
    if store.get_patient(patient_id) is None:
        raise StoreError(f"no patient {patient_id!r}; see `pulsegate patients list`")
    try:
        with store.transaction():
            cursor = store.db.execute(
                "INSERT INTO contacts (patient_id, role, name, phone, language, created_s)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [patient_id, role.value, name, number, language.value, now_s],
            )
    except sqlite3.IntegrityError:
        raise StoreError(
            f"{patient_id} already has {mask_phone(number)} as a {role} contact"
        ) from None
    return Contact(int(cursor.lastrowid or 0), patient_id, role, name, number, language)


def list_contacts(store: Store, patient_id: str | None = None) -> list[Contact]:
    """The contacts of one patient, or of all, by patient and ladder level."""
    where, args = ("WHERE patient_id = ?", [patient_id]) if patient_id else ("", [])
    rows = store.db.query(
        f"SELECT * FROM contacts {where} ORDER BY patient_id,"
        " CASE role WHEN 'family' THEN 0 WHEN 'doctor' THEN 1 ELSE 2 END, id",
        args,
    )
    return [_contact(row) for row in rows]


def remove_contact(store: Store, contact_id: int) -> Contact:
    """Remove a contact; what was sent to it stays recorded (with the masked number)."""
    with store.transaction():
        rows = list(store.db.query("SELECT * FROM contacts WHERE id = ?", [contact_id]))
        if not rows:
            raise StoreError(f"no contact {contact_id}; see `pulsegate contacts list`")
        store.db.execute("DELETE FROM contacts WHERE id = ?", [contact_id])
    return _contact(rows[0])


def _contact(row: dict[str, Any]) -> Contact:
    return Contact(
        int(row["id"]),
        row["patient_id"],
        Role(row["role"]),
        row["name"],
        row["phone"],
        Language(row["language"]),
    )


# -- the escalation's view of the store ----------------------------------------------------------


def escalation_work(store: Store) -> list[EscalationWork]:
    """Open HIGH and MEDIUM alerts of patients who have contacts, most urgent and oldest first."""
    alerts = [
        store.alert_from_row(row)
        for row in store.db.query(
            "SELECT * FROM alerts WHERE status = 'open' AND priority IN ('HIGH', 'MEDIUM')"
            " AND patient_id IN (SELECT patient_id FROM contacts)"
            " ORDER BY priority = 'MEDIUM', onset_s"
        )
    ]
    by_patient: dict[str, list[Contact]] = {}
    work = []
    for alert in alerts:
        if alert.patient_id not in by_patient:
            by_patient[alert.patient_id] = list_contacts(store, alert.patient_id)
        events = [
            (AlertEventKind(kind), float(ts_s))
            for kind, ts_s in store.db.execute(
                "SELECT kind, ts_s FROM alert_events WHERE alert_id = ? ORDER BY id", [alert.id]
            )
        ]
        work.append(
            EscalationWork(alert, events, by_patient[alert.patient_id], attempts(store, alert.id))
        )
    return work


def attempts(store: Store, alert_id: str) -> list[Attempt]:
    rows = store.db.execute(
        "SELECT contact_id, priority, step, ts_s, outcome FROM notification_attempts"
        " WHERE alert_id = ? ORDER BY id",
        [alert_id],
    )
    return [
        Attempt(int(contact_id), Priority(priority), int(step), float(ts_s), Outcome(outcome))
        for contact_id, priority, step, ts_s, outcome in rows
    ]


def start_attempt(store: Store, note: Notification, now_s: float) -> int | None:
    """Record that an attempt starts (so that a crash during it is known); returns its id, or
    None when the alert is no longer open (acknowledged or closed since the ladder looked:
    a tick's sends take up to a minute each on a slow network)."""
    with store.transaction():
        row = store.db.execute("SELECT status FROM alerts WHERE id = ?", [note.alert_id]).fetchone()
        if row is None or row[0] != "open":
            return None
        cursor = store.db.execute(
            "INSERT INTO notification_attempts (alert_id, contact_id, role, phone_masked,"
            " priority, step, attempt, ts_s, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                note.alert_id,
                note.contact.id,
                note.contact.role.value,
                mask_phone(note.contact.phone),
                note.priority.value,
                note.step,
                note.attempt,
                now_s,
                Outcome.SENDING.value,
            ],
        )
    return int(cursor.lastrowid or 0)


def finish_attempt(
    store: Store,
    attempt_id: int,
    outcome: Outcome,
    now_s: float,
    message_ref: int | None = None,
    reason: str | None = None,
) -> None:
    with store.transaction():
        store.db.execute(
            "UPDATE notification_attempts SET outcome = ?, message_ref = ?, reason = ?,"
            " finished_s = ? WHERE id = ?",
            [outcome.value, message_ref, reason, now_s, attempt_id],
        )


def fail_interrupted(store: Store, now_s: float) -> int:
    """Attempts a stopped daemon left unfinished count as failed (and are retried)."""
    with store.transaction():
        cursor = store.db.execute(
            "UPDATE notification_attempts SET outcome = 'failed', reason = ?, finished_s = ?"
            " WHERE outcome = 'sending'",
            [INTERRUPTED, now_s],
        )
    return int(cursor.rowcount)


def attempt_rows(store: Store, alert_id: str) -> list[dict[str, Any]]:
    """Every attempt for one alert, oldest first, with the contact's name if still known."""
    return list(
        store.db.query(
            "SELECT n.*, c.name AS contact_name FROM notification_attempts n"
            " LEFT JOIN contacts c ON c.id = n.contact_id WHERE n.alert_id = ? ORDER BY n.id",
            [alert_id],
        )
    )
