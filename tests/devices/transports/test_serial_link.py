"""SerialLink with real pyserial on ptys, against simulators that speak the real bytes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import serial

from devices.clock import WallClock
from devices.link import LinkState, LinkStatus, LinkTiming
from devices.protocols.catalog import get_protocol
from devices.protocols.oximeter_contec_v7 import (
    CMD_INFORM_CONNECTED,
    CMD_START_REALTIME,
    START_REALTIME_COMMAND,
)
from devices.protocols.reading import Metric
from devices.serial_port import SerialLink, SerialPortSpec
from tests.devices.transports.pty_devices import (
    ContecV5Device,
    ContecV7Device,
    MasimoDevice,
    PtyDevice,
    steady,
)

pytestmark = pytest.mark.usefixtures("no_blocking_calls")
TIMING = LinkTiming(
    silence_timeout_s=1.0, backoff_scale=0.2, keepalive_interval_s=0.3, serial_read_timeout_s=0.2
)


@dataclass
class Received:
    chunks: list[tuple[float, bytes]] = field(default_factory=list)

    async def sink(self, _device_id: str, received_s: float, data: bytes) -> None:
        self.chunks.append((received_s, data))

    def values(self, protocol: str, metric: Metric) -> list[float]:
        decoder = get_protocol(protocol).new_decoder()
        readings = [r for _, chunk in self.chunks for r in decoder.feed(chunk)]
        return [r.value for r in readings if r.metric is metric and r.value is not None]


@contextlib.contextmanager
def plugged(device: PtyDevice) -> Iterator[PtyDevice]:
    device.plug()
    try:
        yield device
    finally:
        device.unplug()


@contextlib.asynccontextmanager
async def running(
    device_id: str, protocol: str, port: Path, received: Received
) -> AsyncIterator[SerialLink]:
    status = LinkStatus(device_id, "serial", str(port), protocol)
    link = SerialLink(
        status,
        SerialPortSpec(device_id, protocol, str(port)),
        get_protocol(protocol),
        WallClock(),
        TIMING,
    )
    task = asyncio.create_task(link.run(received.sink))
    try:
        yield link
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_contec_v7_streams_while_keepalives_are_sent(tmp_path: Path) -> None:
    port = tmp_path / "ttyCMS50"
    received = Received()
    # The simulated oximeter stops after 1 s without a keep-alive; the link sends one every
    # 0.3 s, so 3 s later it must still be streaming.
    with plugged(ContecV7Device(port, steady(95, 66), keepalive_timeout_s=1.0)) as device:
        async with running("cms50-v7", "contec-v7", port, received) as link:
            await asyncio.sleep(3.0)
            late = [t for t, _ in received.chunks if t > received.chunks[0][0] + 2.0]
            assert link.status.state is LinkState.CONNECTED
    assert isinstance(device, ContecV7Device)
    assert device.commands[0] == CMD_START_REALTIME
    assert device.commands.count(CMD_INFORM_CONNECTED) >= 6
    assert device.stopped_for_silence == 0
    assert late, "no data in the last second: the keep-alive did not keep the device going"
    spo2 = received.values("contec-v7", Metric.SPO2)
    assert len(spo2) > 100  # 60 packets/s for about 3 s
    assert set(spo2) == {95.0}
    assert set(received.values("contec-v7", Metric.PI)) == {3.1}


def test_the_v7_simulator_goes_quiet_without_keepalives(tmp_path: Path) -> None:
    """The check above can fail: without keep-alives the simulated device stops."""
    port = tmp_path / "ttyCMS50"
    device = ContecV7Device(port, steady(), keepalive_timeout_s=0.5)
    with plugged(device), serial.Serial(str(port), 115200, timeout=0.2) as host:
        host.write(START_REALTIME_COMMAND)
        first = host.read(90)
        time.sleep(1.0)
        host.reset_input_buffer()
        later = host.read(90)
    assert len(first) == 90
    assert later == b""
    assert device.stopped_for_silence == 1


async def test_contec_v5_at_19200_8o1(tmp_path: Path) -> None:
    port = tmp_path / "ttyUSB0"
    received = Received()
    with plugged(ContecV5Device(port, steady(93, 88))):
        async with running("cms50-v5", "contec-v5", port, received) as link:
            await asyncio.sleep(1.5)
    assert link.settings.parity == "O" and link.settings.baudrate == 19200
    spo2 = received.values("contec-v5", Metric.SPO2)
    assert len(spo2) > 40
    assert set(spo2) == {93.0}
    assert set(received.values("contec-v5", Metric.PULSE)) == {88.0}


async def test_masimo_ascii_lines_at_9600(tmp_path: Path) -> None:
    port = tmp_path / "ttyRad8"
    received = Received()
    with plugged(MasimoDevice(port, steady(91, 101), speed=4)):
        async with running("rad8", "masimo-ascii", port, received):
            await asyncio.sleep(1.6)
    assert len(received.values("masimo-ascii", Metric.SPO2)) >= 4
    assert set(received.values("masimo-ascii", Metric.SPO2)) == {91.0}
    assert set(received.values("masimo-ascii", Metric.PI)) == {2.5}


async def test_unplugged_port_is_reopened_when_the_cable_comes_back(tmp_path: Path) -> None:
    port = tmp_path / "ttyUSB0"
    received = Received()
    device = ContecV7Device(port, steady(96, 70), keepalive_timeout_s=1.0)
    device.plug()
    try:
        async with running("cms50-v7", "contec-v7", port, received) as link:
            await asyncio.sleep(1.0)
            before = len(received.chunks)
            device.unplug()
            await asyncio.sleep(1.0)
            assert link.status.state is LinkState.WAITING
            assert link.status.last_error is not None
            unplugged_error = link.status.last_error
            during = len(received.chunks)
            device.plug()  # a new pty behind the same path
            await asyncio.sleep(1.5)
            assert link.status.state is LinkState.CONNECTED
            assert link.status.reconnects == 1
    finally:
        device.unplug()
    assert before > 0
    assert len(received.chunks) > during  # data again after the replug
    # Start command sent again on the new port: the V7 device is silent without it.
    assert device.commands.count(CMD_START_REALTIME) == 2
    assert "port" in unplugged_error


@pytest.mark.parametrize("protocol", ["contec-v5", "contec-v7", "masimo-ascii", "nonin-format8"])
def test_line_settings_come_from_the_protocol(protocol: str) -> None:
    spec = get_protocol(protocol)
    assert spec.serial is not None
    status = LinkStatus("d", "serial", "/dev/null", protocol)
    link = SerialLink(status, SerialPortSpec("d", protocol, "/dev/null"), spec, WallClock(), TIMING)
    assert link.settings == spec.serial
    faster = SerialLink(
        status,
        SerialPortSpec("d", protocol, "/dev/null", baudrate=57600),
        spec,
        WallClock(),
        TIMING,
    )
    assert faster.settings.baudrate == 57600
    assert faster.settings.parity == spec.serial.parity
