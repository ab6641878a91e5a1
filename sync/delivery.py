"""How an outbox row is published: the `historical` flag and the MQTT v5 message expiry (pure).

Historical: a message published more than HISTORICAL_AFTER_S after its event time (the
outbox row's created_s: an alert event's time, a record's, the end of a summary's minutes) was
held back by a link that was down. The outbox keeps the payload as it was made; at publish
time the flag goes in twice:
- into the JSON payload, as `"historical":true` inserted first in the object (what the hub
  reads: sync/hub_messages.py), and
- as the MQTT v5 user property `historical=true`, for consumers that route on properties
  without parsing payloads.
The message id is unchanged: a resend, historical or not, is the same message to the hub.

Expiry (MQTT v5 MessageExpiryInterval, from the broker's receipt): a subscriber's queue at the
broker drops what is no longer worth delivering. Alerts never expire (EXPIRY_S has none).
"""

from __future__ import annotations

import functools

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sync.payload import OutboxPriority, OutboxRow

HISTORICAL_AFTER_S = 600.0
HISTORICAL_PROPERTY = ("historical", "true")
_HISTORICAL_FIELD = '"historical":true'
DAY_S = 86_400
EXPIRY_S: dict[int, int] = {
    OutboxPriority.STATUS: 7 * DAY_S,  # device records: the hub's session lasts a week
    OutboxPriority.SUMMARY: 7 * DAY_S,
    OutboxPriority.RAW: 2 * DAY_S,  # an answer to a clinician's question, stale after that
}


def is_historical(row: OutboxRow, now_s: float) -> bool:
    """Published long after its event (rows with no known time never are)."""
    return row.created_s > 0 and now_s - row.created_s > HISTORICAL_AFTER_S


def flag_historical(payload: str) -> str:
    """The JSON object `payload` with `"historical":true` as its first member (unchanged if
    it is not a non-empty object or already says it)."""
    if not payload.startswith("{") or payload.startswith("{}") or _HISTORICAL_FIELD in payload:
        return payload
    return "{" + _HISTORICAL_FIELD + "," + payload[1:]


class _PackedOnce(Properties):
    """Properties that are not changed once made, packed once: paho packs a message's
    properties every time it sends it."""

    def freeze(self) -> None:
        object.__setattr__(self, "_packed", super().pack())  # type: ignore[no-untyped-call]

    def pack(self) -> bytes:
        packed: bytes = self.__dict__["_packed"]
        return packed


@functools.cache
def _publish_properties(expiry_s: int | None, historical: bool) -> Properties:
    """One shared, never modified Properties per combination: paho only reads them, and
    building one costs more than the rest of a publish."""
    properties = _PackedOnce(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if expiry_s is not None:
        properties.MessageExpiryInterval = expiry_s
    if historical:
        properties.UserProperty = [HISTORICAL_PROPERTY]
    properties.freeze()
    return properties


def prepare(row: OutboxRow, now_s: float) -> tuple[str, Properties | None]:
    """The payload and MQTT v5 PUBLISH properties (None: none) of `row` published now
    (the properties are shared between messages: do not modify them)."""
    historical = is_historical(row, now_s)
    expiry_s = EXPIRY_S.get(row.priority)
    if not historical and expiry_s is None:
        return row.payload, None
    payload = flag_historical(row.payload) if historical else row.payload
    return payload, _publish_properties(expiry_s, historical)
