"""The hub's side of per-patient settings: requests queued for the gateways (published by the
running `pulsegate hub run`, like acknowledgements) and the gateways' echoes, stored once each
(de-duplicated by message id), so the hub knows which version each patient runs.

Tables (created next to the hub's own, SQLite or PostgreSQL):
- hub_settings_requests: one row per settings message; published_s once the broker took it.
- hub_settings_echoes: one row per echo (settings-active / settings-rejected) received.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt

from sync.hub_downlink import publish_queued
from sync.hub_sql import Transaction
from sync.payload import OutboxMessage, PayloadError, load_object, text_field, time_field
from sync.settings_payload import MAX_REASON_CHARS, EchoKind, version_field

if TYPE_CHECKING:
    from sync.hub_store import HubStore

log = logging.getLogger(__name__)

SETTINGS_SCHEMA = (
    """CREATE TABLE hub_settings_requests (
        message_id TEXT PRIMARY KEY, site TEXT NOT NULL, gateway TEXT NOT NULL,
        patient TEXT NOT NULL, version BIGINT NOT NULL, issued_by TEXT NOT NULL,
        issued_s DOUBLE PRECISION NOT NULL, topic TEXT NOT NULL, payload TEXT NOT NULL,
        published_s DOUBLE PRECISION)""",
    """CREATE TABLE hub_settings_echoes (
        message_id TEXT PRIMARY KEY, site TEXT NOT NULL, gateway TEXT NOT NULL,
        patient TEXT NOT NULL, kind TEXT NOT NULL, version BIGINT NOT NULL,
        active_version BIGINT NOT NULL, in_reply_to TEXT, details TEXT NOT NULL,
        event_s DOUBLE PRECISION NOT NULL, received_s DOUBLE PRECISION NOT NULL,
        payload TEXT NOT NULL)""",
    "CREATE INDEX hub_settings_echoes_patient ON hub_settings_echoes (site, gateway, patient)",
)


def ensure_settings_tables(tx: Transaction, is_postgres: bool) -> None:
    """Create the settings tables if this hub database predates them (only then: no DDL on
    tables in use). On PostgreSQL, call it under the schema lock."""
    if is_postgres:
        found = tx.rows("SELECT to_regclass('hub_settings_echoes') IS NOT NULL AS found")
    else:
        found = tx.rows(
            "SELECT 1 AS found FROM sqlite_master WHERE type = 'table'"
            " AND name = 'hub_settings_echoes'"
        )
    if found and found[0]["found"]:
        return
    for statement in SETTINGS_SCHEMA:
        tx.run(statement)


@dataclass(frozen=True, slots=True)
class SettingsEcho:
    """A gateway's answer: the settings now active for a patient, or a refusal."""

    message_id: str
    site: str
    gateway: str
    patient: str
    kind: EchoKind
    version: int
    active_version: int
    in_reply_to: str | None
    details: dict[str, Any]  # tier, profile, overrides, source, issued_by; or reason
    event_s: float
    payload: str


def parse_settings_echo(site: str, gateway: str, payload: bytes) -> SettingsEcho:
    """The echo in `payload`, received on `site`/`gateway`'s settings-echo topic."""
    body = load_object(payload)
    try:
        kind = EchoKind(str(body.get("kind")))
    except ValueError:
        raise PayloadError(f"kind {body.get('kind')!r} is not a settings echo") from None
    if (text_field(body, "site"), text_field(body, "gateway")) != (site, gateway):
        raise PayloadError(f"the echo names another gateway than {site}/{gateway}")
    version = version_field(body, "version", minimum=0)
    if kind is EchoKind.ACTIVE:
        active_version = version
        details = {
            "tier": text_field(body, "tier"),
            "profile": text_field(body, "profile"),
            "source": text_field(body, "source"),
            "issued_by": text_field(body, "issued_by", required=False),
            "overrides": _overrides(body),
        }
    else:
        active_version = version_field(body, "active_version", minimum=0)
        reason = body.get("reason")
        if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS:
            raise PayloadError(f"reason: expected text of at most {MAX_REASON_CHARS} characters")
        details = {"reason": reason}
    return SettingsEcho(
        message_id=text_field(body, "message_id"),
        site=site,
        gateway=gateway,
        patient=text_field(body, "patient"),
        kind=kind,
        version=version,
        active_version=active_version,
        in_reply_to=text_field(body, "in_reply_to", required=False) or None,
        details=details,
        event_s=time_field(body, "event_time"),
        payload=payload.decode(),
    )


def _overrides(body: dict[str, Any]) -> dict[str, Any]:
    overrides = body.get("overrides", {})
    if not isinstance(overrides, dict) or len(json.dumps(overrides)) > 2048:
        raise PayloadError("overrides: expected a JSON object of at most 2048 characters")
    return overrides


