"""Arbitrary bytes, in arbitrary pieces, never make any decoder raise anything but DecodeError,
and whatever comes out is either missing or physiologically possible."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.protocols.catalog import all_protocols
from devices.protocols.reading import DecodeError, is_plausible


@pytest.mark.parametrize("protocol", sorted(all_protocols()))
@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(st.binary(max_size=64), max_size=12))
def test_decoder_survives_arbitrary_bytes(protocol: str, chunks: list[bytes]) -> None:
    decoder = all_protocols()[protocol].new_decoder()
    for chunk in chunks:
        try:
            readings = decoder.feed(chunk)
        except DecodeError as exc:
            assert exc.protocol
            continue
        for reading in readings:
            assert reading.value is None or is_plausible(reading.metric, reading.value)
