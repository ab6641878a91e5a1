"""gateway.sources: BLE links follow the bindings; a link that crashes is restarted."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from alerts.rules import Profile, Tier
from devices.clock import WallClock
from devices.link import LinkState, LinkTiming
from devices.protocols.oximeter_plx import CONTINUOUS_UUID
from gateway import sources as sources_module
from gateway.config import parse_config
from gateway.daemon import StoreWorker
from gateway.device_store import unbind
from gateway.ingest import Ingest
from gateway.sources import DeviceSources, supervised
from gateway.store import Patient, Store
from tests.devices.transports.ble_fixtures import (
    PLX_ADDRESS,
    Streamer,
    plx_oximeter,
    plx_payload,
    streaming,
)
from tests.devices.transports.fake_bluez import FakeBlueZ
from tests.devices.transports.pty_devices import steady


async def test_links_follow_bind_and_unbind(
    tmp_path: Path, bluez: FakeBlueZ, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources_module, "BINDINGS_POLL_S", 0.2)
    config = parse_config({"gateway": {"data_dir": str(tmp_path)}})
    store = Store.open(config.database_path, "gw")
    store.add_patient(Patient("p-1", Tier.GREEN, Profile.DEFAULT), 0.0)
    worker, ingest = StoreWorker(store), Ingest()
    timing = LinkTiming(silence_timeout_s=2.0, scan_timeout_s=2.0, backoff_scale=0.2)
    device_sources = DeviceSources(config, worker, ingest, WallClock(), timing)
    received: list[bytes] = []

    async def sink(_device_id: str, _received_s: float, data: bytes) -> None:
        received.append(data)

    bluez.add(plx_oximeter())
    streamer = Streamer(bluez, PLX_ADDRESS, CONTINUOUS_UUID, plx_payload(steady()), 0.1)
    async with streaming(streamer):
        supervisor = asyncio.create_task(device_sources.supervise_ble(sink))
        try:
            await asyncio.sleep(0.5)
            assert bluez.calls_to("Connect") == []  # nothing bound: the radio is left alone
            await worker.call(store.ensure_device, PLX_ADDRESS, "plx-continuous", "ble", 1.0)
            await worker.call(store.bind, PLX_ADDRESS, "p-1", 1.0)
            async with asyncio.timeout(5):
                while len(received) < 3:
                    await asyncio.sleep(0.05)
            assert PLX_ADDRESS in ingest.devices
            await worker.call(unbind, store, PLX_ADDRESS, 2.0)
            async with asyncio.timeout(5):
                while bluez.is_connected(PLX_ADDRESS):
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.1)
            assert device_sources.statuses[PLX_ADDRESS].state is LinkState.STOPPED
        finally:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
            worker.shutdown()
            store.close()
    assert len(bluez.calls_to("Connect", PLX_ADDRESS)) == 1


async def test_a_crashed_link_is_restarted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources_module, "RESTART_AFTER_CRASH_S", 0.01)
    runs: list[int] = []

    async def flaky(_sink: object) -> None:
        runs.append(1)
        if len(runs) < 3:
            raise KeyError("org.bluez.GattService1")  # bleak's error on a services race
        await asyncio.sleep(3600)

    async def sink(_device_id: str, _received_s: float, _data: bytes) -> None:
        return None

    task = asyncio.create_task(supervised("dev", flaky)(sink))
    await asyncio.sleep(0.2)
    assert len(runs) == 3 and not task.done()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
