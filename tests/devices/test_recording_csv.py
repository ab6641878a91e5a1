"""The generic recording CSV: number and time formatting, rows from readings, round trips and the
line-numbered errors of malformed files."""

from __future__ import annotations

import calendar
import io
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.protocols.oximeter_contec_files import read_spo2_assistant
from devices.protocols.reading import PLAUSIBLE_RANGE, Metric, Quality, Reading
from devices.recording_csv import (
    HEADER_LINE,
    GenericCsvError,
    GenericSample,
    format_number,
    format_utc,
    looks_like_generic_csv,
    read_generic_csv,
    read_generic_samples,
    samples_of,
    write_generic_csv,
)

CMS50H = Path(__file__).parents[1] / "data" / "contec" / "contec_spo2assistant_demo_CMS50H.SpO2"
T0 = calendar.timegm((2024, 3, 1, 22, 0, 0))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (98.0, "98"),
        (6.7, "6.7"),
        (36.699999999999996, "36.7"),
        (37.0625, "37.0625"),
        (0.0, "0"),
        (-0.0, "0"),
        (0.0000004, "0"),
        (250.0, "250"),
    ],
)
def test_numbers_are_written_without_trailing_zeros(value: float, text: str) -> None:
    assert format_number(value) == text


@pytest.mark.parametrize(
    ("time_s", "text"),
    [
        (T0, "2024-03-01T22:00:00Z"),
        (T0 + 0.5, "2024-03-01T22:00:00.5Z"),
        (T0 + 0.125, "2024-03-01T22:00:00.125Z"),
        (0, "1970-01-01T00:00:00Z"),
    ],
)
def test_times_are_written_in_utc_with_z(time_s: float, text: str) -> None:
    assert format_utc(time_s) == text


def test_rows_of_readings_group_by_time_and_keep_the_four_columns() -> None:
    readings = [
        Reading(Metric.SPO2, 97.0, device_time_s=T0 + 1),
        Reading(Metric.SPO2, 98.0, device_time_s=T0),
        Reading(Metric.BATTERY, 80.0, device_time_s=T0),  # not a CSV column
        Reading(Metric.PULSE, 61.0, device_time_s=T0),
        Reading(Metric.PULSE, None, Quality.SEARCHING, device_time_s=T0),  # does not hide 61
        Reading(Metric.TEMP, 36.6, device_time_s=T0 + 1),
        Reading(Metric.PI, None, device_time_s=T0 + 1),
    ]
    assert samples_of(readings) == [
        GenericSample(T0, spo2_percent=98.0, pulse_bpm=61.0),
        GenericSample(T0 + 1, spo2_percent=97.0, temp_c=36.6),
    ]


def test_a_reading_without_device_time_cannot_be_written() -> None:
    with pytest.raises(ValueError, match="no device time"):
        samples_of([Reading(Metric.SPO2, 98.0)])


def test_written_csv_has_the_exact_header_and_empty_cells_for_missing_values() -> None:
    out = io.StringIO()
    count = write_generic_csv([GenericSample(T0, 98.0, None, 6.7), GenericSample(T0 + 1)], out)
    assert count == 2
    assert out.getvalue() == (
        "timestamp,spo2,pulse,pi,temp_c\n2024-03-01T22:00:00Z,98,,6.7,\n2024-03-01T22:00:01Z,,,,\n"
    )


def test_a_real_recording_survives_the_csv_unchanged() -> None:
    recording = read_spo2_assistant(CMS50H.read_bytes())
    out = io.StringIO()
    assert write_generic_csv(recording, out) == 406
    back = read_generic_csv(io.StringIO(out.getvalue()))
    assert (back.format, back.model) == ("csv", "")
    assert (back.start_time_s, back.interval_s) == (recording.start_time_s, 1.0)
    assert back.readings == recording.readings


def test_columns_never_filled_give_no_readings() -> None:
    text = f"{HEADER_LINE}\n2024-03-01T22:00:00Z,,,,36.6\n2024-03-01T22:00:30Z,,,,\n"
    recording = read_generic_csv(io.StringIO(text))
    assert [(r.metric, r.value, r.device_time_s) for r in recording.readings] == [
        (Metric.TEMP, 36.6, T0),
        (Metric.TEMP, None, T0 + 30),
    ]
    assert recording.interval_s == 30.0


def test_empty_csv_is_an_empty_recording() -> None:
    recording = read_generic_csv(io.StringIO(HEADER_LINE + "\n"))
    assert (recording.start_time_s, recording.interval_s, recording.readings) == (None, 0.0, ())


