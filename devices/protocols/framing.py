"""Header-synchronised framing shared by the stream decoders whose frames start with fixed bytes.

Pure, no I/O. A `HeaderFramer` buffers the bytes it is fed, finds the header, asks the protocol
how long the frame starting there is, waits for the whole of it, checks it, and hands back the
good frames. Garbage, false headers and frames failing the check are skipped one byte at a time,
so a frame hidden behind a false header is still found. The counts go to the decoder's
`DecoderStats`: `frames` for each frame handed back, `skipped_bytes` for every byte dropped,
`bad_frames` for each whole frame that failed the check (a header the protocol rejects outright,
`NOT_A_FRAME`, is only skipped).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from devices.protocols.spec import DecoderStats

# Returned by a `FrameLength` for a header that cannot start a frame (no frame is 0 bytes long).
NOT_A_FRAME: Final = 0

# Given the buffer and the offset of a header in it: the length of the frame starting there,
# None while more bytes are needed to tell, or NOT_A_FRAME.
FrameLength: TypeAlias = Callable[[bytearray, int], int | None]
# True when a whole frame (header to last byte) is sound: its checksum, and whatever else.
FrameCheck: TypeAlias = Callable[[bytes], bool]


def fixed_length(frame_len: int) -> FrameLength:
    """The `FrameLength` of a protocol whose frames all have `frame_len` bytes."""
    if frame_len <= 0:
        raise ValueError(f"frame length {frame_len} must be positive")

    def length(buffer: bytearray, start: int) -> int:
        """The fixed frame length."""
        return frame_len

    return length


@dataclass(slots=True)
class HeaderFramer:
    """Cuts a byte stream into checked frames that start with `header`.

    `frame_len` and `is_valid` carry the protocol; the framer keeps the unconsumed bytes (a
    partial frame, or a trailing partial header) between calls to `feed`.
    """

    header: bytes
    frame_len: FrameLength = field(compare=False, repr=False)
    is_valid: FrameCheck = field(compare=False, repr=False)
    _buffer: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        if not self.header:
            raise ValueError("a HeaderFramer needs a header of at least one byte")

    def feed(self, data: bytes | bytearray | memoryview, stats: DecoderStats) -> list[bytes]:
        """The checked frames completed by `data`, in order; counts go to `stats`."""
        buffer = self._buffer
        buffer += data
        header, frame_len, is_valid = self.header, self.frame_len, self.is_valid
        size = len(buffer)
        frames: list[bytes] = []
        pos = 0
        while True:
            start = buffer.find(header, pos)
            if start < 0:
                end = size - self._partial_header_len(pos)
                stats.skipped_bytes += end - pos
                pos = end
                break
            stats.skipped_bytes += start - pos
            pos = start
            length = frame_len(buffer, start)
            if length is None or start + length > size:
                break
            if length != NOT_A_FRAME:
                frame = bytes(buffer[start : start + length])
                if is_valid(frame):
                    stats.frames += 1
                    frames.append(frame)
                    pos = start + length
                    continue
                stats.bad_frames += 1
            stats.skipped_bytes += 1
            pos = start + 1
        del buffer[:pos]
        return frames

    def _partial_header_len(self, pos: int) -> int:
        """How many bytes at the end of the buffer, from `pos` on, may begin a header."""
        buffer, header = self._buffer, self.header
        for count in range(min(len(header) - 1, len(buffer) - pos), 0, -1):
            if buffer.endswith(header[:count]):
                return count
        return 0
