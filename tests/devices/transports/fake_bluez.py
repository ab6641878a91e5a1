# ruff: noqa: N802  (D-Bus method and property names are BlueZ's API, in its CamelCase)
"""A fake bluetoothd: the `org.bluez` D-Bus API that bleak talks to, on a private dbus-daemon.

Real bluetoothd cannot run on the test machines (no Bluetooth in the kernel), so this module
plays its part over a real system-type bus, and unmodified bleak (and bleak-retry-connector)
connect to it through `DBUS_SYSTEM_BUS_ADDRESS`. It exports what bluetoothd exports:
  /org/bluez/hci0                       org.bluez.Adapter1
  /org/bluez/hci0/dev_XX_XX_...         org.bluez.Device1 (appears while discovering)
  .../serviceNNNN, .../serviceNNNN/charMMMM
                                        org.bluez.GattService1 / GattCharacteristic1
                                        (exported on Connect, removed when the link drops)
Notifications are `Value` PropertiesChanged signals after StartNotify, as bluetoothd sends them.
Faults the tests inject: a link that drops, Connect errors, a peripheral that stops notifying
and an adapter stuck with `org.bluez.Error.InProgress` until it is power-cycled.
"""

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from dbus_fast import BusType, DBusError, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import (
    DBusBool,
    DBusBytes,
    DBusDict,
    DBusInt16,
    DBusObjectPath,
    DBusSignature,
    DBusStr,
)
from dbus_fast.service import PropertyAccess, ServiceInterface, dbus_method, dbus_property

