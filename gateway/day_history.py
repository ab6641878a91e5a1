"""What the day- and night-level rules read: one patient's stored readings over one local day
or night, through the quality gate, on a 1 Hz grid, aggregated with alerts/daily.py.

Each function reads at most one day and runs on the store's thread (the daemon's StoreWorker),
so the batch writer that shares that thread is never held up for long. Readings are read from
the tables behind the `readings` view (migration 3): by their id range (an id is the reading's
second shifted left 16 bits, so a time range is a primary-key range; `ts_s` has no index) and
by the patient's series ids, which skips the view's join on every row (2.6 times faster on
10 patients' 1 Hz readings: bench/bench_daily_job.py). Days older than the retention period
come from the per-minute summaries (migration 4), each minute's median standing for its
seconds: without them H3 and T5, whose baselines need 7 nights, would never be determinate
with the default 7 days of raw readings.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from alerts.channels import LOW_CONFIDENCE
from alerts.daily import (
    HOUR_S,
    LEVELS,
    SECONDS_PER_DAY,
    NightValue,
    SpO2Day,
    TemperatureDay,
    aggregate_nights,
    aggregate_spo2_days,
    aggregate_temperature_days,
)
from alerts.spot import axillary_equivalent_c
from devices.protocols.reading import INVALIDATING, PLAUSIBLE_RANGE, BodySite, Metric
from gateway.migrations import reading_id_floor
from gateway.store import Store

FloatArray = npt.NDArray[np.float64]
Row = tuple[float, float | None, int, str | None]  # ts_s, value, quality, site
MinuteValue = Literal["value_median", "value_max"]  # a column of reading_minutes

NIGHT_END_H = 7  # every night window ends at 07:00 local
S6_NIGHT_START_H = 22  # S6 summarises 22:00-07:00; H3 and T5 use 00:00-07:00
SKIN_HOLD_S = 60  # a skin-temperature reading stands for up to a minute (per-minute wearables)
_EPOCH = dt.date(1970, 1, 1)


def local_midnight_s(day: dt.date, utc_offset_s: int) -> int:
    """UTC epoch second of 00:00 local time on `day`."""
    return (day - _EPOCH).days * SECONDS_PER_DAY - utc_offset_s


def read_rows(
    store: Store,
    patient_id: str,
    metric: Metric,
    start_s: int,
    end_s: int,
    minute_value: MinuteValue = "value_median",
) -> list[Row]:
    """The patient's readings of `metric` with start_s <= ts_s < end_s (whole seconds). Where
    retention has rolled raw readings up into per-minute summaries, each summarised minute
    gives back its `n` seconds at its median (or `minute_value`) with the OR of its flags."""
    sites = {
        series_id: site or None
        for series_id, site in store.db.execute(
            "SELECT id, site FROM reading_series WHERE patient_id = ? AND metric = ?",
            [patient_id, metric.value],
        )
    }
    if not sites:
        return []
    marks = ", ".join("?" * len(sites))
    cursor = store.db.execute(
        "SELECT ts_s, value, quality, series_id FROM reading_samples"
        f" WHERE id >= ? AND id < ? AND series_id IN ({marks})",
        [reading_id_floor(start_s), reading_id_floor(end_s), *sites],
    )
    rows = [(ts_s, value, quality, sites[series]) for ts_s, value, quality, series in cursor]
    minutes = store.db.execute(
        f"SELECT minute_s, n, {minute_value}, quality, series_id FROM reading_minutes"
        f" WHERE minute_s >= ? AND minute_s < ? AND series_id IN ({marks})",
        [start_s, end_s, *sites],
    )
    for minute_s, n, value, quality, series in minutes:
        site = sites[series]
        rows += [(float(minute_s + i), value, quality, site) for i in range(min(n, 60))]
    return rows


def one_hz_grid(
    start_s: int,
    n_s: int,
    rows: Sequence[Row],
    metric: Metric,
    resting: bool = True,
    hold_s: int = 0,
) -> FloatArray:
    """The usable values on a 1 Hz grid from `start_s` (NaN: none). Dropped: missing values,
    values the device flagged unusable, implausible values and, if `resting`, values flagged
    low-confidence (motion, low perfusion, weak signal). Several in one second: their mean.
    With `hold_s`, a value also fills up to `hold_s` empty seconds after it (sparse readings)."""
    grid = np.full(n_s, np.nan)
    if not rows:
        return grid
    ts = np.array([row[0] for row in rows], dtype=np.float64)
    values = np.array([math.nan if row[1] is None else row[1] for row in rows])
    quality = np.array([row[2] for row in rows], dtype=np.int64)
    low, high = PLAUSIBLE_RANGE[metric]
    excluded = int(INVALIDATING | LOW_CONFIDENCE) if resting else int(INVALIDATING)
    index = np.floor(ts).astype(np.int64) - start_s
    keep = (
        ~np.isnan(values)
        & ((quality & excluded) == 0)
        & (values >= low)
        & (values <= high)
        & (index >= 0)
        & (index < n_s)
    )
    total = np.bincount(index[keep], weights=values[keep], minlength=n_s)
    count = np.bincount(index[keep], minlength=n_s)
    np.divide(total, count, out=grid, where=count > 0)
    if hold_s:
        positions = np.arange(n_s)
        last = np.maximum.accumulate(np.where(count > 0, positions, -1))
        held = (last >= 0) & (positions - last <= hold_s)
        grid = np.where(held, grid[np.maximum(last, 0)], np.nan)
    return grid


def spo2_day(store: Store, patient_id: str, day: dt.date, utc_offset_s: int) -> SpO2Day:
    """S5's aggregate of one local calendar day of resting SpO2 (the hour before midnight is
    read too, so that the day's rolling 1-h windows start at midnight)."""
    start_s = local_midnight_s(day, utc_offset_s) - HOUR_S
    n_s = HOUR_S + SECONDS_PER_DAY
    rows = read_rows(store, patient_id, Metric.SPO2, start_s, start_s + n_s)
    grid = one_hz_grid(start_s, n_s, rows, Metric.SPO2)
    records = aggregate_spo2_days(start_s, grid, utc_offset_s)
    return next((r for r in records if r.day == day), SpO2Day(day, (0,) * len(LEVELS)))


