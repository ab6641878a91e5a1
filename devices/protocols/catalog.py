"""All protocols pulsegate can decode, collected from the modules of this package.

A protocol module is named `<kind>_<vendor>.py` (kinds below) and defines `PROTOCOLS`, and,
when the device stores recordings that can be imported, `RECORDING_FORMATS`.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType

import devices.protocols as _package
from devices.protocols.spec import ProtocolSpec, RecordingFormat

PROTOCOL_MODULE_KINDS = ("oximeter_", "thermometer_", "heartrate_", "wearable_")


class UnknownProtocolError(KeyError):
    """A protocol name that no module defines."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)

    def __str__(self) -> str:
        known = ", ".join(sorted(all_protocols()))
        return f"unknown protocol {self.name!r}; known protocols: {known}"


def _protocol_modules() -> list[ModuleType]:
    names = sorted(m.name for m in pkgutil.iter_modules(_package.__path__))
    return [
        importlib.import_module(f"{_package.__name__}.{name}")
        for name in names
        if name.startswith(PROTOCOL_MODULE_KINDS)
    ]


@cache
def all_protocols() -> dict[str, ProtocolSpec]:
    """Every registered protocol by name, in module order."""
    found: dict[str, ProtocolSpec] = {}
    for module in _protocol_modules():
        for spec in getattr(module, "PROTOCOLS", ()):
            if spec.name in found:
                raise RuntimeError(f"protocol {spec.name!r} is defined twice")
            found[spec.name] = spec
    return found


@cache
def all_recording_formats() -> dict[str, RecordingFormat]:
    """Every importable recording file format by name."""
    found: dict[str, RecordingFormat] = {}
    for module in _protocol_modules():
        for recording_format in getattr(module, "RECORDING_FORMATS", ()):
            if recording_format.name in found:
                raise RuntimeError(f"recording format {recording_format.name!r} is defined twice")
            found[recording_format.name] = recording_format
    return found


def get_protocol(name: str) -> ProtocolSpec:
    """The protocol called `name`; `UnknownProtocolError` lists the known ones."""
    try:
        return all_protocols()[name]
    except KeyError:
        raise UnknownProtocolError(name) from None
