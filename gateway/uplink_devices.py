"""Watch the continuous devices (oximeters) of bound patients and queue device status and
data-gap records (sync/records.py) in the outbox, at priority STATUS.

Each check reads the readings committed since the previous check (an id range: no scan of
older data), steps every device's state machine, and writes the new states and the records
they produced in one transaction. The states are stored (uplink_devices), so a restart
neither repeats a record nor forgets an open gap; a check that finds the previous one long
ago notes that the gateway was not running. Runs on the store's thread.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from devices.protocols.catalog import UnknownProtocolError, get_protocol
from devices.protocols.reading import Metric
from gateway.migrations import reading_id_floor
from gateway.store import Store
from sync.payload import OutboxMessage
from sync.records import (
    GATEWAY_DOWN_REASON,
    NO_DATA_REASON,
    DataState,
    DeviceWatch,
    Limits,
    Record,
    Seen,
    link_reason,
    note_downtime,
    record_message,
    record_time_s,
    step_watch,
)

CONTINUOUS_METRICS = frozenset({Metric.SPO2, Metric.PULSE})
MAX_WINDOW_S = 3600  # a check never reads more than the last hour of readings
GATEWAY_DOWN_AFTER_S = 300.0  # checks this far apart: the gateway was not running between


@dataclass(frozen=True, slots=True)
class Topics:
    """Where the gateway's messages go."""

    prefix: str
    site: str
    gateway_id: str


def is_continuous(protocol: str) -> bool:
    """Does a device of `protocol` measure SpO2 or pulse continuously (so silence matters)?"""
    try:
        metrics = get_protocol(protocol).metrics
    except UnknownProtocolError:
        return False
    return bool(metrics & CONTINUOUS_METRICS)


def watched_devices(store: Store) -> dict[str, str]:
    """device id -> patient id of the continuous devices bound to a patient now."""
    rows = store.db.execute(
        "SELECT d.id, d.protocol, b.patient_id FROM devices d"
        " JOIN bindings b ON b.device_id = d.id AND b.end_s IS NULL"
    )
    return {device: patient for device, protocol, patient in rows if is_continuous(protocol)}


def load_watches(store: Store) -> dict[str, DeviceWatch]:
    rows = store.db.execute(
        "SELECT device_id, patient_id, state, since_s, last_data_s, last_valid_s, reasons,"
        " checked_through_s FROM uplink_devices"
    )
    return {
        device: DeviceWatch(
            device,
            patient,
            DataState(state),
            since,
            last_data,
            last_valid,
            tuple(json.loads(why)),
            checked,
        )
        for device, patient, state, since, last_data, last_valid, why, checked in rows
    }


def window_seen(store: Store, start_s: int, end_s: int) -> dict[str, Seen]:
    """device id -> what its readings of seconds [start_s, end_s) showed."""
    rows = store.db.execute(
        "SELECT r.device_id, r.metric, s.ts_s, s.value, s.quality FROM reading_samples s"
        " JOIN reading_series r ON r.id = s.series_id WHERE s.id >= ? AND s.id < ?",
        [reading_id_floor(start_s), reading_id_floor(end_s)],
    )
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    data: dict[str, float] = {}
    flags: dict[str, int] = {}
    for device, metric, ts_s, value, quality in rows:
        data[device] = max(ts_s, data.get(device, ts_s))
        if metric not in CONTINUOUS_METRICS:
            continue
        if value is None:
            flags[device] = flags.get(device, 0) | quality
        else:
            first[device] = min(ts_s, first.get(device, ts_s))
            last[device] = max(ts_s, last.get(device, ts_s))
    return {
        device: Seen(first.get(device), last.get(device), data[device], flags.get(device, 0))
        for device in data
    }


def _link_reasons(store: Store) -> dict[str, str]:
    rows = store.db.execute("SELECT device_id, state, last_error FROM device_status")
    return {device: link_reason(state, error) for device, state, error in rows}


def queue_messages(store: Store, messages: Iterable[tuple[OutboxMessage, float]]) -> int:
    """Insert (message, event time) pairs into the outbox; a message id already there is
    left alone (a resend of the same record). Call inside a transaction; returns how many
    were new."""
    cursor = store.db.conn.executemany(
        "INSERT OR IGNORE INTO outbox (priority, topic, message_id, payload, created_s)"
        " VALUES (?, ?, ?, ?, ?)",
        [
            (int(m.priority), m.topic, m.message_id, m.payload, created_s)
            for m, created_s in messages
        ],
    )
    return int(cursor.rowcount)


def _save(store: Store, watches: Iterable[DeviceWatch]) -> None:
    store.db.conn.executemany(
        "INSERT OR REPLACE INTO uplink_devices (device_id, patient_id, state, since_s,"
        " last_data_s, last_valid_s, reasons, checked_through_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                w.device_id,
                w.patient_id,
                w.state.value,
                w.since_s,
                w.last_data_s,
                w.last_valid_s,
                json.dumps(list(w.reasons)),
                w.checked_through_s,
            )
            for w in watches
        ],
    )


def _step(
    watch: DeviceWatch, seen: Seen, through_s: int, why_silent: str, limits: Limits
) -> tuple[DeviceWatch, list[Record]]:
    """step_watch, after a first step over the time the gateway was not running (if so)."""
    records: list[Record] = []
    if through_s - watch.checked_through_s > GATEWAY_DOWN_AFTER_S:
        restart_s = seen.first_valid_s or float(through_s)
        watch, records = step_watch(watch, Seen(), restart_s, GATEWAY_DOWN_REASON, limits)
        watch = note_downtime(watch)
    after, later = step_watch(watch, seen, through_s, why_silent, limits)
    return after, records + later


def check_devices(store: Store, through_s: int, topics: Topics, limits: Limits) -> int:
    """Step every watched device up to second `through_s` (readings before it are all
    committed); returns how many records were queued."""
    watched = watched_devices(store)
    watches = {
        device: watch
        for device, watch in load_watches(store).items()
        if watched.get(device) == watch.patient_id
    }
    for device, patient in watched.items():
        if device not in watches:
            watches[device] = DeviceWatch.start(device, patient, float(through_s))
    if not watches:
        return 0
    oldest_s = int(min(w.checked_through_s for w in watches.values()))
    start_s = max(oldest_s, through_s - MAX_WINDOW_S)
    seen = window_seen(store, start_s, through_s) if start_s < through_s else {}
    reasons = _link_reasons(store)
    stepped: list[DeviceWatch] = []
    queued: list[tuple[OutboxMessage, float]] = []
    for device, watch in watches.items():
        why_silent = reasons.get(device, NO_DATA_REASON)
        after, records = _step(watch, seen.get(device, Seen()), through_s, why_silent, limits)
        stepped.append(after)
        queued.extend(
            (record_message(topics.prefix, topics.site, topics.gateway_id, r), record_time_s(r))
            for r in records
        )
    with store.transaction():
        store.db.execute(
            f"DELETE FROM uplink_devices WHERE device_id NOT IN ({','.join('?' * len(watches))})",
            list(watches),
        )
        _save(store, stepped)
        queue_messages(store, queued)
    return len(queued)
