"""Recognising a device's protocol from its advertisement, name and GATT table (catalog data)."""

from __future__ import annotations

import pytest

from devices.protocols.catalog import all_protocols, get_protocol
from devices.recognise import best_protocol, recognise

PLX = "00001822-0000-1000-8000-00805f9b34fb"
PLX_CONTINUOUS = "00002a5f-0000-1000-8000-00805f9b34fb"
PLX_SPOT = "00002a5e-0000-1000-8000-00805f9b34fb"
BERRYMED = "49535343-fe7d-4ae5-8fa9-9fafd205e455"
BERRYMED_NOTIFY = "49535343-1e4d-4bd9-ba61-23c647249616"
FFE0 = "0000ffe0-0000-1000-8000-00805f9b34fb"
FFE1 = "0000ffe1-0000-1000-8000-00805f9b34fb"
FFE4 = "0000ffe4-0000-1000-8000-00805f9b34fb"
NONIN = "46a970e0-0d5f-11e2-8b5e-0002a5d5c51b"
HTS = "00001809-0000-1000-8000-00805f9b34fb"


@pytest.mark.parametrize(
    ("name", "services", "characteristics", "expected"),
    [
        # Standard services: the UUID alone tells.
        ("Nonin3230", [NONIN], None, "nonin-ble"),
        ("YHW-1", [HTS], None, "hts"),
        (None, [HTS], None, "hts"),
        # A name and no advertised service (CMS50D-BT).
        ("CMS50D-BT", [], None, "contec-hid"),
        ("cms50d-bt 0012", [], None, "contec-hid"),  # prefix, any case
        ("O2Ring 2201", [], None, "viatom-oxy"),
        # Shared services: the name decides...
        ("BerryMed", [BERRYMED], None, "berrymed-bci"),
        ("VTM 20F", [FFE0], None, "lepu-fe"),
        ("AOJ-20A", [FFE0], None, "aoj-20a"),
        # ...or the GATT table after a connection.
        (None, [FFE0], [FFE4, "0000fff2-0000-1000-8000-00805f9b34fb"], "lepu-fe"),
        (None, [FFE0], [FFE1], "aoj-20a"),
        ("OxiPLX", [PLX], [PLX_CONTINUOUS], "plx-continuous"),
        ("OxiPLX", [PLX], [PLX_SPOT], "plx-spot-check"),
        # Not enough to choose.
        ("OxiPLX", [PLX], None, None),
        (None, [BERRYMED], None, None),
        (None, [FFE0], None, None),
        # Nothing we speak.
        ("Mi Band 7", ["0000fee0-0000-1000-8000-00805f9b34fb"], None, None),
        (None, [], None, None),
    ],
)
def test_recognise_table(
    name: str | None,
    services: list[str],
    characteristics: list[str] | None,
    expected: str | None,
) -> None:
    assert best_protocol(recognise(name, services, characteristics)) == expected


def test_a_connected_device_without_the_characteristics_is_not_that_protocol() -> None:
    # Named like a CMS50D-BT, but its GATT table is a PLX oximeter's.
    candidates = recognise("CMS50D-BT", [PLX], [PLX_CONTINUOUS])
    assert [c.protocol for c in candidates] == ["plx-continuous"]


def test_candidates_say_why() -> None:
    [candidate, *_] = recognise("BerryMed", [BERRYMED.upper()], [BERRYMED_NOTIFY])
    assert candidate.protocol == "berrymed-bci"
    assert any("name" in reason for reason in candidate.reasons)
    assert any("service" in reason for reason in candidate.reasons)
    assert any("characteristics" in reason for reason in candidate.reasons)


def test_serial_only_protocols_are_never_candidates() -> None:
    every_uuid = [uuid for spec in all_protocols().values() for uuid in spec.ble_service_uuids]
    candidates = recognise(None, every_uuid)
    assert len(candidates) > 5
    assert all("ble" in get_protocol(c.protocol).transports for c in candidates)
