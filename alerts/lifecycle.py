"""The life of an alert: one per (patient, rule) at a time, raised on onset, resolved or
closed when the condition clears, HIGH alerts latched until someone acknowledges them.

Pure: the store applies these transitions inside its transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from alerts.rules import Priority, Profile, RuleId, Tier

MINUTE_S = 60
HOUR_S = 3600

# Fixed namespace: alert and message ids are the same on every replay of the same data, so the
# hospital side can de-duplicate what a restarted box sends again.
_ID_NAMESPACE = uuid.UUID("8d6c6a0e-3f0e-4d53-9a63-3b1d1c6f5e20")


class AlertStatus(StrEnum):
    OPEN = "open"  # condition present, nobody has acknowledged it
    ACKED = "acked"  # condition present, acknowledged
    RESOLVED = "resolved"  # condition gone, latched until acknowledged
    CLOSED = "closed"  # nothing left to do

    @property
    def is_live(self) -> bool:
        return self is not AlertStatus.CLOSED


class AlertEventKind(StrEnum):
    RAISED = "raised"
    RENOTIFIED = "renotified"  # still unacknowledged after the tier's interval
    ESCALATED = "escalated"  # raised to a higher priority (e.g. S3 for 4 h in red)
    RESOLVED = "resolved"
    ACKED = "acked"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    gateway_id: str
    patient_id: str
    rule: RuleId
    priority: Priority
    tier: Tier
    profile: Profile
    status: AlertStatus
    onset_s: float
    details: dict[str, Any]
    acked_by: str | None = None


def alert_id(gateway_id: str, patient_id: str, rule: RuleId, onset_s: float) -> str:
    """A stable id: the same alert gets the same id however often it is computed."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{gateway_id}/{patient_id}/{rule}/{onset_s:.0f}"))


def message_id(alert: str, kind: AlertEventKind, ts_s: float) -> str:
    """A stable id for one event of one alert (the MQTT payload's de-duplication key)."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{alert}/{kind}/{ts_s:.3f}"))


def on_onset(status: AlertStatus | None) -> tuple[AlertStatus, AlertEventKind | None]:
    """The condition started (again). None: there is no live alert for this rule."""
    if status is None or status is AlertStatus.CLOSED:
        return AlertStatus.OPEN, AlertEventKind.RAISED
    if status is AlertStatus.RESOLVED:
        return AlertStatus.OPEN, AlertEventKind.RAISED
    return status, None


def on_resolved(status: AlertStatus, latching: bool) -> tuple[AlertStatus, AlertEventKind | None]:
    """The condition cleared; a latching alert waits for an acknowledgement."""
    if status is AlertStatus.OPEN:
        if latching:
            return AlertStatus.RESOLVED, AlertEventKind.RESOLVED
        return AlertStatus.CLOSED, AlertEventKind.CLOSED
    if status is AlertStatus.ACKED:
        return AlertStatus.CLOSED, AlertEventKind.CLOSED
    return status, None


def on_ack(status: AlertStatus) -> tuple[AlertStatus, AlertEventKind | None]:
    """Someone acknowledged the alert; a resolved one is then closed."""
    if status is AlertStatus.OPEN:
        return AlertStatus.ACKED, AlertEventKind.ACKED
    if status is AlertStatus.RESOLVED:
        return AlertStatus.CLOSED, AlertEventKind.ACKED
    return status, None


# CLINICAL_RULES.md 1.10: HIGH re-paged after 5 min (red) / 15 min (yellow, green) without an
# acknowledgement; MEDIUM in red re-notified after 30 min.
RENOTIFY_AFTER_S: dict[tuple[Priority, Tier], float] = {
    (Priority.HIGH, Tier.RED): 5 * MINUTE_S,
    (Priority.HIGH, Tier.YELLOW): 15 * MINUTE_S,
    (Priority.HIGH, Tier.GREEN): 15 * MINUTE_S,
    (Priority.MEDIUM, Tier.RED): 30 * MINUTE_S,
}


@dataclass(frozen=True, slots=True)
class Escalation:
    tier: Tier
    after_s: float
    to: Priority


# S3 active for 4 h in red: deterioration without recovery. Q1 (probe off) unresolved for
# 15 min in red: someone must go and look.
ESCALATIONS = {
    RuleId.S3: Escalation(Tier.RED, 4 * HOUR_S, Priority.HIGH),
    RuleId.Q1: Escalation(Tier.RED, 15 * MINUTE_S, Priority.MEDIUM),
}


def due_event(
    alert: Alert, last_notified_s: float, escalated: bool, now_s: float
) -> tuple[AlertEventKind, Priority] | None:
    """What an unacknowledged alert is owed at `now_s`: an escalation (once), or a reminder
    when the tier's interval passed since it was last notified. None: nothing yet."""
    if alert.status not in (AlertStatus.OPEN, AlertStatus.RESOLVED):
        return None
    escalation = ESCALATIONS.get(alert.rule)
    if (
        escalation is not None
        and not escalated
        and alert.status is AlertStatus.OPEN
        and alert.tier is escalation.tier
        and now_s - alert.onset_s >= escalation.after_s
    ):
        return AlertEventKind.ESCALATED, escalation.to
    interval_s = RENOTIFY_AFTER_S.get((alert.priority, alert.tier))
    if interval_s is not None and now_s - last_notified_s >= interval_s:
        return AlertEventKind.RENOTIFIED, alert.priority
    return None
