"""The daemon's uplink task: what goes to the hospital besides alerts.

Every few seconds of wall time it looks at the daemon's clock (which runs faster in a
simulation) and, when due, checks the devices for silence and data gaps
(gateway/uplink_devices.py, priority STATUS) and summarises the minutes that are complete
(gateway/uplink_summaries.py, priority SUMMARY). Each step writes its outbox rows and its
progress in one transaction on the store's thread; the publisher sends them when it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable

from gateway.config import Config
from gateway.retention import StoreCaller
from gateway.uplink_devices import Topics, check_devices
from gateway.uplink_raw import queue_raw_answer
from gateway.uplink_summaries import summarise_due
from sync.payload import PayloadError
from sync.raw_request import parse_raw_request
from sync.records import Limits

log = logging.getLogger(__name__)

TICK_S = 2.0  # wall seconds between looks at the clock
DEVICE_CHECK_S = 30.0  # clock seconds between device checks
SETTLE_S = 10.0  # readings older than this (clock seconds) are all committed


def topics_of(config: Config) -> Topics:
    return Topics(config.mqtt.topic_prefix, config.gateway.site, config.gateway.id)


class Uplink:
    """The periodic producer of device records and summaries."""

    def __init__(
        self,
        worker: StoreCaller,
        config: Config,
        now_s: Callable[[], float],
        limits: Limits | None = None,
    ) -> None:
        self.worker = worker
        self.topics = topics_of(config)
        self.now_s = now_s
        self.limits = limits or Limits()
        self.settle_s = SETTLE_S + config.detector.lag_s + config.store.batch_interval_s
        self._next_device_check_s = 0.0

    async def tick(self) -> int:
        """Do what is due now; returns how many messages were queued."""
        now_s = self.now_s()
        queued = 0
        if now_s >= self._next_device_check_s:
            self._next_device_check_s = now_s + DEVICE_CHECK_S
            through_s = int(now_s - self.settle_s)
            queued += await self.worker.call(
                check_devices, self.worker.store, through_s, self.topics, self.limits
            )
        queued += await self.worker.call(
            summarise_due, self.worker.store, now_s - self.settle_s, self.topics
        )
        return queued

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until `stop` is set; a failing store is logged and tried again later."""
        while not stop.is_set():
            try:
                queued = await self.tick()
            except sqlite3.Error as exc:
                log.error("uplink records not written (%s); trying again shortly", exc)
            else:
                if queued:
                    log.info("queued %d status and summary messages", queued)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=TICK_S)


async def answer_raw_request(
    worker: StoreCaller, config: Config, topic: str, payload: bytes, now_s: float
) -> None:
    """Queue the raw readings a downlink request asks for; a malformed request, or one for
    another gateway, is logged and ignored."""
    try:
        request = parse_raw_request(payload)
    except PayloadError as exc:
        log.warning("ignoring a malformed raw-data request on %s: %s", topic, exc)
        return
    if request.gateway != config.gateway.id:
        log.warning("ignoring a raw-data request for gateway %s on %s", request.gateway, topic)
        return
    try:
        queued = await worker.call(
            queue_raw_answer, worker.store, request, topics_of(config), now_s
        )
    except sqlite3.Error as exc:
        log.error("cannot queue the raw data of request %s: %s", request.message_id, exc)
        return
    log.info(
        "raw-data request %s for patient %s: %d chunks queued",
        request.message_id,
        request.patient,
        queued,
    )
