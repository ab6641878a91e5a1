"""The daemon speaks sd_notify to a real datagram socket: READY after start-up, WATCHDOG pings
at half WATCHDOG_USEC while healthy, STOPPING on SIGTERM."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import tempfile
import time
from pathlib import Path

from gateway.notify import Notifier
from tests.sync.daemon_process import start_simulated

WATCHDOG_USEC = 2_000_000


def test_notifier_does_nothing_without_notify_socket() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    notifier.ready("x")  # must not raise
    assert notifier.watchdog_interval_s is None


def test_watchdog_meant_for_another_process_is_ignored() -> None:
    other_pid = str(os.getpid() + 1)
    notifier = Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": other_pid})
    assert notifier.watchdog_interval_s is None
    assert Notifier({"WATCHDOG_USEC": "1000000"}).watchdog_interval_s == 0.5


def test_abstract_socket_address_is_supported() -> None:
    name = f"pulsegate-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        server.settimeout(5)
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        notifier.ready("up")
        assert server.recv(4096) == b"READY=1\nSTATUS=up"
        notifier.close()


def test_daemon_notifies_ready_pings_watchdog_and_says_stopping(tmp_path: Path) -> None:
    sock_dir = Path(tempfile.mkdtemp(prefix="ntf"))  # short path: AF_UNIX limit
    address = str(sock_dir / "notify")
    config = tmp_path / "c.toml"
    config.write_text(f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n')
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(address)
        server.settimeout(0.2)
        env = {**os.environ, "NOTIFY_SOCKET": address, "WATCHDOG_USEC": str(WATCHDOG_USEC)}
        process = start_simulated(config, env=env)
        received: list[tuple[float, str]] = []
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not any("READY=1" in m for _, m in received):
                received += _receive(server)
            ready_at = time.monotonic()
            while time.monotonic() < ready_at + 5:
                received += _receive(server)
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
            received += _receive(server)
        finally:
            process.kill()
            os.unlink(address)
    messages = [m for _, m in received]
    assert process.returncode == 0
    assert messages[0].startswith("READY=1\nSTATUS=")
    pings = [t for t, m in received if m == "WATCHDOG=1"]
    assert len(pings) >= 3  # one a second for 5 s, with room for a slow machine
    assert max(b - a for a, b in itertools.pairwise(pings)) < WATCHDOG_USEC / 1e6
    assert messages[-1] == "STOPPING=1\nSTATUS=stopping"


def _receive(server: socket.socket) -> list[tuple[float, str]]:
    found = []
    while True:
        try:
            found.append((time.monotonic(), server.recv(4096).decode()))
        except TimeoutError:
            return found
