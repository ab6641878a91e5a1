"""The detector state is saved only now and then; a daemon killed between two saves replays
the readings stored since the last one and carries on exactly as an uninterrupted one."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.engine import RuleEvent
from alerts.rules import Profile, Tier
from devices.clock import WallClock
from gateway.checkpoints import Checkpoints, catch_up
from gateway.config import parse_config
from gateway.daemon import Daemon, StoreWorker
from gateway.ingest import Ingest
from gateway.store import Patient, ReadingRow, Store

START_S = 1_700_000_000
PATIENT = Patient("p-ckpt", Tier.RED, Profile.DEFAULT)
Batch = list[ReadingRow]
EventKey = tuple[str, str, int]


def oximeter_rows(second: int, spo2_percent: float, device: str = "ox-1") -> Batch:
    ts_s = float(START_S + second)
    return [
        ReadingRow(ts_s, PATIENT.id, device, "spo2_percent", spo2_percent, 0),
        ReadingRow(ts_s, PATIENT.id, device, "pulse_bpm", 70.0 + second % 7, 0),
        ReadingRow(ts_s, PATIENT.id, device, "pi_percent", 3.0, 0),
    ]


def temperature_row(second: int, temp_c: float) -> ReadingRow:
    return ReadingRow(float(START_S + second), PATIENT.id, "th-1", "temp_c", temp_c, 0, "axillary")


@dataclass
class Run:
    """One daemon's detector over a store, batch by batch, as `_write_batch` does it."""

    daemon: Daemon
    store: Store | None

    @classmethod
    def open(cls, data_dir: Path | None) -> Run:
        config = parse_config({"gateway": {"data_dir": str(data_dir or ".")}})
        store = Store.open(data_dir / "p.db", "gw") if data_dir is not None else None
        if store is not None and store.get_patient(PATIENT.id) is None:
            store.add_patient(PATIENT, 0.0)
        worker = StoreWorker(store)  # type: ignore[arg-type]  # unused without a store
        daemon = Daemon(config, worker, WallClock(), Ingest())
        daemon.patients = {PATIENT.id: PATIENT}
        if store is not None:
            asyncio.run(daemon._restore_detectors())
        return cls(daemon, store)

    def feed(self, batches: list[Batch], final: bool = False) -> list[EventKey]:
        seen: list[EventKey] = []
        for i, batch in enumerate(batches):
            events, states = self.daemon._detect(batch, final and i == len(batches) - 1)
            if self.store is not None:
                newest_s = max(row.ts_s for row in batch)
                self.store.write_batch(batch, events, states, self.daemon._message, newest_s)
            seen += [_key(event) for _, event in events]
        return seen

    def state(self) -> dict[str, Any]:
        return self.daemon.detectors[PATIENT.id].to_json(with_tails=True)

    def close(self) -> None:
        self.daemon.worker.shutdown()
        if self.store is not None:
            self.store.close()


def _key(event: RuleEvent) -> EventKey:
    return (event.rule.value, event.transition.value, event.ts_s)


@dataclass(frozen=True)
class Recording:
    """A desaturating patient, with temperatures now and then (some stamped by the device
    half a minute before they arrive) and readings that arrive one batch late, cut into
    batches of 1-3 seconds; and the batch after which it is killed."""

    seconds: int
    dip_at: int
    dip_s: int
    temps: frozenset[int]
    old_temps: frozenset[int]
    late: frozenset[int]
    sizes: tuple[int, ...]
    cut: int

    def batches(self) -> list[Batch]:
        spo2 = [
            85.0 if self.dip_at <= s < self.dip_at + self.dip_s else 97.0
            for s in range(self.seconds)
        ]
        batches: list[Batch] = []
        second = 0
        for size in self.sizes:
            if second >= self.seconds:
                break
            span = range(second, min(second + size, self.seconds))
            batch = [row for s in span for row in _second(s, spo2)]
            batch += [temperature_row(s, 37.0 + s % 3) for s in span if s in self.temps]
            batch += [temperature_row(s - 30, 38.4) for s in span if s in self.old_temps]
            batch += [row for s in self.late if s + 2 in span for row in _late(s, spo2)]
            batches.append(batch)
            second += size
        return batches


recordings = st.builds(
    Recording,
    seconds=st.integers(200, 420),
    dip_at=st.integers(20, 150),
    dip_s=st.integers(30, 200),
    temps=st.frozensets(st.integers(0, 199), max_size=6),
    old_temps=st.frozensets(st.integers(30, 199), max_size=2),
    late=st.frozensets(st.integers(0, 197), max_size=3),
    sizes=st.lists(st.integers(1, 3), min_size=420, max_size=420).map(tuple),
    cut=st.integers(1, 60),
)


