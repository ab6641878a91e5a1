"""Summary and raw payloads, and the raw-data request (pure)."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.payload import OutboxPriority, PayloadError, iso_utc
from sync.raw_request import CHUNK_S, MAX_SPAN_S, parse_raw_request, raw_request_message
from sync.summaries import (
    ENCODING_JSON,
    ENCODING_ZLIB,
    MinuteRow,
    RawChunk,
    compact_number,
    decode_metrics,
    encode_metrics,
    raw_message,
    summary_message,
)

T0_S = 1_800_000_000


@pytest.mark.parametrize(
    ("value", "expected"),
    [(97.0, 97), (96.5, 96.5), (36.849999, 36.85), (None, None), (float("nan"), None)],
)
def test_compact_number(value: float | None, expected: object) -> None:
    assert compact_number(value) == expected


@given(
    st.dictionaries(
        st.sampled_from(["spo2_percent", "pulse_bpm", "temp_c"]),
        st.fixed_dictionaries(
            {"minute": st.lists(st.integers(0, 14), max_size=15)},
            optional={"max": st.lists(st.none() | st.integers(0, 250), max_size=15)},
        ),
    )
)
def test_metrics_decode_to_what_was_encoded_whichever_encoding_is_chosen(
    metrics: dict[str, dict[str, list[object]]],
) -> None:
    encoding, value = encode_metrics(metrics)
    assert decode_metrics(encoding, value) == metrics
    if encoding == ENCODING_ZLIB:
        assert len(value) < len(json.dumps(metrics, separators=(",", ":")))


def test_small_metrics_stay_plain_json() -> None:
    assert encode_metrics({}) == (ENCODING_JSON, {})


@pytest.mark.parametrize(
    ("encoding", "value"),
    [
        ("zlib+base64", "not base64!"),
        ("zlib+base64", "aGVsbG8="),
        ("zlib+base64", 5),
        ("gzip", "x"),
    ],
)
def test_undecodable_metrics_are_a_value_error(encoding: str, value: object) -> None:
    with pytest.raises(ValueError, match=r"metrics|encoding"):
        decode_metrics(encoding, value)


def test_summary_message_carries_columns_per_metric_and_the_original_time() -> None:
    rows = [
        MinuteRow(T0_S + 60, "spo2_percent", 58, 2, 95.0, 96.5, 98.0, 4),
        MinuteRow(T0_S, "spo2_percent", 60, 0, 96.0, 97.0, 99.0, 0),
        MinuteRow(T0_S + 120, "temp_c", 1, 0, 36.85, 36.85, 36.85, 0),
    ]
    message = summary_message("pg", "v1", "gw-1", "p-1", (T0_S, T0_S + 900), rows)
    assert message.priority is OutboxPriority.SUMMARY
    assert message.topic == "pg/v1/gw-1/summaries"
    body = json.loads(message.payload)
    assert (body["kind"], body["patient"], body["start_time"], body["end_time"]) == (
        "summary",
        "p-1",
        iso_utc(T0_S),
        iso_utc(T0_S + 900),
    )
    assert decode_metrics(body["encoding"], body["metrics"]) == {
        "spo2_percent": {
            "minute": [0, 1],
            "n": [60, 58],
            "missing": [0, 2],
            "min": [96, 95],
            "median": [97, 96.5],
            "max": [99, 98],
            "quality": [0, 4],
        },
        "temp_c": {
            "minute": [2],
            "n": [1],
            "missing": [0],
            "min": [36.85],
            "median": [36.85],
            "max": [36.85],
            "quality": [0],
        },
    }
    again = summary_message("pg", "v1", "gw-1", "p-1", (T0_S, T0_S + 900), rows)
    other = summary_message("pg", "v1", "gw-1", "p-2", (T0_S, T0_S + 900), rows)
    assert again.message_id == message.message_id != other.message_id


def test_raw_request_round_trip_and_chunks() -> None:
    request = raw_request_message("pg", "v1", "gw-1", "p-1", (T0_S, T0_S + 1500.5))
    parsed = parse_raw_request(request.payload.encode())
    assert (parsed.gateway, parsed.site, parsed.patient) == ("gw-1", "v1", "p-1")
    assert parsed.message_id == request.message_id
    assert request.topic == "pg/v1/gw-1/raw-request"
    assert parsed.chunks() == [
        (T0_S, T0_S + CHUNK_S),
        (T0_S + CHUNK_S, T0_S + 2 * CHUNK_S),
        (T0_S + 2 * CHUNK_S, T0_S + 1500.5),
    ]


def _request(**changes: object) -> bytes:
    body = json.loads(raw_request_message("pg", "v1", "gw-1", "p-1", (T0_S, T0_S + 60)).payload)
    body.update(changes)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "UTF-8"),
        (b"[1, 2]", "object"),
        (_request(schema=2), "schema"),
        (_request(kind="ack"), "kind"),
        (_request(end_time=iso_utc(T0_S)), "after start_time"),
        (_request(end_time=iso_utc(T0_S + MAX_SPAN_S + 1)), "at most"),
        (_request(start_time="yesterday"), "ISO 8601"),
        (_request(start_time="2027-01-15T08:00:00"), "time zone"),
        (_request(patient=""), "patient"),
        (_request(patient="x" * 200), "patient"),
        (_request(message_id=7), "message_id"),
    ],
)
def test_a_malformed_raw_request_is_a_payload_error(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_raw_request(payload)


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_payload_error(payload: bytes) -> None:
    with contextlib.suppress(PayloadError):
        parse_raw_request(payload)


def test_raw_message_has_per_metric_time_value_quality_columns() -> None:
    rows = [
        (T0_S + 1.25, "spo2_percent", 97.0, 0),
        (T0_S + 0.0, "spo2_percent", None, 1),
        (T0_S + 0.5, "pulse_bpm", 72.0, 0),
    ]
    chunk = RawChunk("req-1", "p-1", 1, 3, T0_S, T0_S + 600, rows)
    message = raw_message("pg", "v1", "gw-1", chunk)
    assert (message.priority, message.topic) == (OutboxPriority.RAW, "pg/v1/gw-1/raw")
    body = json.loads(message.payload)
    assert (body["request_id"], body["chunk"], body["chunks"]) == ("req-1", 1, 3)
    assert decode_metrics(body["encoding"], body["metrics"]) == {
        "pulse_bpm": {"t": [0.5], "value": [72], "quality": [0]},
        "spo2_percent": {"t": [0, 1.25], "value": [None, 97], "quality": [1, 0]},
    }
