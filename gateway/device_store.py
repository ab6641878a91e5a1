"""Devices in the store: which patient wears which device over time, and each link's status.

Bindings are kept with their start and end, never deleted: a binding closed by `unbind` (or
replaced by a new `bind`) stays as history. These functions take the `Store` and run on
whichever thread owns it (the CLI's, or the daemon's store thread).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from devices.link import LinkStatus
from gateway.store import Store, StoreError

BLE = "ble"
SERIAL = "serial"


def unbind(store: Store, device_id: str, at_s: float) -> str:
    """End the device's open binding at `at_s`; returns the patient it was bound to."""
    rows = list(
        store.db.query(
            "SELECT patient_id FROM bindings WHERE device_id = ? AND end_s IS NULL", [device_id]
        )
    )
    if not rows:
        raise StoreError(f"{device_id} is not bound to a patient; see `pulsegate devices list`")
    with store.transaction():
        store.db.execute(
            "UPDATE bindings SET end_s = ? WHERE device_id = ? AND end_s IS NULL",
            [at_s, device_id],
        )
    patient_id: str = rows[0]["patient_id"]
    return patient_id


def get_device(store: Store, device_id: str) -> dict[str, Any] | None:
    rows = list(store.db.query("SELECT * FROM devices WHERE id = ?", [device_id]))
    return rows[0] if rows else None


def list_devices(store: Store) -> list[dict[str, Any]]:
    """Every known device with its current patient (None when unbound) and link status."""
    return list(
        store.db.query(
            "SELECT d.id, d.protocol, d.transport, b.patient_id, b.start_s AS bound_s,"
            " s.state, s.rssi_dbm, s.battery_percent, s.last_data_s, s.last_error"
            " FROM devices d"
            " LEFT JOIN bindings b ON b.device_id = d.id AND b.end_s IS NULL"
            " LEFT JOIN device_status s ON s.device_id = d.id"
            " ORDER BY d.transport, d.id"
        )
    )


def binding_history(store: Store, device_id: str | None = None) -> list[dict[str, Any]]:
    """Every binding, open or closed, oldest first."""
    where, args = ("WHERE device_id = ?", [device_id]) if device_id else ("", [])
    return list(
        store.db.query(
            f"SELECT device_id, patient_id, start_s, end_s FROM bindings {where}"
            " ORDER BY start_s, id",
            args,
        )
    )


def patient_at(store: Store, device_id: str, ts_s: float) -> str | None:
    """The patient `device_id` was bound to at `ts_s` (None if nobody)."""
    rows = list(
        store.db.query(
            "SELECT patient_id FROM bindings WHERE device_id = ? AND start_s <= ?"
            " AND (end_s IS NULL OR end_s > ?) ORDER BY start_s DESC LIMIT 1",
            [device_id, ts_s, ts_s],
        )
    )
    return rows[0]["patient_id"] if rows else None


def bound_devices(store: Store, transport: str) -> dict[str, str]:
    """device id -> protocol of the devices of `transport` that are bound to a patient now."""
    rows = store.db.query(
        "SELECT d.id, d.protocol FROM devices d JOIN bindings b ON b.device_id = d.id"
        " WHERE b.end_s IS NULL AND d.transport = ?",
        [transport],
    )
    return {row["id"]: row["protocol"] for row in rows}


def write_status(store: Store, statuses: Iterable[LinkStatus], now_s: float) -> int:
    """Upsert the link status rows in one transaction; returns how many."""
    rows = [
        (
            s.device_id,
            s.transport,
            s.address,
            s.protocol,
            s.state.value,
            s.rssi_dbm,
            s.battery_percent,
            s.last_data_s,
            s.connected_since_s,
            s.last_error,
            s.reconnects,
            s.bytes_received,
            now_s,
        )
        for s in statuses
    ]
    if not rows:
        return 0
    with store.transaction():
        store.db.conn.executemany(
            "INSERT OR REPLACE INTO device_status (device_id, transport, address, protocol,"
            " state, rssi_dbm, battery_percent, last_data_s, connected_since_s, last_error,"
            " reconnects, bytes_received, updated_s)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    return len(rows)


def device_statuses(store: Store) -> list[dict[str, Any]]:
    """Every device link's last known status, with the device's current patient."""
    return list(
        store.db.query(
            "SELECT s.*, b.patient_id FROM device_status s"
            " LEFT JOIN bindings b ON b.device_id = s.device_id AND b.end_s IS NULL"
            " ORDER BY s.transport, s.device_id"
        )
    )
