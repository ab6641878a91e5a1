"""The daemon with real device transports: a BLE oximeter (real bleak, fake bluetoothd) and a
serial oximeter (real pyserial, pty simulator) bound to two patients."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from alerts.rules import Profile, Tier
from devices.clock import ScaledClock
from devices.link import LinkTiming
from devices.protocols.oximeter_plx import CONTINUOUS_UUID
from gateway.cli import main
from gateway.config import parse_config
from gateway.daemon import Daemon, StoreWorker
from gateway.device_store import device_statuses
from gateway.ingest import Ingest
from gateway.sources import DeviceSources
from gateway.store import Patient, Store
from tests.devices.transports.ble_fixtures import (
    PLX_ADDRESS,
    PLX_BATTERY_PERCENT,
    Streamer,
    plx_oximeter,
    plx_payload,
    streaming,
)
from tests.devices.transports.fake_bluez import FakeBlueZ
from tests.devices.transports.pty_devices import ContecV7Device, steady

SPEED = 10.0  # scenario seconds per real second
DESAT_FROM_S = 10.0
DESAT = "p-desat"
WELL = "p-well"
SPO2_ALERT_RULES = ("S1", "S2", "S3")


def desaturating(t_s: float) -> tuple[int, int]:
    return (97, 72) if t_s < DESAT_FROM_S else (84, 96)


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


async def wait_for_store(worker: StoreWorker, check: Any, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while not await worker.call(check, worker.store):
            await asyncio.sleep(0.2)


async def test_two_patients_two_transports_and_a_desaturation_alert(
    tmp_path: Path, bluez: FakeBlueZ
) -> None:
    port = tmp_path / "ttyCMS50"
    config = parse_config(
        {
            "gateway": {"id": "gw-test", "data_dir": str(tmp_path / "data")},
            "store": {"batch_interval_s": 0.2},
            "serial": [{"id": "bedside-1", "protocol": "contec-v7", "port": str(port)}],
        }
    )
    store = Store.open(config.database_path, "gw-test")
    for patient_id in (DESAT, WELL):
        store.add_patient(Patient(patient_id, Tier.RED, Profile.DEFAULT), 0.0)
    store.ensure_device(PLX_ADDRESS, "plx-continuous", "ble", 0.0)
    store.bind(PLX_ADDRESS, WELL, 0.0)
    worker, ingest, clock = StoreWorker(store), Ingest(), ScaledClock(SPEED)
    timing = LinkTiming(silence_timeout_s=2.0, scan_timeout_s=3.0, backoff_scale=0.2)
    sources = DeviceSources(config, worker, ingest, clock, timing).prepare()
    store.bind("bedside-1", DESAT, 0.0)  # the serial device is registered by prepare()

    bluez.add(plx_oximeter())
    # One PLX measurement per scenario second, like the real device.
    streamer = Streamer(
        bluez, PLX_ADDRESS, CONTINUOUS_UUID, plx_payload(steady(97, 70)), 1 / SPEED, SPEED
    )
    serial_oximeter = ContecV7Device(port, desaturating, speed=SPEED)
    serial_oximeter.plug()
    daemon = Daemon(config, worker, clock, ingest, sources)
    stop = asyncio.Event()
    try:
        async with streaming(streamer):
            running = asyncio.create_task(daemon.run(stop))

            def both_connected(s: Store) -> bool:
                states = {row["device_id"]: row["state"] for row in device_statuses(s)}
                return states == {PLX_ADDRESS: "connected", "bedside-1": "connected"}

            def desat_alert(s: Store) -> bool:
                return any(a["patient_id"] == DESAT and a["rule"] == "S1" for a in s.list_alerts())

            await wait_for_store(worker, both_connected, 10.0)
            await wait_for_store(worker, desat_alert, 20.0)
            stop.set()
            await running
    finally:
        serial_oximeter.unplug()
        worker.shutdown()
        store.close()

    db = config.database_path
    attributed = dict(
        query(
            db,
            "SELECT device_id, group_concat(DISTINCT patient_id) FROM readings "
            "WHERE metric = 'spo2_percent' GROUP BY device_id",
        )
    )
    assert attributed == {PLX_ADDRESS: WELL, "bedside-1": DESAT}
    [(well_min, well_max)] = query(
        db,
        f"SELECT min(value), max(value) FROM readings WHERE patient_id = '{WELL}'"
        " AND metric = 'spo2_percent'",
    )
    assert well_min == well_max == 97.0
    assert query(
        db,
        f"SELECT min(value) FROM readings WHERE patient_id = '{DESAT}' AND metric = 'spo2_percent'",
    ) == [(84.0,)]
    spo2_alerts = query(db, "SELECT patient_id, rule FROM alerts")
    assert (DESAT, "S1") in spo2_alerts
    assert not [a for a in spo2_alerts if a[0] == WELL and a[1] in SPO2_ALERT_RULES]
    statuses = {
        row[0]: row[1:]
        for row in query(
            db, "SELECT device_id, state, battery_percent, rssi_dbm, last_data_s FROM device_status"
        )
    }
    assert statuses[PLX_ADDRESS][0] == "stopped"
    assert statuses[PLX_ADDRESS][1] == PLX_BATTERY_PERCENT
    assert statuses[PLX_ADDRESS][2] is not None
    assert statuses["bedside-1"][3] is not None


async def test_pulsegate_run_reads_bound_ble_and_serial_devices(
    tmp_path: Path, bluez: FakeBlueZ
) -> None:
    port = tmp_path / "ttyCMS50"
    config = tmp_path / "pulsegate.toml"
    config.write_text(
        f'[gateway]\nid = "gw-test"\ndata_dir = "{tmp_path / "data"}"\n'
        "[store]\nbatch_interval_s = 0.5\n"
        "[ble]\nscan_timeout_s = 3\nsilence_timeout_s = 3\n"
        f'[[serial]]\nid = "bedside-1"\nprotocol = "contec-v7"\nport = "{port}"\n'
    )
    runner = CliRunner()
    for args in (
        ["patients", "add", DESAT, "--tier", "red"],
        ["patients", "add", WELL, "--tier", "green"],
        ["devices", "bind", PLX_ADDRESS, "--patient", WELL, "--protocol", "plx-continuous"],
        ["devices", "bind", "bedside-1", "--patient", DESAT],
    ):
        result = runner.invoke(main, ["--config", str(config), *args])
        assert result.exit_code == 0, result.output

    bluez.add(plx_oximeter())
    streamer = Streamer(bluez, PLX_ADDRESS, CONTINUOUS_UUID, plx_payload(steady(98, 64)), 0.2)
    serial_oximeter = ContecV7Device(port, steady(95, 77))
    serial_oximeter.plug()
    try:
        async with streaming(streamer):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway",
                "--config",
                str(config),
                "run",
                "--duration",
                "5",
                "--quiet",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        serial_oximeter.unplug()
    assert process.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr
    db = tmp_path / "data" / "pulsegate.db"
    per_patient = dict(
        query(
            db,
            "SELECT patient_id, group_concat(DISTINCT value) FROM readings"
            " WHERE metric = 'spo2_percent' GROUP BY patient_id",
        )
    )
    assert per_patient == {WELL: "98.0", DESAT: "95.0"}
    assert streamer.sent > 5
    status = runner.invoke(main, ["--config", str(config), "status"])
    assert status.exit_code == 0
    links = [line for line in status.output.splitlines() if "stopped" in line]
    assert any(PLX_ADDRESS in line and WELL in line and "RSSI" in line for line in links)
    assert any("bedside-1" in line and DESAT in line for line in links)
