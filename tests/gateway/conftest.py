"""The fake-bluetoothd fixtures for the device tests (defined in tests/devices/transports)."""

from tests.devices.transports.ble_fixtures import bluez, bus_address

__all__ = ["bluez", "bus_address"]
