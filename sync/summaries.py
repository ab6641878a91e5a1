"""Per-patient summaries and raw readings as compact columnar payloads (pure).

Summary (schema 1), topic <prefix>/<site>/<gateway>/summaries, QoS 1, priority SUMMARY; one
message per patient for a batch of minutes (15 by default), each minute summarised once:
  kind          "summary"
  message_id    uuid5 of (gateway, patient, start): a resend carries the same id
  gateway, site, patient (pseudonymous)
  start_time    ISO 8601 UTC of the first minute of the batch (the readings' own time)
  end_time      ISO 8601 UTC just after the last minute
  encoding      "json": `metrics` is an object; "zlib+base64": `metrics` is that object's
                compact JSON, zlib-compressed, in base64 (used when it is smaller)
  metrics       {metric: columns}; metric is the stored name with its unit (spo2_percent,
                pulse_bpm, pi_percent, temp_c, resp_rate_per_min); columns are arrays of the
                same length, one entry per minute that had readings of that metric:
                  minute   minutes since start_time
                  n        readings with a value;  missing: readings without one
                  min, median, max   of the values, in the metric's unit (null if n is 0)
                  quality  OR of the readings' quality flags (devices/protocols/reading.py)

Raw readings (schema 1), topic <prefix>/<site>/<gateway>/raw, QoS 1, priority RAW; sent only
when the hospital asks (sync/raw_request.py), in chunks of at most 10 minutes:
  kind          "raw"
  message_id    uuid5 of (request message id, chunk index)
  request_id    message_id of the request this answers
  gateway, site, patient;  chunk, chunks (0-based index and count of the answer's chunks)
  start_time, end_time   ISO 8601 UTC: the seconds this chunk covers
  encoding, metrics  as above; columns per metric: t (seconds since start_time, to the
                millisecond), value (null: missing), quality
"""

from __future__ import annotations

import base64
import json
import math
import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sync.payload import SCHEMA_VERSION, OutboxMessage, OutboxPriority, iso_utc

SUMMARIES_LEAF = "summaries"
RAW_LEAF = "raw"
ENCODING_JSON = "json"
ENCODING_ZLIB = "zlib+base64"
_NAMESPACE = uuid.UUID("6f1f4d0a-3d1b-4f7e-8a0b-9a8c1e2d4b55")
Columns = dict[str, list[Any]]


@dataclass(frozen=True, slots=True)
class MinuteRow:
    """One metric over one minute of one patient, in the metric's unit (the shape of
    gateway.retention.Minute, by metric name): what a gateway sends and the hub parses."""

    minute_s: int  # UTC epoch second the minute starts
    metric: str
    n: int
    missing: int
    min: float | None
    median: float | None
    max: float | None
    quality: int


def compact_number(value: float | None) -> float | int | None:
    """A value as short as JSON can say it: integral values as integers, else 2 decimals."""
    if value is None or math.isnan(value):
        return None
    rounded = round(value, 2)
    return int(rounded) if rounded.is_integer() else rounded


def _dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


def encode_metrics(metrics: dict[str, Columns]) -> tuple[str, Any]:
    """(encoding, value) of the metrics object: zlib+base64 when that is shorter."""
    plain = _dumps(metrics)
    packed = base64.b64encode(zlib.compress(plain.encode(), 9)).decode()
    if len(packed) + 2 < len(plain):  # the packed string is quoted
        return ENCODING_ZLIB, packed
    return ENCODING_JSON, metrics


def decode_metrics(encoding: str, value: Any) -> Any:
    """The metrics object of a payload (untrusted: ValueError if it does not decode)."""
    if encoding == ENCODING_JSON:
        return value
    if encoding == ENCODING_ZLIB and isinstance(value, str):
        try:
            return json.loads(zlib.decompress(base64.b64decode(value, validate=True)))
        except (zlib.error, ValueError, RecursionError) as exc:
            raise ValueError(f"metrics: not {ENCODING_ZLIB} JSON: {exc}") from exc
    raise ValueError(f"encoding {encoding!r} is not {ENCODING_JSON} or {ENCODING_ZLIB}")


