"""The PUBLISH properties `prepare` shares between messages go on the wire exactly as freshly
built ones would, and reach a subscriber through a real mosquitto."""

from __future__ import annotations

import time
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sync.delivery import EXPIRY_S, HISTORICAL_AFTER_S, HISTORICAL_PROPERTY, prepare
from sync.payload import OutboxPriority, OutboxRow
from tests.conftest import Broker

NOW_S = 1_800_000_000.0


def row(priority: OutboxPriority, late: bool) -> OutboxRow:
    created_s = NOW_S - (HISTORICAL_AFTER_S + 1 if late else 1)
    return OutboxRow(1, int(priority), "t/x", "m1", '{"kind":"x"}', created_s)


def fresh(priority: OutboxPriority, late: bool) -> bytes:
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if priority in EXPIRY_S:
        properties.MessageExpiryInterval = EXPIRY_S[priority]
    if late:
        properties.UserProperty = [HISTORICAL_PROPERTY]
    packed: bytes = properties.pack()  # type: ignore[no-untyped-call]
    return packed


@pytest.mark.parametrize("late", [False, True])
@pytest.mark.parametrize("priority", list(OutboxPriority))
def test_shared_properties_pack_like_freshly_built_ones(
    priority: OutboxPriority, late: bool
) -> None:
    _, properties = prepare(row(priority, late), NOW_S)
    if properties is None:
        assert priority not in EXPIRY_S and not late
        return
    for _ in range(2):  # packed once, the same every time
        assert properties.pack() == fresh(priority, late)
    assert prepare(row(priority, late), NOW_S)[1] is properties  # shared, not rebuilt


@pytest.mark.broker
def test_shared_properties_reach_a_subscriber(broker: Broker) -> None:
    received: list[Any] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_connect = lambda c, *_: c.subscribe("t/#", qos=1)
    client.on_subscribe = lambda c, *_: [
        c.publish("t/x", payload, qos=1, properties=properties)
        for payload, properties in (
            prepare(row(OutboxPriority.SUMMARY, late=True), NOW_S),
            prepare(row(OutboxPriority.SUMMARY, late=False), NOW_S),
        )
    ]
    client.on_message = lambda _c, _u, message: received.append(message.properties)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        deadline = time.monotonic() + 10
        while len(received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.disconnect()
        client.loop_stop()
    assert len(received) == 2
    late, fresh_one = received
    assert late.UserProperty == [HISTORICAL_PROPERTY]
    assert not hasattr(fresh_one, "UserProperty")
    expiry_s = EXPIRY_S[OutboxPriority.SUMMARY]
    assert all(0 < p.MessageExpiryInterval <= expiry_s for p in received)
