"""What the township hub receives besides alerts, parsed and checked: device records, data
gaps (sync/records.py), per-minute summaries and raw readings (sync/summaries.py).

Pure: bytes and topic parts in, frozen values out, `PayloadError` for anything that does not
follow the schema. Payloads are untrusted: every field is type-, range- and length-checked,
a compressed `metrics` object may not inflate beyond MAX_METRICS_BYTES, and the site and
gateway in the payload must match the topic it came on (the topic is the identity).

As for alerts, words a newer gateway may add (a device event, a metric) are accepted as text;
numbers must be numbers and times must be times.
"""

from __future__ import annotations

import base64
import json
import math
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sync.payload import (
    MAX_TEXT_CHARS,
    PayloadError,
    flag_field,
    load_from_gateway,
    load_object,
    text_field,
    time_field,
)
from sync.summaries import ENCODING_ZLIB, MinuteRow, decode_metrics

MAX_METRICS_BYTES = 8 << 20  # the decompressed metrics of one message
MAX_METRICS = 32
MAX_REASONS = 16
MAX_SUMMARY_SPAN_S = 24 * 3600
MAX_RAW_SPAN_S = 6 * 3600
MAX_RAW_READINGS = 200_000  # per message: 10 minutes of 1 Hz readings is 600 per metric
MAX_CHUNKS = 10_000
MAX_ABS_VALUE = 1e6  # no vital sign is larger; anything beyond is not a measurement
MAX_QUALITY = (1 << 31) - 1
_METRIC_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
SUMMARY_COLUMNS = ("minute", "n", "missing", "min", "median", "max", "quality")
RAW_COLUMNS = ("t", "value", "quality")


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A device's data state changed: silent, no_signal or back."""

    message_id: str
    site: str
    gateway: str
    patient: str
    device: str
    event: str
    event_s: float
    since_s: float  # the last valid reading before the gap
    reasons: tuple[str, ...]
    historical: bool
    payload: str


@dataclass(frozen=True, slots=True)
class GapRecord:
    """No valid data from a device between two times (sent when the gap closed)."""

    message_id: str
    site: str
    gateway: str
    patient: str
    device: str
    start_s: float
    end_s: float
    duration_s: int
    reasons: tuple[str, ...]
    historical: bool
    payload: str


@dataclass(frozen=True, slots=True)
class Summary:
    message_id: str
    site: str
    gateway: str
    patient: str
    start_s: float
    end_s: float
    minutes: tuple[MinuteRow, ...]
    historical: bool


@dataclass(frozen=True, slots=True)
class RawReading:
    ts_ms: int  # UTC epoch milliseconds
    metric: str
    value: float | None  # None: the reading had no value (see quality)
    quality: int


@dataclass(frozen=True, slots=True)
class RawAnswer:
    """One chunk of a gateway's answer to a raw-data request."""

    message_id: str
    request_id: str
    site: str
    gateway: str
    patient: str
    chunk: int
    chunks: int
    start_s: float
    end_s: float
    readings: tuple[RawReading, ...]
    historical: bool


DataRecord = DeviceRecord | GapRecord | Summary | RawAnswer


def _reasons(body: dict[str, Any]) -> tuple[str, ...]:
    reasons = body.get("reasons")
    if not isinstance(reasons, list) or len(reasons) > MAX_REASONS:
        raise PayloadError(f"reasons: expected a list of at most {MAX_REASONS} texts")
    for reason in reasons:
        if not isinstance(reason, str) or len(reason) > MAX_TEXT_CHARS or not reason.isprintable():
            raise PayloadError(f"reasons: each a printable text of at most {MAX_TEXT_CHARS}")
    return tuple(reasons)


