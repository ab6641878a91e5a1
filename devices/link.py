"""What the BLE and serial transports share: their timing knobs, the state of one device link
(kept up to date by the transport, read by whoever reports it) and the bytes pump that hands
received bytes to the daemon in arrival order.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from devices.backoff import FailureKind, backoff_delay_s
from devices.clock import Clock

log = logging.getLogger(__name__)

BytesSink = Callable[[str, float, bytes], Awaitable[None]]
PUMP_QUEUE_CHUNKS = 10_000  # a burst larger than this means the daemon is stuck: drop, count


class LinkState(StrEnum):
    STARTING = "starting"
    SCANNING = "scanning"  # looking for the device's advertisements
    CONNECTING = "connecting"  # BLE connect and service discovery, or opening the port
    CONNECTED = "connected"  # subscribed / port open; data flows
    WAITING = "waiting"  # backing off after a failure
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class LinkTiming:
    """Timing of the transports. Defaults are for the field; tests shrink them."""

    silence_timeout_s: float = 15.0  # connected but no bytes for this long: reconnect
    scan_timeout_s: float = 10.0  # how long to look for a device before backing off
    backoff_scale: float = 1.0  # multiplies every backoff delay
    keepalive_interval_s: float | None = None  # None: the protocol's own interval
    serial_read_timeout_s: float = 0.2  # one blocking read (in a worker thread) at most


@dataclass(slots=True)
class LinkStatus:
    """The live state of one device link; `version` grows with every change."""

    device_id: str
    transport: str
    address: str
    protocol: str
    state: LinkState = LinkState.STARTING
    rssi_dbm: int | None = None
    battery_percent: float | None = None
    last_data_s: float | None = None
    connected_since_s: float | None = None
    last_error: str | None = None
    reconnects: int = 0
    bytes_received: int = 0
    version: int = 0

    def set(self, state: LinkState, error: str | None = None) -> None:
        self.state = state
        if error is not None:
            self.last_error = error
        self.version += 1

    def on_data(self, received_s: float, size: int) -> None:
        self.last_data_s = received_s
        self.bytes_received += size
        self.version += 1


@dataclass(slots=True)
class Retry:
    """Counts consecutive failures of one kind of trouble and draws the next delay."""

    scale: float = 1.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay_s(self, kind: FailureKind) -> float:
        self.attempt += 1
        return backoff_delay_s(kind, self.attempt, self.rng.uniform(-1.0, 1.0), self.scale)

    def reset(self) -> None:
        self.attempt = 0


class BytesPump:
    """Bytes from callbacks and threads, delivered to the sink in order on the event loop."""

    def __init__(self, device_id: str, clock: Clock, status: LinkStatus) -> None:
        self.device_id = device_id
        self.clock = clock
        self.status = status
        self.dropped_chunks = 0
        self._queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(PUMP_QUEUE_CHUNKS)

    def put(self, data: bytes) -> None:
        """Stamp `data` with the clock's time now and queue it (call on the event loop)."""
        received_s = self.clock.now_s()
        self.status.on_data(received_s, len(data))
        try:
            self._queue.put_nowait((received_s, bytes(data)))
        except asyncio.QueueFull:
            self.dropped_chunks += 1

    async def run(self, sink: BytesSink) -> None:
        while True:
            received_s, data = await self._queue.get()
            await sink(self.device_id, received_s, data)


Attempt = Callable[[], Awaitable[tuple[FailureKind, str]]]
FailureHook = Callable[[FailureKind, str, float], Awaitable[None]]


async def keep_linked(
    name: str,
    pump: BytesPump,
    sink: BytesSink,
    status: LinkStatus,
    retry: Retry,
    attempt: Attempt,
    on_failure: FailureHook | None = None,
) -> None:
    """Run `attempt` (one connection, from opening to its end) again and again, waiting the
    backoff of each failure's kind in between, with `pump` delivering bytes; until cancelled."""
    pumping = asyncio.create_task(pump.run(sink))
    try:
        while True:
            kind, message = await attempt()
            delay_s = retry.next_delay_s(kind)
            if on_failure is not None:
                await on_failure(kind, message, delay_s)
            log.warning("%s: %s; retrying in %.1f s", name, message, delay_s)
            status.set(LinkState.WAITING, f"{kind}: {message}")
            await asyncio.sleep(delay_s)
    finally:
        pumping.cancel()
        status.set(LinkState.STOPPED)
