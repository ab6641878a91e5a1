"""All protocols pulsegate can decode, collected from the modules of this package.

A protocol module is named `<kind>_<vendor>.py` (kinds below) and defines `PROTOCOLS`.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

import devices.protocols as _package
from devices.protocols.spec import ProtocolSpec

PROTOCOL_MODULE_KINDS = ("oximeter_", "thermometer_", "heartrate_", "wearable_")


class UnknownProtocolError(KeyError):
    """A protocol name that no module defines."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)

    def __str__(self) -> str:
        known = ", ".join(sorted(all_protocols()))
        return f"unknown protocol {self.name!r}; known protocols: {known}"


@cache
def all_protocols() -> dict[str, ProtocolSpec]:
    """Every registered protocol by name, in module order."""
    found: dict[str, ProtocolSpec] = {}
    for module_info in sorted(pkgutil.iter_modules(_package.__path__), key=lambda m: m.name):
        if not module_info.name.startswith(PROTOCOL_MODULE_KINDS):
            continue
        module = importlib.import_module(f"{_package.__name__}.{module_info.name}")
        for spec in getattr(module, "PROTOCOLS", ()):
            if spec.name in found:
                raise RuntimeError(f"protocol {spec.name!r} is defined twice")
            found[spec.name] = spec
    return found


def get_protocol(name: str) -> ProtocolSpec:
    """The protocol called `name`; `UnknownProtocolError` lists the known ones."""
    try:
        return all_protocols()[name]
    except KeyError:
        raise UnknownProtocolError(name) from None
