"""The hospital asks a gateway for a patient's raw readings over a time range (pure).

Request (hub -> gateway, QoS 1, not retained), topic <prefix>/<site>/<gateway>/raw-request:
  schema 1, kind "raw_request"
  message_id    of the request (the answer's chunk ids derive from it: a repeated request
                queues nothing new)
  gateway, site the box asked
  patient       pseudonymous patient id
  start_time, end_time   ISO 8601 UTC with a zone; end after start, at most MAX_SPAN_S apart

The answer is the `raw` messages of sync/summaries.py, one per CHUNK_S of the range (empty
chunks too, so the hospital knows when it has the whole answer; readings older than the
gateway's retention were rolled up into minutes and are not in it).
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass

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

RAW_REQUEST_LEAF = "raw-request"
CHUNK_S = 600
MAX_SPAN_S = 6 * 3600
_NAMESPACE = uuid.UUID("c2a9d3f4-52e4-4c3b-a1f0-7b6e8d9c0a11")


@dataclass(frozen=True, slots=True)
class RawRequest:
    message_id: str
    gateway: str
    site: str
    patient: str
    start_s: float
    end_s: float

    def chunks(self) -> list[tuple[float, float]]:
        """The [start, end) spans of the answer's chunks, in time order."""
        count = math.ceil((self.end_s - self.start_s) / CHUNK_S)
        return [
            (self.start_s + i * CHUNK_S, min(self.end_s, self.start_s + (i + 1) * CHUNK_S))
            for i in range(count)
        ]


def raw_request_topic(prefix: str, site: str, gateway_id: str) -> str:
    return f"{prefix}/{site}/{gateway_id}/{RAW_REQUEST_LEAF}"


def parse_raw_request(payload: bytes | str) -> RawRequest:
    """The request in a downlink payload; PayloadError if it is not a valid one."""
    body = load_object(payload)
    check_kind(body, "raw_request")
    start_s, end_s = time_field(body, "start_time"), time_field(body, "end_time")
    if not start_s < end_s <= start_s + MAX_SPAN_S:
        raise PayloadError(
            f"end_time must be after start_time and at most {MAX_SPAN_S // 3600} h later"
        )
    return RawRequest(
        message_id=text_field(body, "message_id"),
        gateway=text_field(body, "gateway"),
        site=text_field(body, "site"),
        patient=text_field(body, "patient"),
        start_s=start_s,
        end_s=end_s,
    )


def raw_request_message(
    prefix: str, site: str, gateway_id: str, patient: str, span_s: tuple[float, float]
) -> OutboxMessage:
    """A request (as the hub sends it) for `patient`'s readings in [start, end)."""
    start_s, end_s = span_s
    key = f"raw-request/{site}/{gateway_id}/{patient}/{start_s:.3f}/{end_s:.3f}"
    message_id = str(uuid.uuid5(_NAMESPACE, key))
    body = {
        "schema": SCHEMA_VERSION,
        "kind": "raw_request",
        "message_id": message_id,
        "gateway": gateway_id,
        "site": site,
        "patient": patient,
        "start_time": iso_utc(start_s),
        "end_time": iso_utc(end_s),
    }
    payload = json.dumps(body, separators=(",", ":"), sort_keys=True)
    return OutboxMessage(
        OutboxPriority.RAW, raw_request_topic(prefix, site, gateway_id), message_id, payload
    )
