"""`pulsegate devices scan / bind / unbind / list` and the device links in `pulsegate status`.

Scanning and recognising run the real command in a subprocess, with real bleak, against the
fake bluetoothd served by this test's event loop on a private D-Bus."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from devices.link import LinkState, LinkStatus
from gateway.cli import main
from gateway.device_store import binding_history, patient_at, write_status
from gateway.store import Store
from tests.devices.transports.ble_fixtures import (
    CONTEC_ADDRESS,
    OTHER_ADDRESS,
    PLX_ADDRESS,
    contec_bt,
    other_device,
    plx_oximeter,
)
from tests.devices.transports.fake_bluez import FakeBlueZ, FakePeripheral


def write_config(tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "pulsegate.toml"
    config.write_text(
        f'[gateway]\nid = "gw-test"\ndata_dir = "{tmp_path / "data"}"\n'
        '[[serial]]\nid = "bedside-1"\nprotocol = "contec-v7"\nport = "/dev/ttyUSB7"\n' + extra
    )
    return config


def cli(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    return result.exit_code, result.output


async def cli_process(config: Path, *args: str) -> tuple[int, str, str]:
    """The real command in a child process, while this loop keeps serving the fake BlueZ."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "--config",
        str(config),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_scan_lists_devices_with_the_protocol_recognised(
    tmp_path: Path, bluez: FakeBlueZ
) -> None:
    for peripheral in (plx_oximeter(), contec_bt(), other_device()):
        bluez.add(peripheral)
    bluez.add(FakePeripheral("C0:11:22:33:44:09", None))
    code, out, err = await cli_process(write_config(tmp_path), "devices", "scan", "--seconds", "1")
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "plx-continuous or plx-spot-check" in lines[PLX_ADDRESS]
    assert "OxiPLX" in lines[PLX_ADDRESS]
    assert "contec-hid (name 'CMS50D-BT')" in lines[CONTEC_ADDRESS]
    assert "hrs" in lines[OTHER_ADDRESS]
    assert "C0:11:22:33:44:09" not in lines  # nothing we speak: only with --all

    code, out, err = await cli_process(
        write_config(tmp_path), "devices", "scan", "--seconds", "1", "--connect", "--json"
    )
    assert code == 0, err
    found = {row["address"]: row for row in map(json.loads, out.splitlines())}
    assert found[PLX_ADDRESS]["protocol"] == "plx-continuous"  # its GATT table told
    assert found[CONTEC_ADDRESS]["protocol"] == "contec-hid"
    assert bluez.calls_to("Connect", PLX_ADDRESS) and not bluez.calls_to("Connect", CONTEC_ADDRESS)


async def test_bind_recognises_the_protocol_by_connecting(tmp_path: Path, bluez: FakeBlueZ) -> None:
    bluez.add(plx_oximeter())
    config = write_config(tmp_path)
    assert cli(config, "patients", "add", "p-1", "--tier", "red")[0] == 0
    code, out, err = await cli_process(
        config, "devices", "bind", PLX_ADDRESS.lower(), "--patient", "p-1", "--seconds", "3"
    )
    assert code == 0, err
    assert f"bound {PLX_ADDRESS} (plx-continuous, ble) to patient p-1" in out
    # The advertisement named two protocols: the GATT table, read over a connection, chose.
    assert bluez.calls_to("Connect", PLX_ADDRESS)
    code, out = cli(config, "devices", "list", "--json")
    assert code == 0, out
    [row] = [json.loads(line) for line in out.splitlines() if PLX_ADDRESS in line]
    assert (row["protocol"], row["transport"], row["patient_id"]) == (
        "plx-continuous",
        "ble",
        "p-1",
    )


