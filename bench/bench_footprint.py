"""The daemon's footprint with 50 simulated oximeters at 1 Hz, in real time.

    .venv/bin/python bench/bench_footprint.py [--minutes 10] [--devices 50] [--simulators inside]

The daemon runs as its own process, exactly as `pulsegate run` builds it (integrity-checked
store, ingest, detector per patient, batch writer, retention task, MQTT publisher to a local
mosquitto when one is installed), with `--devices` simulated patients, each wearing a BerryMed
BCI oximeter (3 frames a second, one SpO2 and pulse value a second) and a Health Thermometer
(one reading a minute). The simulated devices run in a process of their own (`--simulators
separate`, the default) and send each notification's bytes to the daemon as one datagram on a
Unix socket, which the daemon stamps on arrival and decodes as it decodes hardware: the daemon's
figures are its own, plus one socket read per notification (a BLE notification costs BlueZ's
D-Bus message instead). `--simulators inside` runs them inside the daemon's process, as before.
Simulated time runs at real speed: a shorter run gives the same CPU %, but RSS growth needs the
full 10 minutes. Measured from outside the processes:
- start-up to READY: from spawning the daemon to the READY=1 datagram on NOTIFY_SOCKET
  (a fresh database);
- CPU: (utime + stime) / wall time over the run after READY, in % of one core, for the daemon
  and, apart, for the simulators' process;
- RSS: VmRSS sampled every 5 s; growth = last sample - the sample one minute after READY.
Targets (issue 7): CPU <= 3 %, RSS <= 80 MB, growth <= 5 MB, READY < 2 s. Prints figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if os.environ.get("PULSEGATE_BENCH_NO_PANDAS"):
    sys.modules["pandas"] = None  # type: ignore[assignment]  # as in an install without it

from alerts.rules import Profile, Tier  # noqa: E402
from devices.clock import ScaledClock  # noqa: E402
from devices.simulator import BytesSink, Scenario, SimulatedPatient, run_patient  # noqa: E402
from gateway.config import load_config  # noqa: E402
from gateway.daemon import Daemon, DeviceSource, StoreWorker  # noqa: E402
from gateway.ingest import Ingest  # noqa: E402
from gateway.salvage import open_checked  # noqa: E402
from gateway.store import Patient  # noqa: E402

SAMPLE_EVERY_S = 5.0
WARM_UP_S = 60.0
SEPARATOR = b"\0"  # between the device id and the bytes in a datagram
MAX_DATAGRAM_BYTES = 4096


def simulated_patients(devices: int) -> list[SimulatedPatient]:
    scenarios, tiers = list(Scenario), ("red", "yellow", "green")
    return [
        SimulatedPatient(f"bench-{i:03d}", scenarios[i % 4], tiers[i % 3]) for i in range(devices)
    ]


def feeder(socket_path: Path, devices: int) -> None:
    """The simulated devices: each notification's bytes as one datagram, device id first."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.connect(str(socket_path))
    sock.setblocking(False)  # a daemon that falls behind loses notifications, as over BLE
    clock = ScaledClock(1.0)
    dropped = 0

    async def send(device_id: str, _received_s: float, data: bytes) -> None:
        nonlocal dropped
        try:
            sock.send(device_id.encode() + SEPARATOR + data)
        except BlockingIOError:
            dropped += 1

    async def run_all() -> None:
        now_s = clock.now_s()
        await asyncio.gather(
            *(run_patient(sim, clock, send, origin_s=now_s) for sim in simulated_patients(devices))
        )

    with sock, contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_all())  # until SIGINT
    if dropped:
        print(f"  the daemon fell behind: {dropped} notifications dropped", file=sys.stderr)


def datagram_source(sock: socket.socket, clock: ScaledClock) -> DeviceSource:
    """The daemon's side of `feeder`: each datagram's bytes, stamped on arrival."""

    async def source(sink: BytesSink) -> None:
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        while True:
            packet = await loop.sock_recv(sock, MAX_DATAGRAM_BYTES)
            device_id, _, data = packet.partition(SEPARATOR)
            await sink(device_id.decode(), clock.now_s(), data)

    return source


