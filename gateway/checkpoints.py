"""When the daemon saves each patient's detector state, and how a restart catches up.

Saving every patient's state with every one-second batch more than tripled the bytes written
per reading. The state is saved instead only when replaying the stored readings could not
rebuild it exactly, and otherwise once a minute of data, all patients in the same batch (one
page written, not one per patient):
  - the patient has no saved state yet, or its detector was rebuilt (tier or profile changed);
  - the batch raised or cleared one of its alerts;
  - the batch fed it temperature readings that a replay cannot feed in the same order against
    the continuous seconds (`temperatures_replayable`: usually a thermometer's reading comes in
    the one second it was taken, and is replayable);
  - the batch fed it seconds it had already consumed (late readings, skipped: its saves carry
    its recent samples until those seconds leave its window, since samples rebuilt from the
    store would include them);
  - the clock was corrected (the detector's position moved with the readings);
  - the daemon is stopping.
Between saves, every batch that fed a detector committed its readings in the same transaction
as the alert rows, so on restart `catch_up` replays the stored readings since the saved
position through the detector (the engine gives the same result in any chunking), and the
detector ends exactly where the last committed batch left it.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from alerts.channels import Sample, build_channels
from alerts.engine import PatientDetector
from alerts.spot import TemperatureReading
from devices.protocols.reading import Metric
from gateway.migrations import reading_id_floor
from gateway.store import Store

CHECKPOINT_EVERY_S = 60  # seconds of data between saves of a state nothing else forced
_NO_END_ID = 2**63 - 1  # the largest SQLite integer


@dataclass(slots=True)
class Checkpoints:
    """Which patients' states the next batch saves."""

    every_s: int = CHECKPOINT_EVERY_S
    saved: set[str] = field(default_factory=set)  # patients whose state is in the store
    unsaved: set[str] = field(default_factory=set)  # fed since their state was last saved
    forced: set[str] = field(default_factory=set)  # must be saved with this batch
    save_all: bool = False  # e.g. after a clock correction
    # patient -> until which position its saves carry the recent samples: a late reading the
    # detector skipped is in the store, so samples rebuilt from the store would differ
    tails_until_s: dict[str, int] = field(default_factory=dict)
    _period: int | None = None  # the data minute of the last periodic save

    def fed(self, patient_id: str, must_save: bool) -> None:
        """A detector consumed this batch's data; `must_save` when a replay could not rebuild it."""
        self.unsaved.add(patient_id)
        if must_save or patient_id not in self.saved:
            self.forced.add(patient_id)

    def skipped_late(self, patient_id: str, next_slot_s: int, tail_len: int) -> None:
        """The detector skipped readings of seconds it had consumed: until they are older than
        its window, its saves carry its recent samples."""
        self.tails_until_s[patient_id] = next_slot_s + tail_len

    def with_tails(self, patient_id: str, next_slot_s: int | None) -> bool:
        """Whether this patient's state is saved with its recent samples."""
        until_s = self.tails_until_s.get(patient_id)
        if until_s is None or next_slot_s is None or next_slot_s >= until_s:
            self.tails_until_s.pop(patient_id, None)
            return False
        return True

    def take(self, newest_s: float | None, final: bool = False) -> set[str]:
        """The patients to save with the batch whose newest reading is at `newest_s`; they
        count as saved from now on (a refused batch keeps its states and retries them)."""
        periodic = False
        if newest_s is not None and (period := int(newest_s) // self.every_s) != self._period:
            periodic = self._period is not None
            self._period = period
        chosen = set(self.unsaved) if (final or periodic or self.save_all) else set(self.forced)
        self.unsaved -= chosen
        self.forced.clear()
        self.saved |= chosen
        self.save_all = False
        return chosen


def temperatures_replayable(
    readings: list[TemperatureReading],
    start_s: int | None,
    next_slot_s: int | None,
    last_reading_s: float | None,
) -> bool:
    """Whether `catch_up` feeds a batch's temperature readings as the batch did: the batch fed
    the detector one second (`start_s`, now consumed), the readings were taken in it, and they
    are newer than the last temperature before the batch."""
    if not readings:
        return True
    if start_s is None or next_slot_s != start_s + 1:
        return False
    return all(
        math.floor(ts_s) == start_s and (last_reading_s is None or ts_s > last_reading_s)
        for ts_s, _, _ in readings
    )


def catch_up(store: Store, detector: PatientDetector, patient_id: str) -> int:
    """Rebuild a restored detector's recent samples and replay the readings stored after its
    saved position (their alert events are already stored); returns the seconds replayed.

    A temperature replays after the continuous seconds up to its own, as its batch fed it
    (a batch that fed one otherwise forced a save)."""
    span = detector.history_span_s()
    if span is None:
        return 0
    samples = stored_samples(store, patient_id, span[0])
    built = build_channels(samples)
    if built is None:
        return 0
    if not detector.tails:
        detector.restore_tails(*built)
    last_s = detector.temperature.last_reading_s if detector.temperature else None
    temperatures = [
        t
        for t in stored_temperatures(store, patient_id, span[1])
        if last_s is None or t[0] > last_s
    ]
    times_s = [sample[0] for sample in samples]
    done = 0
    for second_s in sorted({math.floor(ts_s) for ts_s, _, _ in temperatures}):
        upto = bisect.bisect_left(times_s, second_s + 1)
        chunk = build_channels(samples[done:upto])
        if chunk is not None:
            detector.step(*chunk)
        detector.step_temperatures(sorted(t for t in temperatures if math.floor(t[0]) == second_s))
        done = upto
    rest = build_channels(samples[done:])
    if rest is not None:
        detector.step(*rest)
    assert detector.next_slot_s is not None
    return detector.next_slot_s - span[1]


def stored_samples(
    store: Store, patient_id: str, start_s: int, end_s: int | None = None
) -> list[Sample]:
    """The continuous readings of a patient for seconds [start_s, end_s) (end: the newest),
    in time order."""
    end_id = reading_id_floor(end_s) if end_s is not None else _NO_END_ID
    rows = store.db.execute(
        "SELECT ts_s, metric, value, quality FROM readings"
        " WHERE id >= ? AND id < ? AND patient_id = ? AND metric != ? ORDER BY id",
        [reading_id_floor(start_s), end_id, patient_id, Metric.TEMP.value],
    )
    return [(float(ts), str(metric), value, int(quality)) for ts, metric, value, quality in rows]


def stored_temperatures(store: Store, patient_id: str, start_s: int) -> list[TemperatureReading]:
    """The patient's temperature readings from second `start_s` on."""
    rows = store.db.execute(
        "SELECT ts_s, value, site FROM readings"
        " WHERE id >= ? AND patient_id = ? AND metric = ? AND value IS NOT NULL",
        [reading_id_floor(start_s), patient_id, Metric.TEMP.value],
    )
    return [(float(ts_s), float(value), site) for ts_s, value, site in rows]
