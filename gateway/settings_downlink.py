"""The daemon's side of the settings downlink: a message from the hospital parsed, applied in
the store with its echo, and logged in one line."""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING

from gateway.config import Config
from gateway.patient_settings import EchoRoute, Outcome, Result, apply_hospital_settings
from sync.payload import PayloadError
from sync.settings_payload import parse_settings

if TYPE_CHECKING:
    from gateway.daemon import StoreWorker

log = logging.getLogger(__name__)


async def apply_settings_downlink(
    worker: StoreWorker, config: Config, topic: str, payload: bytes, now_s: float
) -> Result | None:
    """Apply (or refuse, with an echo saying why) one settings message; None when it cannot
    be answered (malformed, for another gateway, or the store failed)."""
    try:
        command = parse_settings(payload)
    except PayloadError as exc:
        log.warning("ignoring a malformed settings message on %s: %s", topic, exc)
        return None
    gateway = config.gateway
    if (command.gateway, command.site) != (gateway.id, gateway.site):
        log.warning("ignoring settings for %s/%s on %s", command.site, command.gateway, topic)
        return None
    route = EchoRoute(config.mqtt.topic_prefix, gateway.site)
    try:
        result = await worker.call(apply_hospital_settings, worker.store, command, route, now_s)
    except sqlite3.Error as exc:
        log.error(
            "cannot apply settings version %d for patient %s (%s); the hospital sees no echo"
            " and must send them again",
            command.version,
            command.patient,
            exc,
        )
        return None
    if result.outcome is Outcome.APPLIED:
        log.info(
            "settings version %d from %s now active for patient %s",
            command.version,
            command.issued_by,
            command.patient,
        )
    else:
        log.info(
            "settings version %d for patient %s %s: %s",
            command.version,
            command.patient,
            result.outcome.value,
            result.reason,
        )
    return result
