"""Fixtures of the township hub tests: a throwaway PostgreSQL cluster, hub processes, and an
MQTT publisher that plays a gateway."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import free_port
from tests.sync.daemon_process import daemon_argv
from tests.sync.secure_broker import secure_broker  # noqa: F401 (fixture: TLS + ACL mosquitto)

HUB_START_TIMEOUT_S = 15.0
cli = daemon_argv  # the argv of `python -m gateway --config CONFIG ARGS`


def _postgres_bindir() -> Path | None:
    """Debian keeps initdb and pg_ctl out of PATH, in /usr/lib/postgresql/<version>/bin."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class Postgres:
    """A PostgreSQL cluster of our own on a free loopback port, trust authentication."""

    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        name = f"hub_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    bindir = _postgres_bindir()
    if bindir is None:
        pytest.fail("the PostgreSQL server is not installed: run tests/run.sh, which installs it")
    workdir = Path(tempfile.mkdtemp(prefix="pg"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        # initdb and postgres refuse to run as root: run them as the packaged postgres user.
        user = "postgres"
        shutil.chown(workdir, user)
        run_as = ["runuser", "-u", user, "--"]
    data = workdir / "data"
    port = free_port()
    pg_ctl = [*run_as, str(bindir / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        [
            *run_as,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    # fsync off: these tests are about de-duplication, not about surviving a power cut.
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*pg_ctl, "-l", str(workdir / "log"), "-w", "-o", options, "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield Postgres(port)
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], check=False, capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class HubProcess:
    """`pulsegate hub run` as a real process, logging to a file."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_subscribed(self) -> None:
        deadline = time.monotonic() + HUB_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if "subscribed to" in self.log():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"the hub did not subscribe:\n{self.log()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)


def run_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli(config, *args), capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def empty_config(tmp_path: Path) -> Path:
    """A gateway config with nothing in it: the hub must not depend on the machine's."""
    config = tmp_path / "empty.toml"
    config.write_text("")
    return config


def start_hub_process(
    config: Path, log_path: Path, broker_port: int, db: str, client_id: str, *extra: str
) -> HubProcess:
    """`pulsegate hub run` on a loopback broker in the background, its output to `log_path`
    (not waited for: see HubProcess.wait_subscribed)."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            cli(
                config,
                "hub",
                "run",
                "--broker",
                f"mqtt://127.0.0.1:{broker_port}",
                "--db",
                db,
                "--client-id",
                client_id,
                "--keepalive",
                "5",
                *extra,
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return HubProcess(process, log_path)


@pytest.fixture
def start_hub(tmp_path: Path, empty_config: Path) -> Iterator[Callable[..., HubProcess]]:
    hubs: list[HubProcess] = []

    def start(
        broker_port: int, db: str, client_id: str = "hub-1", *extra: str, wait: bool = True
    ) -> HubProcess:
        hub = start_hub_process(
            empty_config, tmp_path / f"{client_id}.log", broker_port, db, client_id, *extra
        )
        hubs.append(hub)
        if wait:
            hub.wait_subscribed()
        return hub

    yield start
    for hub in hubs:
        if hub.process.poll() is None:
            hub.process.kill()
            hub.process.wait()


def publish(port: int, messages: list[tuple[str, str]], *, retain: bool = False) -> None:
    """Publish (topic, payload) pairs at QoS 1, each confirmed by the broker."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for topic, payload in messages:
            info = client.publish(topic, payload, qos=1, retain=retain)
            info.wait_for_publish(10)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def wait_until(predicate: Callable[[], Any], timeout_s: float) -> Any:
    """Poll until `predicate()` is truthy; its last value."""
    deadline = time.monotonic() + timeout_s
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(0.1)
        value = predicate()
    return value
