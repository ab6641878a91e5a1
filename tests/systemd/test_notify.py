"""The daemon speaks sd_notify to a real datagram socket: READY after start-up, WATCHDOG pings
at half WATCHDOG_USEC while healthy, STOPPING on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

from devices.clock import ScaledClock
from gateway.config import parse_config
from gateway.daemon import Daemon, StoreWorker
from gateway.ingest import Ingest
from gateway.notify import Notifier
from gateway.store import Store
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


async def test_a_stuck_store_thread_stops_the_watchdog_pings(tmp_path: Path) -> None:
    """The daemon in process with a real socket: while a store call hangs, the batch writer
    cannot turn, so the pings stop (systemd would restart it); they resume after."""
    config = parse_config(
        {"gateway": {"data_dir": str(tmp_path)}, "store": {"batch_interval_s": 0.2}}
    )
    store = Store.open(config.database_path, "gw")
    sock_dir = Path(tempfile.mkdtemp(prefix="ntf"))
    address = str(sock_dir / "notify")
    pings: list[float] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(address)
        server.setblocking(False)
        notifier = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000"})
        worker = StoreWorker(store)
        daemon = Daemon(config, worker, ScaledClock(1), Ingest(), notifier=notifier)
        stop = asyncio.Event()
        running = asyncio.create_task(daemon.run(stop))
        reading = asyncio.create_task(_collect_pings(server, pings, stop))
        try:
            await asyncio.sleep(1.5)
            stuck_at = time.monotonic()
            await worker.call(time.sleep, 9.0)  # the store thread hangs for 9 s
            resumed_at = time.monotonic()
            await asyncio.sleep(1.5)
        finally:
            stop.set()
            await running
            await reading
            worker.shutdown()
            store.close()
            notifier.close()
            os.unlink(address)
    assert sum(t < stuck_at for t in pings) >= 2  # healthy: a ping every 0.2 s
    # Past the health window (5 intervals + 5 s), no ping until the store answers again.
    assert not [t for t in pings if stuck_at + 7.0 < t < resumed_at]
    assert sum(t > resumed_at for t in pings) >= 2


async def _collect_pings(server: socket.socket, pings: list[float], stop: asyncio.Event) -> None:
    """The arrival times of WATCHDOG=1 on the (non-blocking) socket, until `stop`."""
    while not stop.is_set():
        with contextlib.suppress(BlockingIOError):
            while True:
                if server.recv(4096) == b"WATCHDOG=1":
                    pings.append(time.monotonic())
        await asyncio.sleep(0.05)


def test_a_full_notify_socket_never_blocks_the_sender() -> None:
    """Nobody reads the socket: the kernel's queue fills up and further datagrams are
    dropped with a warning, instead of blocking the daemon's event loop."""
    sock_dir = Path(tempfile.mkdtemp(prefix="ntf"))
    address = str(sock_dir / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(address)
        notifier = Notifier({"NOTIFY_SOCKET": address})
        sender = threading.Thread(target=lambda: [notifier.watchdog() for _ in range(500)])
        sender.start()
        sender.join(timeout=10)
        blocked = sender.is_alive()
        server.close()  # frees a sender that was blocked, so the test ends either way
        sender.join()
        notifier.close()
        os.unlink(address)
    assert not blocked
