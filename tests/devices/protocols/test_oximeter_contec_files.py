"""Contec SpO2 Assistant `.SpO2` recordings: the two real files, malformed files, round trips.

How the expected figures were verified: for both files the header offset is 0x358 and the
records start at 0x358 + 228 = 1084; count x record size fills the rest of the file exactly
(42 x 2 = 1168 - 1084 and 406 x 4 = 2708 - 1084), so no other record size or count fits. The
date fields were read with `xxd` at 0x420 (2011-10-17 20:00:25 and 2010-05-26 11:43:58); the
CMS60CW file's own name, `_20111017200058`, carries the same date and hour. The first records
were decoded by hand: `63 43` = SpO2 99, PR 67 and `5e 01 63 ff` = SpO2 99, PR no value.
"""

from __future__ import annotations

import calendar
import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.protocols.catalog import all_recording_formats
from devices.protocols.oximeter_contec_files import (
    encode_spo2_assistant,
    looks_like_spo2_assistant,
    read_spo2_assistant,
)
from devices.protocols.reading import DecodeError, Metric, Reading
from devices.protocols.spec import DecoderStats

DATA = Path(__file__).parents[2] / "data" / "contec"
CMS60CW = DATA / "contec_spo2assistant_CMS60CW_20111017200058.SpO2"
CMS50H = DATA / "contec_spo2assistant_demo_CMS50H.SpO2"
SESSION = DATA / "contec_cms60c_v7_serial_session.bin"

REAL_FILES = [
    # path, model, samples, start (device clock), first (SpO2, PR), last (SpO2, PR)
    (CMS60CW, "CMS60CW", 42, (2011, 10, 17, 20, 0, 25), (99.0, 67.0), (99.0, 73.0)),
    (CMS50H, "CMS50H", 406, (2010, 5, 26, 11, 43, 58), (99.0, None), (99.0, 70.0)),
]


def _pairs(readings: tuple[Reading, ...]) -> list[tuple[float | None, float | None]]:
    """(SpO2, pulse) per second; every second has both readings, in that order."""
    assert [r.metric for r in readings] == [Metric.SPO2, Metric.PULSE] * (len(readings) // 2)
    return [(s.value, p.value) for s, p in zip(readings[::2], readings[1::2], strict=True)]


@pytest.mark.parametrize(("path", "model", "samples", "start", "first", "last"), REAL_FILES)
def test_real_recording_decodes(
    path: Path,
    model: str,
    samples: int,
    start: tuple[int, ...],
    first: tuple[float | None, float | None],
    last: tuple[float | None, float | None],
) -> None:
    data = path.read_bytes()
    assert looks_like_spo2_assistant(data)
    recording = all_recording_formats()["contec-spo2"].read(data)
    start_time_s = calendar.timegm((*start, 0, 0, 0))
    assert (recording.format, recording.model) == ("contec-spo2", model)
    assert (recording.start_time_s, recording.interval_s) == (start_time_s, 1.0)
    assert len(recording.readings) == 2 * samples
    pairs = _pairs(recording.readings)
    assert (pairs[0], pairs[-1]) == (first, last)
    times = [r.device_time_s for r in recording.readings]
    assert times[::2] == times[1::2] == [start_time_s + i for i in range(samples)]


def test_demo_recording_has_one_missing_pulse_and_plausible_values() -> None:
    pairs = _pairs(read_spo2_assistant(CMS50H.read_bytes()).readings)
    assert [i for i, (_, pulse) in enumerate(pairs) if pulse is None] == [0]
    assert {spo2 for spo2, _ in pairs} == {99.0}
    assert min(p for _, p in pairs if p is not None) == 62.0
    assert max(p for _, p in pairs if p is not None) == 78.0


def test_utc_offset_moves_the_device_clock_to_utc() -> None:
    data = CMS60CW.read_bytes()
    beijing = read_spo2_assistant(data, utc_offset_s=8 * 3600)
    as_utc = read_spo2_assistant(data)
    assert as_utc.start_time_s is not None
    assert beijing.start_time_s == as_utc.start_time_s - 8 * 3600
    assert beijing.readings[0].device_time_s == beijing.start_time_s


def test_other_files_do_not_look_like_recordings() -> None:
    assert not looks_like_spo2_assistant(SESSION.read_bytes())
    assert not looks_like_spo2_assistant(b"")
    assert not looks_like_spo2_assistant(bytes(2000))


def _corrupt(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value) :]


MALFORMED: dict[str, Callable[[bytes], bytes]] = {
    "one byte": lambda d: d[:1],
    "truncated record": lambda d: d[:-1],
    "extra byte": lambda d: d + b"\0",
    "header offset past the end": lambda d: _corrupt(d, 0, (len(d)).to_bytes(2, "little")),
    "month 13": lambda d: _corrupt(d, 0x358 + 204, (13).to_bytes(4, "little")),
    "minute 60": lambda d: _corrupt(d, 0x358 + 216, (60).to_bytes(4, "little")),
    "count too large": lambda d: _corrupt(d, 0x358 + 224, (43).to_bytes(4, "little")),
}


@pytest.mark.parametrize("damage", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_file_raises_decode_error(damage: Callable[[bytes], bytes]) -> None:
    data = damage(CMS60CW.read_bytes())
    assert not looks_like_spo2_assistant(data)
    with pytest.raises(DecodeError) as raised:
        read_spo2_assistant(data)
    assert raised.value.protocol == "contec-spo2"
    assert len(raised.value.data) <= 32


def test_implausible_values_are_dropped_and_counted() -> None:
    start_time_s = calendar.timegm((2024, 3, 1, 22, 0, 0))
    data = encode_spo2_assistant(start_time_s, [(99, 60), (20, 254), (None, None)])
    stats = DecoderStats()
    readings = read_spo2_assistant(data, stats=stats).readings
    assert [(r.metric, r.value) for r in readings] == [
        (Metric.SPO2, 99.0),
        (Metric.PULSE, 60.0),
        (Metric.SPO2, None),
        (Metric.PULSE, None),
    ]
    assert (stats.frames, stats.dropped_values) == (3, 2)


SAMPLE = st.tuples(st.none() | st.integers(35, 100), st.none() | st.integers(25, 250))


@given(
    samples=st.lists(SAMPLE, max_size=200),
    start_time_s=st.integers(calendar.timegm((1990, 1, 1, 0, 0, 0)), 4_000_000_000),
    record_size=st.sampled_from((2, 4)),
    model=st.text(
        st.characters(codec="utf-8", max_codepoint=0xFFFF, exclude_characters="\0"), max_size=31
    ),
)
def test_writer_and_reader_round_trip(
    samples: list[tuple[int | None, int | None]], start_time_s: int, record_size: int, model: str
) -> None:
    data = encode_spo2_assistant(start_time_s, samples, model=model, record_size=record_size)
    recording = read_spo2_assistant(data)
    assert recording.start_time_s == start_time_s
    assert recording.model == model
    expected = [
        (None if s is None else float(s), None if p is None else float(p)) for s, p in samples
    ]
    assert _pairs(recording.readings) == expected


@given(data=st.binary(max_size=1300))
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        read_spo2_assistant(data)


@given(offset=st.integers(0, 1167), value=st.integers(0, 255))
def test_any_single_byte_change_of_a_real_file_raises_only_decode_error(
    offset: int, value: int
) -> None:
    data = _corrupt(CMS60CW.read_bytes(), offset, bytes((value,)))
    try:
        recording = read_spo2_assistant(data)
    except DecodeError:
        return
    assert len(recording.readings) <= 2 * 42