def _second(s: int, spo2: list[float]) -> Batch:
    return oximeter_rows(s, spo2[s])


def _late(s: int, spo2: list[float]) -> Batch:
    return oximeter_rows(s, spo2[s] - 3, device="ox-2")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recordings)
def test_a_kill_between_saves_gives_the_events_and_state_of_an_uninterrupted_run(
    recording: Recording,
) -> None:
    batches = recording.batches()
    cut = recording.cut * len(batches) // 61 + 1
    whole = Run.open(None)
    expected = whole.feed(batches)
    expected_state = whole.state()
    whole.close()
    with tempfile.TemporaryDirectory() as tmp:
        first = Run.open(Path(tmp))
        events = first.feed(batches[:cut])
        first.close()  # the process dies: nothing after the last commit survives
        second = Run.open(Path(tmp))
        events += second.feed(batches[cut:])
        state = second.state()
        second.close()
    assert events == expected
    assert state == expected_state


def test_the_state_is_saved_once_a_minute_of_data_when_nothing_forces_it(tmp_path: Path) -> None:
    run = Run.open(tmp_path)
    assert run.store is not None
    saves = []
    for second in range(300):
        events, states = run.daemon._detect(oximeter_rows(second, 97.0))
        run.store.write_batch(oximeter_rows(second, 97.0), events, states, run.daemon._message, 0)
        if states:
            saves.append(second)
    run.close()
    # the first batch (no state yet), then each time the data crosses a whole minute
    minute_starts = [s for s in range(1, 300) if (START_S + s) % 60 == 0]
    assert saves == [0, *minute_starts]


def test_a_restart_replays_the_readings_stored_after_the_saved_state(tmp_path: Path) -> None:
    run = Run.open(tmp_path)
    batches = [oximeter_rows(s, 85.0 if s >= 100 else 97.0) for s in range(150)]
    run.feed(batches)
    saved = run.daemon.checkpoints.saved
    assert saved == {PATIENT.id}
    live_state = run.state()
    assert run.store is not None
    stored_slot_s = run.store.detector_states()[PATIENT.id]["next_slot_s"]
    run.close()
    assert stored_slot_s < START_S + 150  # the saved state is behind the stored readings

    again = Run.open(tmp_path)
    assert again.state() == live_state
    again.close()


def test_a_thermometer_reading_in_its_own_second_is_replayed_not_saved(tmp_path: Path) -> None:
    run = Run.open(tmp_path)
    batches = [oximeter_rows(s, 97.0) for s in range(30)]
    batches[20].append(temperature_row(20, 36.9))
    saves = []
    for second, batch in enumerate(batches):
        events, states = run.daemon._detect(batch)
        assert run.store is not None
        run.store.write_batch(batch, events, states, run.daemon._message, 0)
        saves += [second] * bool(states)
    live_state = run.state()
    run.close()
    assert 20 not in saves and live_state["temperature"]["last_reading_s"] == START_S + 20

    again = Run.open(tmp_path)
    assert again.state() == live_state
    again.close()


def test_a_temperature_fed_with_other_seconds_forces_a_save(tmp_path: Path) -> None:
    run = Run.open(tmp_path)
    run.feed([oximeter_rows(s, 97.0) for s in range(10)])
    batch = oximeter_rows(10, 97.0) + oximeter_rows(11, 97.0) + [temperature_row(10, 36.9)]
    _, states = run.daemon._detect(batch)
    run.close()
    assert PATIENT.id in states


def test_catch_up_without_stored_readings_after_the_save_changes_nothing(tmp_path: Path) -> None:
    run = Run.open(tmp_path)
    run.feed([oximeter_rows(s, 97.0) for s in range(30)], final=True)
    assert run.store is not None
    detector = run.daemon.detectors[PATIENT.id]
    before = detector.to_json()
    assert catch_up(run.store, detector, PATIENT.id) == 0
    assert detector.to_json() == before
    run.close()


def test_temperatures_late_readings_and_events_force_a_save() -> None:
    checkpoints = Checkpoints(every_s=60)
    checkpoints.fed("a", must_save=False)
    assert checkpoints.take(START_S) == {"a"}  # never saved yet
    checkpoints.fed("a", must_save=False)
    checkpoints.fed("b", must_save=False)
    assert checkpoints.take(START_S + 1) == {"b"}
    checkpoints.fed("a", must_save=True)
    assert checkpoints.take(START_S + 2) == {"a"}
    checkpoints.fed("a", must_save=False)
    checkpoints.save_all = True
    assert checkpoints.take(START_S + 3) == {"a"}
    checkpoints.fed("b", must_save=False)
    assert checkpoints.take(START_S + 4, final=True) == {"b"}
