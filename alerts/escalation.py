"""The escalation ladder: who is told of an unacknowledged alert, and when.

Levels climb family -> village doctor -> township doctor. A HIGH alert goes at once to the family
and the village doctor; unacknowledged after the tier's interval (red 5 min, yellow 10, green
15) the village doctor is paged again and the township doctor told. A MEDIUM alert goes to the
family at once, to the village doctor after the tier's interval (red 30 min, yellow 60, green
120) and to the township doctor after twice that (red and yellow only: green MEDIUM alerts reach
the township in the daily digest). LOW and INFO alerts are never sent by SMS. The township also
gets every alert over MQTT whenever a link is up; this ladder is the path that needs no link.

The clock of the ladder starts when the alert reached its current priority: its onset, or its
last escalation (S3 in red after 4 h, Q1 in red after 15 min), which starts the ladder of the
new priority afresh. Only an OPEN alert climbs: once acknowledged, resolved or closed, nobody is
told anything more.

Pure: the caller gives the alert, its events, the patient's contacts and the attempts so far,
and carries out (and records) the notifications returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from alerts.lifecycle import MINUTE_S, Alert, AlertEventKind, AlertStatus
from alerts.rules import Priority, Tier

MAX_ATTEMPTS = 12  # per contact and level: about 40 min of retries
RETRY_FIRST_S = 10.0  # after a failed attempt: 10 s, doubling each time, at most 5 min
RETRY_MAX_S = 300.0


class Role(StrEnum):
    """Who a contact is to the patient; the ladder's levels, lowest first."""

    FAMILY = "family"
    DOCTOR = "doctor"  # the village doctor
    TOWNSHIP = "township"  # the doctor at the township hospital


class Language(StrEnum):
    ZH = "zh"
    EN = "en"


class Outcome(StrEnum):
    """What became of one attempt to notify a contact."""

    SENDING = "sending"  # started, not finished (left so by a crash: counted as failed)
    SENT = "sent"  # the network took it (a message reference came back)
    FAILED = "failed"  # a transient failure: tried again after a backoff
    REJECTED = "rejected"  # refused for good (e.g. unassigned number): not tried again


@dataclass(frozen=True, slots=True)
class Contact:
    id: int
    patient_id: str
    role: Role
    name: str
    phone: str
    language: Language


@dataclass(frozen=True, slots=True)
class Step:
    """A rung: when the alert has been unacknowledged `after_s`, tell these roles."""

    after_s: float
    roles: tuple[Role, ...]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One earlier attempt, as recorded with the alert."""

    contact_id: int
    priority: Priority
    step: int
    ts_s: float
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Notification:
    """A message due now: `attempt` 1 is the first try, more is a retry."""

    alert_id: str
    contact: Contact
    priority: Priority
    step: int
    attempt: int
    unacked_s: float  # how long the alert had gone unacknowledged at this step's first try


def _high(interval_min: float) -> tuple[Step, ...]:
    return (
        Step(0.0, (Role.FAMILY, Role.DOCTOR)),
        Step(interval_min * MINUTE_S, (Role.DOCTOR, Role.TOWNSHIP)),
    )


def _medium(interval_min: float, township: bool) -> tuple[Step, ...]:
    steps = [Step(0.0, (Role.FAMILY,)), Step(interval_min * MINUTE_S, (Role.DOCTOR,))]
    if township:
        steps.append(Step(2 * interval_min * MINUTE_S, (Role.TOWNSHIP,)))
    return tuple(steps)


LADDER: dict[tuple[Priority, Tier], tuple[Step, ...]] = {
    (Priority.HIGH, Tier.RED): _high(5),
    (Priority.HIGH, Tier.YELLOW): _high(10),
    (Priority.HIGH, Tier.GREEN): _high(15),
    (Priority.MEDIUM, Tier.RED): _medium(30, township=True),
    (Priority.MEDIUM, Tier.YELLOW): _medium(60, township=True),
    (Priority.MEDIUM, Tier.GREEN): _medium(120, township=False),
}


def retry_delay_s(failures: int) -> float:
    """Seconds to wait after the `failures`-th failed attempt before the next one."""
    if failures < 1:
        raise ValueError("a retry follows at least one failure")
    return float(min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** min(failures - 1, 32)))


def ladder_start_s(alert: Alert, events: Sequence[tuple[AlertEventKind, float]]) -> float:
    """When the alert reached its current priority: its last escalation, else its onset."""
    escalations = [ts_s for kind, ts_s in events if kind is AlertEventKind.ESCALATED]
    return max(escalations) if escalations else alert.onset_s


def due_notifications(
    alert: Alert,
    events: Sequence[tuple[AlertEventKind, float]],
    contacts: Sequence[Contact],
    attempts: Sequence[Attempt],
    now_s: float,
) -> list[Notification]:
    """The notifications due at `now_s`, in sending order (by step, then role, then contact).

    A contact gets each (priority, step) at most once: never again once sent or rejected, and
    a failed one is retried after `retry_delay_s` up to MAX_ATTEMPTS tries. When several steps
    are due for one contact at once (after a restart), only the highest is sent, and a
    lower step is given up once a higher one is due.
    """
    steps = LADDER.get((alert.priority, alert.tier), ())
    if alert.status is not AlertStatus.OPEN or not steps:
        return []
    start_s = ladder_start_s(alert, events)
    unacked_s = now_s - start_s
    mine = [a for a in attempts if a.priority is alert.priority]
    chosen: dict[int, tuple[int, int, Contact]] = {}  # contact id -> (step, role rank, contact)
    for index, step in enumerate(steps):
        if unacked_s < step.after_s:
            break
        for rank, role in enumerate(step.roles):
            for contact in contacts:
                if contact.role is role and contact.patient_id == alert.patient_id:
                    chosen[contact.id] = (index, rank, contact)
    due: list[Notification] = []
    for index, _rank, contact in sorted(chosen.values(), key=lambda c: (c[0], c[1], c[2].id)):
        attempt = _next_attempt(contact.id, index, mine, now_s)
        if attempt is None:
            continue
        # A retry says what the first try said (the same text: gateway/sms_modem.py sends a
        # retry whose first try did go only once).
        first_s = min(
            (a.ts_s for a in mine if a.contact_id == contact.id and a.step == index),
            default=now_s,
        )
        due.append(
            Notification(alert.id, contact, alert.priority, index, attempt, first_s - start_s)
        )
    return due


def _next_attempt(
    contact_id: int, step: int, attempts: Sequence[Attempt], now_s: float
) -> int | None:
    """The number of the next try for this contact and step, or None (done, or not yet)."""
    mine = [a for a in attempts if a.contact_id == contact_id and a.step == step]
    if not mine:
        return 1
    if any(a.outcome in (Outcome.SENT, Outcome.REJECTED) for a in mine):
        return None
    if len(mine) >= MAX_ATTEMPTS:
        return None
    last_s = max(a.ts_s for a in mine)
    if now_s - last_s < retry_delay_s(len(mine)):
        return None
    return len(mine) + 1
