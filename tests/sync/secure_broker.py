"""A mosquitto of the test's own with TLS (a throwaway CA from trustme), a password file made
with `mosquitto_passwd -b` and an ACL: each gateway may write only under its own id."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import trustme
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import BROKER_START_TIMEOUT_S, free_port

PREFIX = "pulsegate"
SITE = "village-1"
# user -> password; the gateway users are gateway ids, as the ACL patterns (%u) expect.
USERS = {"gw-a": "alpha-secret-1", "gw-b": "bravo-secret-2", "hub": "hub-secret-3"}

# `pattern` lines apply to every user, %u being the user name: a gateway writes only under
# its own id (alerts, status and its Last Will) and reads only its own downlink topics.
ACL = f"""\
pattern write {PREFIX}/+/%u/#
pattern read {PREFIX}/+/%u/ack
pattern read {PREFIX}/+/%u/settings
pattern read {PREFIX}/+/%u/raw-request

user hub
topic read {PREFIX}/#
topic write {PREFIX}/+/+/ack
topic write {PREFIX}/+/+/settings
topic write {PREFIX}/+/+/raw-request
"""


@dataclass
class SecureBroker:
    """TLS + password + ACL on `port`; `cert_port` also requires a client certificate."""

    workdir: Path
    port: int
    cert_port: int
    ca: trustme.CA
    process: subprocess.Popen[bytes] | None = None
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def ca_file(self) -> Path:
        return self.files["ca"]

    def password_file(self, user: str, password: str | None = None) -> Path:
        """A file holding `user`'s password (or `password`), with a trailing newline."""
        path = self.workdir / f"{user}-{'given' if password else 'right'}.password"
        path.write_text((password or USERS[user]) + "\n")
        path.chmod(0o600)
        return path

    def client_cert(self, common_name: str) -> tuple[Path, Path]:
        """A client certificate signed by the test CA, and its key."""
        issued = self.ca.issue_cert(common_name)
        cert = self.workdir / f"{common_name}.crt"
        key = self.workdir / f"{common_name}.key"
        issued.cert_chain_pems[0].write_to_path(str(cert))
        issued.private_key_pem.write_to_path(str(key))
        return cert, key

    def log(self) -> str:
        path = self.workdir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> None:
        tls = (
            f"cafile {self.files['ca']}\ncertfile {self.files['cert']}\n"
            f"keyfile {self.files['key']}\ntls_version tlsv1.2\n"
        )
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            "per_listener_settings false\nallow_anonymous false\n"
            f"password_file {self.files['passwd']}\nacl_file {self.files['acl']}\n"
            f"log_dest file {self.workdir / 'mosquitto.log'}\nuser root\n"
            f"listener {self.port} 127.0.0.1\n{tls}"
            f"listener {self.cert_port} 127.0.0.1\n{tls}require_certificate true\n"
        )
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + BROKER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.cert_port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not start:\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def _prepare(workdir: Path) -> SecureBroker:
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    broker = SecureBroker(workdir, free_port(), free_port(), ca)
    files = broker.files
    files.update(
        ca=workdir / "ca.crt",
        cert=workdir / "server.crt",
        key=workdir / "server.key",
        passwd=workdir / "passwd",
        acl=workdir / "acl",
    )
    ca.cert_pem.write_to_path(str(files["ca"]))
    server.cert_chain_pems[0].write_to_path(str(files["cert"]))
    server.private_key_pem.write_to_path(str(files["key"]))
    files["passwd"].write_text("")
    for user, password in USERS.items():
        subprocess.run(
            ["mosquitto_passwd", "-b", str(files["passwd"]), user, password],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    files["acl"].write_text(ACL)
    return broker


@pytest.fixture
def secure_broker() -> Iterator[SecureBroker]:
    for tool in ("mosquitto", "mosquitto_passwd"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed: run tests/run.sh, which installs it")
    workdir = Path(tempfile.mkdtemp(prefix="mqtts"))
    broker = _prepare(workdir)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


class TlsClient:
    """A paho MQTT v5 client over TLS with a user's password; records what it receives and
    the reason code of each PUBACK."""

    def __init__(self, broker: SecureBroker, user: str, client_id: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.pubacks: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.connect_reason: Any = None
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.tls_set(
            ca_certs=str(broker.ca_file),
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        self.client.username_pw_set(user, USERS[user])
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.connect("localhost", broker.port)
        self.client.loop_start()
        if not self._ready.wait(10) or self.connect_reason.is_failure:
            self.close()
            raise RuntimeError(f"{user} could not connect: {self.connect_reason}")

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connect_reason = reason
        self._ready.set()

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        with self._lock:
            self.pubacks[mid] = reason

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_: done.set()
        self.client.subscribe(topic, qos=1)
        if not done.wait(10):
            raise RuntimeError(f"subscription to {topic} not confirmed")

    def publish(self, topic: str, payload: bytes) -> Any:
        """Publish at QoS 1 and return the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with self._lock:
                if info.mid in self.pubacks:
                    return self.pubacks[info.mid]
            time.sleep(0.02)
        raise AssertionError(f"no PUBACK for {topic}")

    def received(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
