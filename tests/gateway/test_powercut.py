"""Power cuts: the real Store (its Store.open pragmas, migrations, write_batch, mark_sent) runs
over an APSW VFS that drops every write not yet synced when the power goes, at a random write
or sync. The durable image is then opened by the plain sqlite3 Store, as after a reboot.

"Acknowledged" = the Store call returned before the cut. Nothing acknowledged may be missing:
readings, alert events and their outbox rows, rows marked sent, the detector state.

The control run sets synchronous=NORMAL (WAL synced only at checkpoints): the same model must
then lose acknowledged batches, which shows that the simulated cut really drops unsynced data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from alerts.engine import RuleEvent, Transition
from alerts.lifecycle import Alert, AlertEventKind
from alerts.rules import Priority, Profile, RuleId, Tier
from gateway.store import Patient, ReadingRow, Store
from sync.payload import OutboxMessage, alert_event_message
from tests.gateway.powercut import CrashVFS, connect_through

T0_S = 1_800_000_000
PATIENTS = [Patient(f"p-{i}", Tier.RED, Profile.DEFAULT) for i in range(5)]
METRICS = ("spo2_percent", "pulse_bpm", "pi_percent")
BATCHES = 300
OPS_RANGE = (1, 1800)  # a full run is about 1,500-2,000 writes and syncs


def message(alert: Alert, kind: AlertEventKind, ts_s: float) -> OutboxMessage:
    return alert_event_message("pg", "site", alert, kind, ts_s)


@dataclass
class Acked:
    patients: set[str] = field(default_factory=set)
    readings: set[tuple[float, str, str]] = field(default_factory=set)
    events: set[tuple[str, str]] = field(default_factory=set)
    sent: set[int] = field(default_factory=set)
    states: dict[str, dict[str, int]] = field(default_factory=dict)


def drive(store: Store, vfs: CrashVFS, rng: random.Random, acked: Acked) -> None:
    """A day in the life of the store, one batch a second, until the power goes."""
    for patient in PATIENTS:
        store.add_patient(patient, T0_S)
        store.ensure_device(f"ox-{patient.id}", "berrymed-bci", "ble", T0_S)
        store.bind(f"ox-{patient.id}", patient.id, T0_S)
        if vfs.cut:
            return
        acked.patients.add(patient.id)
    desaturated: set[str] = set()
    for second in range(BATCHES):
        ts_s = float(T0_S + second)
        rows = [
            ReadingRow(ts_s, p.id, f"ox-{p.id}", metric, float(rng.randint(85, 99)), 0)
            for p in PATIENTS
            for metric in METRICS
        ]
        events = []
        if second % 9 == 0:
            patient = rng.choice(PATIENTS)
            onset = patient.id not in desaturated
            desaturated ^= {patient.id}
            transition = Transition.ONSET if onset else Transition.RESOLVED
            event = RuleEvent(RuleId.S1, transition, int(ts_s), Priority.HIGH, False, {"m": 86.0})
            events.append((patient, event))
        states = {p.id: {"next_slot_s": int(ts_s) + 1} for p in PATIENTS}
        produced = store.write_batch(rows, events, states, message, ts_s)
        if vfs.cut:
            return
        acked.readings.update((r.ts_s, r.device_id, r.metric) for r in rows)
        acked.events.update((alert.id, kind.value) for alert, kind in produced)
        acked.states = states
        if second % 5 == 0:
            ids = [row.id for row in store.pending_messages(3)]
            store.mark_sent(ids, ts_s)
            if vfs.cut:
                return
            acked.sent.update(ids)


def lost_after_cut(tmp_path: Path, seed: int, synchronous: str, checkpoint_pages: int) -> int:
    """Run until a random power cut, reboot, and count acknowledged things that are missing."""
    rng = random.Random(seed)
    vfs = CrashVFS(tmp_path / "after-cut", rng.randint(*OPS_RANGE))
    store = Store.open(tmp_path / "pulsegate.db", "gw", connect=connect_through(vfs))
    store.db.execute(f"PRAGMA synchronous = {synchronous}")
    store.db.execute(f"PRAGMA wal_autocheckpoint = {checkpoint_pages}")
    acked = Acked()
    drive(store, vfs, rng, acked)
    if not vfs.cut:
        vfs.power_cut()
    store.close()

    rebooted = Store.open(tmp_path / "after-cut" / "pulsegate.db", "gw")
    try:
        assert rebooted.db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        patients = {p.id for p in rebooted.list_patients()}
        readings = set(rebooted.db.execute("SELECT ts_s, device_id, metric FROM readings"))
        events = set(rebooted.db.execute("SELECT alert_id, kind FROM alert_events"))
        sent = {row[0] for row in rebooted.db.execute("SELECT id FROM outbox WHERE sent_s")}
        [(unpaired,)] = rebooted.db.execute(
            "SELECT count(*) FROM alert_events e WHERE NOT EXISTS (SELECT 1 FROM outbox o"
            " WHERE o.created_s = e.ts_s AND json_extract(o.payload, '$.alert_id') = e.alert_id)"
        )
        assert unpaired == 0  # an alert event and its outbox row are committed together
        states = rebooted.detector_states()
        stale_states = sum(
            states.get(pid, {}).get("next_slot_s", 0) < state["next_slot_s"]
            for pid, state in acked.states.items()
        )
    finally:
        rebooted.close()
    return (
        len(acked.patients - patients)
        + len(acked.readings - readings)
        + len(acked.events - events)
        + len(acked.sent - sent)
        + stale_states
    )


@pytest.mark.parametrize("seed", range(12))
def test_a_power_cut_loses_nothing_acknowledged(tmp_path: Path, seed: int) -> None:
    checkpoint_pages = 50 if seed % 2 else 1000  # the default, and checkpoints every few batches
    assert lost_after_cut(tmp_path, seed, "FULL", checkpoint_pages) == 0


def test_the_model_does_drop_unsynced_commits(tmp_path: Path) -> None:
    """Control: with synchronous=NORMAL the WAL is not synced per commit, and the cut loses
    acknowledged batches. If this passed with 0 lost, the model would prove nothing."""
    lost = [lost_after_cut(tmp_path / str(seed), seed, "NORMAL", 1000) for seed in range(4)]
    assert sum(lost) > 0
