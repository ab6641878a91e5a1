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
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any

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
    created_s: float = 0.0  # the event time (0: unknown); `historical` is judged from it


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


# --- Gateway status, acknowledgements, subscriptions (see README "Township hub") -------------
#
# Status (retained, QoS 1) on <prefix>/<site>/<gateway>/status: the birth message on connect,
# the same topic as the Last Will (the broker publishes it when the box vanishes without a
# DISCONNECT), and a graceful "offline" on shutdown:
#   schema, kind "status", message_id, gateway, site
#   state           online | offline
#   will            true only in the Last Will (the broker lost the box)
#   event_time      ISO 8601 UTC; a birth and the Last Will set with it carry the time of
#                   that connect (the Will ranks after its birth at the same time)
#   synced_through  ISO 8601 UTC or null: every alert-priority message (alert events,
#                   settings echoes) with an event time before this was acknowledged by the
#                   broker (the last-synced watermark, from the box's outbox)
#   backlog         messages waiting in the box's outbox, or null when unknown
#
# Acknowledgement (hub -> gateway, QoS 1, not retained) on <prefix>/<site>/<gateway>/ack:
#   schema, kind "ack", message_id (of this ack: the gateway de-duplicates on it),
#   alert_id, gateway, site, acked_by (a staff id, never a patient's name), acked_at (ISO UTC)

_SYNC_NAMESPACE = uuid.UUID("40c513a1-1b5d-4bb4-8afe-bf50b84b2fd4")
STATUS_LEAF = "status"
ACK_LEAF = "ack"
ALERTS_LEAF = "alerts"


class PayloadError(ValueError):
    """A received payload or topic that does not follow the schema (the message says why)."""


# A patient id travels in every message: a pseudonym of letters, digits and . _ -, never a name
# (no spaces, no Chinese characters), a phone or an ID-card number (no run of 7 digits), and
# nothing an MQTT topic would take for a separator or a wildcard.
_PSEUDONYM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_LONG_NUMBER = re.compile(r"[0-9]{7}")


def pseudonym_problem(patient_id: str) -> str | None:
    """Why `patient_id` is not a usable pseudonymous id, or None when it is."""
    if not _PSEUDONYM.match(patient_id):
        return (
            "a patient id is 1-64 letters, digits, '.', '_' or '-', starting with a letter or"
            " digit (a pseudonym such as p-0042: names stay on the box, as display names)"
        )
    if _LONG_NUMBER.search(patient_id):
        return "a patient id has no run of 7 or more digits (it looks like a phone or ID number)"
    return None


class GatewayState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


def status_topic(prefix: str, site: str, gateway_id: str) -> str:
    return f"{prefix}/{site}/{gateway_id}/{STATUS_LEAF}"


def ack_topic(prefix: str, site: str, gateway_id: str) -> str:
    return f"{prefix}/{site}/{gateway_id}/{ACK_LEAF}"


def topic_filter(prefix: str, leaf: str) -> str:
    """Every gateway's `leaf` topic, e.g. pulsegate/+/+/alerts."""
    return f"{prefix}/+/+/{leaf}"


def shared_filter(group: str, topic_filter_: str) -> str:
    """An MQTT v5 shared subscription: the broker hands each message to one group member."""
    return f"$share/{group}/{topic_filter_}"


def split_topic(prefix: str, topic: str) -> tuple[str, str, str]:
    """(site, gateway, leaf) of `<prefix>/<site>/<gateway>/<leaf>`; PayloadError otherwise."""
    parts = topic.split("/")
    head = prefix.split("/")
    if len(parts) != len(head) + 3 or parts[: len(head)] != head or not all(parts[-3:]):
        raise PayloadError(f"topic {topic!r} is not {prefix}/<site>/<gateway>/<leaf>")
    return parts[-3], parts[-2], parts[-1]


def _dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


def status_message(
    prefix: str,
    site: str,
    gateway_id: str,
    state: GatewayState,
    ts_s: float,
    *,
    synced_through_s: float | None,
    backlog: int | None,
    will: bool = False,
) -> OutboxMessage:
    """A birth / offline / Last Will message (publish it retained, QoS 1)."""
    event_id = str(
        uuid.uuid5(_SYNC_NAMESPACE, f"status/{site}/{gateway_id}/{state}/{will}/{ts_s:.3f}")
    )
    body = {
        "schema": SCHEMA_VERSION,
        "message_id": event_id,
        "kind": "status",
        "gateway": gateway_id,
        "site": site,
        "state": state.value,
        "will": will,
        "event_time": iso_utc(ts_s),
        "synced_through": None if synced_through_s is None else iso_utc(synced_through_s),
        "backlog": backlog,
    }
    return OutboxMessage(
        OutboxPriority.STATUS, status_topic(prefix, site, gateway_id), event_id, _dumps(body)
    )


