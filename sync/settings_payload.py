"""Per-patient settings over MQTT: the hospital's settings message and the gateway's echo.

Settings (hub -> gateway, QoS 1, not retained) on <prefix>/<site>/<gateway>/settings:
  schema        1
  kind          "settings"
  message_id    UUID of this message (a redelivery carries the same one)
  gateway, site the box the settings are for (must match the box that receives them)
  patient       pseudonymous patient id, already known to the box
  version       integer >= 1; the box applies only a version newer than the active one, so a
                redelivered or reordered message changes nothing
  tier          red | yellow | green
  profile       default | copd
  overrides     {rule: {field: number}}, e.g. {"S2": {"threshold": 90}}; fields: window_s,
                clear_s (s), min_valid_fraction (0-1], threshold (SpO2 %, S1/S2/S3). The whole
                settings are replaced: a rule left out runs on the table's defaults
  issued_by     staff id of who changed them (never a patient's name)
  issued_at     ISO 8601 UTC

Echo (gateway -> hub, QoS 1, alert priority) on <prefix>/<site>/<gateway>/settings-echo:
  schema, message_id, gateway, site, patient, event_time (ISO 8601 UTC), and
  kind          "settings-active": the settings now active, after a change from the hospital
                or from the box itself (`pulsegate patients set`), or an answer to a settings
                message whose version was not newer; or "settings-rejected"
  version       the active version (settings-active) or the refused one (settings-rejected)
  in_reply_to   message_id of the settings message answered, null for a change made locally
  settings-active:   tier, profile, overrides, source (local | hospital), issued_by
  settings-rejected: reason (one line), active_version (still in force, 0: the defaults)
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from alerts.rules import Profile, Tier, WindowRule, window_rules, with_overrides
from sync.payload import (
    SCHEMA_VERSION,
    OutboxMessage,
    OutboxPriority,
    PayloadError,
    check_kind,
    iso_utc,
    load_object,
    text_field,
    time_field,
)

SETTINGS_LEAF = "settings"
SETTINGS_ECHO_LEAF = "settings-echo"
MAX_VERSION = 2**53  # an integer every JSON reader keeps exact
MAX_OVERRIDE_RULES = 32
MAX_OVERRIDE_FIELDS = 8
MAX_REASON_CHARS = 300
_NAMESPACE = uuid.UUID("0c7f1f52-3a55-4d0b-9c43-5b7c1f0e6a21")


class Source(StrEnum):
    LOCAL = "local"
    HOSPITAL = "hospital"


class EchoKind(StrEnum):
    ACTIVE = "settings-active"
    REJECTED = "settings-rejected"


def settings_topic(prefix: str, site: str, gateway_id: str) -> str:
    return f"{prefix}/{site}/{gateway_id}/{SETTINGS_LEAF}"


def settings_echo_topic(prefix: str, site: str, gateway_id: str) -> str:
    return f"{prefix}/{site}/{gateway_id}/{SETTINGS_ECHO_LEAF}"


@dataclass(frozen=True, slots=True)
class PatientSettings:
    """Tier, profile and rule overrides of one patient (`overrides_json`: canonical JSON)."""

    tier: Tier
    profile: Profile
    overrides_json: str = "{}"

    @property
    def overrides(self) -> dict[str, dict[str, float]]:
        loaded: dict[str, dict[str, float]] = json.loads(self.overrides_json)
        return loaded

    def rules(self) -> tuple[WindowRule, ...]:
        """The continuous rules of these settings (validated when they were made)."""
        return with_overrides(window_rules(self.tier, self.profile), self.overrides)


def make_settings(tier: object, profile: object, overrides: object) -> PatientSettings:
    """Checked settings; PayloadError naming the field for anything invalid."""
    tiers, profiles = [t.value for t in Tier], [p.value for p in Profile]
    if tier not in tiers:
        raise PayloadError(f"tier: {str(tier)[:16]!r} is not {', '.join(tiers)}")
    if profile not in profiles:
        raise PayloadError(f"profile: {str(profile)[:16]!r} is not {', '.join(profiles)}")
    tier_, profile_ = Tier(str(tier)), Profile(str(profile))
    shaped = _overrides_shape(overrides)
    try:
        with_overrides(window_rules(tier_, profile_), shaped)
    except ValueError as exc:
        raise PayloadError(f"overrides: {exc}") from exc
    return PatientSettings(tier_, profile_, _dumps({k: v for k, v in shaped.items() if v}))


def _overrides_shape(overrides: object) -> dict[str, dict[str, float]]:
    """{rule: {field: value}} of bounded size; the values are checked by the rules."""
    if not isinstance(overrides, dict):
        raise PayloadError("overrides: expected a JSON object {rule: {field: number}}")
    if len(overrides) > MAX_OVERRIDE_RULES:
        raise PayloadError(f"overrides: more than {MAX_OVERRIDE_RULES} rules")
    shaped: dict[str, dict[str, float]] = {}
    for rule, fields in overrides.items():
        if not isinstance(fields, dict) or len(fields) > MAX_OVERRIDE_FIELDS:
            raise PayloadError(
                f"overrides: {str(rule)[:16]!r}: expected an object of at most"
                f" {MAX_OVERRIDE_FIELDS} fields"
            )
        shaped[str(rule)] = fields
    return shaped


def _dumps(body: Mapping[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True, slots=True)
class ActiveSettings:
    """What a box runs for a patient: version 0 is the rule table's defaults."""

    patient: str
    version: int
    settings: PatientSettings
    source: Source
    issued_by: str
    applied_s: float


