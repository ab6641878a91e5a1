"""Tools of the sync fault tests: a TCP fault proxy that can blackhole a link, and an MQTT
subscriber with a persistent session that keeps every message in arrival order."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.conftest import free_port

READ_SIZE_BYTES = 65536


class FaultProxy:
    """A loopback TCP proxy (`port` -> `target_port`) on its own event loop thread.

    `blackhole()` makes it behave like a link whose packets vanish: bytes in both directions
    are read and dropped, and a side's close is not passed on (no FIN, no RST), so neither
    end notices anything but silence. `forward()` passes bytes again (new connections work;
    a connection that lost bytes is useless, as after real loss)."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.forwarding = True
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)

    def blackhole(self) -> None:
        self.forwarding = False

    def forward(self) -> None:
        self.forwarding = True

    async def _serve(self) -> asyncio.Server:
        return await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(client_w)
        try:
            broker_r, broker_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            await self._close(client_w)
            return
        self._writers.add(broker_w)
        await asyncio.gather(
            self._pipe(client_r, client_w, broker_w), self._pipe(broker_r, broker_w, client_w)
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, own: asyncio.StreamWriter, peer: asyncio.StreamWriter
    ) -> None:
        """Copy reader -> peer while forwarding (drop while not); at EOF close our side, and
        the peer too unless the link is blackholed."""
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(READ_SIZE_BYTES):
                if self.forwarding and not peer.is_closing():
                    peer.write(data)
                    with contextlib.suppress(ConnectionError):
                        await peer.drain()
        await self._close(own)
        if self.forwarding:
            await self._close(peer)

    async def _close(self, writer: asyncio.StreamWriter) -> None:
        self._writers.discard(writer)
        if not writer.is_closing():
            writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def _shutdown(self) -> None:
        self._server.close()
        for writer in list(self._writers):
            await self._close(writer)
        await self._server.wait_closed()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


class PersistentSubscriber:
    """A QoS 1 subscriber whose session outlives broker restarts (clean_start false, session
    expiry), so the broker queues for it while it is cut off. Keeps (topic, payload) pairs
    in arrival order, duplicates included."""

    def __init__(self, port: int, topic: str, client_id: str) -> None:
        self.arrivals: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.reconnect_delay_set(1, 2)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, clean_start=False, properties=properties)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            self.close()
            raise RuntimeError("subscription not confirmed")

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.arrivals.append((message.topic, json.loads(message.payload)))

    def message_ids(self) -> list[str]:
        """The message ids received, in arrival order (a redelivery appears twice)."""
        with self._lock:
            return [str(body.get("message_id")) for _, body in self.arrivals]

    def wait_for_ids(self, wanted: set[str], timeout_s: float) -> set[str]:
        """Wait until every id in `wanted` arrived; the ones still missing."""
        deadline = time.monotonic() + timeout_s
        missing = wanted - set(self.message_ids())
        while missing and time.monotonic() < deadline:
            time.sleep(0.1)
            missing = wanted - set(self.message_ids())
        return missing

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
