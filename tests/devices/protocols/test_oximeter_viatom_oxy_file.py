"""O2Ring / Checkme O2 stored nights: header fields, sample timing, invalid records, truncation,
and that arbitrary bytes give nothing but DecodeError."""

from __future__ import annotations

import calendar
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.protocols.catalog import all_recording_formats
from devices.protocols.oximeter_viatom_oxy_file import (
    HEADER_LEN,
    O2RingSample,
    decode_o2ring_header,
    encode_o2ring_file,
    looks_like_o2ring_file,
    read_o2ring_file,
)
from devices.protocols.reading import DecodeError, Metric, Quality, is_plausible

# COMPUTED from the layout: the first 6 rows of the vendor app's CSV export of a REAL night
# (tolnaiz/garmin-venu3-vs-viatom-o2ring @432e20c, "2025-03-06/O2Ring _20250306222056.csv"),
# under a header for that night's start (the file name and the first CSV row: 22:20:56).
HEAD_FILE = bytes.fromhex(
    "03 00 e9 07 03 06 16 14 38"  # version 3, sleep mode, 2025-03-06 22:20:56
    " 46 00 00 00 18 00 00 00"  # file size 70, duration 24 s, reserved
    " 5e 5c 02 01"  # average SpO2 94, lowest 92, 2 drops of 3 %, 1 of 4 %
    " 00 00 00 00 55 d2 04 00 00"  # bytes 21-24, O2 score 8.5, 1234 steps
    " 00 00 00 00 00 00 00 00 00 00"  # reserved
    " 5c 4e 00 00 00  5d 50 00 02 00  5e 50 00 01 00"
    " 5f 4e 00 01 00  5f 4c 00 01 00  5f 49 00 01 00"
)
HEAD_CSV_ROWS = """\
22:20:56 Mar 06 2025,92,78,0
22:21:00 Mar 06 2025,93,80,2
22:21:04 Mar 06 2025,94,80,1
22:21:08 Mar 06 2025,95,78,1
22:21:12 Mar 06 2025,95,76,1
22:21:16 Mar 06 2025,95,73,1"""

# COMPUTED likewise from the last 5 rows of the same export, where the ring came off ("--"),
# under a header starting at the first of them (2025-03-07 07:01:48).
TAIL_FILE = bytes.fromhex(
    "03 00 e9 07 03 07 07 01 30  41 00 00 00 14 00 00 00"
    " 5d 5d 00 00 00 00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00 00 00"
    " 5d 3f 00 01 00  5d 3f 00 0b 00  ff ff ff 04 00  ff ff ff 07 00  ff ff ff 00 00"
)
TAIL_CSV_ROWS = """\
07:01:48 Mar 07 2025,93,63,1
07:01:52 Mar 07 2025,93,63,11
07:01:56 Mar 07 2025,--,--,4
07:02:00 Mar 07 2025,--,--,7
07:02:04 Mar 07 2025,--,--,0"""


def _csv_expectations(rows: str) -> list[tuple[float, float | None, float | None, int]]:
    """(time as UTC epoch, SpO2, pulse, motion) of vendor CSV rows."""
    expected = []
    for row in rows.splitlines():
        stamp, spo2, pulse, motion = row.split(",")
        time_s = calendar.timegm(datetime.strptime(stamp, "%H:%M:%S %b %d %Y").timetuple())
        expected.append(
            (
                float(time_s),
                None if spo2 == "--" else float(spo2),
                None if pulse == "--" else float(pulse),
                int(motion),
            )
        )
    return expected


def test_header_fields() -> None:
    header = decode_o2ring_header(HEAD_FILE)
    assert header.version == 3
    assert header.mode == 0
    assert header.start_time_s == calendar.timegm((2025, 3, 6, 22, 20, 56, 0, 0, 0))
    assert header.file_size == len(HEAD_FILE)
    assert header.duration_s == 24
    assert (header.spo2_avg_percent, header.spo2_min_percent) == (94, 92)
    assert (header.drops_3pct, header.drops_4pct) == (2, 1)
    assert header.o2_score == 8.5
    assert header.steps == 1234


@pytest.mark.parametrize(("data", "rows"), [(HEAD_FILE, HEAD_CSV_ROWS), (TAIL_FILE, TAIL_CSV_ROWS)])
def test_records_match_the_vendor_export_rows(data: bytes, rows: str) -> None:
    recording = read_o2ring_file(data)
    expected = _csv_expectations(rows)
    assert recording.format == "o2ring"
    assert recording.interval_s == 4.0
    assert recording.start_time_s == expected[0][0]
    assert len(recording.readings) == 2 * len(expected)
    for index, (time_s, spo2, pulse, motion) in enumerate(expected):
        quality = Quality.MOTION if motion >= 10 else Quality.OK
        spo2_reading, pulse_reading = recording.readings[2 * index : 2 * index + 2]
        assert (spo2_reading.metric, spo2_reading.value) == (Metric.SPO2, spo2)
        assert (pulse_reading.metric, pulse_reading.value) == (Metric.PULSE, pulse)
        assert spo2_reading.device_time_s == pulse_reading.device_time_s == time_s
        assert spo2_reading.quality == pulse_reading.quality == quality


START_2025 = calendar.timegm((2025, 3, 6, 22, 20, 56, 0, 0, 0))


