"""Real, unmodified bleak and bleak-retry-connector against a fake bluetoothd on a private
D-Bus: scanning, recognition, notifications, start and keep-alive commands, and the faults a
home oximeter really shows (link loss, silence, failing connects, a stuck adapter)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from devices.backoff import FailureKind, RecoveryStep
from devices.ble import AdapterGate, BleLink, probe_characteristics, scan
from devices.clock import WallClock
from devices.link import LinkState, LinkStatus, LinkTiming
from devices.protocols.catalog import get_protocol
from devices.protocols.oximeter_contec_hid import (
    BLE_NOTIFY_UUID as CONTEC_NOTIFY_UUID,
)
from devices.protocols.oximeter_contec_hid import (
    BLE_WRITE_UUID as CONTEC_WRITE_UUID,
)
from devices.protocols.oximeter_contec_hid import (
    KEEPALIVE_COMMAND,
    START_COMMANDS,
)
from devices.protocols.oximeter_plx import CONTINUOUS_UUID
from devices.protocols.reading import Metric
from devices.recognise import best_protocol
from tests.devices.transports.ble_fixtures import (
    CONTEC_ADDRESS,
    OTHER_ADDRESS,
    PLX_ADDRESS,
    PLX_BATTERY_PERCENT,
    Streamer,
    contec_bt,
    contec_payload,
    other_device,
    plx_oximeter,
    plx_payload,
    streaming,
)
from tests.devices.transports.fake_bluez import FakeBlueZ, FakePeripheral

pytestmark = pytest.mark.usefixtures("no_blocking_calls")
TIMING = LinkTiming(
    silence_timeout_s=1.0, scan_timeout_s=2.0, backoff_scale=0.2, keepalive_interval_s=0.3
)


@dataclass
class Received:
    chunks: list[bytes] = field(default_factory=list)

    async def sink(self, _device_id: str, _received_s: float, data: bytes) -> None:
        self.chunks.append(data)

    def values(self, protocol: str, metric: Metric) -> list[float]:
        decoder = get_protocol(protocol).new_decoder()
        readings = [r for chunk in self.chunks for r in decoder.feed(chunk)]
        return [r.value for r in readings if r.metric is metric and r.value is not None]


@contextlib.asynccontextmanager
async def running(
    peripheral: FakePeripheral, protocol: str, received: Received, timing: LinkTiming = TIMING
) -> AsyncIterator[BleLink]:
    status = LinkStatus(peripheral.address, "ble", peripheral.address, protocol)
    link = BleLink(status, get_protocol(protocol), AdapterGate(), WallClock(), timing)
    task = asyncio.create_task(link.run(received.sink))
    try:
        yield link
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_for(condition: object, timeout_s: float = 5.0) -> None:
    assert callable(condition)
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.05)


async def test_scan_recognises_a_plx_and_a_proprietary_oximeter(bluez: FakeBlueZ) -> None:
    bluez.add(plx_oximeter())
    bluez.add(contec_bt())
    bluez.add(other_device())
    bluez.add(FakePeripheral("C0:11:22:33:44:09", None))  # a nameless beacon
    seen = {device.address: device for device in await scan(1.0)}

    assert set(seen) == {PLX_ADDRESS, CONTEC_ADDRESS, OTHER_ADDRESS, "C0:11:22:33:44:09"}
    plx = seen[PLX_ADDRESS]
    assert plx.name == "OxiPLX 3150" and plx.rssi_dbm is not None
    # The advertisement says "Pulse Oximeter service": continuous or spot-check, not which.
    assert [c.protocol for c in plx.candidates] == ["plx-continuous", "plx-spot-check"]
    assert best_protocol(list(plx.candidates)) is None
    # The CMS50D-BT advertises no service at all: its name tells.
    assert best_protocol(list(seen[CONTEC_ADDRESS].candidates)) == "contec-hid"
    assert best_protocol(list(seen[OTHER_ADDRESS].candidates)) == "hrs"
    assert seen["C0:11:22:33:44:09"].candidates == ()

    # After a connection the GATT table settles it.
    candidates = await probe_characteristics(PLX_ADDRESS, 2.0)
    assert best_protocol(candidates) == "plx-continuous"
    assert bluez.calls_to("Connect", PLX_ADDRESS)


async def test_link_loss_reconnects_and_subscribes_again(bluez: FakeBlueZ) -> None:
    peripheral = bluez.add(plx_oximeter())
    received = Received()
    streamer = Streamer(bluez, PLX_ADDRESS, CONTINUOUS_UUID, plx_payload(lambda _t: (96, 71)))
    async with streaming(streamer), running(peripheral, "plx-continuous", received) as link:
        await wait_for(lambda: len(received.chunks) >= 5)
        assert link.status.state is LinkState.CONNECTED
        assert link.status.battery_percent == PLX_BATTERY_PERCENT
        assert link.status.rssi_dbm is not None
        bluez.drop_link(PLX_ADDRESS)  # walked out of range
        before = len(received.chunks)
        await wait_for(lambda: len(received.chunks) >= before + 5)
        assert link.status.reconnects == 1
    assert len(bluez.calls_to("Connect", PLX_ADDRESS)) == 2
    assert len(bluez.calls_to("StartNotify", CONTINUOUS_UUID)) == 2
    assert link.failures[0][0] is FailureKind.LINK_LOST
    assert set(received.values("plx-continuous", Metric.SPO2)) == {96.0}


async def test_a_silent_device_is_disconnected_and_reconnected(bluez: FakeBlueZ) -> None:
    peripheral = bluez.add(plx_oximeter())
    received = Received()
    streamer = Streamer(bluez, PLX_ADDRESS, CONTINUOUS_UUID, plx_payload(lambda _t: (97, 60)))
    async with streaming(streamer), running(peripheral, "plx-continuous", received) as link:
        await wait_for(lambda: len(received.chunks) >= 3)
        streamer.silent = True  # still connected, nothing sent (a hung sensor)
        await wait_for(lambda: len(bluez.calls_to("Disconnect", PLX_ADDRESS)) >= 1, 4.0)
        streamer.silent = False
        before = len(received.chunks)
        await wait_for(lambda: len(received.chunks) >= before + 3)
    assert link.failures[0][0] is FailureKind.SILENT
    assert len(bluez.calls_to("Connect", PLX_ADDRESS)) >= 2
    assert len(bluez.calls_to("StartNotify", CONTINUOUS_UUID)) >= 2


async def test_failing_connects_back_off_and_then_connect(bluez: FakeBlueZ) -> None:
    peripheral = bluez.add(plx_oximeter())
    # Six refused connects: bleak-retry-connector tries twice per attempt of ours.
    peripheral.connect_errors = [("org.bluez.Error.Failed", "le-connection-abort-by-remote")] * 6
    received = Received()
    streamer = Streamer(bluez, PLX_ADDRESS, CONTINUOUS_UUID, plx_payload(lambda _t: (95, 80)))
    async with streaming(streamer), running(peripheral, "plx-continuous", received) as link:
        await wait_for(lambda: len(received.chunks) >= 3, 10.0)
    kinds = [kind for kind, _ in link.failures]
    delays = [delay for _, delay in link.failures]
    assert kinds == [FailureKind.TRANSIENT] * 3
    # TRANSIENT backoff 1 s, 2 s, 4 s (x0.2 in this test), each +-20 % jitter.
    for delay_s, nominal_s in zip(delays, (0.2, 0.4, 0.8), strict=True):
        assert 0.8 * nominal_s <= delay_s <= 1.2 * nominal_s
    assert len(bluez.calls_to("Connect", PLX_ADDRESS)) == 7
    assert "le-connection-abort-by-remote" in (link.status.last_error or "")


async def test_in_progress_errors_walk_the_adapter_recovery_ladder(bluez: FakeBlueZ) -> None:
    peripheral = bluez.add(plx_oximeter())
    bluez.stuck_in_progress = True  # bluetoothd answers InProgress until power-cycled
    received = Received()
    streamer = Streamer(bluez, PLX_ADDRESS, CONTINUOUS_UUID, plx_payload(lambda _t: (94, 75)))
    timing = LinkTiming(silence_timeout_s=1.0, scan_timeout_s=2.0, backoff_scale=0.1)
    async with streaming(streamer), running(peripheral, "plx-continuous", received, timing) as link:
        await wait_for(lambda: len(received.chunks) >= 3, 10.0)
    assert [kind for kind, _ in link.failures] == [FailureKind.ADAPTER_BUSY] * 3
    assert link.gate.steps_taken == [
        RecoveryStep.WAIT,
        RecoveryStep.STOP_DISCOVERY,
        RecoveryStep.POWER_CYCLE,
    ]
    assert [detail for _, detail in bluez.calls_to("Powered")] == ["False", "True"]
    assert link.gate.consecutive_errors == 0  # reset by the successful connect


async def test_a_powered_off_adapter_is_powered_on_by_the_ladder(bluez: FakeBlueZ) -> None:
    peripheral = bluez.add(plx_oximeter())
    bluez.adapter.powered = False
    received = Received()
    streamer = Streamer(bluez, PLX_ADDRESS, CONTINUOUS_UUID, plx_payload(lambda _t: (94, 75)))
    timing = LinkTiming(silence_timeout_s=1.0, scan_timeout_s=2.0, backoff_scale=0.05)
    async with streaming(streamer), running(peripheral, "plx-continuous", received, timing) as link:
        await wait_for(lambda: len(received.chunks) >= 3, 12.0)
    assert set(kind for kind, _ in link.failures) == {FailureKind.ADAPTER_NOT_READY}
    assert link.gate.steps_taken[-1] is RecoveryStep.POWER_CYCLE
    assert bluez.adapter.powered


async def test_start_and_keepalive_commands_are_written_on_every_connection(
    bluez: FakeBlueZ,
) -> None:
    peripheral = bluez.add(contec_bt())
    received = Received()
    streamer = Streamer(
        bluez, CONTEC_ADDRESS, CONTEC_NOTIFY_UUID, contec_payload(peripheral, 92, 84), 0.1
    )
    async with streaming(streamer), running(peripheral, "contec-hid", received):
        await wait_for(lambda: len(received.chunks) >= 3)
        await asyncio.sleep(1.0)  # three keep-alive periods
        first_connection = list(peripheral.writes)
        peripheral.writes.clear()  # the next connection must start the device again
        bluez.drop_link(CONTEC_ADDRESS)
        before = len(received.chunks)
        await wait_for(lambda: len(received.chunks) >= before + 3)
    commands = [data for uuid, data in first_connection if uuid == CONTEC_WRITE_UUID]
    assert tuple(commands[: len(START_COMMANDS)]) == START_COMMANDS
    assert commands[len(START_COMMANDS) :].count(KEEPALIVE_COMMAND) >= 3
    assert tuple(data for _, data in peripheral.writes[: len(START_COMMANDS)]) == START_COMMANDS
    assert set(received.values("contec-hid", Metric.SPO2)) == {92.0}
    assert set(received.values("contec-hid", Metric.PULSE)) == {84.0}
