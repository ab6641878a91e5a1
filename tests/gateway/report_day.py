"""A simulated day of one red-tier patient, written into a real store through the real
detector and alert lifecycle, for the daily-report tests and the README's report screenshot.

Local day (UTC+8): the oximeter is worn 00:00-07:00 and 20:00-24:00. At night, twelve brief
dips to 92 % (desaturation events), the finger out of the probe 02:00-02:20, and at 03:00 a
slow fall to 86 % held for 6 minutes (S1, S2); in the evening 5 minutes of motion-flagged
values at 89 %. A thermometer reading every 30 minutes from 08:00 to 22:00, with a fever
peaking at 38.9 °C at 16:30 (T1, T2). The S1 alert is acknowledged by dr-wang at 03:30.

`python -m tests.gateway.report_day OUT.png` renders the report of that day.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alerts.channels import Sample, build_channels
from alerts.engine import PatientDetector
from alerts.events import RuleEvent
from alerts.lifecycle import Alert, AlertEventKind
from alerts.rules import Profile, Tier
from devices.protocols.reading import BodySite, Metric, Quality
from gateway.day_history import local_midnight_s
from gateway.report_render import render_report
from gateway.store import Patient, ReadingRow, Store
from sync.payload import OutboxMessage, alert_event_message

DAY = dt.date(2026, 11, 20)
UTC_OFFSET_S = 8 * 3600
PATIENT = "demo-desaturation"
OXIMETER, THERMOMETER = "sim-oximeter-1", "sim-thermometer-1"
HOUR_S = 3600
BASELINE_PERCENT = 96.0
DIP_PERCENT = 92.0
NADIR_PERCENT = 86.0
DESAT_START_H = 3.0
DESAT_FALL_S, DESAT_HOLD_S, DESAT_RISE_S = 180, 360, 120
PROBE_OFF_H = (2.0, 2.0 + 20 / 60)
MOTION_H = (21.0, 21.0 + 5 / 60)
MOTION_PERCENT = 89.0
FEVER_PEAK_H, FEVER_PEAK_C = 16.5, 38.9
WORN_H = ((0.0, 7.0), (20.0, 24.0))


@dataclass(frozen=True, slots=True)
class DayTruth:
    """The day as constructed, for the tests to compare with (1 Hz from local midnight)."""

    start_s: int
    spo2_percent: np.ndarray  # NaN where no usable value was sent
    motion: np.ndarray  # True where the value came flagged MOTION
    temperatures: tuple[tuple[float, float], ...]


def message(alert: Alert, kind: AlertEventKind, ts_s: float) -> OutboxMessage:
    return alert_event_message("pulsegate", "village-1", alert, kind, ts_s)


def spo2_truth() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(SpO2 with NaN for nothing usable, worn mask, motion mask), one value a second."""
    seconds = np.arange(86_400)
    worn = np.zeros(86_400, dtype=bool)
    for lo, hi in WORN_H:
        worn[int(lo * HOUR_S) : int(hi * HOUR_S)] = True
    spo2 = np.where(worn, BASELINE_PERCENT + (seconds // 13) % 2, np.nan)  # 96/97
    for k in range(12):  # a dip every 20 min from 00:10: 8 s down, 12 s at 92, 8 s up
        t0 = 600 + k * 1200 if k < 6 else int(4 * HOUR_S) + (k - 6) * 1200
        dip = np.r_[np.linspace(96, 92, 9)[1:], np.full(12, 92.0), np.linspace(92, 96, 9)[1:]]
        spo2[t0 : t0 + len(dip)] = np.round(dip)
    t0 = int(DESAT_START_H * HOUR_S)
    fall = np.round(np.linspace(BASELINE_PERCENT, NADIR_PERCENT, DESAT_FALL_S))
    rise = np.round(np.linspace(NADIR_PERCENT, BASELINE_PERCENT, DESAT_RISE_S))
    desat = np.r_[fall, np.full(DESAT_HOLD_S, NADIR_PERCENT), rise]
    spo2[t0 : t0 + len(desat)] = desat
    spo2[int(PROBE_OFF_H[0] * HOUR_S) : int(PROBE_OFF_H[1] * HOUR_S)] = np.nan
    motion = np.zeros(86_400, dtype=bool)
    motion[int(MOTION_H[0] * HOUR_S) : int(MOTION_H[1] * HOUR_S)] = True
    spo2[motion] = MOTION_PERCENT
    return spo2, worn, motion


def temperature_truth(start_s: int) -> tuple[tuple[float, float], ...]:
    """(UTC s, axillary °C) every 30 min, 08:00-22:00, a fever peaking at 16:30."""
    readings = []
    for half_hours in range(16, 45):
        hour = half_hours / 2
        rise = max(0.0, 1.0 - abs(hour - FEVER_PEAK_H) / 3.0)
        readings.append((start_s + hour * HOUR_S, round(36.6 + rise * (FEVER_PEAK_C - 36.6), 1)))
    return tuple(readings)


def write_day(store: Store, seed: int = 7) -> DayTruth:
    """Write the day's readings, and the alerts the detector raises on them, into `store`."""
    rng = random.Random(seed)
    start_s = local_midnight_s(DAY, UTC_OFFSET_S)
    patient = Patient(PATIENT, Tier.RED, Profile.DEFAULT)
    store.add_patient(patient, start_s - 86_400)
    for device, protocol in ((OXIMETER, "berrymed-bci"), (THERMOMETER, "hts")):
        store.ensure_device(device, protocol, "ble", start_s - 86_400)
        store.bind(device, PATIENT, start_s - 86_400)
    spo2, worn, motion = spo2_truth()
    temperatures = temperature_truth(start_s)
    detector = PatientDetector(Tier.RED, Profile.DEFAULT)
    for hour in range(24):
        lo_s, hi_s = start_s + hour * HOUR_S, start_s + (hour + 1) * HOUR_S
        rows = [
            row
            for i in range(hour * HOUR_S, (hour + 1) * HOUR_S)
            if worn[i]
            for row in _oximeter_rows(start_s + i, spo2[i], bool(motion[i]), rng)
        ]
        rows += [
            ReadingRow(ts_s, PATIENT, THERMOMETER, Metric.TEMP, temp_c, 0, BodySite.AXILLARY.value)
            for ts_s, temp_c in temperatures
            if lo_s <= ts_s < hi_s
        ]
        events = _detect(detector, rows)
        store.write_batch(rows, [(patient, e) for e in events], {}, message, hi_s)
        if hour == 3:
            s1 = store.db.execute("SELECT id FROM alerts WHERE rule = 'S1'").fetchone()
            store.ack(s1[0], "dr-wang", start_s + 3.5 * HOUR_S, message)
    return DayTruth(start_s, spo2, motion, temperatures)


def _oximeter_rows(ts_s: int, spo2: float, motion: bool, rng: random.Random) -> list[ReadingRow]:
    """One second of the oximeter: SpO2 and pulse (None and FINGER_OUT when off)."""
    if np.isnan(spo2):
        flags = int(Quality.FINGER_OUT | Quality.SEARCHING)
        return [
            ReadingRow(float(ts_s), PATIENT, OXIMETER, metric, None, flags)
            for metric in (Metric.SPO2, Metric.PULSE)
        ]
    flags = int(Quality.MOTION) if motion else 0
    pulse_bpm = float(round(70 + (96 - spo2) * 2 + rng.gauss(0, 1.5)))
    return [
        ReadingRow(float(ts_s), PATIENT, OXIMETER, Metric.SPO2, float(spo2), flags),
        ReadingRow(float(ts_s), PATIENT, OXIMETER, Metric.PULSE, pulse_bpm, flags),
    ]


def _detect(detector: PatientDetector, rows: list[ReadingRow]) -> list[RuleEvent]:
    samples: list[Sample] = [
        (r.ts_s, r.metric, r.value, r.quality) for r in rows if r.metric != Metric.TEMP
    ]
    events: list[RuleEvent] = []
    built = build_channels(samples)
    if built is not None:
        events += detector.step(*built)
    events += detector.step_temperatures(
        [(r.ts_s, r.value, r.site) for r in rows if r.metric == Metric.TEMP and r.value]
    )
    return events


def main(out: Path) -> None:
    """Render the simulated day's report (PNG or PDF by the suffix) into `out`."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "pulsegate.db", "gw-demo")
        try:
            write_day(store)
            fmt = "pdf" if out.suffix == ".pdf" else "png"
            out.write_bytes(
                render_report(store, PATIENT, DAY, fmt, utc_offset_s=UTC_OFFSET_S, site="village-1")
            )
        finally:
            store.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
