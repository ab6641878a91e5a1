"""What goes over MQTT: topics, priorities and the JSON payload of an alert event.

Payload schema (version 1), one JSON object per message:
  schema        1
  message_id    stable UUID of this event (de-duplication key; a resend carries the same id)
  kind          "alert"
  event         raised | resolved | acked | closed
  alert_id      stable UUID of the alert (one per patient, rule and onset)
  gateway, site the box and its site (configured ids)
  patient       pseudonymous patient id (never a name or a phone number)
  rule          S1, S2, ... (CLINICAL_RULES.md section 1.10)
  priority      HIGH | MEDIUM | LOW
  tier          red | yellow | green;  profile: default | copd
  status        the alert's status after this event: open | acked | resolved | closed
  onset_time    ISO 8601 UTC time the condition started
  event_time    ISO 8601 UTC time of this event
  acked_by      who acknowledged (acked events only)
  details       the window statistics that made the rule fire (SpO2 in %, window in s)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum

from alerts.lifecycle import Alert, AlertEventKind, message_id

SCHEMA_VERSION = 1


class OutboxPriority(IntEnum):
    """Lower drains first."""

    ALERT = 0
    STATUS = 1
    SUMMARY = 2
    RAW = 3


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    priority: OutboxPriority
    topic: str
    message_id: str
    payload: str


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A stored, not yet acknowledged outbox message."""

    id: int
    priority: int
    topic: str
    message_id: str
    payload: str


def iso_utc(ts_s: float) -> str:
    """ISO 8601 UTC with a Z, to the millisecond."""
    return (
        datetime.fromtimestamp(ts_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def alerts_topic(prefix: str, site: str, gateway_id: str) -> str:
    return f"{prefix}/{site}/{gateway_id}/alerts"


def alert_event_message(
    prefix: str, site: str, alert: Alert, kind: AlertEventKind, ts_s: float
) -> OutboxMessage:
    """The outbox message announcing `kind` for `alert` at `ts_s`."""
    event_id = message_id(alert.id, kind, ts_s)
    body = {
        "schema": SCHEMA_VERSION,
        "message_id": event_id,
        "kind": "alert",
        "event": kind.value,
        "alert_id": alert.id,
        "gateway": alert.gateway_id,
        "site": site,
        "patient": alert.patient_id,
        "rule": alert.rule.value,
        "priority": alert.priority.value,
        "tier": alert.tier.value,
        "profile": alert.profile.value,
        "status": alert.status.value,
        "onset_time": iso_utc(alert.onset_s),
        "event_time": iso_utc(ts_s),
        "details": alert.details,
    }
    if kind is AlertEventKind.ACKED:
        body["acked_by"] = alert.acked_by
    return OutboxMessage(
        OutboxPriority.ALERT,
        alerts_topic(prefix, site, alert.gateway_id),
        event_id,
        json.dumps(body, separators=(",", ":"), sort_keys=True),
    )
