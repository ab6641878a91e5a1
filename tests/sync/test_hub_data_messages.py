"""The hub's checks of device records, gaps, summaries and raw-data chunks (pure)."""

from __future__ import annotations

import base64
import contextlib
import json
import zlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.delivery import flag_historical
from sync.hub_data_messages import (
    MAX_METRICS_BYTES,
    DeviceRecord,
    GapRecord,
    parse_devices_message,
    parse_raw_answer,
    parse_summary,
)
from sync.hub_intake import parse_data_message
from sync.payload import PayloadError
from sync.records import DeviceEventKind
from sync.summaries import ENCODING_JSON, ENCODING_ZLIB, decode_metrics
from tests.sync.hub_data_samples import (
    GATEWAY,
    PATIENT,
    REASONS,
    SITE,
    T0_S,
    device_message,
    gap_message,
    minute_rows,
    raw_chunk,
    summary,
)

REQUEST_ID = "5d2c1e0f-0000-5000-8000-00000000abcd"


def test_the_gateways_device_and_gap_records_parse_back_field_by_field() -> None:
    message = device_message(DeviceEventKind.NO_SIGNAL, at_s=400)
    record = parse_devices_message(SITE, GATEWAY, message.payload.encode())
    assert isinstance(record, DeviceRecord)
    assert (record.message_id, record.patient, record.device, record.event) == (
        message.message_id,
        PATIENT,
        "ox-1",
        "no_signal",
    )
    assert (record.event_s, record.since_s, record.reasons) == (T0_S + 400, T0_S + 100, REASONS)
    assert record.historical is False

    message = gap_message(100, 3700)
    gap = parse_devices_message(SITE, GATEWAY, flag_historical(message.payload).encode())
    assert isinstance(gap, GapRecord)
    assert (gap.start_s, gap.end_s, gap.duration_s, gap.reasons) == (
        T0_S + 100,
        T0_S + 3700,
        3600,
        REASONS,
    )
    assert gap.historical is True


@pytest.mark.parametrize("encoding", [ENCODING_ZLIB, ENCODING_JSON])
def test_a_summary_parses_to_one_row_per_metric_and_minute(encoding: str) -> None:
    minutes = 15
    message = summary(minutes=minutes)
    assert json.loads(message.payload)["encoding"] == ENCODING_ZLIB  # what the gateway sends
    payload = message.payload.encode()
    if encoding == ENCODING_JSON:
        payload = with_metrics(message.payload, lambda _metrics: None)
    parsed = parse_summary(SITE, GATEWAY, payload)
    expected = {
        (row.metric, row.minute_s): (row.n, row.missing, row.min, row.median, row.max, row.quality)
        for row in minute_rows(T0_S, minutes)
    }
    got = {
        (m.metric, m.minute_s): (m.n, m.missing, m.min, m.median, m.max, m.quality)
        for m in parsed.minutes
    }
    assert got == expected
    assert (parsed.patient, parsed.start_s, parsed.end_s) == (PATIENT, T0_S, T0_S + 60 * minutes)


def test_a_raw_chunk_parses_to_readings_at_their_millisecond() -> None:
    message = raw_chunk(REQUEST_ID, 1, 3, 600)
    answer = parse_raw_answer(SITE, GATEWAY, message.payload.encode())
    assert (answer.request_id, answer.chunk, answer.chunks) == (REQUEST_ID, 1, 3)
    assert len(answer.readings) == 600
    first, fifth = answer.readings[0], answer.readings[4]
    assert (first.ts_ms, first.metric, first.value) == (
        (T0_S + 600) * 1000 + 250,
        "spo2_percent",
        90.0,
    )
    assert (fifth.ts_ms, fifth.value) == ((T0_S + 604) * 1000 + 250, None)


def edited(payload: str, **changes: Any) -> bytes:
    body = json.loads(payload)
    for name, value in changes.items():
        if value is ...:
            del body[name]
        else:
            body[name] = value
    return json.dumps(body).encode()


def with_metrics(payload: str, edit: Any) -> bytes:
    """The payload with its metrics decoded, changed by `edit`, and sent as plain JSON."""
    body = json.loads(payload)
    metrics = decode_metrics(body["encoding"], body["metrics"])
    edit(metrics)
    body.update(encoding=ENCODING_JSON, metrics=metrics)
    return json.dumps(body).encode()


