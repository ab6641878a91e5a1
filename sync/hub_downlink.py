"""Publishing what the hub queued for the gateways (settings, raw-data requests): each queued
row (message_id, topic, payload) goes out at QoS 1 and is marked published once the broker
took it, in order, stopping at the first one the broker did not take (the next round of
`pulsegate hub run` tries again)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt

if TYPE_CHECKING:
    from sync.hub_store import HubStore

log = logging.getLogger(__name__)


def publish_queued(
    client: mqtt.Client,
    store: HubStore,
    table: str,
    rows: list[dict[str, Any]],
    what: str,
    timeout_s: float,
) -> int:
    """Publish `rows` of the queue `table` (a hub table with message_id and published_s) and
    set published_s of each the broker accepted; `what` names a message in the log. Returns
    how many were accepted."""
    sent = 0
    for row in rows:
        info = client.publish(row["topic"], row["payload"], qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            break
        try:
            info.wait_for_publish(timeout_s)
        except (RuntimeError, ValueError) as exc:
            log.info("%s %s not confirmed (%s)", what, row["message_id"][:8], exc)
        if not info.is_published():
            break
        with store.transaction() as tx:
            tx.run(
                f"UPDATE {table} SET published_s = ? WHERE message_id = ?",
                (time.time(), row["message_id"]),
            )
        log.info("sent %s %s on %s", what, row["message_id"][:8], row["topic"])
        sent += 1
    return sent