def record_settings_echo(store: HubStore, echo: SettingsEcho, received_s: float) -> bool:
    """Store an echo; False if its message id was already stored."""
    with store.transaction() as tx:
        added = tx.run(
            "INSERT INTO hub_settings_echoes (message_id, site, gateway, patient, kind, version,"
            " active_version, in_reply_to, details, event_s, received_s, payload)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
            (
                echo.message_id,
                echo.site,
                echo.gateway,
                echo.patient,
                echo.kind.value,
                echo.version,
                echo.active_version,
                echo.in_reply_to,
                json.dumps(echo.details, sort_keys=True),
                echo.event_s,
                received_s,
                echo.payload,
            ),
        )
    if added:
        what = (
            f"version {echo.version} active"
            if echo.kind is EchoKind.ACTIVE
            else f"version {echo.version} REJECTED ({echo.details['reason']})"
        )
        log.info("settings of patient %s on %s/%s: %s", echo.patient, echo.site, echo.gateway, what)
    return bool(added)


def handle_settings_echo(store: HubStore, site: str, gateway: str, payload: bytes) -> bool:
    """Parse and store one received echo (PayloadError if it is not one)."""
    return record_settings_echo(store, parse_settings_echo(site, gateway, payload), time.time())


def newest_version(store: HubStore, site: str, gateway: str, patient: str) -> int:
    """The highest version the hub has sent or heard of for this patient (0: none)."""
    key = (site, gateway, patient)
    with store.transaction() as tx:
        rows = tx.rows(
            "SELECT max(version) AS v FROM hub_settings_requests"
            " WHERE site = ? AND gateway = ? AND patient = ?"
            " UNION ALL SELECT max(active_version) AS v FROM hub_settings_echoes"
            " WHERE site = ? AND gateway = ? AND patient = ?",
            (*key, *key),
        )
    return max((int(row["v"]) for row in rows if row["v"] is not None), default=0)


def active_echo_details(store: HubStore, site: str, gateway: str, patient: str) -> dict[str, Any]:
    """The settings the gateway last said are active for the patient ({} if never heard)."""
    with store.transaction() as tx:
        rows = tx.rows(
            "SELECT details FROM hub_settings_echoes WHERE site = ? AND gateway = ?"
            " AND patient = ? AND kind = ? ORDER BY version DESC, event_s DESC LIMIT 1",
            (site, gateway, patient, EchoKind.ACTIVE.value),
        )
    return json.loads(rows[0]["details"]) if rows else {}


def queue_settings(
    store: HubStore,
    message: OutboxMessage,
    patient: str,
    version: int,
    issued_by: str,
    issued_s: float,
) -> None:
    """Queue a settings message (made by `settings_message`) for the running hub to publish."""
    body = json.loads(message.payload)
    with store.transaction() as tx:
        tx.run(
            "INSERT INTO hub_settings_requests (message_id, site, gateway, patient, version,"
            " issued_by, issued_s, topic, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (message_id) DO NOTHING",
            (
                message.message_id,
                body["site"],
                body["gateway"],
                patient,
                version,
                issued_by,
                issued_s,
                message.topic,
                message.payload,
            ),
        )


def send_pending_settings(client: mqtt.Client, store: HubStore, timeout_s: float) -> int:
    """Publish queued settings messages (QoS 1) and mark those the broker accepted."""
    if not client.is_connected():
        return 0
    with store.transaction() as tx:
        pending = tx.rows(
            "SELECT message_id, topic, payload FROM hub_settings_requests"
            " WHERE published_s IS NULL ORDER BY issued_s, message_id"
        )
    return publish_queued(
        client, store, "hub_settings_requests", pending, "settings message", timeout_s
    )


def list_settings(store: HubStore) -> list[dict[str, Any]]:
    """Per patient heard of or sent to: the active version and its settings, the newest
    request and what became of it (pending, sent, active, rejected with the reason)."""
    with store.transaction() as tx:
        echoes = tx.rows(
            "SELECT site, gateway, patient, kind, version, active_version, in_reply_to,"
            " details, event_s FROM hub_settings_echoes ORDER BY event_s, message_id"
        )
        requests = tx.rows(
            "SELECT message_id, site, gateway, patient, version, issued_by, issued_s,"
            " published_s FROM hub_settings_requests ORDER BY issued_s, message_id"
        )
    patients: dict[tuple[str, str, str], dict[str, Any]] = {}
    for echo in echoes:
        entry = patients.setdefault(_key(echo), _entry(echo))
        if echo["kind"] == EchoKind.ACTIVE.value and echo["version"] >= entry["active_version"]:
            entry.update(active_version=echo["version"], active=json.loads(echo["details"]))
        entry["answers"][echo["in_reply_to"]] = echo
    for request in requests:
        entry = patients.setdefault(_key(request), _entry(request))
        entry["request"] = {**request, "state": _state(request, entry)}
    for entry in patients.values():
        del entry["answers"]
    return [patients[key] for key in sorted(patients)]


def _key(row: dict[str, Any]) -> tuple[str, str, str]:
    return row["site"], row["gateway"], row["patient"]


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "site": row["site"],
        "gateway": row["gateway"],
        "patient": row["patient"],
        "active_version": 0,
        "active": None,
        "request": None,
        "answers": {},
    }


def _state(request: dict[str, Any], entry: dict[str, Any]) -> str:
    answer = entry["answers"].get(request["message_id"])
    if answer is not None and answer["kind"] == EchoKind.REJECTED.value:
        return f"rejected: {json.loads(answer['details'])['reason']}"
    if entry["active_version"] >= request["version"]:
        return "active" if entry["active_version"] == request["version"] else "superseded"
    return "sent, no answer yet" if request["published_s"] is not None else "waiting for the hub"
