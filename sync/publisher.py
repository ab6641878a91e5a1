"""Drain the outbox to the MQTT broker: QoS 1, a row is marked sent only after its PUBACK.

paho-mqtt runs its network loop in its own thread and reconnects by itself; this module is the
asyncio side: it publishes what the outbox holds while connected, most urgent first, keeps a
bounded window in flight, and hands PUBACKed ids back to the outbox. A message whose PUBACK
never comes (the link died) is published again later with the same message id, so the
hospital side de-duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from sync.broker_security import NO_SECURITY, BrokerSecurity
from sync.delivery import prepare
from sync.payload import GatewayState, OutboxPriority, OutboxRow

log = logging.getLogger(__name__)

RECONNECT_MIN_DELAY_S = 1
RECONNECT_MAX_DELAY_S = 30
INFLIGHT_TIMEOUT_S = 30.0
IDLE_POLL_S = 1.0
LOOP_STALL_S = 20.0  # below WatchdogSec (30 s): a stalled publisher is restarted
# paho keeps at most max_inflight on the wire and queues the rest in memory, sending the next
# from its own thread as each PUBACK arrives; handing it a few windows' worth saves a thread
# hand-off per message (mids are 16-bit: stay far below 65,535 handed over). Each hand-off
# is reserved with the outbox first, so a daily byte budget sees what is in flight.
HANDED_PER_INFLIGHT = 10
# Summaries and raw data fill paho's queue to a few in-flight windows only: a new alert is
# handed over at the next turn and waits behind at most BULK_WINDOWS x `max_inflight` bulk
# messages (100 with the defaults: under 2 s at the 60 msg/s of a poor mobile link).
BULK_PRIORITY = OutboxPriority.SUMMARY
BULK_WINDOWS = 5
# paho's network thread needs the GIL to read each PUBACK and send the next queued message; a
# long run of publish() calls on the event loop holds it off and the wire goes idle, so the
# loop yields the GIL (time.sleep(0), microseconds) every few hand-offs: bench_drain.py drains
# about 13 % faster with less CPU per message than without.
YIELD_GIL_EVERY = 8


class Outbox(Protocol):
    """What the publisher needs from the store (async: the store lives on its own thread)."""

    async def pending(self, limit: int) -> list[OutboxRow]:
        """Up to `limit` unsent rows, most urgent first, leaving out the reserved ones."""
        ...

    async def mark_sent(self, outbox_ids: Sequence[int]) -> None: ...

    def try_reserve(self, row: OutboxRow) -> bool:
        """Called before `row` is handed to the MQTT client; False: not now (a budget)."""
        ...

    def release(self, outbox_ids: Sequence[int]) -> None:
        """Hand-offs given up (refused, PUBACK overdue) that were reserved."""
        ...


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    host: str
    port: int
    client_id: str
    keepalive_s: int = 30
    max_inflight: int = 20
    security: BrokerSecurity = NO_SECURITY  # TLS and credentials (sync/broker_security.py)


@dataclass(frozen=True, slots=True)
class Presence:
    """The gateway's retained status topic (birth on connect, Last Will if the broker loses
    it, offline on a clean stop) and the downlink topics it listens to."""

    status_topic: str
    status_payload: Callable[[GatewayState, bool, float], str]  # (state, is the Will, time)
    now_s: Callable[[], float]  # the gateway's clock, for the status messages' event time
    downlink_topics: tuple[str, ...]
    on_downlink: Callable[[str, bytes], None]  # called on the event loop


@dataclass(slots=True)
class PublisherStats:
    connected: bool = False
    published: int = 0
    acknowledged: int = 0
    rejected: int = 0
    last_ack_s: float | None = None


class Publisher:
    """One MQTT connection that empties the outbox whenever the broker is reachable."""

    def __init__(
        self, settings: BrokerSettings, outbox: Outbox, presence: Presence | None = None
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.presence = presence
        self.stats = PublisherStats()
        self.wakeup = asyncio.Event()
        self._connected = asyncio.Event()
        self._inflight: dict[int, tuple[int, float]] = {}  # mid -> (outbox id, sent monotonic)
        self._acked: list[int] = []
        self._acks_lock = threading.Lock()  # PUBACKs gathered on paho's thread ...
        self._acks_arrived: list[tuple[int, ReasonCode]] = []
        self._acks_scheduled = False  # ... and taken to the event loop in one call
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_turn_monotonic_s = time.monotonic()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv5,
        )
        self._client.reconnect_delay_set(RECONNECT_MIN_DELAY_S, RECONNECT_MAX_DELAY_S)
        settings.security.apply(self._client)
        self._client.on_connect_fail = self._on_connect_fail
        self._client.max_inflight_messages_set(settings.max_inflight)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message
        self._client.on_pre_connect = self._on_pre_connect
        self._connect_s = 0.0  # the time of the current connection attempt

    # paho callbacks run on paho's thread: hand everything to the event loop.
    def _on_pre_connect(self, client: Any, _u: Any) -> None:
        """Before every (re)connect: a Last Will stamped with this connect's time, which the
        birth message repeats, so the hospital orders the two (the Will ranks after its birth)
        and a Will of this connection outranks every earlier birth. The watermark it carries
        is the newest the daemon knows of."""
        if self.presence is None:
            return
        self._connect_s = self.presence.now_s()
        will = self.presence.status_payload(GatewayState.OFFLINE, True, self._connect_s)
        client.will_set(self.presence.status_topic, will, qos=1, retain=True)

    def _on_connect(self, client: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            log.error(
                "the broker %s:%d refused the connection (%s): check mqtt.username,"
                " mqtt.password_file and the broker's ACL; alerts wait in the outbox",
                self.settings.host,
                self.settings.port,
                reason,
            )
        elif self.presence is not None:
            for topic in self.presence.downlink_topics:
                client.subscribe(topic, qos=1)
        self._call(self._set_connected, not reason.is_failure, str(reason))

    def _on_connect_fail(self, _c: Any, _u: Any) -> None:
        tls = " (TLS: is mqtt.tls_ca_file the CA of the broker's certificate?)"
        log.info(
            "cannot connect to the broker %s:%d%s",
            self.settings.host,
            self.settings.port,
            tls if self.settings.security.tls else "",
        )

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        if self.presence is not None:
            self._call(self.presence.on_downlink, message.topic, bytes(message.payload))

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self._call(self._set_connected, False, str(reason))

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        with self._acks_lock:  # one wake-up of the event loop for the PUBACKs until it runs
            self._acks_arrived.append((mid, reason))
            if self._acks_scheduled:
                return
            self._acks_scheduled = self._call(self._take_acks)

    def _take_acks(self) -> None:
        with self._acks_lock:
            arrived, self._acks_arrived = self._acks_arrived, []
            self._acks_scheduled = False
        for mid, reason in arrived:
            self._on_ack(mid, not reason.is_failure, reason)

    def _call(self, func: Any, *args: Any) -> bool:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(func, *args)
            return True
        return False

    def _set_connected(self, connected: bool, reason: str) -> None:
        was = self.stats.connected
        self.stats.connected = connected
        if connected:
            self._connected.set()
            log.info("connected to the broker %s:%d", self.settings.host, self.settings.port)
            self._publish_presence(GatewayState.ONLINE, self._connect_s)
        else:
            self._connected.clear()
            if was:
                log.warning("lost the broker (%s); alerts wait in the outbox", reason)
            else:
                log.info(
                    "broker %s:%d not reachable (%s)",
                    self.settings.host,
                    self.settings.port,
                    reason,
                )
        self.wakeup.set()

    def _on_ack(self, mid: int, accepted: bool, reason: object) -> None:
        entry = self._inflight.pop(mid, None)
        if entry is None:
            return
        if accepted:
            self._acked.append(entry[0])
            self.stats.acknowledged += 1
            self.stats.last_ack_s = time.time()
        else:
            self.stats.rejected += 1
            self.outbox.release([entry[0]])
            log.error("the broker refused outbox message %d: %s", entry[0], reason)
        self.wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set; the connection is kept up (and retried) meanwhile."""
        self._loop = asyncio.get_running_loop()
        self._client.connect_async(
            self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s
        )
        self._client.loop_start()
        try:
            while not stop.is_set():
                self.wakeup.clear()  # set again during the turn (acks, new rows): turn again
                self._last_turn_monotonic_s = time.monotonic()
                await self._flush_acked()
                if self._connected.is_set():
                    await self._publish_pending()
                self._expire_inflight()
                await self._wait(stop)
        finally:
            await self._flush_acked()

    def is_alive(self, now_monotonic_s: float) -> bool:
        """The publishing loop turned recently (connected or not: a dead link is not a hang)."""
        return now_monotonic_s - self._last_turn_monotonic_s < LOOP_STALL_S

    async def drain(self, timeout_s: float) -> int:
        """Hand over what the outbox holds now (one hand-off, if connected: e.g. what the
        last batch queued after `run` stopped), wait (up to `timeout_s`) for what is in
        flight to be acknowledged; returns how many outbox rows are still unacknowledged."""
        deadline = time.monotonic() + timeout_s
        await self._flush_acked()
        if self._connected.is_set():
            await self._publish_pending()
        while self._inflight and time.monotonic() < deadline and self._connected.is_set():
            self.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout=0.1)
        await self._flush_acked()
        return len(self._inflight)

    def close(self) -> None:
        """Say "offline" (retained; no Last Will then) and disconnect."""
        if self._connected.is_set():
            info = self._publish_presence(GatewayState.OFFLINE)
            if info is not None:
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(timeout=2.0)
        self._client.disconnect()
        self._client.loop_stop()

    def _publish_presence(
        self, state: GatewayState, event_s: float | None = None
    ) -> mqtt.MQTTMessageInfo | None:
        """The birth (at the connect's time) or a clean stop's offline (now)."""
        if self.presence is None:
            return None
        at_s = self.presence.now_s() if event_s is None else event_s
        payload = self.presence.status_payload(state, False, at_s)
        return self._client.publish(self.presence.status_topic, payload, qos=1, retain=True)

    async def _wait(self, stop: asyncio.Event) -> None:
        if self.wakeup.is_set():
            return
        waiters = [asyncio.ensure_future(self.wakeup.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=IDLE_POLL_S, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _flush_acked(self) -> None:
        if self._acked:
            acked, self._acked = self._acked, []
            await self.outbox.mark_sent(acked)

    async def _publish_pending(self) -> None:
        room = self.settings.max_inflight * HANDED_PER_INFLIGHT - len(self._inflight)
        if room <= 0:
            return
        busy = {outbox_id for outbox_id, _ in self._inflight.values()} | set(self._acked)
        rows = await self.outbox.pending(room)  # reserved rows (the busy ones) left out
        for row in rows:
            if row.id in busy:
                continue
            if room <= 0 or not self._connected.is_set():
                break
            bulk_room = self.settings.max_inflight * BULK_WINDOWS - len(self._inflight)
            if row.priority >= BULK_PRIORITY and bulk_room <= 0:
                break  # rows come most urgent first: only bulk rows follow
            if not self.outbox.try_reserve(row):
                break  # the daily byte budget is used up (with what is in flight)
            payload, properties = prepare(row, time.time())  # historical flag, expiry
            info = self._client.publish(row.topic, payload, qos=1, properties=properties)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                self.outbox.release([row.id])
                log.info("publish deferred (%s)", mqtt.error_string(info.rc))
                break
            self._inflight[info.mid] = (row.id, time.monotonic())
            self.stats.published += 1
            room -= 1
            if self.stats.published % YIELD_GIL_EVERY == 0:
                time.sleep(0)  # not a wait: lets paho's thread run (see YIELD_GIL_EVERY)

    def _expire_inflight(self) -> None:
        """Forget messages whose PUBACK is long overdue, so they are published again."""
        now = time.monotonic()
        for mid, (outbox_id, sent) in list(self._inflight.items()):
            if now - sent > INFLIGHT_TIMEOUT_S:
                del self._inflight[mid]
                self.outbox.release([outbox_id])
                log.info("no PUBACK for outbox message %d; it will be sent again", outbox_id)
