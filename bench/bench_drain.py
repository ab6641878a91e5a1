"""How fast a queued outbox drains to the broker, next to the simple alternative.

    .venv/bin/python bench/bench_drain.py [--rows 100000] [--inflight 20] [--rounds 3]

A local mosquitto of its own (no persistence, no subscriber) receives the same payloads:
1. `raw paho loop`: one paho MQTT v5 client publishes every payload at QoS 1 and waits for the
   last PUBACK; no store at all (the upper bound on this machine);
2. `drain`: the rows sit in the gateway's outbox (a real store: WAL, synchronous=FULL); the
   daemon's path drains them: `Publisher` over `BudgetedOutbox` over the `StoreWorker`, as
   gateway/daemon.py wires them, most urgent first, `--inflight` messages on the wire, marking
   each row sent (and counting its bytes against the daily budget) only after its PUBACK,
   until the outbox is empty; once as alert rows, once as summary rows (which the budget may
   hold back: `--budget-kb`, above the total by default, so the budget's bookkeeping runs but
   never holds a row).
Each round runs the raw loop, the alert drain and the summary drain one after the other, so a
busy machine weighs on all three alike; the medians of the rounds and their ratios are printed.
Both time from the connect to the last PUBACK (and, for the drain, the last row marked sent).
Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from gateway.daemon import StoreWorker  # noqa: E402
from gateway.store import Store  # noqa: E402
from gateway.uplink_budget import BudgetedOutbox  # noqa: E402
from sync.payload import OutboxPriority  # noqa: E402
from sync.publisher import BrokerSettings, Publisher  # noqa: E402

TOPIC = "bench/village-1/gw-bench/alerts"
POLL_S = 0.05
RAW_AHEAD = 1000  # messages handed to paho before their PUBACK (see raw_loop)


def payloads(count: int) -> list[str]:
    """Alert-event-sized JSON bodies (416 bytes), each with its own message id."""
    return [
        json.dumps(
            {
                "schema": 1,
                "message_id": f"{i:032x}",
                "kind": "alert",
                "event": "raised",
                "alert_id": f"{i // 3:032x}",
                "gateway": "gw-bench",
                "site": "village-1",
                "patient": f"p-{i % 200:04d}",
                "rule": "S2",
                "priority": "HIGH",
                "tier": "red",
                "profile": "default",
                "status": "open",
                "onset_time": "2026-01-01T00:00:00.000Z",
                "event_time": "2026-01-01T00:01:00.000Z",
                "details": {"window_median": 91.0, "limit": 93.0, "window_s": 60},
            },
            separators=(",", ":"),
            sort_keys=True,
        )
        for i in range(count)
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_broker(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        f"max_queued_messages 0\nlog_dest none\nuser root\n"
    )
    process = subprocess.Popen(
        ["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("mosquitto did not start")


def raw_loop(port: int, bodies: list[str], inflight: int) -> float:
    """Seconds for a bare paho client to publish every body at QoS 1 and get every PUBACK.

    At most RAW_AHEAD messages are handed to paho ahead of their PUBACK: its message ids are
    16-bit, and with more than 65,535 queued they collide and PUBACKs go missing (seen here:
    100,000 queued at once stalled at 69,219 acknowledged)."""
    acked = 0
    progress = threading.Condition()

    def on_publish(*_: Any) -> None:
        nonlocal acked
        with progress:
            acked += 1
            progress.notify()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="raw", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(inflight)
    client.on_publish = on_publish
    start = time.perf_counter()
    client.connect("127.0.0.1", port)
    client.loop_start()
    for sent, body in enumerate(bodies):
        with progress:
            progress.wait_for(lambda sent=sent: sent - acked < RAW_AHEAD)
        client.publish(TOPIC, body, qos=1)
    with progress:
        progress.wait_for(lambda: acked == len(bodies))
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    return elapsed


def fill_outbox(store: Store, bodies: list[str], priority: OutboxPriority) -> None:
    now_s = time.time()
    with store.transaction():
        store.db.conn.executemany(
            "INSERT INTO outbox (priority, topic, message_id, payload, created_s)"
            " VALUES (?, ?, ?, ?, ?)",
            [(int(priority), TOPIC, f"m{i}", body, now_s) for i, body in enumerate(bodies)],
        )


async def drain(
    port: int, store: Store, inflight: int, budget_bytes: int
) -> tuple[float, Publisher]:
    """Seconds for the daemon's publishing path to empty the outbox (every row marked sent)."""
    worker = StoreWorker(store)
    outbox = BudgetedOutbox(worker, budget_bytes, utc_offset_s=8 * 3600)
    settings = BrokerSettings("127.0.0.1", port, "drain", max_inflight=inflight)
    publisher = Publisher(settings, outbox)
    stop = asyncio.Event()
    start = time.perf_counter()
    task = asyncio.create_task(publisher.run(stop))
    rows = sum((await worker.call(store.outbox_backlog)).values())
    while publisher.stats.acknowledged < rows:  # no store query meanwhile: it would compete
        await asyncio.sleep(POLL_S)
    while sum((await worker.call(store.outbox_backlog)).values()):
        await asyncio.sleep(POLL_S / 10)
    elapsed = time.perf_counter() - start
    stop.set()
    await task
    publisher.close()
    worker.shutdown()
    return elapsed, publisher


