"""Decoder throughput on one core: frames/s and readings/s for every registered protocol.

    .venv/bin/python bench/bench_decoders.py

Input per protocol: the frames of its tests/devices/protocols/vectors/<name>.json that do not
expect an error, repeated. A stream protocol (one whose readings do not depend on how its bytes
are cut) gets them as one long byte stream fed in random 20- to 4096-byte pieces; a protocol
that decodes one BLE value per call gets one call per frame. Each protocol runs for about
BUDGET_S seconds. "frames" are the frames the decoder counted in its stats.

Then the BerryMed BCI decoder against the simple alternative, a byte-by-byte pure-Python parser,
on the same synthetic 100 Hz stream. The project's target for 5-byte streams: >= 200k frames/s.
Prints figures only; asserts nothing.
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devices.protocols.catalog import all_protocols  # noqa: E402
from devices.protocols.oximeter_berrymed import BciDecoder, encode_bci_frame  # noqa: E402
from devices.protocols.reading import INVALIDATING, DecodeError, Metric, Quality, Reading  # noqa: E402
from devices.protocols.spec import (  # noqa: E402
    DecoderStats,
    ProtocolSpec,
    StreamDecoder,
    checked_reading,
)

VECTOR_DIR = ROOT / "tests" / "devices" / "protocols" / "vectors"
BUDGET_S = 0.8
STREAM_BYTES = 256 * 1024
CHUNK_MIN, CHUNK_MAX = 20, 4096
SEED = 20240611


@dataclass
class Result:
    """What one timed run did."""

    name: str
    mode: str
    frames: int = 0
    readings: int = 0
    input_bytes: int = 0
    errors: int = 0
    seconds: float = field(default=0.0)

    def row(self) -> str:
        """One table line."""
        seconds = max(self.seconds, 1e-9)
        return (
            f"{self.name:<28} {self.mode:<9} {self.frames / seconds:>12,.0f} "
            f"{self.readings / seconds:>12,.0f} {self.input_bytes / seconds / 1e6:>8.2f}"
            f"{'  (' + str(self.errors) + ' DecodeError)' if self.errors else ''}"
        )


def load_frames(protocol: str) -> list[bytes]:
    """The non-error frames of the protocol's vector file (empty when it has none)."""
    path = VECTOR_DIR / f"{protocol}.json"
    if not path.exists():
        return []
    vectors = json.loads(path.read_text())["vectors"]
    return [bytes.fromhex(v["hex"]) for v in vectors if not v.get("error")]


def is_stream(spec: ProtocolSpec, frames: list[bytes]) -> bool:
    """True when the frames decode the same fed all at once and fed byte by byte."""
    joined = b"".join(frames)
    try:
        whole = spec.new_decoder().feed(joined)
        decoder = spec.new_decoder()
        bytewise = [r for i in range(len(joined)) for r in decoder.feed(joined[i : i + 1])]
    except DecodeError:
        return False
    return whole == bytewise


def random_chunks(stream: bytes, rng: random.Random) -> list[bytes]:
    """`stream` cut into pieces of CHUNK_MIN to CHUNK_MAX bytes."""
    chunks, pos = [], 0
    while pos < len(stream):
        size = rng.randint(CHUNK_MIN, CHUNK_MAX)
        chunks.append(stream[pos : pos + size])
        pos += size
    return chunks


def time_feeds(result: Result, decoder: StreamDecoder, pieces: list[bytes]) -> Result:
    """Feed `pieces` over and over for about BUDGET_S seconds; fill `result`."""
    size = sum(len(piece) for piece in pieces)
    start = time.perf_counter()
    while time.perf_counter() - start < BUDGET_S:
        for piece in pieces:
            try:
                result.readings += len(decoder.feed(piece))
            except DecodeError:
                result.errors += 1
        result.input_bytes += size
    result.seconds = time.perf_counter() - start
    result.frames = decoder.stats.frames
    return result


