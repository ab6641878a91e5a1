"""Simulated BLE devices for the transport tests: a private system bus with a fake bluetoothd,
BLE oximeters that speak the real notification bytes, and a helper that streams them."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import pytest

from devices.protocols.oximeter_contec_hid import (
    BLE_NOTIFY_UUID as CONTEC_NOTIFY_UUID,
)
from devices.protocols.oximeter_contec_hid import (
    BLE_WRITE_UUID as CONTEC_WRITE_UUID,
)
from devices.protocols.oximeter_contec_hid import (
    START_LIVE_COMMAND,
    encode_values_frame,
)
from devices.protocols.oximeter_plx import CONTINUOUS_UUID, SERVICE_UUID, encode_plx_continuous
from tests.devices.transports.fake_bluez import (
    FakeBlueZ,
    FakeCharacteristicSpec,
    FakePeripheral,
    private_system_bus,
)

PLX_ADDRESS = "C0:11:22:33:44:01"
CONTEC_ADDRESS = "C0:11:22:33:44:02"
OTHER_ADDRESS = "C0:11:22:33:44:03"
PLX_FEATURES_UUID = "00002a60-0000-1000-8000-00805f9b34fb"
BATTERY_SERVICE_UUID = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"
CONTEC_SERVICE_UUID = "0000ff00-0000-1000-8000-00805f9b34fb"
HEART_RATE_SERVICE_UUID = "0000180d-0000-1000-8000-00805f9b34fb"
PLX_BATTERY_PERCENT = 83


@pytest.fixture
def bus_address(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private dbus-daemon; bleak (in this process) finds it through the environment."""
    with private_system_bus() as address:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", address)
        yield address


@pytest.fixture
async def bluez(bus_address: str) -> AsyncIterator[FakeBlueZ]:
    fake = await FakeBlueZ.start(bus_address)
    try:
        yield fake
    finally:
        await fake.stop()


def plx_oximeter(address: str = PLX_ADDRESS, name: str = "OxiPLX 3150") -> FakePeripheral:
    """A Bluetooth SIG Pulse Oximeter (0x1822) with a Battery Service."""
    return FakePeripheral(
        address,
        name,
        advertised_uuids=(SERVICE_UUID,),
        services={
            SERVICE_UUID: [
                FakeCharacteristicSpec(CONTINUOUS_UUID, ("notify",)),
                FakeCharacteristicSpec(PLX_FEATURES_UUID, ("read",), b"\x00\x00"),
            ],
            BATTERY_SERVICE_UUID: [
                FakeCharacteristicSpec(BATTERY_LEVEL_UUID, ("read",), bytes((PLX_BATTERY_PERCENT,)))
            ],
        },
    )


def contec_bt(address: str = CONTEC_ADDRESS) -> FakePeripheral:
    """A CMS50D-BT: advertises only its name; streams once it is sent "start live data"."""
    return FakePeripheral(
        address,
        "CMS50D-BT",
        services={
            CONTEC_SERVICE_UUID: [
                FakeCharacteristicSpec(CONTEC_WRITE_UUID, ("write-without-response", "write")),
                FakeCharacteristicSpec(CONTEC_NOTIFY_UUID, ("notify",)),
            ]
        },
    )


def other_device(address: str = OTHER_ADDRESS) -> FakePeripheral:
    """A heart-rate strap: recognised, but not an oximeter; and a nameless beacon is not."""
    return FakePeripheral(address, "Polar H10", advertised_uuids=(HEART_RATE_SERVICE_UUID,))


Payload = Callable[[float], bytes | None]  # scenario seconds -> notification (None: nothing)


def plx_payload(vitals: Callable[[float], tuple[int, int]]) -> Payload:
    def payload(t_s: float) -> bytes:
        spo2, pulse = vitals(t_s)
        return encode_plx_continuous(spo2, pulse)

    return payload


def contec_payload(peripheral: FakePeripheral, spo2: int, pulse: int) -> Payload:
    """Values frames, but only after this connection's "start live data" command."""

    def payload(_t_s: float) -> bytes | None:
        started = any(data == START_LIVE_COMMAND for _, data in peripheral.writes)
        return encode_values_frame(spo2, pulse) if started else None

    return payload


@dataclass
class Streamer:
    """Sends a peripheral's notifications every `interval_s` while it is connected."""

    bluez: FakeBlueZ
    address: str
    uuid: str
    payload: Payload
    interval_s: float = 0.1
    speed: float = 1.0  # scenario seconds per real second
    silent: bool = False
    sent: int = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in itertools.count():
            await asyncio.sleep(self.interval_s)
            if self.silent:
                continue
            data = self.payload((loop.time() - started) * self.speed)
            if data is None:
                continue
            with contextlib.suppress(LookupError):
                if self.bluez.notify(self.address, self.uuid, data):
                    self.sent += 1


@contextlib.asynccontextmanager
async def streaming(streamer: Streamer) -> AsyncIterator[Streamer]:
    task = asyncio.create_task(streamer.run())
    try:
        yield streamer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
