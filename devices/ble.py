"""The BLE transport (bleak on BlueZ, with bleak-retry-connector): scan, connect, subscribe,
start and keep-alive commands, and a link that heals itself.

On a Raspberry Pi one adapter does everything, and BlueZ answers `InProgress` when a scan and
a connect overlap, so every radio operation (scan, connect + service discovery) holds the
`AdapterGate` lock. A `BleLink` loops for ever: find the device, connect, subscribe to the
protocol's notify characteristics (again on every reconnect), write its start commands, send
its keep-alive, and watch for silence; any end of the link is classified
(`devices.backoff`) and retried after a jittered backoff. Repeated adapter errors walk the
recovery ladder: wait, stop a leftover discovery, power-cycle the adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakDBusError, BleakError
from bleak_retry_connector import BleakClientWithServiceCache, establish_connection
from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from devices.backoff import (
    POWER_CYCLE_WARNING_AFTER,
    FailureKind,
    RecoveryStep,
    adapter_recovery_step,
    classify_ble_error,
)
from devices.clock import Clock
from devices.link import (
    BytesPump,
    BytesSink,
    LinkState,
    LinkStatus,
    LinkTiming,
    Retry,
    keep_linked,
)
from devices.protocols.reading import Metric
from devices.protocols.spec import ProtocolSpec
from devices.recognise import Candidate, recognise

log = logging.getLogger(__name__)
DEFAULT_ADAPTER = "hci0"
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"  # Battery Service, Battery Level
CONNECT_ATTEMPTS = 2  # bleak-retry-connector's quick retries inside one of our attempts
WATCH_TICK_S = 0.25
POWER_CYCLE_PAUSE_S = 0.5
BLUEZ = "org.bluez"
BLUE_Z_ERROR = (BleakError, EOFError, BrokenPipeError, TimeoutError, OSError)


class LinkError(Exception):
    """A link ended (or never started) for a classified reason."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def describe_error(exc: BaseException) -> tuple[str | None, str]:
    """(D-Bus error name, text) of a bleak error, looking through wrapping exceptions."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, BleakDBusError):
            return seen.dbus_error, str(exc)
        seen = seen.__cause__ or seen.__context__
    return None, str(exc) or type(exc).__name__


def classify(exc: BaseException) -> FailureKind:
    if isinstance(exc, LinkError):
        return exc.kind
    if isinstance(exc, TimeoutError):
        return FailureKind.TRANSIENT
    return classify_ble_error(*describe_error(exc))


class AdapterGate:
    """One radio operation at a time on one adapter, and the adapter-recovery ladder."""

    def __init__(self, adapter: str = DEFAULT_ADAPTER) -> None:
        self.adapter = adapter
        self.lock = asyncio.Lock()
        self.consecutive_errors = 0
        self.steps_taken: list[RecoveryStep] = []

    @property
    def path(self) -> str:
        return f"/org/bluez/{self.adapter}"

    def on_success(self) -> None:
        self.consecutive_errors = 0

    async def on_adapter_error(self, message: str) -> RecoveryStep:
        """Take the next rung of the ladder (holding the lock: nothing else uses the radio)."""
        self.consecutive_errors += 1
        step = adapter_recovery_step(self.consecutive_errors)
        self.steps_taken.append(step)
        log.warning(
            "%s: %s (%d in a row); recovery: %s",
            self.adapter,
            message,
            self.consecutive_errors,
            step,
        )
        if self.consecutive_errors >= POWER_CYCLE_WARNING_AFTER:
            log.error(
                "%s keeps failing after power cycles: check the adapter, then "
                "`systemctl restart bluetooth`",
                self.adapter,
            )
        async with self.lock:
            if step is RecoveryStep.STOP_DISCOVERY:
                await self._call_adapter("StopDiscovery")
            elif step is RecoveryStep.POWER_CYCLE:
                await self._set_powered(False)
                await asyncio.sleep(POWER_CYCLE_PAUSE_S)
                await self._set_powered(True)
        return step

    async def _set_powered(self, powered: bool) -> None:
        await self._call(
            Message(
                destination=BLUEZ,
                path=self.path,
                interface="org.freedesktop.DBus.Properties",
                member="Set",
                signature="ssv",
                body=["org.bluez.Adapter1", "Powered", Variant("b", powered)],
            )
        )

    async def _call_adapter(self, member: str) -> None:
        await self._call(
            Message(
                destination=BLUEZ, path=self.path, interface="org.bluez.Adapter1", member=member
            )
        )

    async def _call(self, message: Message) -> None:
        """One call to bluetoothd on a connection of its own; failures are logged, not raised."""
        try:
            bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        except (OSError, EOFError) as exc:
            log.warning("cannot reach bluetoothd on the system bus: %s", exc)
            return
        try:
            reply = await bus.call(message)
            if reply is not None and reply.message_type is MessageType.ERROR:
                log.info("%s.%s: %s %s", self.adapter, message.member, reply.error_name, reply.body)
        finally:
            bus.disconnect()


@dataclass(frozen=True, slots=True)
class SeenDevice:
    """A device seen in a scan, and the protocols it may speak (best first)."""

    address: str
    name: str | None
    rssi_dbm: int | None
    service_uuids: tuple[str, ...]
    candidates: tuple[Candidate, ...]


def seen_device(device: BLEDevice, advertisement: AdvertisementData) -> SeenDevice:
    name = advertisement.local_name or device.name
    return SeenDevice(
        address=device.address.upper(),
        name=name,
        rssi_dbm=advertisement.rssi,
        service_uuids=tuple(advertisement.service_uuids),
        candidates=tuple(recognise(name, advertisement.service_uuids)),
    )


async def scan(seconds: float, adapter: str = DEFAULT_ADAPTER) -> list[SeenDevice]:
    """Every device advertising during `seconds`, strongest signal first."""
    found = await BleakScanner.discover(
        timeout=seconds, return_adv=True, bluez={"adapter": adapter}
    )
    devices = [seen_device(device, adv) for device, adv in found.values()]
    return sorted(devices, key=lambda d: -(d.rssi_dbm if d.rssi_dbm is not None else -999))


async def find(
    address: str, timeout_s: float, adapter: str = DEFAULT_ADAPTER
) -> tuple[BLEDevice, AdvertisementData] | None:
    """The device with `address` and its advertisement, or None if not seen in `timeout_s`."""
    wanted = address.upper()
    async with BleakScanner(bluez={"adapter": adapter}) as scanner:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                async for device, advertisement in scanner.advertisement_data():
                    if device.address.upper() == wanted:
                        return device, advertisement
    return None


async def probe_characteristics(
    address: str, timeout_s: float, adapter: str = DEFAULT_ADAPTER
) -> list[Candidate]:
    """Connect to `address`, read its GATT table and recognise the protocol from it."""
    seen = await find(address, timeout_s, adapter)
    if seen is None:
        raise LinkError(FailureKind.NOT_FOUND, f"{address} is not advertising")
    device, advertisement = seen
    async with BleakClient(device, timeout=timeout_s) as client:
        uuids = [c.uuid for s in client.services for c in s.characteristics]
    name = advertisement.local_name or device.name
    return recognise(name, advertisement.service_uuids, uuids)


def streams_continuously(spec: ProtocolSpec) -> bool:
    """True for oximeter-like streams; thermometers and spot checks are quiet between uses."""
    return bool(spec.metrics & {Metric.SPO2, Metric.PULSE}) and spec.name != "plx-spot-check"


class BleLink:
    """Keeps one bound BLE device connected and its notifications flowing into a sink."""

    def __init__(
        self,
        status: LinkStatus,
        spec: ProtocolSpec,
        gate: AdapterGate,
        clock: Clock,
        timing: LinkTiming,
    ) -> None:
        self.status = status
        self.spec = spec
        self.gate = gate
        self.clock = clock
        self.timing = timing
        self.retry = Retry(timing.backoff_scale)
        self._pump = BytesPump(status.device_id, clock, status)
        self._lost = asyncio.Event()
        self._connections = 0
        self.failures: deque[tuple[FailureKind, float]] = deque(maxlen=32)  # (why, delay)

    @property
    def name(self) -> str:
        return f"{self.status.device_id} ({self.spec.name})"

    async def run(self, sink: BytesSink) -> None:
        """Connect, stream, reconnect; until cancelled."""
        await keep_linked(
            self.name, self._pump, sink, self.status, self.retry, self._attempt, self._failed
        )

    async def _failed(self, kind: FailureKind, message: str, delay_s: float) -> None:
        if kind in (FailureKind.ADAPTER_BUSY, FailureKind.ADAPTER_NOT_READY):
            await self.gate.on_adapter_error(message)
        self.failures.append((kind, delay_s))

    async def _attempt(self) -> tuple[FailureKind, str]:
        """One connection, from scan to its end; returns why it ended."""
        try:
            client = await self._connect()
        except (LinkError, *BLUE_Z_ERROR) as exc:
            return classify(exc), describe_error(exc)[1]
        try:
            kind, message = await self._stream(client)
        except (LinkError, *BLUE_Z_ERROR) as exc:
            kind, message = classify(exc), describe_error(exc)[1]
            if kind in (FailureKind.ADAPTER_BUSY, FailureKind.ADAPTER_NOT_READY):
                # Once connected, InProgress concerns one characteristic, not the adapter.
                kind = FailureKind.TRANSIENT
        finally:
            with contextlib.suppress(*BLUE_Z_ERROR):
                await client.disconnect()
        return kind, message

    async def _connect(self) -> BleakClient:
        """Scan for the device and connect, holding the adapter for both."""
        async with self.gate.lock:
            self.status.set(LinkState.SCANNING)
            seen = await find(self.status.address, self.timing.scan_timeout_s, self.gate.adapter)
            if seen is None:
                raise LinkError(
                    FailureKind.NOT_FOUND,
                    f"not advertising within {self.timing.scan_timeout_s:g} s: is it on and "
                    "in range?",
                )
            device, advertisement = seen
            self.status.rssi_dbm = advertisement.rssi
            self.status.set(LinkState.CONNECTING)
            self._lost.clear()
            client = await establish_connection(
                BleakClientWithServiceCache,
                device,
                self.status.device_id,
                disconnected_callback=lambda _client: self._lost.set(),
                max_attempts=CONNECT_ATTEMPTS,
            )
            self.gate.on_success()
        return client

    async def _stream(self, client: BleakClient) -> tuple[FailureKind, str]:
        """Subscribe, start, keep alive and watch the link; returns why it ended."""
        notify = self._notify_characteristics(client)
        for characteristic in notify:
            await client.start_notify(characteristic, self._on_notification)
        await self._write_all(client, self.spec.start_commands)
        await self._read_battery(client)
        self._connections += 1
        self.status.connected_since_s = self.clock.now_s()
        self.status.reconnects = self._connections - 1
        self.status.set(LinkState.CONNECTED)
        log.info("%s: connected, subscribed to %d characteristic(s)", self.name, len(notify))
        return await self._watch(client)

    def _notify_characteristics(self, client: BleakClient) -> list[BleakGATTCharacteristic]:
        found = []
        for uuid in self.spec.ble_notify_uuids:
            characteristic = client.services.get_characteristic(uuid)
            if characteristic is None:
                raise LinkError(
                    FailureKind.MISMATCH,
                    f"the device has no characteristic {uuid} of protocol {self.spec.name}: "
                    "bind it again with the right --protocol",
                )
            found.append(characteristic)
        return found

    def _on_notification(self, _characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
        self._pump.put(bytes(data))

    async def _write_all(self, client: BleakClient, commands: tuple[bytes, ...]) -> None:
        if not commands or self.spec.ble_write_uuid is None:
            return
        characteristic = client.services.get_characteristic(self.spec.ble_write_uuid)
        if characteristic is None:
            raise LinkError(
                FailureKind.MISMATCH,
                f"the device has no command characteristic {self.spec.ble_write_uuid}",
            )
        response = "write" in characteristic.properties
        for command in commands:
            await client.write_gatt_char(characteristic, command, response=response)

    async def _read_battery(self, client: BleakClient) -> None:
        characteristic = client.services.get_characteristic(BATTERY_LEVEL_UUID)
        if characteristic is None or "read" not in characteristic.properties:
            return
        value = await client.read_gatt_char(characteristic)
        if value:
            self.status.battery_percent = float(min(value[0], 100))

    async def _watch(self, client: BleakClient) -> tuple[FailureKind, str]:
        """Keep-alives, the silence watchdog, and waiting for the link to drop."""
        keepalive_s = self.timing.keepalive_interval_s or self.spec.keepalive_interval_s
        watch_silence = streams_continuously(self.spec)
        started = time.monotonic()
        bytes_at_start = self.status.bytes_received
        last_bytes, last_change = bytes_at_start, started
        next_keepalive = started + (keepalive_s or 0.0)
        while True:
            wait_s = WATCH_TICK_S
            if keepalive_s:
                wait_s = max(0.0, min(wait_s, next_keepalive - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), wait_s)
            now = time.monotonic()
            if self._lost.is_set() or not client.is_connected:
                return FailureKind.LINK_LOST, "link lost"
            if self.status.bytes_received != last_bytes:
                last_bytes, last_change = self.status.bytes_received, now
                if now - started > self.timing.silence_timeout_s:
                    self.retry.reset()  # a link that streamed a while is a healthy link
            if watch_silence and now - last_change > self.timing.silence_timeout_s:
                return FailureKind.SILENT, (
                    f"connected but silent for {self.timing.silence_timeout_s:g} s; reconnecting"
                )
            if keepalive_s and self.spec.keepalive_command and now >= next_keepalive:
                await self._write_all(client, (self.spec.keepalive_command,))
                next_keepalive = now + keepalive_s
