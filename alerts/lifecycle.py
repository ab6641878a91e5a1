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
