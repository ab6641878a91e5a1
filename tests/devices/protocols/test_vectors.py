"""Every protocol decodes its recorded frames (tests/devices/protocols/vectors/<protocol>.json).

Each vector file holds frames with their provenance (REAL capture, TEST vector of a public
repository, DOC example of the vendor, or COMPUTED from the layout) and the readings expected,
in order. A vector with `"error": true` must raise `DecodeError`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from devices.protocols.catalog import all_protocols, get_protocol
from devices.protocols.reading import BodySite, DecodeError, Metric, Quality, Reading

VECTOR_DIR = Path(__file__).parent / "vectors"
PROVENANCES = {"REAL", "TEST", "DOC", "COMPUTED"}


def _load_vectors() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for path in sorted(VECTOR_DIR.glob("*.json")):
        document = json.loads(path.read_text())
        assert document["protocol"] == path.stem, f"{path.name} names {document['protocol']}"
        cases.extend((document["protocol"], vector) for vector in document["vectors"])
    return cases


VECTORS = _load_vectors()


def _expected(entry: dict[str, Any]) -> Reading:
    quality = Quality.OK
    for flag in entry.get("quality", []):
        quality |= Quality[flag]
    site = entry.get("site")
    device_time = entry.get("device_time_s")
    return Reading(
        Metric(entry["metric"]),
        None if entry["value"] is None else float(entry["value"]),
        quality,
        None if device_time is None else float(device_time),
        None if site is None else BodySite(site),
    )


def _same(actual: Reading, expected: Reading) -> bool:
    if actual.value is None or expected.value is None:
        values_match = actual.value is expected.value
    else:
        values_match = math.isclose(actual.value, expected.value, abs_tol=1e-6)
    return values_match and (
        (actual.metric, actual.quality, actual.device_time_s, actual.site)
        == (expected.metric, expected.quality, expected.device_time_s, expected.site)
    )


@pytest.mark.parametrize(
    ("protocol", "vector"), VECTORS, ids=[f"{p}:{v['id']}" for p, v in VECTORS]
)
def test_vector_decodes_to_expected_readings(protocol: str, vector: dict[str, Any]) -> None:
    assert vector["provenance"] in PROVENANCES
    assert vector["source"]
    decoder = get_protocol(protocol).new_decoder()
    data = bytes.fromhex(vector["hex"])
    if vector.get("error"):
        with pytest.raises(DecodeError):
            decoder.feed(data)
        return
    readings = decoder.feed(data)
    expected = [_expected(entry) for entry in vector["readings"]]
    assert len(readings) == len(expected), readings
    for actual, wanted in zip(readings, expected, strict=True):
        assert _same(actual, wanted), f"{actual} != {wanted}"


def test_every_protocol_has_vectors() -> None:
    covered = {protocol for protocol, _ in VECTORS}
    assert set(all_protocols()) <= covered, set(all_protocols()) - covered


def test_every_vector_file_names_a_registered_protocol() -> None:
    for path in VECTOR_DIR.glob("*.json"):
        assert path.stem in all_protocols(), path.name