def summary_columns(rows: Iterable[MinuteRow], start_s: int) -> dict[str, Columns]:
    """The columns of each metric, minutes in time order."""
    metrics: dict[str, Columns] = {}
    for row in sorted(rows, key=lambda r: (r.metric, r.minute_s)):
        columns = metrics.setdefault(
            row.metric,
            {"minute": [], "n": [], "missing": [], "min": [], "median": [], "max": [],
             "quality": []},
        )  # fmt: skip
        columns["minute"].append((row.minute_s - start_s) // 60)
        columns["n"].append(row.n)
        columns["missing"].append(row.missing)
        columns["min"].append(compact_number(row.min))
        columns["median"].append(compact_number(row.median))
        columns["max"].append(compact_number(row.max))
        columns["quality"].append(row.quality)
    return metrics


def summaries_topic(prefix: str, site: str, gateway_id: str) -> str:
    return f"{prefix}/{site}/{gateway_id}/{SUMMARIES_LEAF}"


def raw_topic(prefix: str, site: str, gateway_id: str) -> str:
    return f"{prefix}/{site}/{gateway_id}/{RAW_LEAF}"


def summary_message(
    prefix: str,
    site: str,
    gateway_id: str,
    patient_id: str,
    span_s: tuple[int, int],
    rows: Sequence[MinuteRow],
) -> OutboxMessage:
    """The SUMMARY message of `patient_id`'s minutes in [start, end) (`span_s`)."""
    start_s, end_s = span_s
    message_id = str(uuid.uuid5(_NAMESPACE, f"summary/{gateway_id}/{patient_id}/{start_s}"))
    encoding, metrics = encode_metrics(summary_columns(rows, start_s))
    body = {
        "schema": SCHEMA_VERSION,
        "kind": "summary",
        "message_id": message_id,
        "gateway": gateway_id,
        "site": site,
        "patient": patient_id,
        "start_time": iso_utc(start_s),
        "end_time": iso_utc(end_s),
        "encoding": encoding,
        "metrics": metrics,
    }
    return OutboxMessage(
        OutboxPriority.SUMMARY, summaries_topic(prefix, site, gateway_id), message_id, _dumps(body)
    )


@dataclass(frozen=True, slots=True)
class RawChunk:
    """One chunk of the readings answering a request."""

    request_id: str
    patient_id: str
    index: int
    count: int
    start_s: float
    end_s: float
    rows: Sequence[tuple[float, str, float | None, int]]  # (ts_s, metric, value, quality)


def raw_columns(rows: Iterable[tuple[float, str, float | None, int]], start_s: float) -> Any:
    metrics: dict[str, Columns] = {}
    for ts_s, metric, value, quality in sorted(rows, key=lambda r: (r[1], r[0])):
        columns = metrics.setdefault(metric, {"t": [], "value": [], "quality": []})
        columns["t"].append(compact_number(round(ts_s - start_s, 3)))
        columns["value"].append(compact_number(value))
        columns["quality"].append(quality)
    return metrics


def raw_message(prefix: str, site: str, gateway_id: str, chunk: RawChunk) -> OutboxMessage:
    """The RAW message carrying one chunk of an answer."""
    message_id = str(uuid.uuid5(_NAMESPACE, f"raw/{chunk.request_id}/{chunk.index}"))
    encoding, metrics = encode_metrics(raw_columns(chunk.rows, chunk.start_s))
    body = {
        "schema": SCHEMA_VERSION,
        "kind": "raw",
        "message_id": message_id,
        "request_id": chunk.request_id,
        "gateway": gateway_id,
        "site": site,
        "patient": chunk.patient_id,
        "chunk": chunk.index,
        "chunks": chunk.count,
        "start_time": iso_utc(chunk.start_s),
        "end_time": iso_utc(chunk.end_s),
        "encoding": encoding,
        "metrics": metrics,
    }
    return OutboxMessage(
        OutboxPriority.RAW, raw_topic(prefix, site, gateway_id), message_id, _dumps(body)
    )