def _integer(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PayloadError(f"{name}: expected an integer from {low} to {high}, got {value!r}")
    return value


def _number(value: Any, name: str) -> float | None:
    """A finite measurement within MAX_ABS_VALUE, or None (null)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"{name}: expected a number or null, got {value!r}")
    if not math.isfinite(value) or abs(value) > MAX_ABS_VALUE:
        raise PayloadError(f"{name}: {value!r} is not a measurement")
    return float(value)


def _span(body: dict[str, Any], limit_s: float) -> tuple[float, float]:
    start_s, end_s = time_field(body, "start_time"), time_field(body, "end_time")
    if not start_s < end_s <= start_s + limit_s:
        raise PayloadError(f"end_time must be after start_time and at most {limit_s:g} s later")
    return start_s, end_s


def _inflated(encoding: Any, value: Any) -> Any:
    """The metrics object; a compressed one may not inflate beyond MAX_METRICS_BYTES."""
    if encoding != ENCODING_ZLIB:
        try:
            return decode_metrics(str(encoding), value)
        except ValueError as exc:
            raise PayloadError(str(exc)) from exc
    if not isinstance(value, str):
        raise PayloadError(f"metrics: {ENCODING_ZLIB} metrics must be a string")
    inflater = zlib.decompressobj()
    try:
        plain = inflater.decompress(base64.b64decode(value, validate=True), MAX_METRICS_BYTES)
    except (zlib.error, ValueError) as exc:
        raise PayloadError(f"metrics: not {ENCODING_ZLIB}: {exc}") from exc
    if inflater.unconsumed_tail or not inflater.eof:
        raise PayloadError(f"metrics: truncated, or larger than {MAX_METRICS_BYTES} bytes")
    try:
        return json.loads(plain)
    except (ValueError, RecursionError) as exc:
        raise PayloadError(f"metrics: not {ENCODING_ZLIB} JSON: {exc}") from exc


def _metrics(body: dict[str, Any], columns: tuple[str, ...]) -> dict[str, dict[str, list[Any]]]:
    """{metric: {column: values}}: the given columns present (a newer gateway may add more),
    every column a list, all of one length per metric."""
    metrics = _inflated(body.get("encoding"), body.get("metrics"))
    if not isinstance(metrics, dict) or len(metrics) > MAX_METRICS:
        raise PayloadError(f"metrics: expected an object of at most {MAX_METRICS} metrics")
    for metric, table in metrics.items():
        if not _METRIC_NAME.fullmatch(metric):
            raise PayloadError(f"metrics: {metric[:70]!r} is not a metric name")
        if not isinstance(table, dict) or not set(columns) <= set(table):
            raise PayloadError(f"metrics.{metric}: expected the columns {', '.join(columns)}")
        lengths = {len(values) if isinstance(values, list) else -1 for values in table.values()}
        if len(lengths) != 1 or -1 in lengths:
            raise PayloadError(f"metrics.{metric}: columns must be lists of one length")
    return metrics


def _rows(
    metrics: dict[str, dict[str, list[Any]]],
    columns: tuple[str, ...],
    make: Callable[[str, dict[str, Any]], Any],
) -> list[Any]:
    """make(metric, {column: value}) for each row of each metric (other columns ignored)."""
    rows = []
    for metric, table in sorted(metrics.items()):
        for values in zip(*(table[name] for name in columns), strict=True):
            rows.append(make(metric, dict(zip(columns, values, strict=True))))
    return rows


def parse_device_record(site: str, gateway: str, payload: bytes) -> DeviceRecord:
    """The `device` record in `payload`, received on `site`/`gateway`'s devices topic."""
    body = load_from_gateway(payload, "device", site, gateway)
    return DeviceRecord(
        message_id=text_field(body, "message_id"),
        site=site,
        gateway=gateway,
        patient=text_field(body, "patient"),
        device=text_field(body, "device"),
        event=text_field(body, "event"),
        event_s=time_field(body, "event_time"),
        since_s=time_field(body, "since"),
        reasons=_reasons(body),
        historical=flag_field(body, "historical"),
        payload=payload.decode(),
    )


def parse_gap_record(site: str, gateway: str, payload: bytes) -> GapRecord:
    """The `gap` record in `payload`, received on `site`/`gateway`'s devices topic."""
    body = load_from_gateway(payload, "gap", site, gateway)
    start_s, end_s = time_field(body, "start_time"), time_field(body, "end_time")
    if end_s < start_s:
        raise PayloadError("end_time is before start_time")
    duration_s = _integer(body.get("duration_s"), "duration_s", 0, 10 * 365 * 86400)
    if abs(duration_s - (end_s - start_s)) > 1:
        raise PayloadError(f"duration_s {duration_s} is not end_time - start_time")
    return GapRecord(
        message_id=text_field(body, "message_id"),
        site=site,
        gateway=gateway,
        patient=text_field(body, "patient"),
        device=text_field(body, "device"),
        start_s=start_s,
        end_s=end_s,
        duration_s=duration_s,
        reasons=_reasons(body),
        historical=flag_field(body, "historical"),
        payload=payload.decode(),
    )


def parse_devices_message(site: str, gateway: str, payload: bytes) -> DeviceRecord | GapRecord:
    """A message of the devices topic: a device record or a gap record, by its kind."""
    kind = load_object(payload).get("kind")
    if kind == "gap":
        return parse_gap_record(site, gateway, payload)
    return parse_device_record(site, gateway, payload)


def parse_summary(site: str, gateway: str, payload: bytes) -> Summary:
    """The per-minute summary in `payload`, received on `site`/`gateway`'s summaries topic."""
    body = load_from_gateway(payload, "summary", site, gateway)
    start_s, end_s = _span(body, MAX_SUMMARY_SPAN_S)
    first_minute_s = round(start_s)
    last_minute = math.ceil((end_s - start_s) / 60) - 1

    def minute(metric: str, row: dict[str, Any]) -> MinuteRow:
        return MinuteRow(
            minute_s=first_minute_s + 60 * _integer(row["minute"], "minute", 0, last_minute),
            metric=metric,
            n=_integer(row["n"], "n", 0, 1_000_000),
            missing=_integer(row["missing"], "missing", 0, 1_000_000),
            min=_number(row["min"], "min"),
            median=_number(row["median"], "median"),
            max=_number(row["max"], "max"),
            quality=_integer(row["quality"], "quality", 0, MAX_QUALITY),
        )

    minutes = _rows(_metrics(body, SUMMARY_COLUMNS), SUMMARY_COLUMNS, minute)
    keys = {(m.metric, m.minute_s) for m in minutes}
    if len(keys) != len(minutes):
        raise PayloadError("metrics: a minute is listed twice for one metric")
    return Summary(
        message_id=text_field(body, "message_id"),
        site=site,
        gateway=gateway,
        patient=text_field(body, "patient"),
        start_s=start_s,
        end_s=end_s,
        minutes=tuple(minutes),
        historical=flag_field(body, "historical"),
    )


def parse_raw_answer(site: str, gateway: str, payload: bytes) -> RawAnswer:
    """One chunk of raw readings in `payload`, received on `site`/`gateway`'s raw topic."""
    body = load_from_gateway(payload, "raw", site, gateway)
    start_s, end_s = _span(body, MAX_RAW_SPAN_S)
    chunks = _integer(body.get("chunks"), "chunks", 1, MAX_CHUNKS)
    chunk = _integer(body.get("chunk"), "chunk", 0, chunks - 1)
    span_s = end_s - start_s

    def reading(metric: str, row: dict[str, Any]) -> RawReading:
        offset_s = _number(row["t"], "t")
        if offset_s is None or not 0 <= offset_s <= span_s:
            raise PayloadError(f"t: {row['t']!r} is not within the chunk's {span_s:g} s")
        return RawReading(
            ts_ms=round((start_s + offset_s) * 1000),
            metric=metric,
            value=_number(row["value"], "value"),
            quality=_integer(row["quality"], "quality", 0, MAX_QUALITY),
        )

    metrics = _metrics(body, RAW_COLUMNS)
    if sum(len(table["t"]) for table in metrics.values()) > MAX_RAW_READINGS:
        raise PayloadError(f"metrics: more than {MAX_RAW_READINGS} readings")
    return RawAnswer(
        message_id=text_field(body, "message_id"),
        request_id=text_field(body, "request_id"),
        site=site,
        gateway=gateway,
        patient=text_field(body, "patient"),
        chunk=chunk,
        chunks=chunks,
        start_s=start_s,
        end_s=end_s,
        readings=tuple(_rows(metrics, RAW_COLUMNS, reading)),
        historical=flag_field(body, "historical"),
    )
