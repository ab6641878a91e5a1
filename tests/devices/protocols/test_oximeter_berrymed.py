"""BerryMed BCI (5-byte) and BCI-RR (7-byte) streams: framing across feeds, resynchronisation,
round trips through the encoders, and what each decoder makes of the other formats."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.protocols.catalog import get_protocol
from devices.protocols.oximeter_berrymed import (
    BciDecoder,
    BciRrDecoder,
    encode_bci_frame,
    encode_bci_rr_frame,
)
from devices.protocols.oximeter_berrymed_berry import encode_berry_frame
from devices.protocols.reading import Metric, Quality, Reading

# B1, B2, B3 (no finger), B4 (PR 140) of vectors/berrymed-bci.json
BCI_FRAMES = [
    bytes.fromhex("87 32 05 48 62"),
    bytes.fromhex("88 28 04 4b 61"),
    bytes.fromhex("9f 00 50 7f 7f"),
    bytes.fromhex("c5 3c 46 0c 60"),
]
NO_FINGER = Quality.FINGER_OUT | Quality.SEARCHING
BCI_EXPECTED = [
    Reading(Metric.SPO2, 98.0),
    Reading(Metric.PULSE, 72.0),
    Reading(Metric.SPO2, 97.0),
    Reading(Metric.PULSE, 75.0),
    Reading(Metric.SPO2, None, NO_FINGER),
    Reading(Metric.PULSE, None, NO_FINGER),
    Reading(Metric.SPO2, 96.0),
    Reading(Metric.PULSE, 140.0),
]
# RR1 and RR-finger-out of vectors/berrymed-bci-rr.json
BCI_RR_FRAMES = [bytes.fromhex("83 40 04 48 62 55 10"), bytes.fromhex("90 00 50 7f 7f 50 00")]
BCI_RR_EXPECTED = [
    Reading(Metric.SPO2, 98.0),
    Reading(Metric.PULSE, 72.0),
    Reading(Metric.PI, 6.7),
    Reading(Metric.RESP_RATE, 16.0),
    Reading(Metric.BATTERY, 85.0),
    Reading(Metric.SPO2, None, NO_FINGER),
    Reading(Metric.PULSE, None, NO_FINGER),
    Reading(Metric.PI, None, NO_FINGER),
    Reading(Metric.RESP_RATE, None, NO_FINGER),
    Reading(Metric.BATTERY, 80.0),
]


def _chunks(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    """`data` cut into pieces of the given sizes, cycled."""
    pos, index = 0, 0
    while pos < len(data):
        size = sizes[index % len(sizes)] if sizes else len(data)
        yield data[pos : pos + size]
        pos += size
        index += 1


def _feed_all(decoder: BciDecoder | BciRrDecoder, pieces: Iterator[bytes]) -> list[Reading]:
    readings: list[Reading] = []
    for piece in pieces:
        readings.extend(decoder.feed(piece))
    return readings


def test_protocols_are_registered_with_their_decoders() -> None:
    assert isinstance(get_protocol("berrymed-bci").new_decoder(), BciDecoder)
    assert isinstance(get_protocol("berrymed-bci-rr").new_decoder(), BciRrDecoder)


@pytest.mark.parametrize(
    ("decoder_type", "frames", "expected"),
    [(BciDecoder, BCI_FRAMES, BCI_EXPECTED), (BciRrDecoder, BCI_RR_FRAMES, BCI_RR_EXPECTED)],
    ids=["bci", "bci-rr"],
)
def test_stream_split_at_every_offset_gives_the_same_readings(
    decoder_type: type[BciDecoder] | type[BciRrDecoder],
    frames: list[bytes],
    expected: list[Reading],
) -> None:
    stream = b"".join(frames)
    for split in range(len(stream) + 1):
        decoder = decoder_type()
        readings = decoder.feed(stream[:split]) + decoder.feed(stream[split:])
        assert readings == expected, split
        assert decoder.stats.frames == len(frames)
        assert decoder.stats.skipped_bytes == 0


@pytest.mark.parametrize(
    ("decoder_type", "frames", "expected"),
    [(BciDecoder, BCI_FRAMES, BCI_EXPECTED), (BciRrDecoder, BCI_RR_FRAMES, BCI_RR_EXPECTED)],
    ids=["bci", "bci-rr"],
)
def test_stream_fed_one_byte_at_a_time_gives_the_same_readings(
    decoder_type: type[BciDecoder] | type[BciRrDecoder],
    frames: list[bytes],
    expected: list[Reading],
) -> None:
    decoder = decoder_type()
    assert _feed_all(decoder, _chunks(b"".join(frames), [1])) == expected


@pytest.mark.parametrize(
    "garbage",
    [b"\x00\x01\x7f", b"\x80", b"\x87\x32\x05", b"\xff\xff\x80\x00", b"\x80\x00\x00\x80\x00"],
    ids=["no-sync", "lone-sync", "truncated-frame", "sync-runs", "frame-broken-by-sync"],
)
def test_bci_resyncs_after_garbage_and_counts_it(garbage: bytes) -> None:
    decoder = BciDecoder()
    stream = garbage + BCI_FRAMES[0] + garbage + BCI_FRAMES[1]
    readings = _feed_all(decoder, _chunks(stream, [3, 1, 7]))
    assert readings == BCI_EXPECTED[:4]
    assert decoder.stats.frames == 2
    assert decoder.stats.skipped_bytes == 2 * len(garbage)


def test_bci_rr_resyncs_after_garbage_and_counts_it() -> None:
    garbage = b"\x83\x40\x04\x12\x80\x00\x7f"  # a frame broken by a sync byte, then bytes
    decoder = BciRrDecoder()
    readings = decoder.feed(garbage + BCI_RR_FRAMES[0] + garbage[:2] + BCI_RR_FRAMES[1])
    assert readings == BCI_RR_EXPECTED
    assert decoder.stats.skipped_bytes == len(garbage) + 2


def test_bci_garbage_is_consumed_not_buffered() -> None:
    decoder = BciDecoder()
    assert decoder.feed(bytes(range(0x80, 0x100)) * 40) == []
    assert decoder.stats.skipped_bytes >= 128 * 40 - 4  # at most a frame's worth kept
    assert decoder.feed(BCI_FRAMES[0]) == BCI_EXPECTED[:2]
    assert decoder.stats.skipped_bytes == 128 * 40


_spo2 = st.one_of(st.none(), st.integers(35, 100))
_pulse = st.one_of(st.none(), st.integers(25, 250))
_bci_frame = st.tuples(_spo2, _pulse, st.booleans(), st.booleans())
_sizes = st.lists(st.integers(1, 64), min_size=1, max_size=8)


def _flags(finger_out: bool, searching: bool) -> Quality:
    quality = NO_FINGER if finger_out else Quality.OK  # the encoder sets "no signal" too
    return quality | (Quality.SEARCHING if searching else Quality.OK)


def _value(value: int | None, quality: Quality) -> float | None:
    return None if value is None or quality else float(value)


@settings(max_examples=150, deadline=None)
@given(frames=st.lists(_bci_frame, max_size=40), sizes=_sizes)
def test_bci_encode_decode_round_trip_in_any_chunking(
    frames: list[tuple[int | None, int | None, bool, bool]], sizes: list[int]
) -> None:
    stream = b"".join(
        encode_bci_frame(spo2, pulse, finger_out=finger_out, searching=searching)
        for spo2, pulse, finger_out, searching in frames
    )
    expected = []
    for spo2, pulse, finger_out, searching in frames:
        quality = _flags(finger_out, searching)
        expected.append(Reading(Metric.SPO2, _value(spo2, quality), quality))
        expected.append(Reading(Metric.PULSE, _value(pulse, quality), quality))
    decoder = BciDecoder()
    assert _feed_all(decoder, _chunks(stream, sizes)) == expected
    assert (decoder.stats.frames, decoder.stats.skipped_bytes) == (len(frames), 0)


_bci_rr_frame = st.tuples(
    _spo2,
    _pulse,
    st.one_of(st.none(), st.integers(1, 200)),
    st.integers(0, 100),
    st.one_of(st.none(), st.integers(5, 50)),
    st.booleans(),
    st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(frames=st.lists(_bci_rr_frame, max_size=30), sizes=_sizes)
def test_bci_rr_encode_decode_round_trip_in_any_chunking(
    frames: list[tuple[int | None, int | None, int | None, int, int | None, bool, bool]],
    sizes: list[int],
) -> None:
    stream = b""
    expected = []
    for spo2, pulse, pi_tenths, battery, resp, finger_out, searching in frames:
        pi = None if pi_tenths is None else pi_tenths / 10
        stream += encode_bci_rr_frame(
            spo2,
            pulse,
            pi_percent=pi,
            battery_percent=battery,
            resp_rate_per_min=resp,
            finger_out=finger_out,
            searching=searching,
        )
        quality = _flags(finger_out, searching)
        expected += [
            Reading(Metric.SPO2, _value(spo2, quality), quality),
            Reading(Metric.PULSE, _value(pulse, quality), quality),
            Reading(Metric.PI, None if pi is None or quality else pi, quality),
            Reading(Metric.RESP_RATE, _value(resp, quality), quality),
            Reading(Metric.BATTERY, float(battery)),
        ]
    decoder = BciRrDecoder()
    assert _feed_all(decoder, _chunks(stream, sizes)) == expected
    assert (decoder.stats.frames, decoder.stats.skipped_bytes) == (len(frames), 0)


@settings(max_examples=100, deadline=None)
@given(frames=st.lists(_bci_frame, min_size=1, max_size=30), sizes=_sizes)
def test_bci_stream_read_as_bci_rr_gives_nothing(
    frames: list[tuple[int | None, int | None, bool, bool]], sizes: list[int]
) -> None:
    stream = b"".join(encode_bci_frame(s, p, finger_out=f, searching=q) for s, p, f, q in frames)
    decoder = BciRrDecoder()
    assert _feed_all(decoder, _chunks(stream, sizes)) == []
    assert decoder.stats.frames == 0


@settings(max_examples=100, deadline=None)
@given(frames=st.lists(st.tuples(_spo2, _pulse), min_size=1, max_size=30), sizes=_sizes)
def test_bci_rr_stream_read_as_bci_gives_right_spo2_and_pulse(
    frames: list[tuple[int | None, int | None]], sizes: list[int]
) -> None:
    stream = b"".join(
        encode_bci_rr_frame(spo2, pulse, pi_percent=15.3, resp_rate_per_min=20)
        for spo2, pulse in frames
    )
    expected = []
    for spo2, pulse in frames:
        expected += [Reading(Metric.SPO2, _value(spo2, Quality.OK))]
        expected += [Reading(Metric.PULSE, _value(pulse, Quality.OK))]
    decoder = BciDecoder()
    assert _feed_all(decoder, _chunks(stream, sizes)) == expected
    assert decoder.stats.skipped_bytes == 2 * len(frames)


_berry_frame = st.builds(
    encode_berry_frame,
    st.integers(35, 100),
    st.integers(25, 250),
    index=st.integers(0, 255),
    rr_interval_ms=st.integers(200, 3000),
    pi_percent=st.integers(1, 200).map(lambda tenths: tenths / 10),
    pleth=st.integers(0, 100),
    ir_adc=st.integers(-(2**31), 2**31 - 1),
    battery_percent=st.integers(0, 100),
    beat=st.booleans(),
)


@pytest.mark.parametrize("decoder_type", [BciDecoder, BciRrDecoder], ids=["bci", "bci-rr"])
@settings(max_examples=100, deadline=None)
@given(frames=st.lists(_berry_frame, min_size=1, max_size=20), sizes=_sizes)
def test_berry_stream_read_as_bci_gives_no_values(
    decoder_type: type[BciDecoder] | type[BciRrDecoder], frames: list[bytes], sizes: list[int]
) -> None:
    decoder = decoder_type()
    assert _feed_all(decoder, _chunks(b"".join(frames), sizes)) == []


def test_berry_frame_split_at_every_offset_is_not_read_as_bci() -> None:
    # Index 0x87 followed by SpO2 72 / PR 70 looks like a BCI frame with SpO2 70, PR 200.
    frame = bytes.fromhex("ff aa 87 00 48 48 46 46 a7 00 2d 2c 3c 40 e2 01 00 55 64 64")
    for split in range(len(frame) + 1):
        decoder = BciDecoder()
        readings = decoder.feed(frame[:split]) + decoder.feed(frame[split:])
        readings += decoder.feed(BCI_FRAMES[0])
        assert readings == BCI_EXPECTED[:2], split


def test_flagged_frames_give_missing_values_with_flags() -> None:
    frames = [
        encode_bci_frame(97, 80, finger_out=True),
        encode_bci_frame(97, 80, searching=True),
        bytes.fromhex("a7 32 05 50 61"),  # probe unplugged, PR 80, SpO2 97
    ]
    readings = BciDecoder().feed(b"".join(frames))
    assert [(r.value, r.quality) for r in readings] == [
        (None, NO_FINGER),
        (None, NO_FINGER),
        (None, Quality.SEARCHING),
        (None, Quality.SEARCHING),
        (None, Quality.SENSOR_FAULT),
        (None, Quality.SENSOR_FAULT),
    ]


def test_implausible_values_are_dropped_and_counted() -> None:
    decoder = BciDecoder()
    readings = decoder.feed(encode_bci_frame(20, 10))
    assert readings == []
    assert decoder.stats.dropped_values == 2


@pytest.mark.parametrize(("spo2", "pulse"), [(128, 80), (-1, 80), (97, 256), (97, -1)], ids=str)
def test_bci_encoder_rejects_values_outside_the_fields(spo2: int, pulse: int) -> None:
    with pytest.raises(ValueError, match="out of the BCI field ranges"):
        encode_bci_frame(spo2, pulse)


def test_bci_rr_encoder_rejects_pi_outside_two_nibbles() -> None:
    with pytest.raises(ValueError, match="out of the field ranges"):
        encode_bci_rr_frame(97, 80, pi_percent=25.6)