def drain_once(
    workdir: Path, port: int, bodies: list[str], priority: OutboxPriority, args: Any
) -> float:
    """Seconds to drain `bodies` queued as `priority` rows in a new store."""
    path = workdir / f"{priority.name}.db"
    store = Store.open(path, "gw-bench")
    fill_outbox(store, bodies, priority)
    budget_bytes = args.budget_kb * 1000
    drain_s, publisher = asyncio.run(drain(port, store, args.inflight, budget_bytes))
    unsent = sum(store.outbox_backlog().values())
    store.close()
    for leftover in workdir.glob(f"{path.name}*"):
        leftover.unlink()
    stats = publisher.stats
    if unsent or stats.acknowledged != len(bodies):
        print(f"    ({priority.name.lower()}: acknowledged {stats.acknowledged}, unsent {unsent})")
    return drain_s


def rate_line(name: str, seconds: list[float], rows: int, raw_s: float | None) -> str:
    median_s = statistics.median(seconds)
    runs = " ".join(f"{rows / s:,.0f}" for s in seconds)
    ratio = f"  ratio {raw_s / median_s:4.0%}" if raw_s is not None else ""
    return f"  {name:<20} {rows / median_s:8,.0f} msg/s (median; runs {runs}){ratio}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--inflight", type=int, default=20, help="QoS 1 messages in flight")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget-kb", type=int, default=1_000_000, help="daily byte budget")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the publisher's "lost the broker" at the end
    if shutil.which("mosquitto") is None:
        raise SystemExit("mosquitto is not installed (apt-get install mosquitto)")
    bodies = payloads(args.rows)
    size = sum(len(b) for b in bodies) / len(bodies)
    print(f"{args.rows} messages of {size:.0f} bytes, QoS 1, {args.inflight} in flight")
    workdir = Path(tempfile.mkdtemp(prefix="bench-drain"))
    broker, port = start_broker(workdir)
    kinds = (OutboxPriority.ALERT, OutboxPriority.SUMMARY)
    raw: list[float] = []
    drained: dict[OutboxPriority, list[float]] = {kind: [] for kind in kinds}
    try:
        for round_number in range(1, args.rounds + 1):
            raw.append(raw_loop(port, bodies, args.inflight))
            for kind in kinds:
                drained[kind].append(drain_once(workdir, port, bodies, kind, args))
            rates = [f"raw {args.rows / raw[-1]:,.0f}"]
            rates += [f"{k.name.lower()} {args.rows / drained[k][-1]:,.0f}" for k in kinds]
            figures = ", ".join(rates)
            print(f"  round {round_number}: {figures} msg/s")
    finally:
        broker.terminate()
        broker.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    raw_s = statistics.median(raw)
    print(rate_line("raw paho loop", raw, args.rows, None))
    for kind in kinds:
        print(rate_line(f"drain, {kind.name.lower()} rows", drained[kind], args.rows, raw_s))
    print("target: >= 70 % of the raw loop (ratio: raw median time / drain median time)")


if __name__ == "__main__":
    main()