def test_offsets_crlf_blank_lines_and_spaces_are_accepted() -> None:
    text = (
        f"{HEADER_LINE}\r\n"
        "2024-03-02T06:00:00+08:00, 98 ,61,,\r\n"
        "\r\n"
        "2024-03-01T22:00:01Z,97,,,\r\n"
    )
    samples = read_generic_samples(io.StringIO(text, newline=""))
    assert samples == [GenericSample(T0, 98.0, 61.0), GenericSample(T0 + 1, 97.0)]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (HEADER_LINE.encode() + b"\n", True),
        (HEADER_LINE.encode() + b"\r\n2024-03-01T22:00:00Z,98,,,\r\n", True),
        (b"\xef\xbb\xbf" + HEADER_LINE.encode(), True),
        (b"timestamp,spo2,pulse\n", False),
        (HEADER_LINE.encode() + b",extra\n", False),
        (b"", False),
        (bytes.fromhex("58 03 00 00 01 00 00 00"), False),
    ],
)
def test_looks_like_generic_csv(data: bytes, expected: bool) -> None:
    assert looks_like_generic_csv(data) is expected


ROW = "2024-03-01T22:00:00Z,98,61,,"
BAD_FILES = [
    # content, line of the error, part of the reason
    ("", 1, "expected the header"),
    ("timestamp,spo2,pulse,pi,temp\n" + ROW, 1, "expected the header"),
    (f"{HEADER_LINE}\n2024-03-01T22:00:00Z,98,61,\n", 2, "expected 5 fields, got 4"),
    (f"{HEADER_LINE}\n{ROW}\nyesterday,98,61,,\n", 3, "'yesterday' is not ISO 8601"),
    (f"{HEADER_LINE}\n2024-03-01T22:00:00,98,61,,\n", 2, "no UTC offset"),
    (f"{HEADER_LINE}\n2024-03-01T22:00:00Z,high,61,,\n", 2, "spo2 'high' is not a number"),
    (f"{HEADER_LINE}\n2024-03-01T22:00:00Z,101,61,,\n", 2, "spo2 101 is outside"),
    (f"{HEADER_LINE}\n2024-03-01T22:00:00Z,98,61,,nan\n", 2, "temp_c nan is outside"),
    (f"{HEADER_LINE}\n2024-03-01T22:00:00Z,98,61,inf,\n", 2, "pi inf is outside"),
    (f"{HEADER_LINE}\n{ROW}\n{ROW}\n", 3, "timestamps must increase"),
    (f"{HEADER_LINE}\n{ROW}\n2024-03-01T21:59:59Z,98,61,,\n", 3, "timestamps must increase"),
]


@pytest.mark.parametrize(("text", "line_number", "reason"), BAD_FILES)
def test_malformed_csv_names_the_line(text: str, line_number: int, reason: str) -> None:
    with pytest.raises(GenericCsvError) as raised:
        read_generic_csv(io.StringIO(text))
    assert raised.value.line_number == line_number
    assert reason in raised.value.reason
    assert str(raised.value).startswith(f"line {line_number}: ")


def _values(metric: Metric) -> st.SearchStrategy[float | None]:
    low, high = PLAUSIBLE_RANGE[metric]
    return st.none() | st.floats(low, high)


_times_ms = st.lists(st.integers(0, 4_102_444_800_000), unique=True, max_size=40).map(sorted)


@given(
    times_ms=_times_ms,
    values=st.lists(
        st.tuples(*(_values(m) for m in (Metric.SPO2, Metric.PULSE, Metric.PI, Metric.TEMP))),
        min_size=40,
        max_size=40,
    ),
)
def test_written_samples_read_back_the_same(
    times_ms: list[int], values: list[tuple[float | None, ...]]
) -> None:
    samples = [GenericSample(t / 1000, *row) for t, row in zip(times_ms, values, strict=False)]
    out = io.StringIO()
    write_generic_csv(samples, out)
    back = read_generic_samples(io.StringIO(out.getvalue()))
    assert len(back) == len(samples)
    for read, written in zip(back, samples, strict=True):
        assert math.isclose(read.time_s, written.time_s, abs_tol=1e-6)
        for got, wanted in zip(read.values(), written.values(), strict=True):
            assert (got is None) == (wanted is None)
            if got is not None and wanted is not None:
                assert math.isclose(got, wanted, abs_tol=1e-6)
    rewritten = io.StringIO()
    write_generic_csv(back, rewritten)
    assert rewritten.getvalue() == out.getvalue()