@dataclass(frozen=True, slots=True)
class SettingsCommand:
    """A settings message from the hospital. `settings` is None when its content is invalid
    (then `problem` says why, and the box answers settings-rejected)."""

    message_id: str
    gateway: str
    site: str
    patient: str
    version: int
    issued_by: str
    issued_at_s: float
    settings: PatientSettings | None
    problem: str = ""


def version_field(body: Mapping[str, Any], name: str, minimum: int = 1) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_VERSION:
        raise PayloadError(f"{name}: expected an integer {minimum}-{MAX_VERSION}")
    return value


def parse_settings(payload: bytes | str) -> SettingsCommand:
    """The settings message in `payload`. PayloadError if it cannot be answered at all (no
    message id, patient or version); invalid settings come back with `problem` set."""
    body = load_object(payload)
    check_kind(body, "settings")
    message_id = text_field(body, "message_id")
    gateway, site = text_field(body, "gateway"), text_field(body, "site")
    patient, version = text_field(body, "patient"), version_field(body, "version")
    try:
        issued_by = text_field(body, "issued_by")
        issued_at_s = time_field(body, "issued_at")
        settings = make_settings(body.get("tier"), body.get("profile"), body.get("overrides", {}))
    except PayloadError as exc:
        problem = str(exc)[:MAX_REASON_CHARS]
        return SettingsCommand(message_id, gateway, site, patient, version, "", 0.0, None, problem)
    return SettingsCommand(
        message_id, gateway, site, patient, version, issued_by, issued_at_s, settings
    )


def settings_message(
    prefix: str,
    site: str,
    gateway_id: str,
    patient: str,
    version: int,
    settings: PatientSettings,
    issued_by: str,
    issued_at_s: float,
) -> OutboxMessage:
    """The downlink message that sets `patient`'s settings to `version` on its gateway."""
    message_id = str(
        uuid.uuid5(_NAMESPACE, f"settings/{site}/{gateway_id}/{patient}/{version}/{issued_at_s}")
    )
    body = {
        "schema": SCHEMA_VERSION,
        "kind": "settings",
        "message_id": message_id,
        "gateway": gateway_id,
        "site": site,
        "patient": patient,
        "version": version,
        "tier": settings.tier.value,
        "profile": settings.profile.value,
        "overrides": settings.overrides,
        "issued_by": issued_by,
        "issued_at": iso_utc(issued_at_s),
    }
    topic = settings_topic(prefix, site, gateway_id)
    return OutboxMessage(OutboxPriority.ALERT, topic, message_id, _dumps(body))


def active_echo(
    prefix: str, site: str, gateway_id: str, active: ActiveSettings, in_reply_to: str | None
) -> OutboxMessage:
    """settings-active: one message id per (patient, version, message answered), so the
    echo of a redelivered message is the same message, sent once."""
    reply = in_reply_to or "local"
    key = f"active/{gateway_id}/{active.patient}/{active.version}/{reply}"
    body = {
        "kind": EchoKind.ACTIVE.value,
        "version": active.version,
        "tier": active.settings.tier.value,
        "profile": active.settings.profile.value,
        "overrides": active.settings.overrides,
        "source": active.source.value,
        "issued_by": active.issued_by,
    }
    return _echo(prefix, site, gateway_id, active.patient, key, body, in_reply_to, active.applied_s)


def rejected_echo(
    prefix: str,
    site: str,
    gateway_id: str,
    command: SettingsCommand,
    reason: str,
    active_version: int,
    ts_s: float,
) -> OutboxMessage:
    """settings-rejected: the settings message `command` changed nothing, because `reason`."""
    body = {
        "kind": EchoKind.REJECTED.value,
        "version": command.version,
        "reason": reason[:MAX_REASON_CHARS],
        "active_version": active_version,
    }
    key = f"rejected/{gateway_id}/{command.message_id}"
    return _echo(prefix, site, gateway_id, command.patient, key, body, command.message_id, ts_s)


def _echo(
    prefix: str,
    site: str,
    gateway_id: str,
    patient: str,
    key: str,
    fields: dict[str, Any],
    in_reply_to: str | None,
    ts_s: float,
) -> OutboxMessage:
    message_id = str(uuid.uuid5(_NAMESPACE, key))
    body = {
        "schema": SCHEMA_VERSION,
        "message_id": message_id,
        "gateway": gateway_id,
        "site": site,
        "patient": patient,
        "in_reply_to": in_reply_to,
        "event_time": iso_utc(ts_s),
        **fields,
    }
    topic = settings_echo_topic(prefix, site, gateway_id)
    return OutboxMessage(OutboxPriority.ALERT, topic, message_id, _dumps(body))


def parse_override(text: str) -> tuple[str, str, float]:
    """`RULE.FIELD=NUMBER` (e.g. `S2.threshold=90`) as (rule, field, value); PayloadError."""
    target, _, number = text.partition("=")
    rule, _, name = target.strip().partition(".")
    try:
        value = float(number)
    except ValueError:
        value = float("nan")
    if not rule or not name or not math.isfinite(value):
        raise PayloadError(f"{text!r}: expected RULE.FIELD=NUMBER, e.g. S2.threshold=90")
    return rule.upper(), name, int(value) if value.is_integer() else value


def edited_settings(
    active: PatientSettings,
    tier: str | None = None,
    profile: str | None = None,
    overrides: tuple[tuple[str, str, float], ...] = (),
    reset_overrides: bool = False,
) -> PatientSettings:
    """`active` with what is given changed: tier, profile, and overrides added to the active
    ones (to none with `reset_overrides`); checked as a whole (PayloadError)."""
    merged = {} if reset_overrides else active.overrides
    for rule, name, value in overrides:
        merged.setdefault(rule, {})[name] = value
    return make_settings(tier or active.tier.value, profile or active.profile.value, merged)