DBusStrList = Annotated[list[str], DBusSignature("as")]
DBusManufacturerData = Annotated[dict[int, Variant], DBusSignature("a{qv}")]
ADAPTER_PATH = "/org/bluez/hci0"
ADVERTISE_INTERVAL_S = 0.1
IN_PROGRESS = "org.bluez.Error.InProgress"
NOT_READY = "org.bluez.Error.NotReady"
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
"""


@contextlib.contextmanager
def private_system_bus() -> Iterator[str]:
    """A dbus-daemon of type `system` on a short socket path; yields its address."""
    if shutil.which("dbus-daemon") is None:
        raise RuntimeError("dbus-daemon is not installed: run tests/run.sh, which installs it")
    # The socket path must stay under ~99 characters: pytest's tmp_path is too long.
    workdir = Path(tempfile.mkdtemp(prefix="bus"))
    config = workdir / "bus.conf"
    config.write_text(BUS_CONFIG.format(socket=workdir / "s"))
    process = subprocess.Popen(
        ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        address = process.stdout.readline().strip()
        if not address:
            raise RuntimeError("dbus-daemon did not start")
        yield address
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class FakeCharacteristicSpec:
    uuid: str
    flags: tuple[str, ...]
    value: bytes = b""
    on_write: Callable[[bytes], None] | None = None


@dataclass
class FakePeripheral:
    """One simulated BLE device: what it advertises, its GATT table, and the faults to inject."""

    address: str
    name: str | None
    advertised_uuids: tuple[str, ...] = ()
    services: dict[str, list[FakeCharacteristicSpec]] = field(default_factory=dict)
    rssi_dbm: int = -60
    advertising: bool = True
    connect_errors: list[tuple[str, str]] = field(default_factory=list)
    writes: list[tuple[str, bytes]] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"{ADAPTER_PATH}/dev_{self.address.replace(':', '_')}"


class _Adapter(ServiceInterface):
    def __init__(self, bluez: "FakeBlueZ") -> None:
        super().__init__("org.bluez.Adapter1")
        self._bluez = bluez
        self.powered = True
        self.discovering = False

    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> DBusStr:
        return "00:1A:7D:DA:71:13"

    @dbus_property(access=PropertyAccess.READ)
    def Name(self) -> DBusStr:
        return "pulsegate-test"

    @dbus_property(access=PropertyAccess.READ)
    def Alias(self) -> DBusStr:
        return "pulsegate-test"

    @dbus_property()
    def Powered(self) -> DBusBool:
        return self.powered

    @Powered.setter
    def Powered(self, value: DBusBool) -> None:
        self._bluez.record("Powered", ADAPTER_PATH, str(value))
        if not value and self.powered:
            self._bluez.power_off()
        if value and not self.powered:
            self._bluez.stuck_in_progress = False
        self.powered = value
        self.emit_properties_changed({"Powered": value})

    @dbus_property(access=PropertyAccess.READ)
    def Discovering(self) -> DBusBool:
        return self.discovering

    @dbus_property(access=PropertyAccess.READ)
    def Roles(self) -> DBusStrList:
        return ["central", "peripheral"]

    @dbus_method()
    def SetDiscoveryFilter(self, filters: DBusDict) -> None:
        self._bluez.record("SetDiscoveryFilter", ADAPTER_PATH)

    @dbus_method()
    def StartDiscovery(self) -> None:
        self._bluez.record("StartDiscovery", ADAPTER_PATH)
        self._bluez.check_adapter()
        self.discovering = True
        self.emit_properties_changed({"Discovering": True})
        self._bluez.start_advertising()

    @dbus_method()
    def StopDiscovery(self) -> None:
        self._bluez.record("StopDiscovery", ADAPTER_PATH)
        if not self.discovering:
            raise DBusError("org.bluez.Error.Failed", "No discovery started")
        self.discovering = False
        self.emit_properties_changed({"Discovering": False})
        self._bluez.stop_advertising()

    @dbus_method()
    def RemoveDevice(self, device: DBusObjectPath) -> None:
        self._bluez.record("RemoveDevice", device)
        self._bluez.remove_device(device)


class _Device(ServiceInterface):
    def __init__(self, bluez: "FakeBlueZ", peripheral: FakePeripheral) -> None:
        super().__init__("org.bluez.Device1")
        self._bluez = bluez
        self.peripheral = peripheral
        self.connected = False
        self.services_resolved = False
        self.rssi_dbm = peripheral.rssi_dbm

    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> DBusStr:
        return self.peripheral.address

    @dbus_property(access=PropertyAccess.READ)
    def AddressType(self) -> DBusStr:
        return "public"

    @dbus_property(access=PropertyAccess.READ)
    def Name(self) -> DBusStr:
        return self.peripheral.name or ""

    @dbus_property(access=PropertyAccess.READ)
    def Alias(self) -> DBusStr:
        return self.peripheral.name or self.peripheral.address.replace(":", "-")

    @dbus_property(access=PropertyAccess.READ)
    def Adapter(self) -> DBusObjectPath:
        return ADAPTER_PATH

    @dbus_property(access=PropertyAccess.READ)
    def Paired(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Trusted(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Connected(self) -> DBusBool:
        return self.connected

    @dbus_property(access=PropertyAccess.READ)
    def ServicesResolved(self) -> DBusBool:
        return self.services_resolved

    @dbus_property(access=PropertyAccess.READ)
    def RSSI(self) -> DBusInt16:
        return self.rssi_dbm

    @dbus_property(access=PropertyAccess.READ)
    def UUIDs(self) -> DBusStrList:
        return list(self.peripheral.advertised_uuids)

    @dbus_property(access=PropertyAccess.READ)
    def ManufacturerData(self) -> DBusManufacturerData:
        return {}

    @dbus_property(access=PropertyAccess.READ)
    def ServiceData(self) -> DBusDict:
        return {}

    @dbus_method()
    async def Connect(self) -> None:
        self._bluez.record("Connect", self.peripheral.address)
        self._bluez.check_adapter()
        if self.peripheral.connect_errors:
            name, message = self.peripheral.connect_errors.pop(0)
            raise DBusError(name, message)
        if not self.peripheral.advertising:
            raise DBusError("org.bluez.Error.Failed", "Page Timeout")
        self._bluez.connect(self)

    @dbus_method()
    def Disconnect(self) -> None:
        self._bluez.record("Disconnect", self.peripheral.address)
        self._bluez.drop_link(self.peripheral.address)

    def set_connected(self, connected: bool) -> None:
        self.connected = connected
        if not connected:
            self.services_resolved = False
        self.emit_properties_changed(
            {"Connected": connected, "ServicesResolved": self.services_resolved}
        )

    def set_resolved(self) -> None:
        self.services_resolved = True
        self.emit_properties_changed({"ServicesResolved": True})

    def advertise(self) -> None:
        """An advertisement seen again: bluetoothd reports the fresh RSSI."""
        self.rssi_dbm = self.peripheral.rssi_dbm + (1 if self.rssi_dbm % 2 == 0 else 0)
        self.emit_properties_changed({"RSSI": self.rssi_dbm})


class _GattService(ServiceInterface):
    def __init__(self, uuid: str, device_path: str) -> None:
        super().__init__("org.bluez.GattService1")
        self._uuid = uuid
        self._device_path = device_path

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return self._uuid

    @dbus_property(access=PropertyAccess.READ)
    def Primary(self) -> DBusBool:
        return True

    @dbus_property(access=PropertyAccess.READ)
    def Device(self) -> DBusObjectPath:
        return self._device_path


class _GattCharacteristic(ServiceInterface):
    def __init__(
        self, bluez: "FakeBlueZ", spec: FakeCharacteristicSpec, service_path: str, address: str
    ) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self._bluez = bluez
        self.spec = spec
        self._service_path = service_path
        self._address = address
        self.value = spec.value
        self.notifying = False

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return self.spec.uuid

    @dbus_property(access=PropertyAccess.READ)
    def Service(self) -> DBusObjectPath:
        return self._service_path

    @dbus_property(access=PropertyAccess.READ)
    def Value(self) -> DBusBytes:
        return self.value

    @dbus_property(access=PropertyAccess.READ)
    def Notifying(self) -> DBusBool:
        return self.notifying

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> DBusStrList:
        return list(self.spec.flags)

    @dbus_method()
    def ReadValue(self, options: DBusDict) -> DBusBytes:
        self._bluez.record("ReadValue", self.spec.uuid)
        return self.value

    @dbus_method()
    def WriteValue(self, value: DBusBytes, options: DBusDict) -> None:
        self._bluez.record("WriteValue", self.spec.uuid, bytes(value).hex())
        self._bluez.peripherals[self._address].writes.append((self.spec.uuid, bytes(value)))
        if self.spec.on_write is not None:
            self.spec.on_write(bytes(value))

    @dbus_method()
    def StartNotify(self) -> None:
        self._bluez.record("StartNotify", self.spec.uuid)
        if self.notifying:
            raise DBusError(IN_PROGRESS, "Notify already started")
        self.notifying = True
        self.emit_properties_changed({"Notifying": True})

    @dbus_method()
    def StopNotify(self) -> None:
        self._bluez.record("StopNotify", self.spec.uuid)
        self.notifying = False
        self.emit_properties_changed({"Notifying": False})

    def notify(self, data: bytes) -> bool:
        if not self.notifying:
            return False
        self.value = data
        self.emit_properties_changed({"Value": data})
        return True


class FakeBlueZ:
    """The fake bluetoothd on `bus`; add peripherals, then drive them from the test."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self.adapter = _Adapter(self)
        self.peripherals: dict[str, FakePeripheral] = {}
        self.devices: dict[str, _Device] = {}
        self.gatt: dict[str, list[tuple[str, ServiceInterface]]] = {}
        self.calls: list[tuple[float, str, str, str]] = []
        self.stuck_in_progress = False
        self._advertiser: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, address: str) -> "FakeBlueZ":
        bus = await MessageBus(bus_address=address, bus_type=BusType.SYSTEM).connect()
        bluez = cls(bus)
        bus.export(ADAPTER_PATH, bluez.adapter)
        await bus.request_name("org.bluez")
        return bluez

    async def stop(self) -> None:
        self.stop_advertising()
        self.bus.disconnect()
        with contextlib.suppress(EOFError):
            await self.bus.wait_for_disconnect()

    def record(self, member: str, target: str, detail: str = "") -> None:
        self.calls.append((time.monotonic(), member, target, detail))

    def calls_to(self, member: str, target: str | None = None) -> list[tuple[float, str]]:
        """(monotonic time, detail) of each call of `member` (on `target`)."""
        return [
            (t, detail)
            for t, name, where, detail in self.calls
            if name == member and (target is None or where == target)
        ]

    def add(self, peripheral: FakePeripheral) -> FakePeripheral:
        self.peripherals[peripheral.address] = peripheral
        return peripheral

    # -- adapter ---------------------------------------------------------------------------

    def check_adapter(self) -> None:
        if not self.adapter.powered:
            raise DBusError(NOT_READY, "Resource Not Ready")
        if self.stuck_in_progress:
            raise DBusError(IN_PROGRESS, "Operation already in progress")

    def power_off(self) -> None:
        for address in list(self.devices):
            self.drop_link(address)
        self.adapter.discovering = False
        self.stop_advertising()

    def start_advertising(self) -> None:
        self._announce()
        if self._advertiser is None or self._advertiser.done():
            self._advertiser = asyncio.get_running_loop().create_task(self._advertise())

    def stop_advertising(self) -> None:
        if self._advertiser is not None:
            self._advertiser.cancel()
            self._advertiser = None

    def _announce(self) -> None:
        for peripheral in self.peripherals.values():
            if peripheral.advertising and peripheral.address not in self.devices:
                device = _Device(self, peripheral)
                self.devices[peripheral.address] = device
                self.bus.export(peripheral.path, device)

    async def _advertise(self) -> None:
        # bleak's scanner only listens once StartDiscovery has returned: keep advertising.
        while True:
            await asyncio.sleep(ADVERTISE_INTERVAL_S)
            self._announce()
            for device in self.devices.values():
                if device.peripheral.advertising and not device.connected:
                    device.advertise()

    def remove_device(self, path: str) -> None:
        for address, device in list(self.devices.items()):
            if device.peripheral.path == path:
                self.drop_link(address)
                self.bus.unexport(path)
                del self.devices[address]
                return
        raise DBusError("org.bluez.Error.DoesNotExist", "Does Not Exist")

    # -- links -----------------------------------------------------------------------------

    def connect(self, device: _Device) -> None:
        peripheral = device.peripheral
        device.set_connected(True)
        exported: list[tuple[str, ServiceInterface]] = []
        handle = 0x000A
        for service_uuid, characteristics in peripheral.services.items():
            service_path = f"{peripheral.path}/service{handle:04x}"
            service = _GattService(service_uuid, peripheral.path)
            self.bus.export(service_path, service)
            exported.append((service_path, service))
            for spec in characteristics:
                handle += 1
                char_path = f"{service_path}/char{handle:04x}"
                characteristic = _GattCharacteristic(self, spec, service_path, peripheral.address)
                self.bus.export(char_path, characteristic)
                exported.append((char_path, characteristic))
            handle += 1
        self.gatt[peripheral.address] = exported
        device.set_resolved()

    def drop_link(self, address: str) -> None:
        """The peripheral went away (or was disconnected): as bluetoothd reports a lost link."""
        device = self.devices.get(address)
        if device is None or not device.connected:
            return
        for path, interface in reversed(self.gatt.pop(address, [])):
            self.bus.unexport(path, interface)
        device.set_connected(False)

    def is_connected(self, address: str) -> bool:
        device = self.devices.get(address)
        return device is not None and device.connected

    def characteristic(self, address: str, uuid: str) -> _GattCharacteristic:
        for _, interface in self.gatt.get(address, []):
            if isinstance(interface, _GattCharacteristic) and interface.spec.uuid == uuid:
                return interface
        raise LookupError(f"{address} has no connected characteristic {uuid}")

    def notify(self, address: str, uuid: str, data: bytes) -> bool:
        """Send a notification if the central subscribed; False when nobody listens."""
        if not self.is_connected(address):
            return False
        return self.characteristic(address, uuid).notify(data)


def set_bus_address(address: str) -> dict[str, Any]:
    """The environment a process needs to find the fake: bleak reads DBUS_SYSTEM_BUS_ADDRESS."""
    return {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": address}