def bench_protocol(spec: ProtocolSpec, rng: random.Random) -> Result | None:
    """Time one protocol on its vectors; None when it has no usable vectors."""
    frames = load_frames(spec.name)
    if not frames:
        return None
    if not is_stream(spec, frames):
        return time_feeds(Result(spec.name, "per-value"), spec.new_decoder(), frames)
    joined = b"".join(frames)
    stream = joined * max(1, STREAM_BYTES // max(len(joined), 1))
    chunks = random_chunks(stream, rng)
    return time_feeds(Result(spec.name, "stream"), spec.new_decoder(), chunks)


class NaiveBciParser:
    """The simple alternative: a byte-at-a-time state machine in plain Python."""

    def __init__(self) -> None:
        self.stats = DecoderStats()
        self._frame = bytearray()

    def feed(self, data: bytes) -> list[Reading]:
        """Readings of every frame completed by `data`."""
        readings: list[Reading] = []
        for byte in data:
            if byte & 0x80:
                self.stats.skipped_bytes += len(self._frame)
                self._frame = bytearray((byte,))
            elif self._frame:
                self._frame.append(byte)
                if len(self._frame) == 5:
                    readings += self._decode(self._frame)
                    self._frame = bytearray()
            else:
                self.stats.skipped_bytes += 1
        return readings

    def _decode(self, frame: bytearray) -> list[Reading]:
        self.stats.frames += 1
        quality = Quality.OK
        if frame[2] & 0x10:
            quality |= Quality.FINGER_OUT
        if frame[2] & 0x20 or frame[0] & 0x10:
            quality |= Quality.SEARCHING
        if frame[0] & 0x20:
            quality |= Quality.SENSOR_FAULT
        usable = not quality & INVALIDATING
        spo2 = frame[4]
        pulse = ((frame[2] & 0x40) << 1) | frame[3]
        values = (
            (Metric.SPO2, float(spo2) if usable and spo2 != 0x7F else None),
            (Metric.PULSE, float(pulse) if usable and pulse != 0xFF else None),
        )
        readings = []
        for metric, value in values:
            reading = checked_reading(self.stats, metric, value, quality)
            if reading is not None:
                readings.append(reading)
        return readings


def synthetic_bci_stream(rng: random.Random, seconds: int) -> bytes:
    """`seconds` of a 100 Hz BCI stream: a drifting patient, with a finger-out spell."""
    frames = []
    spo2, pulse = 96, 80
    for i in range(seconds * 100):
        spo2 = min(100, max(80, spo2 + rng.choice((-1, 0, 0, 1))))
        pulse = min(180, max(45, pulse + rng.choice((-1, 0, 0, 1))))
        finger_out = (i // 100) % 30 == 29  # one second in thirty
        frames.append(encode_bci_frame(spo2, pulse, pleth=i % 100, finger_out=finger_out))
    return b"".join(frames)


def bench_bci_comparison(rng: random.Random) -> list[str]:
    """Table lines: BciDecoder and the naive parser on the same synthetic stream."""
    chunks = random_chunks(synthetic_bci_stream(rng, 600), rng)
    decoder, naive = BciDecoder(), NaiveBciParser()
    same = all(decoder.feed(chunk) == naive.feed(chunk) for chunk in chunks)
    lines = [
        time_feeds(Result("BciDecoder (numpy)", "stream"), BciDecoder(), chunks).row(),
        time_feeds(Result("naive byte loop", "stream"), NaiveBciParser(), chunks).row(),
    ]
    return [*lines, f"same readings from both: {'yes' if same else 'NO'}"]


def main() -> None:
    """Print the tables."""
    rng = random.Random(SEED)
    header = f"{'protocol':<28} {'input':<9} {'frames/s':>12} {'readings/s':>12} {'MB/s':>8}"
    print(f"Python {sys.version.split()[0]}, about {BUDGET_S} s per row\n")
    print(header)
    print("-" * len(header))
    for name, spec in all_protocols().items():
        result = bench_protocol(spec, rng)
        print(result.row() if result else f"{name:<28} (no vectors)")
    print(
        "\nBerryMed BCI, synthetic 100 Hz stream, 20-4096 byte pieces (target >= 200,000 frames/s)"
    )
    print(header)
    print("-" * len(header))
    for line in bench_bci_comparison(rng):
        print(line)


if __name__ == "__main__":
    main()