SUMMARY = summary().payload
RAW = raw_chunk(REQUEST_ID, 0, 1, 0, seconds=30).payload


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (edited(SUMMARY, gateway="gw-2"), "came on the topic of village-1/gw-1"),
        (edited(SUMMARY, kind="raw"), "kind 'raw' is not 'summary'"),
        (edited(SUMMARY, schema=2), "schema 2"),
        (edited(SUMMARY, end_time=...), "end_time"),
        (edited(SUMMARY, start_time="2027-01-15T08:00:00"), "has no time zone"),
        (edited(SUMMARY, historical="yes"), "historical"),
        (edited(SUMMARY, encoding="gzip"), "encoding 'gzip'"),
        (edited(SUMMARY, encoding=ENCODING_ZLIB, metrics="not base64!"), "not zlib"),
        (with_metrics(SUMMARY, lambda m: m["spo2_percent"]["n"].pop()), "one length"),
        (with_metrics(SUMMARY, lambda m: m["spo2_percent"].pop("median")), "the columns"),
        (with_metrics(SUMMARY, lambda m: m.update({"SpO2 %": m["pulse_bpm"]})), "metric name"),
        (with_metrics(SUMMARY, lambda m: m["spo2_percent"]["minute"].__setitem__(0, 15)), "minute"),
        (with_metrics(SUMMARY, lambda m: m["spo2_percent"]["minute"].__setitem__(1, 0)), "twice"),
        (with_metrics(SUMMARY, lambda m: m["spo2_percent"]["n"].__setitem__(0, -1)), "n: "),
        (with_metrics(SUMMARY, lambda m: m["spo2_percent"]["max"].__setitem__(0, "98")), "max"),
        (with_metrics(SUMMARY, lambda m: m["spo2_percent"]["min"].__setitem__(0, 1e300)), "min"),
        (
            with_metrics(SUMMARY, lambda m: m["pulse_bpm"]["quality"].__setitem__(0, True)),
            "quality",
        ),
    ],
)
def test_a_malformed_summary_is_a_payload_error_saying_why(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason.replace("(", r"\(")):
        parse_summary(SITE, GATEWAY, payload)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (edited(RAW, chunk=1), "chunk: expected an integer from 0 to 0"),
        (edited(RAW, chunks=0), "chunks"),
        (edited(RAW, request_id=...), "request_id"),
        (edited(RAW, end_time="2027-01-15T08:00:00Z"), "end_time must be after"),
        (with_metrics(RAW, lambda m: m["spo2_percent"]["t"].__setitem__(0, -1)), "not within"),
        (with_metrics(RAW, lambda m: m["spo2_percent"]["t"].__setitem__(0, None)), "not within"),
        (with_metrics(RAW, lambda m: m["spo2_percent"]["value"].__setitem__(0, "nan")), "value"),
    ],
)
def test_a_malformed_raw_chunk_is_a_payload_error_saying_why(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_raw_answer(SITE, GATEWAY, payload)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (edited(gap_message().payload, duration_s=10), "duration_s 10 is not"),
        (edited(gap_message().payload, duration_s=1.5), "duration_s: expected an integer"),
        (edited(gap_message().payload, end_time="2020-01-01T00:00:00Z"), "before start_time"),
        (edited(device_message().payload, reasons="no data"), "reasons"),
        (edited(device_message().payload, reasons=["x" * 129]), "reasons"),
        (edited(device_message().payload, since=...), "since"),
        (edited(device_message().payload, kind="devices"), "kind 'devices' is not 'device'"),
    ],
)
def test_a_malformed_device_record_is_a_payload_error_saying_why(
    payload: bytes, reason: str
) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_devices_message(SITE, GATEWAY, payload)


def test_a_compressed_metrics_bomb_is_refused_without_inflating_it() -> None:
    bomb = zlib.compress(b"[" + b" " * (MAX_METRICS_BYTES + 10) + b"]", 9)
    payload = edited(SUMMARY, encoding=ENCODING_ZLIB, metrics=base64.b64encode(bomb).decode())
    assert len(payload) < 50_000
    with pytest.raises(PayloadError, match="larger than"):
        parse_summary(SITE, GATEWAY, payload)


def test_a_newer_gateways_extra_column_and_device_event_are_accepted() -> None:
    payload = with_metrics(SUMMARY, lambda m: m["pulse_bpm"].update(p90=m["pulse_bpm"]["max"]))
    assert len(parse_summary(SITE, GATEWAY, payload).minutes) == 15 + 8
    record = parse_devices_message(SITE, GATEWAY, edited(device_message().payload, event="reset"))
    assert isinstance(record, DeviceRecord) and record.event == "reset"


def test_a_topic_the_hub_does_not_handle_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="does not handle 'metrics'"):
        parse_data_message(SITE, GATEWAY, "metrics", SUMMARY.encode())


@given(st.sampled_from(["devices", "summaries", "raw"]), st.binary(max_size=300))
def test_any_bytes_parse_or_raise_payload_error(leaf: str, payload: bytes) -> None:
    with contextlib.suppress(PayloadError):
        parse_data_message(SITE, GATEWAY, leaf, payload)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(
    st.sampled_from([("summaries", SUMMARY), ("raw", RAW), ("devices", gap_message().payload)]),
    st.sampled_from(["metrics", "start_time", "end_time", "chunk", "chunks", "reasons",
                     "duration_s", "encoding", "patient", "message_id"]),
    JSON_VALUES,
)  # fmt: skip
def test_any_value_in_any_field_parses_or_raises_payload_error(
    sample: tuple[str, str], field: str, value: Any
) -> None:
    leaf, payload = sample
    body = json.loads(payload)
    body[field] = value
    with contextlib.suppress(PayloadError):
        parse_data_message(SITE, GATEWAY, leaf, json.dumps(body).encode())
