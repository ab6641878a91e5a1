"""`pulsegate devices`: scan for BLE devices, bind a device to the patient who wears it,
unbind it, and list devices with their bindings and link status."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import time
from typing import Any

import click
from bleak.exc import BleakError

from devices.backoff import FailureKind
from devices.ble import LinkError, SeenDevice, find, probe_characteristics, scan
from devices.protocols.catalog import UnknownProtocolError, get_protocol
from devices.recognise import Candidate, best_protocol, recognise
from gateway.cli_errors import EXIT_USAGE, fail
from gateway.cli_store import config_of, open_store
from gateway.config import Config
from gateway.device_store import (
    BLE,
    SERIAL,
    binding_history,
    device_statuses,
    list_devices,
    unbind,
)
from gateway.store import Store

BLE_ADDRESS = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")
BLUETOOTH_DOWN_ADVICE = (
    "is bluetoothd running and the adapter powered? check with `bluetoothctl show`"
)
# What can go wrong talking to BlueZ: bleak's errors, and no system bus at all.
BLUETOOTH_ERRORS = (BleakError, LinkError, OSError, EOFError, TimeoutError)


def _age(ts_s: float | None) -> str:
    if ts_s is None:
        return "never"
    seconds = max(0, int(time.time() - ts_s))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def _protocols_text(candidates: tuple[Candidate, ...] | list[Candidate]) -> str:
    if not candidates:
        return "-"
    best = best_protocol(list(candidates))
    if best is not None:
        return f"{best} ({', '.join(candidates[0].reasons)})"
    top = [c.protocol for c in candidates if c.score == candidates[0].score]
    return " or ".join(top) + " (bind with --protocol)"


@click.group()
def devices() -> None:
    """Find, bind and list devices (BLE and serial)."""


@devices.command("scan")
@click.option(
    "--seconds",
    type=click.FloatRange(min=1, max=120),
    default=8.0,
    show_default=True,
    help="How long to listen for advertisements.",
)
@click.option("--all", "show_all", is_flag=True, help="Also list devices no protocol fits.")
@click.option(
    "--connect",
    is_flag=True,
    help="Connect to devices whose advertisement fits several protocols and recognise them "
    "by their characteristics.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per device.")
@click.pass_context
def devices_scan(
    ctx: click.Context, seconds: float, show_all: bool, connect: bool, as_json: bool
) -> None:
    """List nearby BLE devices: address, name, signal (RSSI) and the protocol pulsegate
    recognises from the advertised services and the name (and, with --connect, from the
    characteristics). Pair the one you want with `pulsegate devices bind ADDRESS --patient ID`."""
    adapter = config_of(ctx).ble.adapter
    try:
        seen = asyncio.run(_scan(seconds, adapter, connect))
    except BLUETOOTH_ERRORS as exc:
        fail(f"cannot scan on {adapter}: {exc}; {BLUETOOTH_DOWN_ADVICE}")
    shown = [d for d in seen if show_all or d.candidates]
    if as_json:
        for device in shown:
            click.echo(json.dumps(_seen_json(device)))
        return
    if not shown:
        hint = "" if show_all else " (--all lists devices no protocol fits)"
        click.echo(f"no supported devices found in {seconds:g} s{hint}")
        return
    click.echo(f"{'ADDRESS':<18} {'NAME':<20} {'RSSI':>5}  PROTOCOL")
    for device in shown:
        rssi = "-" if device.rssi_dbm is None else str(device.rssi_dbm)
        click.echo(
            f"{device.address:<18} {(device.name or '-')[:20]:<20} {rssi:>5}  "
            f"{_protocols_text(device.candidates)}"
        )


async def _scan(seconds: float, adapter: str, connect: bool) -> list[SeenDevice]:
    seen = await scan(seconds, adapter)
    if not connect:
        return seen
    settled = []
    for device in seen:
        if device.candidates and best_protocol(list(device.candidates)) is None:
            try:
                candidates = await probe_characteristics(device.address, seconds, adapter)
            except BLUETOOTH_ERRORS as exc:
                click.echo(f"{device.address}: cannot connect ({exc})", err=True)
            else:
                settled.append(dataclasses.replace(device, candidates=tuple(candidates)))
                continue
        settled.append(device)
    return settled


def _seen_json(device: SeenDevice) -> dict[str, Any]:
    return {
        "address": device.address,
        "name": device.name,
        "rssi_dbm": device.rssi_dbm,
        "service_uuids": list(device.service_uuids),
        "protocol": best_protocol(list(device.candidates)),
        "candidates": [c.protocol for c in device.candidates],
    }


async def _recognise_ble(address: str, seconds: float, adapter: str) -> list[Candidate]:
    """Recognise from the advertisement; if that is not conclusive, from the GATT table."""
    seen = await find(address, seconds, adapter)
    if seen is None:
        raise LinkError(
            FailureKind.NOT_FOUND, f"{address} was not seen in {seconds:g} s: is it on and near?"
        )
    device, advertisement = seen
    candidates = recognise(advertisement.local_name or device.name, advertisement.service_uuids)
    if best_protocol(candidates) is not None:
        return candidates
    return await probe_characteristics(address, seconds, adapter)


def _ble_protocol(config: Config, address: str, protocol: str | None, seconds: float) -> str:
    if protocol is not None:
        try:
            spec = get_protocol(protocol)
        except UnknownProtocolError as exc:
            fail(str(exc), EXIT_USAGE)
        if "ble" not in spec.transports:
            fail(f"{protocol} is not a BLE protocol; see `pulsegate decode --list`", EXIT_USAGE)
        return protocol
    try:
        candidates = asyncio.run(_recognise_ble(address, seconds, config.ble.adapter))
    except BLUETOOTH_ERRORS as exc:
        fail(f"cannot recognise {address}: {exc}; or give --protocol")
    best = best_protocol(candidates)
    if best is None:
        names = ", ".join(c.protocol for c in candidates) or "none fits"
        fail(f"cannot tell which protocol {address} speaks ({names}); give --protocol")
    return best


@devices.command("bind")
@click.argument("device")
@click.option("--patient", "patient_id", required=True, help="The patient who wears it.")
@click.option(
    "--protocol",
    help="The device's protocol (see `pulsegate decode --list`); default: recognised by a "
    "short scan (and a connection if the advertisement is not enough).",
)
@click.option(
    "--seconds",
    type=click.FloatRange(min=1, max=120),
    default=10.0,
    show_default=True,
    help="How long to look for the device when recognising it.",
)
@click.pass_context
def devices_bind(
    ctx: click.Context, device: str, patient_id: str, protocol: str | None, seconds: float
) -> None:
    """Bind DEVICE (a BLE address, or the id of a [[serial]] device in the configuration)
    to a patient: from now on its readings are that patient's. A device already bound is
    moved to the new patient; the old binding is kept as history."""
    config = config_of(ctx)
    serial = {s.device_id: s for s in config.serial}
    now_s = time.time()
    if device in serial:
        transport, wanted = SERIAL, serial[device].protocol
        if protocol is not None and protocol != wanted:
            fail(f"{device} is configured as {wanted}; change the configuration", EXIT_USAGE)
    elif BLE_ADDRESS.match(device.upper()):
        device = device.upper()
        transport, wanted = BLE, _ble_protocol(config, device, protocol, seconds)
    else:
        known = ", ".join(serial) or "none configured"
        fail(
            f"{device!r} is neither a BLE address (AA:BB:CC:DD:EE:FF) nor a [[serial]] "
            f"device id ({known})",
            EXIT_USAGE,
        )
    with open_store(ctx) as store:
        if store.get_patient(patient_id) is None:
            fail(f"no patient {patient_id!r}; add it with `pulsegate patients add`")
        store.ensure_device(device, wanted, transport, now_s)
        store.bind(device, patient_id, now_s)
    click.echo(
        f"bound {device} ({wanted}, {transport}) to patient {patient_id}; "
        "a running daemon picks it up within a few seconds"
    )


@devices.command("unbind")
@click.argument("device")
@click.pass_context
def devices_unbind(ctx: click.Context, device: str) -> None:
    """End DEVICE's binding: its readings belong to nobody until it is bound again, and the
    daemon disconnects from a BLE device (the binding stays in the history)."""
    if BLE_ADDRESS.match(device.upper()):
        device = device.upper()
    with open_store(ctx) as store:
        patient_id = unbind(store, device, time.time())
    click.echo(f"unbound {device} from patient {patient_id}")


@devices.command("list")
@click.option("--history", is_flag=True, help="Every binding, past ones too.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def devices_list(ctx: click.Context, history: bool, as_json: bool) -> None:
    """Devices, the patient each is bound to, and their link status."""
    with open_store(ctx) as store:
        rows = binding_history(store) if history else list_devices(store)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    if not rows:
        click.echo("no devices; find one with `pulsegate devices scan`, then `devices bind`")
        return
    if history:
        for row in rows:
            end = "now" if row["end_s"] is None else _utc(row["end_s"])
            click.echo(
                f"  {row['device_id']:<20} {row['patient_id']:<20} {_utc(row['start_s'])} .. {end}"
            )
        return
    for row in rows:
        click.echo(
            f"  {row['id']:<20} {row['transport']:<6} {row['protocol']:<16} "
            f"{row['patient_id'] or '(unbound)':<20} {row['state'] or '-':<10} "
            f"data {_age(row['last_data_s'])}"
        )


def _utc(ts_s: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts_s))


def link_status_lines(store: Store) -> list[str]:
    """One line per device link for `pulsegate status`."""
    lines = []
    for row in device_statuses(store):
        extras = []
        if row["rssi_dbm"] is not None:
            extras.append(f"RSSI {row['rssi_dbm']} dBm")
        if row["battery_percent"] is not None:
            extras.append(f"battery {row['battery_percent']:g} %")
        if row["reconnects"]:
            extras.append(f"{row['reconnects']} reconnects")
        if row["state"] != "connected" and row["last_error"]:
            extras.append(f"last error: {row['last_error']}")
        lines.append(
            f"  {row['device_id']:<20} {row['transport']:<6} {row['state']:<10} "
            f"{row['patient_id'] or '(unbound)':<20} data {_age(row['last_data_s'])}"
            + (f"  {'; '.join(extras)}" if extras else "")
        )
    return lines


def link_statuses(store: Store) -> list[dict[str, Any]]:
    """The link status rows, for `pulsegate status --json`."""
    return device_statuses(store)
