"""A restarted daemon rebuilds each detector's recent samples from the stored readings, so the
small saved state gives the same alerts as an uninterrupted run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from alerts.channels import build_channels
from alerts.engine import PatientDetector
from alerts.lifecycle import Alert, AlertEventKind
from alerts.rules import Profile, Tier
from devices.clock import WallClock
from gateway.config import parse_config
from gateway.daemon import Daemon, StoreWorker
from gateway.ingest import Ingest
from gateway.store import Patient, ReadingRow, Store
from sync.payload import OutboxMessage, alert_event_message

START_S = 1_700_000_000
PATIENT = Patient("p-restart", Tier.RED, Profile.DEFAULT)


def message(alert: Alert, kind: AlertEventKind, ts_s: float) -> OutboxMessage:
    return alert_event_message("pg", "site", alert, kind, ts_s)


def rows_for(seconds: range, spo2: list[float]) -> list[ReadingRow]:
    return [
        ReadingRow(float(START_S + s), PATIENT.id, "ox-1", "spo2_percent", spo2[s], 0)
        for s in seconds
    ]


@pytest.mark.parametrize("cut_s", [100, 320, 333, 900])
def test_restart_from_stored_readings_gives_the_same_events(tmp_path: Path, cut_s: int) -> None:
    spo2 = [97.0] * 300 + [85.0] * 200 + [96.0] * 1200
    whole_channels = build_channels(
        [(r.ts_s, r.metric, r.value, r.quality) for r in rows_for(range(len(spo2)), spo2)]
    )
    assert whole_channels is not None
    expected = PatientDetector(Tier.RED, Profile.DEFAULT).step(*whole_channels)

    store = Store.open(tmp_path / "p.db", "gw")
    store.add_patient(PATIENT, 0.0)
    first = PatientDetector(Tier.RED, Profile.DEFAULT)
    first_rows = rows_for(range(cut_s), spo2)
    built = build_channels([(r.ts_s, r.metric, r.value, r.quality) for r in first_rows])
    assert built is not None
    events = first.step(*built)
    state = first.to_json(with_tails=False)
    assert len(json.dumps(state)) < 1000  # small enough to write every second
    store.write_batch(first_rows, [], {PATIENT.id: state}, message, 0.0)

    config = parse_config({"gateway": {"data_dir": str(tmp_path)}})
    worker = StoreWorker(store)
    daemon = Daemon(config, worker, WallClock(), Ingest())
    asyncio.run(_restore(daemon))
    worker.shutdown()
    restored = daemon.detectors[PATIENT.id]
    rest = build_channels(
        [(r.ts_s, r.metric, r.value, r.quality) for r in rows_for(range(cut_s, len(spo2)), spo2)]
    )
    assert rest is not None
    events += restored.step(*rest)
    assert [(e.rule, e.transition, e.ts_s) for e in events] == [
        (e.rule, e.transition, e.ts_s) for e in expected
    ]
    assert all(len(tail) == restored.tail_len for tail in restored.tails.values())


async def _restore(daemon: Daemon) -> None:
    await daemon._refresh_patients()
    await daemon._restore_detectors()
