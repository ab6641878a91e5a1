"""The daemon's device sources: serial devices from the config, BLE devices from the bindings.

`DeviceSources.prepare()` registers the configured serial devices and returns the coroutines
the daemon runs as tasks:
  - one `SerialLink` per `[[serial]]` device;
  - a BLE supervisor that starts a `BleLink` for every BLE device bound to a patient, and
    stops it when the device is unbound (checked every few seconds, so `pulsegate devices
    bind` takes effect without a restart). All BLE links share one `AdapterGate`;
  - a status writer that puts every link's status into the store's `device_status` table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from devices.ble import AdapterGate, BleLink
from devices.clock import Clock
from devices.link import LinkState, LinkStatus, LinkTiming
from devices.protocols.catalog import UnknownProtocolError, get_protocol
from devices.serial_port import SerialLink
from gateway.config import Config
from gateway.daemon import BytesSink, DeviceSource, StoreWorker
from gateway.device_store import BLE, SERIAL, bound_devices, write_status
from gateway.ingest import Ingest

log = logging.getLogger(__name__)
T = TypeVar("T")
BINDINGS_POLL_S = 3.0
STATUS_WRITE_INTERVAL_S = 2.0  # state changes reach the store this fast
DATA_STATUS_INTERVAL_S = 30.0  # "last data" times only this often (each write is an fsync)
RESTART_AFTER_CRASH_S = 5.0
LinkRun = Callable[[BytesSink], Coroutine[Any, Any, None]]


def supervised(name: str, run: LinkRun) -> LinkRun:
    """`run`, restarted after an unexpected error instead of dying with the daemon unaware."""

    async def supervise(sink: BytesSink) -> None:
        while True:
            try:
                await run(sink)
                return
            except Exception:  # task-supervisor boundary: one device must not stop the others
                log.exception("%s: link failed unexpectedly; restarting it", name)
            await asyncio.sleep(RESTART_AFTER_CRASH_S)

    return supervise


class DeviceSources:
    """Builds the daemon's sources and keeps the status of every device link."""

    def __init__(
        self,
        config: Config,
        worker: StoreWorker,
        ingest: Ingest,
        clock: Clock,
        timing: LinkTiming | None = None,
    ) -> None:
        self.config = config
        self.worker = worker
        self.ingest = ingest
        self.clock = clock
        self.timing = timing or LinkTiming(
            silence_timeout_s=config.ble.silence_timeout_s,
            scan_timeout_s=config.ble.scan_timeout_s,
        )
        self.gate = AdapterGate(config.ble.adapter)
        self.statuses: dict[str, LinkStatus] = {}
        self._ble_links: dict[str, tuple[str, asyncio.Task[None]]] = {}

    def prepare(self) -> list[DeviceSource]:
        """Register the configured serial devices (before the daemon starts); the sources."""
        store = self.worker.store
        now_s = time.time()
        sources: list[DeviceSource] = []
        for port_spec in self.config.serial:
            store.ensure_device(port_spec.device_id, port_spec.protocol, SERIAL, now_s)
            self.ingest.add_device(port_spec.device_id, port_spec.protocol)
            status = LinkStatus(
                port_spec.device_id, SERIAL, port_spec.describe(), port_spec.protocol
            )
            self.statuses[port_spec.device_id] = status
            link = SerialLink(
                status, port_spec, get_protocol(port_spec.protocol), self.clock, self.timing
            )
            sources.append(supervised(port_spec.device_id, link.run))
        if not self.config.serial and not bound_devices(store, BLE):
            log.warning(
                "no devices yet: bind a BLE device with `pulsegate devices bind`, or add "
                "[[serial]] devices to the configuration (or use --simulate)"
            )
        sources.extend((self.supervise_ble, self.write_statuses))
        return sources

    async def _store(self, func: Callable[..., T], *args: Any) -> T | None:
        try:
            return await self.worker.call(func, self.worker.store, *args)
        except sqlite3.Error as exc:
            log.error("device status: the store refused %s: %s", func.__name__, exc)
            return None

    async def supervise_ble(self, sink: BytesSink) -> None:
        """Keep one BleLink running per bound BLE device, until cancelled."""
        try:
            while True:
                bound = await self._store(bound_devices, BLE)
                if bound is not None:
                    self._update_ble_links(bound, sink)
                await asyncio.sleep(BINDINGS_POLL_S)
        finally:
            tasks = [task for _, task in self._ble_links.values()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _update_ble_links(self, bound: dict[str, str], sink: BytesSink) -> None:
        for device_id, (protocol, task) in list(self._ble_links.items()):
            if bound.get(device_id) != protocol or task.done():
                if not task.done():
                    log.info("%s: unbound (or its protocol changed); disconnecting", device_id)
                task.cancel()
                del self._ble_links[device_id]
        for device_id, protocol in bound.items():
            if device_id in self._ble_links:
                continue
            try:
                spec = get_protocol(protocol)
            except UnknownProtocolError as exc:
                log.error("%s: %s; bind it again with --protocol", device_id, exc)
                continue
            self.ingest.add_device(device_id, protocol)
            status = LinkStatus(device_id, BLE, device_id, protocol)
            self.statuses[device_id] = status
            link = BleLink(status, spec, self.gate, self.clock, self.timing)
            task = asyncio.create_task(
                supervised(device_id, link.run)(sink), name=f"ble {device_id}"
            )
            self._ble_links[device_id] = (protocol, task)

    async def write_statuses(self, _sink: BytesSink) -> None:
        """Write changed link statuses to the store every few seconds; all of them at the end."""
        written: dict[str, tuple[int, LinkState]] = {}
        last_full_s = time.monotonic()
        try:
            while True:
                await asyncio.sleep(STATUS_WRITE_INTERVAL_S)
                full = time.monotonic() - last_full_s >= DATA_STATUS_INTERVAL_S
                changed = [
                    s
                    for s in self.statuses.values()
                    if (written.get(s.device_id, (-1, None))[1] != s.state)
                    or (full and written[s.device_id][0] != s.version)
                ]
                if full:
                    last_full_s = time.monotonic()
                if changed and await self._store(write_status, changed, time.time()) is not None:
                    written.update({s.device_id: (s.version, s.state) for s in changed})
        finally:
            # The daemon is stopping: every link is about to stop, whatever order tasks end in.
            for status in self.statuses.values():
                status.set(LinkState.STOPPED)
            with contextlib.suppress(asyncio.CancelledError):
                await self._store(write_status, list(self.statuses.values()), time.time())


def build_sources(
    config: Config, worker: StoreWorker, ingest: Ingest, clock: Clock
) -> list[DeviceSource]:
    """The daemon's sources for the real devices of `config` and the store's bindings."""
    return DeviceSources(config, worker, ingest, clock).prepare()
