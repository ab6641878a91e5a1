"""The township receiver (`pulsegate hub run`): MQTT in, the hub database out, acks down.

Subscriptions (MQTT v5):
- `$share/<group>/<prefix>/+/+/alerts`, QoS 1: a shared subscription, so the broker hands each
  alert event to ONE of the hub processes in the group; they scale out without talking to
  each other, and write to one database that de-duplicates by message id.
- `<prefix>/+/+/status`, QoS 1, not shared: status messages are retained, and brokers do not
  replay retained messages to shared subscriptions; every hub gets them (stored once).
- `$share/<group>/<prefix>/+/+/devices`, `.../summaries`, `.../raw`, QoS 1, shared: device
  records, data gaps, per-minute summaries and answers to raw-data requests
  (sync/hub_intake.py), stored once each.

A message is acknowledged to the broker (PUBACK, manual) only once it is committed, so a hub
killed or a database lost between the two gets it again. The session is persistent
(clean_start false, a week's expiry): while a hub is down, the broker queues for it.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from sync.broker_security import NO_SECURITY, BrokerSecurity
from sync.hub_intake import DATA_LEAVES, handle_data_message
from sync.hub_messages import parse_alert_event, parse_status
from sync.hub_raw_requests import send_pending_raw_requests
from sync.hub_settings import handle_settings_echo, send_pending_settings
from sync.hub_store import HubStore, HubStoreError, PendingAck
from sync.payload import (
    ALERTS_LEAF,
    STATUS_LEAF,
    PayloadError,
    shared_filter,
    split_topic,
    topic_filter,
)
from sync.settings_payload import SETTINGS_ECHO_LEAF

log = logging.getLogger(__name__)

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
RECONNECT_MIN_DELAY_S = 1
RECONNECT_MAX_DELAY_S = 30
SESSION_EXPIRY_S = 7 * 24 * 3600
TICK_S = 1.0
ACK_RESEND_INTERVAL_S = 2.0
PUBACK_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 10.0
RESTART_DELAY_S = 2.0


@dataclass(frozen=True, slots=True)
class HubSettings:
    host: str
    port: int
    client_id: str
    group: str = "hub"
    topic_prefix: str = "pulsegate"
    keepalive_s: int = 30
    security: BrokerSecurity = NO_SECURITY  # TLS and credentials (sync/broker_security.py)

    @property
    def subscriptions(self) -> tuple[str, ...]:
        return (
            shared_filter(self.group, topic_filter(self.topic_prefix, ALERTS_LEAF)),
            topic_filter(self.topic_prefix, STATUS_LEAF),
            shared_filter(self.group, topic_filter(self.topic_prefix, SETTINGS_ECHO_LEAF)),
            # device records, gaps, summaries, raw-data answers (sync/hub_intake.py)
            *(
                shared_filter(self.group, topic_filter(self.topic_prefix, leaf))
                for leaf in DATA_LEAVES
            ),
        )


def parse_broker_url(url: str) -> tuple[str, int]:
    """(host, port) of `mqtt://HOST[:PORT]` (or `mqtts://`, port 8883 by default); ValueError
    with the expected form otherwise."""
    try:
        parsed = urllib.parse.urlsplit(url)
        default_port = DEFAULT_TLS_PORT if parsed.scheme == "mqtts" else DEFAULT_PORT
        port = parsed.port or default_port
    except ValueError as exc:
        raise ValueError(f"broker {url!r}: {exc}") from exc
    scheme_ok = parsed.scheme in ("mqtt", "mqtts")
    if not scheme_ok or not parsed.hostname or parsed.path not in ("", "/"):
        raise ValueError(f"broker {url!r}: expected mqtt://HOST[:PORT]")
    return parsed.hostname, port


def default_client_id(group: str) -> str:
    """Stable across restarts (the broker keeps this hub's queue); unique per host and group.
    Two hub processes on one host need their own --client-id."""
    return f"pulsegate-hub-{socket.gethostname()}-{group}"


class Outcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(slots=True)
class HubStats:
    stored: int = 0
    duplicate: int = 0
    rejected: int = 0
    acks_sent: int = 0

    def count(self, outcome: Outcome) -> None:
        name = outcome.value
        setattr(self, name, getattr(self, name) + 1)


class MessageHandler:
    """Parses one received message and stores it (or keeps it aside as rejected)."""

    def __init__(self, store: HubStore, topic_prefix: str, receiver_id: str) -> None:
        self.store = store
        self.topic_prefix = topic_prefix
        self.receiver_id = receiver_id

    def handle(self, topic: str, payload: bytes, retained: bool, received_s: float) -> Outcome:
        """Raises HubStoreError when the database fails: do not acknowledge the message."""
        try:
            site, gateway, leaf = split_topic(self.topic_prefix, topic)
            if leaf == ALERTS_LEAF:
                event = parse_alert_event(site, gateway, payload)
                added = self.store.record_alert_event(event, received_s, self.receiver_id)
                if added:
                    log.info(
                        "%s %s %s patient %s from %s/%s (alert %s)",
                        event.priority,
                        event.rule,
                        event.event,
                        event.patient,
                        site,
                        gateway,
                        event.alert_id[:8],
                    )
            elif leaf == STATUS_LEAF:
                report = parse_status(site, gateway, payload)
                added = self.store.record_status(report, received_s, retained)
                if added:
                    log.info(
                        "gateway %s/%s %s%s",
                        site,
                        gateway,
                        report.state,
                        " (its Last Will: the broker lost it)" if report.will else "",
                    )
            elif leaf == SETTINGS_ECHO_LEAF:  # a gateway says which settings are active
                added = handle_settings_echo(self.store, site, gateway, payload)
            elif leaf in DATA_LEAVES:  # device records, gaps, summaries, raw-data answers
                added = handle_data_message(self.store, site, gateway, leaf, payload, received_s)
            else:
                raise PayloadError(f"the hub does not handle {leaf!r} topics")
        except PayloadError as exc:
            log.warning("rejected a message on %s: %s", topic, exc)
            self.store.record_rejected(topic, payload, str(exc), received_s)
            return Outcome.REJECTED
        return Outcome.STORED if added else Outcome.DUPLICATE


def publish_pending_acks(
    client: mqtt.Client, store: HubStore, pending: list[PendingAck], timeout_s: float
) -> int:
    """Publish acknowledgements (QoS 1) and mark each one the broker accepted; returns how
    many were accepted."""
    infos: list[tuple[PendingAck, mqtt.MQTTMessageInfo]] = []
    for ack in pending:
        info = client.publish(ack.topic, ack.payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            log.info("acknowledgements deferred (%s)", mqtt.error_string(info.rc))
            break
        infos.append((ack, info))
    accepted = 0
    for ack, info in infos:
        try:
            info.wait_for_publish(timeout_s)
        except (RuntimeError, ValueError) as exc:
            log.info("acknowledgement of alert %s not confirmed (%s)", ack.alert_id[:8], exc)
        if info.is_published():
            store.mark_ack_published(ack.message_id, time.time())
            log.info("sent the acknowledgement of alert %s on %s", ack.alert_id[:8], ack.topic)
            accepted += 1
    return accepted


def _client(settings: HubSettings, manual_ack: bool) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=settings.client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    settings.security.apply(client)
    return client


def send_acks_once(settings: HubSettings, store: HubStore, timeout_s: float) -> int:
    """Connect, publish every pending acknowledgement, wait for the PUBACKs, disconnect.
    Raises OSError if the broker cannot be reached."""
    client = _client(settings, manual_ack=False)
    connected = threading.Event()

    def on_connect(_c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if not reason.is_failure:
            connected.set()

    client.on_connect = on_connect
    client.connect(settings.host, settings.port, keepalive=settings.keepalive_s)
    client.loop_start()
    try:
        if not connected.wait(min(timeout_s, CONNECT_TIMEOUT_S)):
            raise OSError(f"the broker {settings.host}:{settings.port} did not accept us")
        return publish_pending_acks(client, store, store.pending_acks(), timeout_s)
    finally:
        client.disconnect()
        client.loop_stop()


class Hub:
    """One hub process: a persistent MQTT session feeding the hub database."""

    def __init__(self, settings: HubSettings, store: HubStore, ack_store: HubStore) -> None:
        """`store` is used on paho's network thread, `ack_store` on the caller's: two
        connections to the same database."""
        self.settings = settings
        self.stats = HubStats()
        self.subscribed = threading.Event()
        self._handler = MessageHandler(store, settings.topic_prefix, settings.client_id)
        self._ack_store = ack_store
        self._restart = threading.Event()
        self._connected = False
        self._client = _client(settings, manual_ack=True)
        self._client.reconnect_delay_set(RECONNECT_MIN_DELAY_S, RECONNECT_MAX_DELAY_S)
        # A bug met while handling one message is logged by paho and that message is left
        # unacknowledged, instead of silently ending the network thread.
        self._client.suppress_exceptions = True
        self._client.enable_logger(logging.getLogger("paho"))
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def _on_connect(self, client: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            log.warning(
                "the broker refused the connection: %s (check --username, --password-file"
                " and the broker's ACL)",
                reason,
            )
            return
        self._connected = True
        log.info("connected to the broker %s:%d", self.settings.host, self.settings.port)
        client.subscribe(
            [(topic, SubscribeOptions(qos=1)) for topic in self.settings.subscriptions]
        )

    def _on_connect_fail(self, _c: Any, _u: Any) -> None:
        log.warning(
            "broker %s:%d not reachable; retrying (alerts wait there or on the gateways)",
            self.settings.host,
            self.settings.port,
        )

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if self._connected:
            log.warning("lost the broker (%s); reconnecting", reason)
        self._connected = False
        self.subscribed.clear()

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, codes: list[ReasonCode], _p: Any) -> None:
        refused = [str(code) for code in codes if code.is_failure]
        if refused:
            log.error(
                "the broker refused the subscriptions (%s): it must support MQTT v5 shared"
                " subscriptions and allow this client to read %s",
                ", ".join(refused),
                " and ".join(self.settings.subscriptions),
            )
            return
        log.info("subscribed to %s", " and ".join(self.settings.subscriptions))
        self.subscribed.set()

    def _on_message(self, client: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            outcome = self._handler.handle(
                message.topic, bytes(message.payload), bool(message.retain), time.time()
            )
        except HubStoreError as exc:
            log.error("%s; the message stays with the broker until it is stored", exc)
            self._restart.set()
            return
        self.stats.count(outcome)
        client.ack(message.mid, message.qos)

    def _start(self) -> None:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        self._client.connect_async(
            self.settings.host,
            self.settings.port,
            keepalive=self.settings.keepalive_s,
            clean_start=False,
            properties=properties,
        )
        self._client.loop_start()

    def _restart_connection(self, stop: threading.Event) -> None:
        """After a database failure: reconnect, so the broker sends the unacknowledged again."""
        self._restart.clear()
        self._connected = False  # a disconnect of our own: no warning
        self._client.disconnect()
        self._client.loop_stop()
        log.info("reconnecting in %g s to have the broker send it again", RESTART_DELAY_S)
        if not stop.wait(RESTART_DELAY_S):
            self._start()

    def send_pending_acks(self) -> int:
        if not self._client.is_connected():
            return 0
        try:
            pending = self._ack_store.pending_acks()
            if not pending:
                return 0
            sent = publish_pending_acks(self._client, self._ack_store, pending, PUBACK_TIMEOUT_S)
        except HubStoreError as exc:
            log.warning("acknowledgements wait: %s", exc)
            return 0
        self.stats.acks_sent += sent
        return sent

    def send_pending_settings(self) -> int:
        """Publish the settings messages `pulsegate hub settings` queued."""
        try:
            return send_pending_settings(self._client, self._ack_store, PUBACK_TIMEOUT_S)
        except HubStoreError as exc:
            log.warning("settings messages wait: %s", exc)
            return 0

    def send_pending_raw_requests(self) -> int:
        """Publish the raw-data requests `pulsegate hub raw-request` queued."""
        try:
            return send_pending_raw_requests(self._client, self._ack_store, PUBACK_TIMEOUT_S)
        except HubStoreError as exc:
            log.warning("raw-data requests wait: %s", exc)
            return 0

    def run(self, stop: threading.Event) -> None:
        """Receive and store until `stop` is set; send queued acknowledgements meanwhile."""
        self._start()
        next_acks_s = 0.0
        try:
            while not stop.wait(TICK_S):
                if self._restart.is_set():
                    self._restart_connection(stop)
                if time.monotonic() >= next_acks_s:
                    self.send_pending_acks()
                    self.send_pending_settings()
                    self.send_pending_raw_requests()
                    next_acks_s = time.monotonic() + ACK_RESEND_INTERVAL_S
        finally:
            self._connected = False
            self._client.disconnect()
            self._client.loop_stop()