def test_two_second_files_are_read_at_two_seconds() -> None:
    samples = [O2RingSample(95, 60)] * 6
    recording = read_o2ring_file(encode_o2ring_file(START_2025, samples, interval_s=2.0))
    assert recording.interval_s == 2.0
    times = [r.device_time_s for r in recording.readings[::2]]
    assert times == [START_2025 + offset for offset in (0, 2, 4, 6, 8, 10)]


def test_implausible_record_values_are_dropped() -> None:
    samples = [O2RingSample(20, 60), O2RingSample(97, 0)]
    readings = read_o2ring_file(encode_o2ring_file(START_2025, samples)).readings
    assert [(r.metric, r.value) for r in readings] == [(Metric.PULSE, 60.0), (Metric.SPO2, 97.0)]


def test_empty_recording_has_no_readings() -> None:
    recording = read_o2ring_file(encode_o2ring_file(START_2025, []))
    assert recording.readings == ()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (HEAD_FILE[: HEADER_LEN - 1], "shorter than the header"),
        (HEAD_FILE[:-3], "inside a record"),
        (HEAD_FILE[:-5], "truncated"),
        (HEAD_FILE[:-20], "truncated"),
        (b"\x04" + HEAD_FILE[1:], "version"),
        (HEAD_FILE[:4] + b"\x0d" + HEAD_FILE[5:], "date"),
        (HEAD_FILE[:6] + b"\x18" + HEAD_FILE[7:], "time"),
        (HEAD_FILE[:13] + b"\x60\x00" + HEAD_FILE[15:], "does not fit"),
    ],
)
def test_malformed_files_raise_decode_error(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason) as raised:
        read_o2ring_file(data)
    assert raised.value.protocol == "o2ring"


def test_looks_like_accepts_nights_and_rejects_other_files() -> None:
    assert looks_like_o2ring_file(HEAD_FILE)
    assert looks_like_o2ring_file(TAIL_FILE)
    assert not looks_like_o2ring_file(b"")
    assert not looks_like_o2ring_file(bytes.fromhex("87 32 05 48 62") * 10)  # BerryMed BCI stream
    assert not looks_like_o2ring_file(b"\x00" * 100)


def test_format_is_registered_for_conversion() -> None:
    recording_format = all_recording_formats()["o2ring"]
    assert recording_format.looks_like(HEAD_FILE)
    assert recording_format.read(HEAD_FILE) == read_o2ring_file(HEAD_FILE)


@pytest.mark.parametrize(
    "sample", [O2RingSample(256, 60), O2RingSample(95, 70000), O2RingSample(95, 60, motion=-1)]
)
def test_encoder_rejects_samples_out_of_range(sample: O2RingSample) -> None:
    with pytest.raises(ValueError, match="range"):
        encode_o2ring_file(START_2025, [sample])


def test_encoder_rejects_start_times_the_header_cannot_hold() -> None:
    with pytest.raises(ValueError, match="year"):
        encode_o2ring_file(0, [O2RingSample(95, 60)])


_samples = st.builds(
    O2RingSample,
    spo2_percent=st.none() | st.integers(35, 100),
    pulse_bpm=st.none() | st.integers(25, 250),
    motion=st.integers(0, 255),
    marks=st.sampled_from([0, 0x40, 0x80]),
)
_start_times = st.integers(
    calendar.timegm((2015, 1, 1, 0, 0, 0, 0, 0, 0)),
    calendar.timegm((2099, 12, 31, 23, 59, 59, 0, 0, 0)),
)


@settings(max_examples=100, deadline=None)
@given(
    start_time_s=_start_times,
    samples=st.lists(_samples, min_size=1, max_size=60),
    interval_s=st.sampled_from([2.0, 4.0]),
)
def test_written_nights_read_back(
    start_time_s: int, samples: list[O2RingSample], interval_s: float
) -> None:
    recording = read_o2ring_file(encode_o2ring_file(start_time_s, samples, interval_s=interval_s))
    assert recording.start_time_s == start_time_s
    assert recording.interval_s == interval_s
    expected = []
    for index, sample in enumerate(samples):
        quality = Quality.MOTION if sample.motion >= 10 else Quality.OK
        time_s = start_time_s + index * interval_s
        for metric, value in ((Metric.SPO2, sample.spo2_percent), (Metric.PULSE, sample.pulse_bpm)):
            expected.append((metric, None if value is None else float(value), quality, time_s))
    actual = [(r.metric, r.value, r.quality, r.device_time_s) for r in recording.readings]
    assert actual == expected


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    _read_or_decode_error(data)


@settings(max_examples=300, deadline=None)
@given(header_tail=st.binary(min_size=31, max_size=31), body=st.binary(max_size=100))
def test_valid_looking_header_with_arbitrary_fields_raises_only_decode_error(
    header_tail: bytes, body: bytes
) -> None:
    _read_or_decode_error(HEAD_FILE[:9] + header_tail + body)


def _read_or_decode_error(data: bytes) -> None:
    """Read `data`; a DecodeError is fine, any other exception fails the test."""
    assert isinstance(looks_like_o2ring_file(data), bool)
    try:
        recording = read_o2ring_file(data)
    except DecodeError:
        return
    for reading in recording.readings:
        assert reading.value is None or is_plausible(reading.metric, reading.value)
