"""Raw readings on request: the hospital asks for a patient and a time range
(sync/raw_request.py), the gateway queues the stored readings of that range, in chunks, at
priority RAW (sync/summaries.py `raw` messages). All chunks go into the outbox in one
transaction; their ids derive from the request's, so a repeated request adds nothing.

When the database reaches its size ceiling, unsent RAW rows are the first thing dropped
(oldest first; they can be asked for again), never an alert, and the maintenance log says so.
"""

from __future__ import annotations

import json
import logging

from gateway.migrations import reading_id_floor
from gateway.store import Store
from gateway.uplink_devices import Topics, queue_messages
from sync.payload import OutboxPriority
from sync.raw_request import RawRequest
from sync.summaries import RawChunk, raw_message

log = logging.getLogger(__name__)
DROP_BATCH = 200  # unsent RAW rows deleted per step while above the ceiling


def _rows(
    store: Store, patient_id: str, start_s: float, end_s: float
) -> list[tuple[float, str, float | None, int]]:
    rows = store.db.execute(
        "SELECT ts_s, metric, value, quality FROM readings WHERE id >= ? AND id < ?"
        " AND patient_id = ? AND ts_s >= ? AND ts_s < ?",
        [
            reading_id_floor(start_s),
            reading_id_floor(end_s) + (1 << 16),
            patient_id,
            start_s,
            end_s,
        ],
    ).fetchall()
    return [(float(ts), str(metric), value, int(q)) for ts, metric, value, q in rows]


def queue_raw_answer(store: Store, request: RawRequest, topics: Topics, now_s: float) -> int:
    """Queue the chunks answering `request`; returns how many were new in the outbox."""
    spans = request.chunks()
    messages = [
        raw_message(
            topics.prefix,
            topics.site,
            topics.gateway_id,
            RawChunk(
                request.message_id,
                request.patient,
                index,
                len(spans),
                start_s,
                end_s,
                _rows(store, request.patient, start_s, end_s),
            ),
        )
        for index, (start_s, end_s) in enumerate(spans)
    ]
    with store.transaction():
        return queue_messages(store, [(m, now_s) for m in messages])


def drop_oldest_unsent_raw(store: Store, now_s: float, limit: int = DROP_BATCH) -> int:
    """Delete the oldest unsent RAW outbox rows (at most `limit`) and log it in the
    maintenance log; returns how many. Alerts, status and summaries are never touched."""
    with store.transaction():
        dropped = store.db.execute(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE sent_s IS NULL"
            " AND priority = ? ORDER BY id LIMIT ?)",
            [int(OutboxPriority.RAW), limit],
        ).rowcount
        if dropped:
            store.db.execute(
                "INSERT INTO maintenance_log (ts_s, kind, details) VALUES (?, ?, ?)",
                [now_s, "outbox_raw_dropped", json.dumps({"dropped": dropped})],
            )
    if dropped:
        log.warning("database above its ceiling: dropped %d unsent raw-data messages", dropped)
    return dropped
