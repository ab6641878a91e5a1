"""What the township hub receives, parsed and checked: alert events and gateway status.

Pure: bytes and topic parts in, frozen values out, `PayloadError` for anything that does not
follow the schema in `sync.payload`. Payloads are untrusted: every field is type- and
length-checked, and the site and gateway in the payload must match the topic it came on (the
broker's ACL decides who may publish on a topic, so the topic is the identity).

Fields a newer gateway may add (new rules, event kinds, statuses) are accepted as text, so an
alert is never refused for a word the hub does not know yet; only its priority is ranked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sync.payload import (
    GatewayState,
    PayloadError,
    flag_field,
    load_from_gateway,
    text_field,
    time_field,
)

# Triage order; a priority this hub does not know ranks with HIGH, so it is seen, not buried.
PRIORITY_RANK = {"HIGH": 0, "MEDIUM": 1, "LOW": 2, "INFO": 3}
UNKNOWN_PRIORITY_RANK = 0
CLOSED_STATUS = "closed"
MAX_DETAILS_CHARS = 4096


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One alert event as a gateway sent it."""

    message_id: str
    alert_id: str
    site: str
    gateway: str
    patient: str
    rule: str
    priority: str
    tier: str
    profile: str
    event: str
    status: str
    onset_s: float
    event_s: float
    details: dict[str, Any]
    acked_by: str | None
    historical: bool
    payload: str

    @property
    def priority_rank(self) -> int:
        return PRIORITY_RANK.get(self.priority, UNKNOWN_PRIORITY_RANK)


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A gateway's birth, graceful offline or Last Will."""

    message_id: str
    site: str
    gateway: str
    state: GatewayState
    will: bool
    event_s: float
    synced_through_s: float | None
    backlog: int | None
    payload: str

    @property
    def rank(self) -> int:
        """Order of two reports with the same event time: offline (the Will) comes after the
        birth it was registered with."""
        return 0 if self.state is GatewayState.ONLINE else 1


def _details(body: dict[str, Any]) -> dict[str, Any]:
    details = body.get("details", {})
    if not isinstance(details, dict):
        raise PayloadError("details: expected a JSON object")
    if len(json.dumps(details)) > MAX_DETAILS_CHARS:
        raise PayloadError(f"details: longer than {MAX_DETAILS_CHARS} characters")
    return details


def parse_alert_event(site: str, gateway: str, payload: bytes) -> AlertEvent:
    """The alert event in `payload`, received on `site`/`gateway`'s alerts topic."""
    body = load_from_gateway(payload, "alert", site, gateway)
    acked_by = text_field(body, "acked_by", required=False) or None
    return AlertEvent(
        message_id=text_field(body, "message_id"),
        alert_id=text_field(body, "alert_id"),
        site=site,
        gateway=gateway,
        patient=text_field(body, "patient"),
        rule=text_field(body, "rule"),
        priority=text_field(body, "priority"),
        tier=text_field(body, "tier"),
        profile=text_field(body, "profile"),
        event=text_field(body, "event"),
        status=text_field(body, "status"),
        onset_s=time_field(body, "onset_time"),
        event_s=time_field(body, "event_time"),
        details=_details(body),
        acked_by=acked_by,
        historical=flag_field(body, "historical"),
        payload=payload.decode(),
    )


def _optional_count(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PayloadError(f"{name}: expected a count or null")
    return value


def parse_status(site: str, gateway: str, payload: bytes) -> StatusReport:
    """The status report in `payload`, received on `site`/`gateway`'s status topic."""
    body = load_from_gateway(payload, "status", site, gateway)
    try:
        state = GatewayState(str(body.get("state")))
    except ValueError as exc:
        raise PayloadError(f"state: {body.get('state')!r} is not online or offline") from exc
    synced = None if body.get("synced_through") is None else time_field(body, "synced_through")
    return StatusReport(
        message_id=text_field(body, "message_id"),
        site=site,
        gateway=gateway,
        state=state,
        will=flag_field(body, "will"),
        event_s=time_field(body, "event_time"),
        synced_through_s=synced,
        backlog=_optional_count(body, "backlog"),
        payload=payload.decode(),
    )
