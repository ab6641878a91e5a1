"""Which protocol a BLE device speaks, from what it advertises and, after a connection, from
the characteristics it offers. Pure: the catalog's UUIDs and name patterns are the only data.

Evidence and its weight:
  - the device's GATT table holds every notify characteristic of the protocol   (strongest)
  - it advertises one of the protocol's service UUIDs
  - its name starts with one of the protocol's name patterns (case-insensitive)
A connected device that lacks a protocol's notify characteristics cannot speak it, whatever
its name says. Protocols that share a service (the BerryMed family, PLX continuous and
spot-check, FFE0 devices) are told apart by name or characteristics, else listed together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from devices.protocols.catalog import all_protocols
from devices.protocols.spec import ProtocolSpec

CHARACTERISTICS_SCORE = 4
SERVICE_SCORE = 2
NAME_SCORE = 2


@dataclass(frozen=True, slots=True)
class Candidate:
    """A protocol the device may speak, with how sure we are and why."""

    protocol: str
    score: int
    reasons: tuple[str, ...]


def _name_matches(name: str | None, spec: ProtocolSpec) -> str | None:
    if not name:
        return None
    for pattern in spec.name_patterns:
        if name.casefold().startswith(pattern.casefold()):
            return pattern
    return None


def _candidate(
    spec: ProtocolSpec,
    name: str | None,
    service_uuids: frozenset[str],
    characteristic_uuids: frozenset[str] | None,
) -> Candidate | None:
    score = 0
    reasons: list[str] = []
    if characteristic_uuids is not None:
        if not spec.ble_notify_uuids or not set(spec.ble_notify_uuids) <= characteristic_uuids:
            return None
        score += CHARACTERISTICS_SCORE
        reasons.append("characteristics " + ", ".join(u[:8] for u in spec.ble_notify_uuids))
    matching = [uuid for uuid in spec.ble_service_uuids if uuid in service_uuids]
    if matching:
        score += SERVICE_SCORE
        reasons.append(f"service {matching[0][:8]}")
    pattern = _name_matches(name, spec)
    if pattern is not None:
        score += NAME_SCORE
        reasons.append(f"name {pattern!r}")
    if not matching and pattern is None and characteristic_uuids is None:
        return None
    return Candidate(spec.name, score, tuple(reasons))


def recognise(
    name: str | None,
    service_uuids: Iterable[str],
    characteristic_uuids: Iterable[str] | None = None,
) -> list[Candidate]:
    """Protocols a device may speak, most likely first (catalog order breaks ties).

    `characteristic_uuids` is None before a connection (advertisement only).
    """
    services = frozenset(uuid.lower() for uuid in service_uuids)
    characteristics = (
        None
        if characteristic_uuids is None
        else frozenset(uuid.lower() for uuid in characteristic_uuids)
    )
    found = []
    for spec in all_protocols().values():
        if "ble" not in spec.transports:
            continue
        candidate = _candidate(spec, name, services, characteristics)
        if candidate is not None:
            found.append(candidate)
    # sorted() is stable: equal scores keep catalog order.
    return sorted(found, key=lambda c: -c.score)


def best_protocol(candidates: list[Candidate]) -> str | None:
    """The single most likely protocol, or None when none fits or the best ones tie."""
    if not candidates:
        return None
    if len(candidates) > 1 and candidates[1].score == candidates[0].score:
        return None
    return candidates[0].protocol
