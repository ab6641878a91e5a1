"""Jumper / "CDEACB80" oximeters: frames within one notification, undocumented frame kinds,
truncated parameter frames, and round trips through the encoder."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.protocols.catalog import get_protocol
from devices.protocols.oximeter_jumper import (
    JumperDecoder,
    JumperFrame,
    encode_jumper_frame,
    split_jumper_notification,
)
from devices.protocols.reading import DecodeError, Metric, Reading

REAL_FRAME = bytes.fromhex("81 38 63 44")  # J1: quoted from a device in smarttelemed-v4
REAL_READINGS = [
    Reading(Metric.SPO2, 99.0),
    Reading(Metric.PULSE, 56.0),
    Reading(Metric.PI, 6.8),
]


def test_protocol_is_registered_and_needs_no_commands() -> None:
    spec = get_protocol("jumper")
    assert isinstance(spec.new_decoder(), JumperDecoder)
    assert spec.start_commands == ()
    assert spec.keepalive_command is None


def test_encoder_reproduces_the_real_frame() -> None:
    assert encode_jumper_frame(99, 56, 6.8) == REAL_FRAME


def test_encoder_writes_the_invalid_markers_for_missing_values() -> None:
    assert encode_jumper_frame(None, None) == bytes.fromhex("81 ff 7f 00")


def test_notification_splits_into_parameter_frames_then_one_other_frame() -> None:
    notification = REAL_FRAME + bytes.fromhex("81 8c 60 2d 80 1e 81 38 63 44")
    assert split_jumper_notification(notification) == [
        JumperFrame(0x81, REAL_FRAME),
        JumperFrame(0x81, bytes.fromhex("81 8c 60 2d")),
        JumperFrame(0x80, bytes.fromhex("80 1e 81 38 63 44")),
    ]


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_truncated_parameter_frame_raises_decode_error_at_its_offset(cut: int) -> None:
    with pytest.raises(DecodeError) as info:
        JumperDecoder().feed(REAL_FRAME + REAL_FRAME[:cut])
    assert info.value.protocol == "jumper"
    assert info.value.offset == len(REAL_FRAME)


def test_frames_are_not_reassembled_across_notifications() -> None:
    decoder = JumperDecoder()
    with pytest.raises(DecodeError):
        decoder.feed(REAL_FRAME[:2])
    assert decoder.feed(REAL_FRAME) == REAL_READINGS  # nothing was left over


def test_waveform_and_extended_frames_are_counted_but_give_nothing() -> None:
    decoder = JumperDecoder()
    assert decoder.feed(bytes.fromhex("80 1e 28 32 3c")) == []
    assert decoder.feed(bytes.fromhex("88 01 02 03 04 05 06 07 08 09 0a")) == []
    assert (decoder.stats.frames, decoder.stats.skipped_bytes) == (2, 0)


def test_unknown_frame_kind_is_skipped_and_counted() -> None:
    decoder = JumperDecoder()
    assert decoder.feed(bytes.fromhex("55 01 02")) == []
    assert decoder.feed(REAL_FRAME + bytes.fromhex("90 01")) == REAL_READINGS
    assert (decoder.stats.frames, decoder.stats.skipped_bytes) == (1, 5)


def test_empty_notification_gives_nothing() -> None:
    assert JumperDecoder().feed(b"") == []


_frame = st.tuples(
    st.one_of(st.none(), st.integers(35, 100)),
    st.one_of(st.none(), st.integers(25, 250)),
    st.one_of(st.none(), st.integers(1, 255).map(lambda tenths: tenths / 10)),
)


@settings(max_examples=200, deadline=None)
@given(
    notifications=st.lists(st.lists(_frame, min_size=1, max_size=5), max_size=10),
    waveform_tail=st.binary(max_size=15),
)
def test_encode_decode_round_trip_with_several_frames_per_notification(
    notifications: list[list[tuple[int | None, int | None, float | None]]],
    waveform_tail: bytes,
) -> None:
    decoder = JumperDecoder()
    for frames in notifications:
        notification = b"".join(encode_jumper_frame(*frame) for frame in frames)
        expected = []
        for spo2, pulse, pi in frames:
            expected += [
                Reading(Metric.SPO2, None if spo2 is None else float(spo2)),
                Reading(Metric.PULSE, None if pulse is None else float(pulse)),
                Reading(Metric.PI, pi),
            ]
        assert decoder.feed(notification + b"\x80" + waveform_tail) == expected
    assert decoder.stats.dropped_values == 0


def test_implausible_values_are_dropped_and_counted() -> None:
    decoder = JumperDecoder()
    assert decoder.feed(encode_jumper_frame(120, 20, 6.8)) == [Reading(Metric.PI, 6.8)]
    assert decoder.stats.dropped_values == 2


def test_encoder_rejects_values_outside_u8() -> None:
    with pytest.raises(ValueError, match="out of u8 fields"):
        encode_jumper_frame(98, 256)
