"""The daemon's detectors follow the patients' settings: overrides from the store are in force
at start (after a restart too), and a change while running refits the detector without
forgetting an active rule."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.engine import Transition
from alerts.rules import Profile, RuleId, Tier
from devices.clock import ScaledClock
from gateway.config import parse_config
from gateway.daemon import Daemon, StoreWorker
from gateway.ingest import Ingest
from gateway.patient_settings import EchoRoute, set_local_settings
from gateway.store import Patient, ReadingRow, Store
from sync.settings_payload import make_settings

PATIENT = Patient("p-1", Tier.GREEN, Profile.DEFAULT)
ROUTE = EchoRoute("pulsegate", "site")


def spo2_rows(start_s: int, seconds: int, percent: float) -> list[ReadingRow]:
    return [
        ReadingRow(float(start_s + i), PATIENT.id, "ox-1", "spo2_percent", percent, 0)
        for i in range(seconds)
    ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "pulsegate.db", "gw")
    opened.add_patient(PATIENT, 0.0)
    yield opened
    opened.close()


def new_daemon(tmp_path: Path, store: Store) -> Daemon:
    config = parse_config({"gateway": {"data_dir": str(tmp_path)}})
    return Daemon(config, StoreWorker(store), ScaledClock(1), Ingest())


def s2_limit(daemon: Daemon) -> float:
    rule = next(r for r in daemon.detectors[PATIENT.id].rules if r.rule is RuleId.S2)
    return rule.alarm[0].high


def set_s2_threshold(store: Store, threshold: float) -> None:
    settings = make_settings("green", "default", {"S2": {"threshold": threshold}})
    set_local_settings(store, PATIENT.id, lambda _old: settings, "nurse", ROUTE, 1.0)


def s2_transitions(daemon: Daemon, rows: list[ReadingRow]) -> list[Transition]:
    events, _ = daemon._detect(rows)
    return [event.transition for _, event in events if event.rule is RuleId.S2]


async def test_an_override_from_the_store_decides_whether_97_percent_raises_s2(
    tmp_path: Path, store: Store
) -> None:
    plain = new_daemon(tmp_path, store)
    await plain._refresh_patients()
    assert s2_transitions(plain, spo2_rows(0, 300, 97.0)) == []
    plain.worker.shutdown()

    set_s2_threshold(store, 98)
    daemon = new_daemon(tmp_path, store)
    await daemon._refresh_patients()
    assert s2_transitions(daemon, spo2_rows(0, 300, 97.0)) == [Transition.ONSET]
    assert s2_limit(daemon) == 98.0
    daemon.worker.shutdown()


async def test_a_change_while_running_refits_the_detector_and_keeps_s2_active(
    tmp_path: Path, store: Store
) -> None:
    daemon = new_daemon(tmp_path, store)
    await daemon._refresh_patients()
    assert s2_transitions(daemon, spo2_rows(0, 300, 90.0)) == [Transition.ONSET]
    before = daemon.detectors[PATIENT.id]
    await daemon.worker.call(set_s2_threshold, store, 93)
    await daemon._refresh_patients()
    # 93.5 % clears the default S2 (>= 94 for 10 min) no sooner than the new one (>= 95), and
    # neither within these 5 minutes: still active, no second onset, no resolution
    assert s2_transitions(daemon, spo2_rows(300, 300, 93.5)) == []
    refitted = daemon.detectors[PATIENT.id]
    assert refitted is not before and s2_limit(daemon) == 93.0
    assert refitted.rule_states[RuleId.S2].active
    # and it clears by the new clear level: 10 min at >= 95 %
    assert s2_transitions(daemon, spo2_rows(600, 700, 95.0)) == [Transition.RESOLVED]
    daemon.worker.shutdown()


async def test_a_restarted_daemon_restores_its_detectors_with_the_overrides(
    tmp_path: Path, store: Store
) -> None:
    set_s2_threshold(store, 96)
    first = new_daemon(tmp_path, store)
    await first._refresh_patients()
    rows = spo2_rows(0, 300, 95.0)
    events, _ = first._detect(rows)
    state = first.detectors[PATIENT.id].to_json(with_tails=False)
    store.write_batch(rows, events, {PATIENT.id: state}, first._message, 300.0)
    first.worker.shutdown()

    second = new_daemon(tmp_path, store)
    await second._refresh_patients()
    await second._restore_detectors()
    assert s2_limit(second) == 96.0
    assert second.detectors[PATIENT.id].rule_states[RuleId.S2].active
    # 95 % is still an S2 for this patient: nothing clears, nothing is raised again
    assert s2_transitions(second, spo2_rows(300, 900, 95.0)) == []
    second.worker.shutdown()
