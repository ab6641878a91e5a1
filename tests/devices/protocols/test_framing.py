"""The shared header framer: resync on garbage and bad checks, counts, any split of the stream."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.protocols.framing import NOT_A_FRAME, HeaderFramer, fixed_length
from devices.protocols.spec import DecoderStats

# A toy protocol: A5 5A | total length (MIN_LEN-MAX_LEN) | payload | sum of the other bytes.
HEADER = b"\xa5\x5a"
MIN_LEN, MAX_LEN = 4, 16
FLUSH = bytes(MAX_LEN)  # completes any pending frame, and is itself all garbage


def _frame_len(buffer: bytearray, start: int) -> int | None:
    if len(buffer) - start < 3:
        return None
    length = buffer[start + 2]
    return length if MIN_LEN <= length <= MAX_LEN else NOT_A_FRAME


def _is_sound(frame: bytes) -> bool:
    return sum(frame[:-1]) & 0xFF == frame[-1]


def _framer() -> HeaderFramer:
    return HeaderFramer(HEADER, _frame_len, _is_sound)


def _frame(payload: bytes) -> bytes:
    body = HEADER + bytes((len(payload) + 4,)) + payload
    return body + bytes((sum(body) & 0xFF,))


def _bad(frame: bytes) -> bytes:
    return frame[:-1] + bytes(((frame[-1] + 1) & 0xFF,))


def _feed_in_pieces(stream: bytes, cuts: list[int]) -> tuple[list[bytes], DecoderStats]:
    framer, stats = _framer(), DecoderStats()
    frames: list[bytes] = []
    for start, end in itertools.pairwise([0, *sorted(cuts), len(stream)]):
        frames += framer.feed(stream[start:end], stats)
    return frames, stats


def _reference(stream: bytes) -> list[bytes]:
    """The frames a plain scan finds, stopping where a frame runs past the end."""
    frames: list[bytes] = []
    pos = 0
    while pos < len(stream):
        if not stream.startswith(HEADER, pos):
            pos += 1
            continue
        length = _frame_len(bytearray(stream), pos)
        if length is None or pos + length > len(stream):
            break
        if length != NOT_A_FRAME and _is_sound(stream[pos : pos + length]):
            frames.append(stream[pos : pos + length])
            pos += length
        else:
            pos += 1
    return frames


GOOD_1 = _frame(b"\x01\x02\x03")
GOOD_2 = _frame(b"\x10" * 9)


def test_frames_back_to_back_are_all_found_and_counted() -> None:
    stats = DecoderStats()
    assert _framer().feed(GOOD_1 + GOOD_2, stats) == [GOOD_1, GOOD_2]
    assert stats == DecoderStats(frames=2)


def test_garbage_before_a_frame_is_skipped_and_counted() -> None:
    stats = DecoderStats()
    assert _framer().feed(b"\x00\x13\x37" + GOOD_1, stats) == [GOOD_1]
    assert stats == DecoderStats(frames=1, skipped_bytes=3)


def test_bad_check_counts_one_bad_frame_and_resyncs_on_the_next_header() -> None:
    stats = DecoderStats()
    assert _framer().feed(_bad(GOOD_1) + GOOD_2, stats) == [GOOD_2]
    assert stats == DecoderStats(frames=1, skipped_bytes=len(GOOD_1), bad_frames=1)


def test_header_the_protocol_rejects_is_skipped_without_a_bad_frame() -> None:
    stats = DecoderStats()
    assert _framer().feed(HEADER + b"\xff" + GOOD_1, stats) == [GOOD_1]
    assert stats == DecoderStats(frames=1, skipped_bytes=3)


def test_frame_inside_a_bad_frame_is_found() -> None:
    # A false header whose claimed length covers a real frame: the real frame still decodes.
    false_start = HEADER + bytes((3 + len(GOOD_1) + 1,))
    stream = false_start + GOOD_1 + b"\x00"
    stats = DecoderStats()
    assert _framer().feed(stream, stats) == [GOOD_1]
    assert stats == DecoderStats(frames=1, skipped_bytes=4, bad_frames=1)


def test_incomplete_frame_waits_without_counting() -> None:
    framer, stats = _framer(), DecoderStats()
    assert framer.feed(GOOD_2[:-1], stats) == []
    assert stats == DecoderStats()
    assert framer.feed(GOOD_2[-1:], stats) == [GOOD_2]
    assert stats == DecoderStats(frames=1)


def test_trailing_first_header_byte_is_kept_other_garbage_is_not() -> None:
    framer, stats = _framer(), DecoderStats()
    assert framer.feed(b"\x00\x01" + HEADER[:1], stats) == []
    assert stats.skipped_bytes == 2
    assert framer.feed(GOOD_1[1:], stats) == [GOOD_1]
    assert stats == DecoderStats(frames=1, skipped_bytes=2)


def test_garbage_is_consumed_not_buffered() -> None:
    framer, stats = _framer(), DecoderStats()
    framer.feed(bytes(range(0x10)) * 1000, stats)
    assert stats.skipped_bytes == 16_000
    assert framer.feed(GOOD_1, stats) == [GOOD_1]


def test_one_byte_header_keeps_no_trailing_byte() -> None:
    framer = HeaderFramer(b"\x55", fixed_length(3), lambda frame: frame[2] == 0)
    stats = DecoderStats()
    assert framer.feed(b"\x01\x55\x00\x00\x55\x01\x01\x02", stats) == [b"\x55\x00\x00"]
    # 01; the frame; 55 01 01 fails its check (one byte skipped); then 01 01 02 hold no header.
    assert stats == DecoderStats(frames=1, skipped_bytes=5, bad_frames=1)


def test_memoryview_input_is_accepted() -> None:
    assert _framer().feed(memoryview(GOOD_1), DecoderStats()) == [GOOD_1]


def test_stream_split_at_every_offset_gives_the_same_frames_and_counts() -> None:
    stream = b"\x00" + HEADER + _bad(GOOD_1) + GOOD_2 + HEADER + b"\x01" + GOOD_1 + HEADER[:1]
    whole = _feed_in_pieces(stream, [])
    assert whole[0] == [GOOD_2, GOOD_1]
    for cut in range(len(stream) + 1):
        assert _feed_in_pieces(stream, [cut]) == whole
    assert _feed_in_pieces(stream, list(range(1, len(stream)))) == whole


@pytest.mark.parametrize("length", [0, -1])
def test_fixed_length_must_be_positive(length: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        fixed_length(length)


def test_empty_header_is_refused() -> None:
    with pytest.raises(ValueError, match="header"):
        HeaderFramer(b"", fixed_length(1), bool)


_pieces = st.one_of(
    st.binary(min_size=4, max_size=12).map(_frame),
    st.binary(min_size=4, max_size=12).map(lambda payload: _bad(_frame(payload))),
    st.sampled_from([HEADER, HEADER[:1], HEADER + b"\x02", HEADER + b"\x10"]),
    st.binary(max_size=8),
)
_streams = st.lists(_pieces, max_size=12).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(stream=_streams, data=st.data())
def test_any_split_gives_the_frames_and_counts_of_the_whole(
    stream: bytes, data: st.DataObject
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8))
    assert _feed_in_pieces(stream, cuts) == _feed_in_pieces(stream, [])


@settings(max_examples=300, deadline=None)
@given(stream=_streams)
def test_frames_match_a_plain_scan_and_every_byte_is_accounted_for(stream: bytes) -> None:
    frames, stats = _feed_in_pieces(stream, [])
    assert frames == _reference(stream)
    assert stats.frames == len(frames)
    flushed, flush_stats = _feed_in_pieces(stream + FLUSH, [])
    assert sum(map(len, flushed)) + flush_stats.skipped_bytes == len(stream) + len(FLUSH)


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(st.binary(max_size=64), max_size=12))
def test_survives_arbitrary_bytes(chunks: list[bytes]) -> None:
    framer, stats = _framer(), DecoderStats()
    for chunk in chunks:
        for frame in framer.feed(chunk, stats):
            assert frame.startswith(HEADER)
            assert _is_sound(frame)