def child(config_path: Path, devices: int, feed: Path | None) -> None:
    """The daemon, as the CLI builds it, with `devices` simulated patients (their devices in
    this process, or sending their bytes to the socket `feed`)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = load_config(config_path)
    store = open_checked(config.database_path, config.gateway.id)
    clock = ScaledClock(1.0)
    ingest = Ingest()
    sources: list[DeviceSource] = []
    now_s = clock.now_s()
    for sim in simulated_patients(devices):
        store.add_patient(Patient(sim.patient_id, Tier(sim.tier), Profile(sim.profile)), now_s)
        for device_id, protocol in ((sim.oximeter_id, "berrymed-bci"), (sim.thermometer_id, "hts")):
            store.ensure_device(device_id, protocol, "simulated", now_s)
            store.bind(device_id, sim.patient_id, now_s)
            ingest.add_device(device_id, protocol)

        async def source(sink, sim=sim):  # type: ignore[no-untyped-def]
            await run_patient(sim, clock, sink, origin_s=now_s)

        if feed is None:
            sources.append(source)
    feed_socket = None
    if feed is not None:
        feed_socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        feed_socket.bind(str(feed))
        sources.append(datagram_source(feed_socket, clock))
    worker = StoreWorker(store)
    daemon = Daemon(config, worker, clock, ingest, sources)
    asyncio.run(daemon.run(asyncio.Event()))  # until SIGTERM
    worker.shutdown()
    store.close()
    if feed_socket is not None:
        feed_socket.close()


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_broker(workdir: Path) -> tuple[subprocess.Popen[bytes] | None, int]:
    if shutil.which("mosquitto") is None:
        return None, 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nuser root\n")
    broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return broker, port


def measure(pid: int, minutes: float) -> tuple[float, list[tuple[float, float]], float]:
    """CPU % of one core over `minutes` from now, RSS samples (elapsed s, MB), final RSS."""
    start_cpu, start_wall = cpu_s(pid), time.monotonic()
    samples: list[tuple[float, float]] = []
    while (elapsed := time.monotonic() - start_wall) < minutes * 60:
        samples.append((elapsed, rss_mb(pid)))
        time.sleep(SAMPLE_EVERY_S)
    cpu_percent = 100 * (cpu_s(pid) - start_cpu) / (time.monotonic() - start_wall)
    return cpu_percent, samples, rss_mb(pid)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--devices", type=int, default=50, help="simulated oximeters")
    parser.add_argument(
        "--simulators",
        choices=("separate", "inside"),
        default="separate",
        help="run the simulated devices in their own process (default) or in the daemon's",
    )
    parser.add_argument(
        "--with-pandas",
        action="store_true",
        help="let sqlite-utils import pandas if this venv has it (a pulsegate install does not"
        " pull pandas in; a bench extra does, and it costs about 45 MB of RSS)",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--feed", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--feeder", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.feeder:
        feeder(args.feeder, args.devices)
        return
    if args.child:
        child(args.child, args.devices, args.feed)
        return
    workdir = Path(tempfile.mkdtemp(prefix="fp"))  # short: AF_UNIX path limit
    broker, port = start_broker(workdir)
    config = workdir / "pulsegate.toml"
    mqtt = f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\n' if broker else ""
    config.write_text(f'[gateway]\nid = "bench"\ndata_dir = "{workdir / "data"}"\n{mqtt}')
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(workdir / "notify"))
    notify.settimeout(60)
    env = {**os.environ, "NOTIFY_SOCKET": str(workdir / "notify")}
    command = [sys.executable, __file__, "--child", str(config), "--devices", str(args.devices)]
    separate = args.simulators == "separate"
    if separate:
        command += ["--feed", str(workdir / "feed")]
    if not args.with_pandas:
        env["PULSEGATE_BENCH_NO_PANDAS"] = "1"
    spawned = time.monotonic()
    process = subprocess.Popen(command, env=env)
    feed = None
    try:
        while b"READY=1" not in notify.recv(4096):
            pass
        ready_s = time.monotonic() - spawned
        if separate:
            feeder_command = [sys.executable, __file__, "--feeder", str(workdir / "feed")]
            feed = subprocess.Popen([*feeder_command, "--devices", str(args.devices)])
            feed_cpu_s = cpu_s(feed.pid)
        cpu_percent, samples, final_rss = measure(process.pid, args.minutes)
        feed_percent = 100 * (cpu_s(feed.pid) - feed_cpu_s) / (args.minutes * 60) if feed else 0
    finally:
        if feed is not None:
            feed.kill()  # measured already; nothing of its own to flush
            feed.wait(timeout=60)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        if broker is not None:
            broker.terminate()
            broker.wait(timeout=10)
        notify.close()
    print(
        f"{args.devices} simulated oximeters at 1 Hz (+{args.devices} thermometers at 1/min),"
        f" {args.minutes:g} min, simulators {args.simulators} the daemon's process,"
        f" broker: {'mosquitto' if broker else 'none'},"
        f" pandas {'importable' if args.with_pandas else 'absent'}"
    )
    print_figures(ready_s, cpu_percent, feed_percent if separate else None, samples, final_rss)
    shutil.rmtree(workdir, ignore_errors=True)


def print_figures(
    ready_s: float,
    cpu_percent: float,
    feed_percent: float | None,
    samples: list[tuple[float, float]],
    final_rss: float,
) -> None:
    warm = next((rss for t, rss in samples if t >= WARM_UP_S), samples[0][1])
    print(f"  start-up to READY   {ready_s:6.2f} s  (target < 2 s)")
    print(f"  CPU                 {cpu_percent:6.2f} % of one core  (target <= 3 %)")
    if feed_percent is not None:
        print(f"  simulators' process {feed_percent:6.2f} % of one core  (not the daemon's)")
    print(f"  RSS                 {max(r for _, r in samples):6.1f} MB peak  (target <= 80 MB)")
    print(
        f"  RSS growth          {final_rss - warm:+6.1f} MB from minute 1 to the end"
        "  (target <= 5 MB)"
    )
    with open("/proc/cpuinfo") as cpuinfo:
        model = next((line.split(":")[1].strip() for line in cpuinfo if "model name" in line), "?")
    print(f"  machine: {model}, {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
