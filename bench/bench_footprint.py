"""The daemon's footprint with 50 simulated oximeters at 1 Hz, in real time.

    .venv/bin/python bench/bench_footprint.py [--minutes 10] [--devices 50]

The daemon runs as its own process, exactly as `pulsegate run` builds it (integrity-checked
store, ingest, detector per patient, batch writer, retention task, MQTT publisher to a local
mosquitto when one is installed), with `--devices` simulated patients, each wearing a BerryMed
BCI oximeter (3 frames a second, one SpO2 and pulse value a second) and a Health Thermometer
(one reading a minute). Simulated time runs at real speed: a shorter run gives the same CPU %,
but RSS growth needs the full 10 minutes. Measured from outside the process:
- start-up to READY: from spawning the process to the READY=1 datagram on NOTIFY_SOCKET
  (a fresh database);
- CPU: (utime + stime) / wall time over the run after READY, in % of one core;
- RSS: VmRSS sampled every 5 s; growth = last sample - the sample one minute after READY.
Targets (issue 7): CPU <= 3 %, RSS <= 80 MB, growth <= 5 MB, READY < 2 s. Prints figures only.
"""

from __future__ import annotations

import argparse
import asyncio
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
from devices.simulator import Scenario, SimulatedPatient, run_patient  # noqa: E402
from gateway.config import load_config  # noqa: E402
from gateway.daemon import Daemon, DeviceSource, StoreWorker  # noqa: E402
from gateway.ingest import Ingest  # noqa: E402
from gateway.salvage import open_checked  # noqa: E402
from gateway.store import Patient  # noqa: E402

SAMPLE_EVERY_S = 5.0
WARM_UP_S = 60.0


def child(config_path: Path, devices: int) -> None:
    """The daemon, as the CLI builds it, with `devices` simulated patients."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = load_config(config_path)
    store = open_checked(config.database_path, config.gateway.id)
    clock = ScaledClock(1.0)
    ingest = Ingest()
    scenarios, tiers = list(Scenario), ("red", "yellow", "green")
    sources: list[DeviceSource] = []
    now_s = clock.now_s()
    for i in range(devices):
        sim = SimulatedPatient(f"bench-{i:03d}", scenarios[i % 4], tiers[i % 3])
        store.add_patient(Patient(sim.patient_id, Tier(sim.tier), Profile(sim.profile)), now_s)
        for device_id, protocol in ((sim.oximeter_id, "berrymed-bci"), (sim.thermometer_id, "hts")):
            store.ensure_device(device_id, protocol, "simulated", now_s)
            store.bind(device_id, sim.patient_id, now_s)
            ingest.add_device(device_id, protocol)

        async def source(sink, sim=sim):  # type: ignore[no-untyped-def]
            await run_patient(sim, clock, sink, origin_s=now_s)

        sources.append(source)
    worker = StoreWorker(store)
    daemon = Daemon(config, worker, clock, ingest, sources)
    asyncio.run(daemon.run(asyncio.Event()))  # until SIGTERM
    worker.shutdown()
    store.close()


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--devices", type=int, default=50, help="simulated oximeters")
    parser.add_argument(
        "--with-pandas",
        action="store_true",
        help="let sqlite-utils import pandas if this venv has it (a pulsegate install does not"
        " pull pandas in; a bench extra does, and it costs about 45 MB of RSS)",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.devices)
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
    if not args.with_pandas:
        env["PULSEGATE_BENCH_NO_PANDAS"] = "1"
    spawned = time.monotonic()
    process = subprocess.Popen(command, env=env)
    try:
        while b"READY=1" not in notify.recv(4096):
            pass
        ready_s = time.monotonic() - spawned
        start_cpu, start_wall = cpu_s(process.pid), time.monotonic()
        samples: list[tuple[float, float]] = []
        while (elapsed := time.monotonic() - start_wall) < args.minutes * 60:
            samples.append((elapsed, rss_mb(process.pid)))
            time.sleep(SAMPLE_EVERY_S)
        cpu_percent = 100 * (cpu_s(process.pid) - start_cpu) / (time.monotonic() - start_wall)
        final_rss = rss_mb(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        if broker is not None:
            broker.terminate()
            broker.wait(timeout=10)
    warm = next((rss for t, rss in samples if t >= WARM_UP_S), samples[0][1])
    print(
        f"{args.devices} simulated oximeters at 1 Hz (+{args.devices} thermometers at 1/min),"
        f" {args.minutes:g} min, broker: {'mosquitto' if broker else 'none'},"
        f" pandas {'importable' if args.with_pandas else 'absent'}"
    )
    print(f"  start-up to READY   {ready_s:6.2f} s  (target < 2 s)")
    print(f"  CPU                 {cpu_percent:6.2f} % of one core  (target <= 3 %)")
    print(f"  RSS                 {max(r for _, r in samples):6.1f} MB peak  (target <= 80 MB)")
    print(
        f"  RSS growth          {final_rss - warm:+6.1f} MB from minute 1 to the end"
        "  (target <= 5 MB)"
    )
    with open("/proc/cpuinfo") as cpuinfo:
        model = next((line.split(":")[1].strip() for line in cpuinfo if "model name" in line), "?")
    print(f"  machine: {model}, {os.cpu_count()} cores")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
