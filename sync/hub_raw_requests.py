"""Raw-data requests from the hub: queued by `pulsegate hub raw-request`, published by the
running `pulsegate hub run` (QoS 1, marked published once the broker took it, like
acknowledgements), answered by the gateway in chunks (sync/summaries.py `raw` messages) that
the hub stores per reading (sync/hub_data.py).

A request's message id derives from (site, gateway, patient, start, end): asking again for
the same range queues nothing new here, and the gateway answers it only once. A gateway hears
a request only while it is connected, so a request without any answer is published again
every RESEND_UNANSWERED_S, for up to GIVE_UP_AFTER_S.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt

from sync.hub_downlink import publish_queued
from sync.payload import OutboxMessage, time_field

if TYPE_CHECKING:
    from sync.hub_store import HubStore

RESEND_UNANSWERED_S = 600.0
GIVE_UP_AFTER_S = 2 * 86400.0  # the gateway's answer expires at the broker after 2 days


def queue_raw_request(
    store: HubStore, message: OutboxMessage, requested_by: str, requested_s: float
) -> bool:
    """Queue a request made by `sync.raw_request.raw_request_message`; False if the same
    request was queued before."""
    body = json.loads(message.payload)
    with store.transaction() as tx:
        added = tx.run(
            "INSERT INTO hub_raw_requests (message_id, site, gateway, patient, start_s, end_s,"
            " requested_by, requested_s, topic, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (message_id) DO NOTHING",
            (
                message.message_id,
                body["site"],
                body["gateway"],
                body["patient"],
                time_field(body, "start_time"),
                time_field(body, "end_time"),
                requested_by,
                requested_s,
                message.topic,
                message.payload,
            ),
        )
    return bool(added)


def send_pending_raw_requests(client: mqtt.Client, store: HubStore, timeout_s: float) -> int:
    """Publish queued requests (QoS 1), and again those without any answer after
    RESEND_UNANSWERED_S (a gateway hears requests only while it is online; a repeat queues
    nothing twice there), until GIVE_UP_AFTER_S; marks each the broker accepted. Returns how
    many were published."""
    if not client.is_connected():
        return 0
    now_s = time.time()
    with store.transaction() as tx:
        pending = tx.rows(
            "SELECT message_id, topic, payload FROM hub_raw_requests r"
            " WHERE published_s IS NULL OR (published_s < ? AND requested_s > ?"
            " AND NOT EXISTS (SELECT 1 FROM hub_raw_chunks c WHERE c.request_id = r.message_id))"
            " ORDER BY requested_s, message_id",
            (now_s - RESEND_UNANSWERED_S, now_s - GIVE_UP_AFTER_S),
        )
    return publish_queued(client, store, "hub_raw_requests", pending, "raw-data request", timeout_s)


def list_raw_requests(store: HubStore, limit: int = 100) -> list[dict[str, Any]]:
    """Requests, newest first, with how many chunks of the answer arrived and how many the
    answer has (None until the first chunk says)."""
    with store.transaction() as tx:
        return tx.rows(
            "SELECT r.message_id, r.site, r.gateway, r.patient, r.start_s, r.end_s,"
            " r.requested_by, r.requested_s, r.published_s,"
            " (SELECT count(*) FROM hub_raw_chunks c WHERE c.request_id = r.message_id)"
            " AS chunks_received,"
            " (SELECT max(c.chunks) FROM hub_raw_chunks c WHERE c.request_id = r.message_id)"
            " AS chunks,"
            " (SELECT sum(c.readings) FROM hub_raw_chunks c WHERE c.request_id = r.message_id)"
            " AS readings"
            " FROM hub_raw_requests r ORDER BY r.requested_s DESC, r.message_id LIMIT ?",
            (limit,),
        )


def raw_readings(
    store: HubStore, key: tuple[str, str, str], start_s: float, end_s: float
) -> list[dict[str, Any]]:
    """Stored raw readings of (site, gateway, patient) in [start_s, end_s): ts_ms, metric,
    value (None: missing), quality; in time order."""
    with store.transaction() as tx:
        return tx.rows(
            "SELECT ts_ms, metric, value, quality FROM hub_raw_readings"
            " WHERE site = ? AND gateway = ? AND patient = ? AND ts_ms >= ? AND ts_ms < ?"
            " ORDER BY ts_ms, metric",
            (*key, round(start_s * 1000), round(end_s * 1000)),
        )