def test_bind_unbind_and_history(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    for patient in ("p-1", "p-2"):
        assert cli(config, "patients", "add", patient, "--tier", "yellow")[0] == 0
    code, out = cli(config, "devices", "bind", "bedside-1", "--patient", "p-1")
    assert code == 0, out
    assert "bedside-1 (contec-v7, serial)" in out
    code, out = cli(
        config, "devices", "bind", CONTEC_ADDRESS, "--patient", "p-1", "--protocol", "contec-hid"
    )
    assert code == 0, out
    time.sleep(0.01)
    code, out = cli(config, "devices", "bind", "bedside-1", "--patient", "p-2")  # moved
    assert code == 0, out
    code, out = cli(config, "devices", "unbind", CONTEC_ADDRESS.lower())
    assert (code, out.strip()) == (0, f"unbound {CONTEC_ADDRESS} from patient p-1")

    code, out = cli(config, "devices", "list")
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines()}
    assert rows["bedside-1"][3] == "p-2"
    assert rows[CONTEC_ADDRESS][3] == "(unbound)"

    store = Store.open(tmp_path / "data" / "pulsegate.db", "gw-test")
    try:
        history = binding_history(store, "bedside-1")
        assert [h["patient_id"] for h in history] == ["p-1", "p-2"]
        moved_s = history[1]["start_s"]
        assert history[0]["end_s"] == moved_s
        # A reading belongs to the patient bound at its time.
        assert patient_at(store, "bedside-1", moved_s - 0.001) == "p-1"
        assert patient_at(store, "bedside-1", moved_s) == "p-2"
        assert patient_at(store, CONTEC_ADDRESS, time.time() + 1) is None
    finally:
        store.close()
    code, out = cli(config, "devices", "list", "--history")
    assert code == 0 and len(out.splitlines()) == 3


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["bind", "kitchen-clock", "--patient", "p-1"], 2, "neither a BLE address"),
        (
            ["bind", PLX_ADDRESS, "--patient", "p-1", "--protocol", "contec-v5"],
            2,
            "not a BLE protocol",
        ),
        (["bind", PLX_ADDRESS, "--patient", "p-1", "--protocol", "nope"], 2, "unknown protocol"),
        (
            ["bind", "bedside-1", "--patient", "p-1", "--protocol", "contec-v5"],
            2,
            "configured as contec-v7",
        ),
        (["bind", "bedside-1", "--patient", "nobody"], 1, "no patient 'nobody'"),
        (["unbind", "bedside-1"], 1, "is not bound"),
    ],
)
def test_bad_requests_are_one_line_errors(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    config = write_config(tmp_path)
    assert cli(config, "patients", "add", "p-1", "--tier", "red")[0] == 0
    result = CliRunner().invoke(main, ["--config", str(config), "devices", *args])
    assert result.exit_code == code
    assert message in result.output
    assert result.output.startswith("error: ") and len(result.output.splitlines()) == 1


def test_scan_without_bluetooth_says_what_to_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path / 'no-bus'}")
    code, out = cli(write_config(tmp_path), "devices", "scan", "--seconds", "1")
    assert code == 1
    assert out.startswith("error: cannot scan on hci0: ")
    assert "is bluetoothd running" in out


def test_status_shows_device_links(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert cli(config, "patients", "add", "p-1", "--tier", "red")[0] == 0
    assert cli(config, "devices", "bind", "bedside-1", "--patient", "p-1")[0] == 0
    store = Store.open(tmp_path / "data" / "pulsegate.db", "gw-test")
    link = LinkStatus(
        PLX_ADDRESS,
        "ble",
        PLX_ADDRESS,
        "plx-continuous",
        rssi_dbm=-61,
        battery_percent=83.0,
        last_data_s=time.time() - 5,
        reconnects=2,
    )
    link.set(LinkState.CONNECTED)
    serial = LinkStatus("bedside-1", "serial", "/dev/ttyUSB7", "contec-v7")
    serial.set(LinkState.WAITING, "port_missing: /dev/ttyUSB7 does not exist")
    try:
        write_status(store, [link, serial], time.time())
    finally:
        store.close()
    code, out = cli(config, "status")
    assert code == 0, out
    [ble_line] = [line for line in out.splitlines() if PLX_ADDRESS in line]
    assert "connected" in ble_line and "RSSI -61 dBm" in ble_line and "battery 83 %" in ble_line
    [serial_line] = [line for line in out.splitlines() if "bedside-1" in line and "waiting" in line]
    assert "p-1" in serial_line and "does not exist" in serial_line
    code, out = cli(config, "status", "--json")
    links = {row["device_id"]: row for row in json.loads(out)["device_links"]}
    assert links[PLX_ADDRESS]["battery_percent"] == 83.0