def spo2_night(store: Store, patient_id: str, night: dt.date, utc_offset_s: int) -> FloatArray:
    """S6's input: resting SpO2, 1 Hz, from 22:00 the evening before `night` to 07:00."""
    end_s = local_midnight_s(night, utc_offset_s) + NIGHT_END_H * HOUR_S
    start_s = end_s - (24 - S6_NIGHT_START_H + NIGHT_END_H) * HOUR_S
    rows = read_rows(store, patient_id, Metric.SPO2, start_s, end_s)
    return one_hz_grid(start_s, end_s - start_s, rows, Metric.SPO2)


def resting_pulse_night(
    store: Store, patient_id: str, night: dt.date, utc_offset_s: int
) -> NightValue:
    """H3's input: the mean resting pulse from 00:00 to 07:00 on `night` (NaN under 1 h)."""
    start_s = local_midnight_s(night, utc_offset_s)
    n_s = NIGHT_END_H * HOUR_S
    rows = read_rows(store, patient_id, Metric.PULSE, start_s, start_s + n_s)
    grid = one_hz_grid(start_s, n_s, rows, Metric.PULSE)
    return _night(aggregate_nights(start_s, grid, utc_offset_s, "mean"), night)


def skin_temperature_night(
    store: Store, patient_id: str, night: dt.date, utc_offset_s: int
) -> NightValue:
    """T5's input: the median wearable skin temperature from 00:00 to 07:00 on `night`, from
    readings whose site is `skin` only (NaN under 1 h of data)."""
    start_s = local_midnight_s(night, utc_offset_s)
    n_s = NIGHT_END_H * HOUR_S
    rows = read_rows(store, patient_id, Metric.TEMP, start_s, start_s + n_s)
    skin = [row for row in rows if row[3] == BodySite.SKIN.value]
    grid = one_hz_grid(start_s, n_s, skin, Metric.TEMP, resting=False, hold_s=SKIN_HOLD_S)
    return _night(aggregate_nights(start_s, grid, utc_offset_s, "median"), night)


def _night(nights: list[NightValue], night: dt.date) -> NightValue:
    return next((value for value in nights if value.day == night), NightValue(night, math.nan, 0))


def temperature_days(
    store: Store, patient_id: str, first: dt.date, last: dt.date, utc_offset_s: int
) -> list[TemperatureDay]:
    """T3's input: per local day from `first` to `last`, the highest axillary-equivalent
    thermometer reading (skin, finger and toe readings are not body temperature)."""
    start_s = local_midnight_s(first, utc_offset_s)
    end_s = local_midnight_s(last + dt.timedelta(days=1), utc_offset_s)
    times, temps = axillary_readings(store, patient_id, start_s, end_s)
    return aggregate_temperature_days(times, temps, utc_offset_s)


def axillary_readings(
    store: Store, patient_id: str, start_s: int, end_s: int
) -> tuple[list[float], list[float]]:
    """(times, axillary-equivalent °C) of the patient's usable thermometer readings with
    start_s <= ts_s < end_s, oldest first (skin, finger and toe readings left out; a
    summarised minute gives its highest reading)."""
    times: list[float] = []
    temps: list[float] = []
    low, high = PLAUSIBLE_RANGE[Metric.TEMP]
    rows = read_rows(store, patient_id, Metric.TEMP, start_s, end_s, "value_max")
    for ts_s, value, quality, site in sorted(rows, key=lambda row: row[0]):
        if value is None or quality & INVALIDATING or not low <= value <= high:
            continue
        axillary_c = axillary_equivalent_c(value, site)
        if axillary_c is not None:
            times.append(ts_s)
            temps.append(axillary_c)
    return times, temps
