"""Device status and gap records from a real store: only continuous devices are watched, a
gap is reported once, across a reopened store too, and a gateway downtime is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alerts.lifecycle import Alert, AlertEventKind
from alerts.rules import Profile, Tier
from devices.protocols.reading import Metric
from gateway.store import Patient, ReadingRow, Store
from gateway.uplink_devices import Topics, check_devices
from sync.payload import OutboxMessage, OutboxPriority, alert_event_message
from sync.records import Limits

T0_S = 1_800_000_000
TOPICS = Topics("pulsegate", "village-1", "gw-1")
LIMITS = Limits(silent_after_s=120, no_signal_after_s=300)


def message(alert: Alert, kind: AlertEventKind, ts_s: float) -> OutboxMessage:
    return alert_event_message("pulsegate", "village-1", alert, kind, ts_s)


def open_store(path: Path) -> Store:
    return Store.open(path / "pulsegate.db", "gw-1")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = open_store(tmp_path)
    store.add_patient(Patient("p-1", Tier.RED, Profile.DEFAULT), T0_S)
    store.ensure_device("ox-1", "berrymed-bci", "ble", T0_S)
    store.ensure_device("th-1", "hts", "ble", T0_S)
    store.bind("ox-1", "p-1", T0_S)
    store.bind("th-1", "p-1", T0_S)
    return store


def watch_from_start(store: Store) -> None:
    """The first check starts the watch; readings after it count."""
    assert check_devices(store, T0_S, TOPICS, LIMITS) == 0


def oximetry(store: Store, start_s: int, end_s: int, value: float | None = 97.0) -> None:
    rows = [
        ReadingRow(T0_S + s, "p-1", "ox-1", metric, value, 0 if value else 1)
        for s in range(start_s, end_s)
        for metric in (Metric.SPO2, Metric.PULSE)
    ]
    store.write_batch(rows, [], {}, message, T0_S + end_s)


def records(store: Store) -> list[dict[str, object]]:
    rows = store.db.execute("SELECT priority, topic, payload FROM outbox ORDER BY id").fetchall()
    assert all(p == OutboxPriority.STATUS for p, _, _ in rows)
    assert all(t == "pulsegate/village-1/gw-1/devices" for _, t, _ in rows)
    return [json.loads(payload) for _, _, payload in rows]


def test_silence_and_return_of_the_oximeter_give_one_silent_one_back_one_gap(
    store: Store, tmp_path: Path
) -> None:
    watch_from_start(store)
    oximetry(store, 0, 60)
    assert check_devices(store, T0_S + 60, TOPICS, LIMITS) == 0
    assert check_devices(store, T0_S + 150, TOPICS, LIMITS) == 0
    assert check_devices(store, T0_S + 190, TOPICS, LIMITS) == 1
    assert check_devices(store, T0_S + 400, TOPICS, LIMITS) == 0
    store.close()
    store = open_store(tmp_path)  # a restart keeps the open gap
    assert check_devices(store, T0_S + 650, TOPICS, LIMITS) == 0
    assert check_devices(store, T0_S + 900, TOPICS, LIMITS) == 0
    oximetry(store, 1000, 1060)
    assert check_devices(store, T0_S + 1060, TOPICS, LIMITS) == 2
    assert check_devices(store, T0_S + 1090, TOPICS, LIMITS) == 0
    silent, back, gap = records(store)
    assert (silent["kind"], silent["event"], silent["device"]) == ("device", "silent", "ox-1")
    assert back["event"] == "back"
    assert (gap["kind"], gap["duration_s"], gap["reasons"]) == (
        "gap",
        1000 - 59,
        ["no data received"],
    )
    assert gap["start_time"] == "2027-01-15T08:00:59.000Z"


def test_thermometers_are_not_watched(store: Store) -> None:
    oximetry(store, 0, 600)
    assert check_devices(store, T0_S + 600, TOPICS, LIMITS) == 0
    watched = [row[0] for row in store.db.execute("SELECT device_id FROM uplink_devices")]
    assert watched == ["ox-1"]


def test_link_status_gives_the_reason_of_a_silence(store: Store) -> None:
    store.db.execute(
        "INSERT INTO device_status (device_id, transport, address, protocol, state, last_error,"
        " updated_s) VALUES ('ox-1', 'ble', 'AA:BB', 'berrymed-bci', 'waiting',"
        " 'device not found', ?)",
        [T0_S],
    )
    oximetry(store, 0, 60)
    check_devices(store, T0_S + 60, TOPICS, LIMITS)
    check_devices(store, T0_S + 200, TOPICS, LIMITS)
    [silent] = records(store)
    assert silent["reasons"] == ["no data; link waiting: device not found"]


def test_a_gateway_downtime_is_a_gap_with_that_reason(store: Store) -> None:
    watch_from_start(store)
    oximetry(store, 0, 60)
    check_devices(store, T0_S + 60, TOPICS, LIMITS)
    oximetry(store, 2000, 2030)  # the daemon was not running in between
    check_devices(store, T0_S + 2030, TOPICS, LIMITS)
    kinds = [(r["kind"], r.get("event")) for r in records(store)]
    assert kinds == [("device", "silent"), ("device", "back"), ("gap", None)]
    gap = records(store)[-1]
    assert gap["reasons"] == ["gateway was not running"]
    assert gap["duration_s"] == 2000 - 59


def test_rebinding_the_device_starts_a_fresh_watch(store: Store) -> None:
    oximetry(store, 0, 60)
    check_devices(store, T0_S + 60, TOPICS, LIMITS)
    check_devices(store, T0_S + 200, TOPICS, LIMITS)  # silent for p-1
    store.add_patient(Patient("p-2", Tier.GREEN, Profile.DEFAULT), T0_S + 210)
    store.bind("ox-1", "p-2", T0_S + 210)
    assert check_devices(store, T0_S + 220, TOPICS, LIMITS) == 0
    [(patient, state)] = store.db.execute("SELECT patient_id, state FROM uplink_devices")
    assert (patient, state) == ("p-2", "ok")
