"""BerryMed BERRY 20-byte frames: framing across feeds, checksum resynchronisation, version
replies, round trips through the encoders, and the command bytes of the protocol document."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.protocols.catalog import get_protocol
from devices.protocols.oximeter_berrymed_berry import (
    VERSION_HARDWARE,
    VERSION_SOFTWARE,
    BerryDecoder,
    BerryMedCommand,
    berry_checksum,
    encode_berry_command,
    encode_berry_frame,
    encode_berry_rate,
    encode_berry_version_reply,
)
from devices.protocols.reading import Metric, Quality, Reading

# B5, B6 (vendor document) and B7 of vectors/berrymed-berry.json
SOFTWARE_REPLY = bytes.fromhex("ff aa 53 56 31 2e 30 34 2e 30 30 2e 33 36 00 00 00 00 00 3a")
HARDWARE_REPLY = bytes.fromhex("ff aa 48 56 32 2e 30 00 00 00 00 00 00 00 00 00 00 00 00 d7")
DATA_FRAME = bytes.fromhex("ff aa 07 08 62 61 48 49 a7 00 2d 2c 3c 40 e2 01 00 55 64 24")
DATA_READINGS = [
    Reading(Metric.SPO2, 98.0),
    Reading(Metric.PULSE, 72.0),
    Reading(Metric.PI, 4.5),
    Reading(Metric.RR_INTERVAL, 835.0),
    Reading(Metric.BATTERY, 85.0),
]


def _chunks(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    """`data` cut into pieces of the given sizes, cycled."""
    pos, index = 0, 0
    while pos < len(data):
        yield data[pos : pos + sizes[index % len(sizes)]]
        pos += sizes[index % len(sizes)]
        index += 1


def _feed_all(decoder: BerryDecoder, pieces: Iterator[bytes]) -> list[Reading]:
    readings: list[Reading] = []
    for piece in pieces:
        readings.extend(decoder.feed(piece))
    return readings


def test_protocol_is_registered_and_switches_the_module_to_berry() -> None:
    spec = get_protocol("berrymed-berry")
    assert isinstance(spec.new_decoder(), BerryDecoder)
    assert spec.start_commands == (b"\xe1",)


@pytest.mark.parametrize(
    ("command", "documented"),
    [
        (BerryMedCommand.GET_SOFTWARE_VERSION, b"\xff"),
        (BerryMedCommand.GET_HARDWARE_VERSION, b"\xfe"),
        (BerryMedCommand.SWITCH_TO_BCI, b"\xe0"),
        (BerryMedCommand.SWITCH_TO_BERRY, b"\xe1"),
        (BerryMedCommand.RATE_50_HZ, b"\xf0"),
        (BerryMedCommand.RATE_100_HZ, b"\xf1"),
        (BerryMedCommand.RATE_200_HZ, b"\xf2"),
        (BerryMedCommand.RATE_1_HZ, b"\xf3"),
        (BerryMedCommand.ADC_RAW, b"\xf4"),
        (BerryMedCommand.ADC_FILTERED, b"\xf5"),
        (BerryMedCommand.STOP, b"\xf6"),
    ],
    ids=lambda value: getattr(value, "name", ""),
)
def test_command_bytes_are_the_documented_bytes(
    command: BerryMedCommand, documented: bytes
) -> None:
    assert encode_berry_command(command) == documented


@pytest.mark.parametrize(
    ("rate_hz", "documented"), [(1, b"\xf3"), (50, b"\xf0"), (100, b"\xf1"), (200, b"\xf2")]
)
def test_rate_command_bytes_are_the_documented_bytes(rate_hz: int, documented: bytes) -> None:
    assert encode_berry_rate(rate_hz) == documented


def test_rate_command_rejects_an_undocumented_rate() -> None:
    with pytest.raises(ValueError, match="not one of"):
        encode_berry_rate(25)


def test_encoder_reproduces_the_documented_frames() -> None:
    assert encode_berry_version_reply(VERSION_SOFTWARE, "V1.04.00.36") == SOFTWARE_REPLY
    assert encode_berry_version_reply(VERSION_HARDWARE, "V2.0") == HARDWARE_REPLY
    frame = encode_berry_frame(
        98,
        72,
        index=7,
        spo2_realtime_percent=97,
        pulse_realtime_bpm=73,
        rr_interval_ms=835,
        pi_percent=4.5,
        pi_realtime_percent=4.4,
        pleth=60,
        ir_adc=123456,
        battery_percent=85,
        beat=True,
    )
    assert frame == DATA_FRAME


def test_stream_split_at_every_offset_gives_the_same_readings_and_versions() -> None:
    stream = SOFTWARE_REPLY + DATA_FRAME + HARDWARE_REPLY + DATA_FRAME
    for split in range(len(stream) + 1):
        decoder = BerryDecoder()
        readings = decoder.feed(stream[:split]) + decoder.feed(stream[split:])
        assert readings == DATA_READINGS * 2, split
        assert (decoder.software_version, decoder.hardware_version) == ("V1.04.00.36", "V2.0")
        assert (decoder.stats.frames, decoder.stats.skipped_bytes) == (4, 0)


def test_bad_checksum_is_skipped_and_counted() -> None:
    corrupted = bytearray(DATA_FRAME)
    corrupted[4] ^= 0x01  # SpO2 98 -> 99, checksum left as it was
    decoder = BerryDecoder()
    readings = _feed_all(decoder, _chunks(bytes(corrupted) + DATA_FRAME, [1]))
    assert readings == DATA_READINGS
    assert decoder.stats.bad_frames == 1
    assert decoder.stats.frames == 1
    assert decoder.stats.skipped_bytes == len(DATA_FRAME)


def test_false_header_in_garbage_is_skipped_and_the_next_frame_found() -> None:
    garbage = b"\x00\xff\xaa\x01\x02\xff"
    stream = garbage + DATA_FRAME + garbage + DATA_FRAME
    assert berry_checksum(stream[1:20]) != stream[20]  # the false header fails its checksum
    decoder = BerryDecoder()
    assert decoder.feed(stream) == DATA_READINGS * 2
    assert decoder.stats.bad_frames == 2
    assert decoder.stats.skipped_bytes == 2 * len(garbage)


def test_garbage_is_consumed_not_buffered() -> None:
    decoder = BerryDecoder()
    assert decoder.feed(bytes(range(256)) * 20 + b"\xff") == []
    assert decoder.stats.skipped_bytes == 256 * 20
    assert decoder.feed(DATA_FRAME[1:]) == DATA_READINGS  # the kept FF began the header


@pytest.mark.parametrize(
    ("flags", "quality"),
    [
        ({"sensor_off": True}, Quality.SENSOR_FAULT),
        ({"finger_out": True}, Quality.FINGER_OUT),
        ({"no_pulse": True}, Quality.SEARCHING),
        ({"finger_out": True, "no_pulse": True}, Quality.FINGER_OUT | Quality.SEARCHING),
    ],
    ids=["sensor-off", "no-finger", "no-pulse", "no-finger-no-pulse"],
)
def test_flagged_frames_give_missing_values_with_flags(
    flags: dict[str, bool], quality: Quality
) -> None:
    frame = encode_berry_frame(97, 80, rr_interval_ms=750, pi_percent=3.0, beat=True, **flags)
    assert BerryDecoder().feed(frame) == [
        Reading(Metric.SPO2, None, quality),
        Reading(Metric.PULSE, None, quality),
        Reading(Metric.PI, None, quality),
        Reading(Metric.RR_INTERVAL, None, quality),
        Reading(Metric.BATTERY, 100.0),
    ]


_data_frame = st.fixed_dictionaries(
    {
        "spo2_percent": st.one_of(st.none(), st.integers(35, 100)),
        "pulse_bpm": st.one_of(st.none(), st.integers(25, 250)),
        "index": st.integers(0, 255),
        "rr_interval_ms": st.one_of(st.none(), st.integers(40, 600).map(lambda u: u * 5)),
        "pi_percent": st.one_of(st.none(), st.integers(1, 200).map(lambda t: t / 10)),
        "ir_adc": st.integers(-(2**31), 2**31 - 1),
        "battery_percent": st.integers(0, 100),
        "rate_hz": st.sampled_from([1, 50, 100, 200]),
        "beat": st.booleans(),
    }
)


def _expected(fields: dict[str, object]) -> list[Reading]:
    def value(name: str, scale: float = 1.0) -> float | None:
        raw = fields[name]
        assert raw is None or isinstance(raw, int | float)
        return None if raw is None else float(raw) * scale

    readings = [
        Reading(Metric.SPO2, value("spo2_percent")),
        Reading(Metric.PULSE, value("pulse_bpm")),
        Reading(Metric.PI, value("pi_percent")),
    ]
    if fields["beat"]:
        readings.append(Reading(Metric.RR_INTERVAL, value("rr_interval_ms")))
    return [*readings, Reading(Metric.BATTERY, value("battery_percent"))]


@settings(max_examples=150, deadline=None)
@given(
    frames=st.lists(_data_frame, max_size=25),
    sizes=st.lists(st.integers(1, 64), min_size=1, max_size=8),
)
def test_encode_decode_round_trip_in_any_chunking(
    frames: list[dict[str, object]], sizes: list[int]
) -> None:
    stream = b"".join(encode_berry_frame(**frame) for frame in frames)
    decoder = BerryDecoder()
    readings = _feed_all(decoder, _chunks(stream, sizes))
    assert readings == [reading for frame in frames for reading in _expected(frame)]
    assert (decoder.stats.frames, decoder.stats.skipped_bytes) == (len(frames), 0)


_version_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=16
).filter(lambda text: not text.endswith("\x00"))


@settings(max_examples=100, deadline=None)
@given(software=_version_text, hardware=_version_text)
def test_version_replies_round_trip_and_give_no_readings(software: str, hardware: str) -> None:
    decoder = BerryDecoder()
    stream = encode_berry_version_reply(VERSION_SOFTWARE, software)
    stream += encode_berry_version_reply(VERSION_HARDWARE, hardware)
    assert decoder.feed(stream) == []
    assert (decoder.software_version, decoder.hardware_version) == (software, hardware)


@pytest.mark.parametrize("index", [VERSION_SOFTWARE, VERSION_HARDWARE], ids=["S", "H"])
def test_data_frame_with_a_version_letter_as_index_is_data(index: int) -> None:
    decoder = BerryDecoder()
    assert decoder.feed(encode_berry_frame(98, 72, index=index)) != []
    assert decoder.software_version is None
    assert decoder.hardware_version is None


def test_encoder_rejects_values_outside_the_fields() -> None:
    with pytest.raises(ValueError, match="SpO2"):
        encode_berry_frame(256, 72)
    with pytest.raises(ValueError, match="int32"):
        encode_berry_frame(98, 72, ir_adc=2**31)
    with pytest.raises(ValueError, match="longer than"):
        encode_berry_version_reply(VERSION_SOFTWARE, "V" * 17)