@dataclass(frozen=True, slots=True)
class AckCommand:
    """An acknowledgement sent down by the hospital."""

    message_id: str
    alert_id: str
    gateway: str
    site: str
    acked_by: str
    acked_at_s: float


def ack_message(
    prefix: str, site: str, gateway_id: str, alert_id: str, acked_by: str, acked_at_s: float
) -> OutboxMessage:
    """The downlink message acknowledging `alert_id` on its gateway."""
    event_id = str(uuid.uuid5(_SYNC_NAMESPACE, f"ack/{alert_id}/{acked_by}/{acked_at_s:.3f}"))
    body = {
        "schema": SCHEMA_VERSION,
        "message_id": event_id,
        "kind": "ack",
        "alert_id": alert_id,
        "gateway": gateway_id,
        "site": site,
        "acked_by": acked_by,
        "acked_at": iso_utc(acked_at_s),
    }
    return OutboxMessage(
        OutboxPriority.ALERT, ack_topic(prefix, site, gateway_id), event_id, _dumps(body)
    )


def parse_ack(payload: bytes | str) -> AckCommand:
    """The acknowledgement in a downlink payload; PayloadError if it is not one."""
    body = load_object(payload)
    check_kind(body, "ack")
    return AckCommand(
        message_id=text_field(body, "message_id"),
        alert_id=text_field(body, "alert_id"),
        gateway=text_field(body, "gateway"),
        site=text_field(body, "site"),
        acked_by=text_field(body, "acked_by"),
        acked_at_s=time_field(body, "acked_at"),
    )


MAX_TEXT_CHARS = 128


def load_object(payload: bytes | str) -> dict[str, Any]:
    """A schema-1 JSON object; PayloadError for anything else."""
    try:
        body = json.loads(payload.decode() if isinstance(payload, bytes) else payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise PayloadError(f"not UTF-8 JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise PayloadError("not a JSON object")
    if body.get("schema") != SCHEMA_VERSION:
        raise PayloadError(f"schema {body.get('schema')!r} is not {SCHEMA_VERSION}")
    return body


def text_field(body: dict[str, Any], name: str, *, required: bool = True) -> str:
    """A non-empty printable string field of at most MAX_TEXT_CHARS characters."""
    value = body.get(name)
    if value is None and not required:
        return ""
    if (
        not isinstance(value, str)
        or not value
        or len(value) > MAX_TEXT_CHARS
        or not value.isprintable()
    ):
        raise PayloadError(f"{name}: expected a printable string of 1-{MAX_TEXT_CHARS} characters")
    return value


def time_field(body: dict[str, Any], name: str) -> float:
    """An ISO 8601 UTC time field as epoch seconds."""
    value = body.get(name)
    if not isinstance(value, str):
        raise PayloadError(f"{name}: expected an ISO 8601 UTC time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise PayloadError(f"{name}: {value!r} is not an ISO 8601 time") from exc
    if parsed.tzinfo is None:
        raise PayloadError(f"{name}: {value!r} has no time zone")
    return parsed.timestamp()


def check_kind(body: dict[str, Any], expected: str) -> None:
    """PayloadError unless the message is of kind `expected`."""
    if body.get("kind") != expected:
        raise PayloadError(f"kind {body.get('kind')!r} is not {expected!r}")


def load_from_gateway(payload: bytes, kind: str, site: str, gateway: str) -> dict[str, Any]:
    """The object of a `kind` message received on `site`/`gateway`'s topic; PayloadError
    unless it is one and names that site and gateway (the topic is the identity)."""
    body = load_object(payload)
    check_kind(body, kind)
    claimed = (text_field(body, "site"), text_field(body, "gateway"))
    if claimed != (site, gateway):
        raise PayloadError(
            f"payload says {claimed[0]}/{claimed[1]} but came on the topic of {site}/{gateway}"
        )
    return body


def flag_field(body: dict[str, Any], name: str) -> bool:
    """A true/false field; false when absent."""
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise PayloadError(f"{name}: expected true or false")
    return value
