"""Aggregation of 1 Hz grids and spot readings into local days and nights (China, UTC+8)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from alerts.daily import (
    LEVELS,
    WINDOW_S,
    NightValue,
    SpO2Day,
    TemperatureDay,
    aggregate_nights,
    aggregate_spo2_days,
    aggregate_temperature_days,
    local_date,
    local_windows,
)
from alerts.odi import preprocess

CHINA_S = 8 * 3600
HOUR_S = 3600
JAN_1_NOON_UTC = int(dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC).timestamp())  # 20:00 local


def test_local_date_uses_the_callers_offset() -> None:
    four_pm_utc = JAN_1_NOON_UTC + 4 * HOUR_S
    assert local_date(four_pm_utc, 0) == dt.date(2024, 1, 1)
    assert local_date(four_pm_utc, CHINA_S) == dt.date(2024, 1, 2)


def test_local_windows_are_dated_by_their_morning() -> None:
    n = 36 * HOUR_S  # 20:00 Jan 1 to 08:00 Jan 3, local
    assert local_windows(JAN_1_NOON_UTC, n, CHINA_S, 0, 7) == [
        (dt.date(2024, 1, 2), 4 * HOUR_S, 11 * HOUR_S),
        (dt.date(2024, 1, 3), 28 * HOUR_S, 35 * HOUR_S),
    ]
    assert local_windows(JAN_1_NOON_UTC, n, CHINA_S, 22, 7) == [
        (dt.date(2024, 1, 2), 2 * HOUR_S, 11 * HOUR_S),
        (dt.date(2024, 1, 3), 26 * HOUR_S, 35 * HOUR_S),
    ]
    assert local_windows(JAN_1_NOON_UTC, 3 * HOUR_S, CHINA_S, 22, 7) == [
        (dt.date(2024, 1, 2), 2 * HOUR_S, 3 * HOUR_S)  # a partial night at the edge
    ]
    with pytest.raises(ValueError, match="must differ"):
        local_windows(JAN_1_NOON_UTC, n, CHINA_S, 7, 7)


def test_aggregate_nights_mean_median_and_too_little_data() -> None:
    hr = np.full(36 * HOUR_S, np.nan)
    hr[4 * HOUR_S : 6 * HOUR_S] = 60.0
    hr[6 * HOUR_S : 7 * HOUR_S] = 90.0  # night 1: 2 h at 60, 1 h at 90
    hr[28 * HOUR_S : 28 * HOUR_S + 1800] = 55.0  # night 2: only 30 min
    hr[12 * HOUR_S] = 200.0  # daytime, outside every night
    mean = aggregate_nights(JAN_1_NOON_UTC, hr, CHINA_S, "mean")
    assert mean[0] == NightValue(dt.date(2024, 1, 2), 70.0, 3 * HOUR_S)
    assert mean[1].day == dt.date(2024, 1, 3) and math.isnan(mean[1].value)
    assert mean[1].valid_s == 1800
    assert aggregate_nights(JAN_1_NOON_UTC, hr, CHINA_S, "median")[0].value == 60.0


def test_aggregate_temperature_days_by_local_date() -> None:
    times = [JAN_1_NOON_UTC, JAN_1_NOON_UTC + 3 * HOUR_S, JAN_1_NOON_UTC + 5 * HOUR_S]
    days = aggregate_temperature_days(
        [*times, JAN_1_NOON_UTC], [37.0, 38.6, 38.1, math.nan], CHINA_S
    )
    assert days == [
        TemperatureDay(dt.date(2024, 1, 1), 38.6, 2),  # 20:00 and 23:00 local
        TemperatureDay(dt.date(2024, 1, 2), 38.1, 1),  # 01:00 local
    ]


def test_spo2_day_from_readings_counts_mean_and_range() -> None:
    day = SpO2Day.from_readings(dt.date(2024, 1, 1), [96, 95, 97, 30, 120])
    assert day.valid_s == 3
    assert day.mean_percent == 96.0
    assert day.counts[96 - LEVELS[0]] == 1
    assert math.isnan(SpO2Day.from_readings(dt.date(2024, 1, 1), []).mean_percent)


def _brute_force(values: np.ndarray, level: int) -> tuple[np.ndarray, np.ndarray]:
    """Per window: seconds <= level if determinate else 0; whether median >= level holds by the
    'more than half at or above' rule."""
    windows = sliding_window_view(values, WINDOW_S)
    n_valid = (~np.isnan(windows)).sum(axis=1)
    determinate = n_valid >= 0.8 * WINDOW_S
    with np.errstate(invalid="ignore"):
        low = np.where(determinate, (windows <= level).sum(axis=1), 0)
        high = determinate & (2 * (windows >= level).sum(axis=1) > n_valid)
    return low, high


def _longest_run(mask: np.ndarray) -> int:
    best = run = 0
    for value in mask.tolist():
        run = run + 1 if value else 0
        best = max(best, run)
    return best


def test_aggregate_spo2_days_window_figures_match_a_brute_force_count() -> None:
    rng = np.random.default_rng(7)
    start_s = JAN_1_NOON_UTC + 2 * HOUR_S  # 22:00 local: the grid spans local midnight
    values = 95 + np.cumsum(rng.integers(-1, 2, size=4 * HOUR_S)).clip(-8, 3).astype(float)
    values[rng.random(len(values)) < 0.1] = np.nan
    values[5000:5300] = np.nan
    days = aggregate_spo2_days(start_s, values, CHINA_S)
    assert [d.day for d in days] == [dt.date(2024, 1, 1), dt.date(2024, 1, 2)]
    assert sum(d.valid_s for d in days) == int((~np.isnan(values)).sum())
    midnight = 2 * HOUR_S  # index of local midnight; window k ends at sample k + WINDOW_S - 1
    first_day_windows = midnight - (WINDOW_S - 1)
    filtered = preprocess(values)  # the aggregate sees the quality-gated, median-filtered series
    for level in (86, 90, 93, 95, 97):
        low, high = _brute_force(filtered, level)
        k = level - LEVELS[0]
        assert days[0].low_window_s[k] == low[:first_day_windows].max()
        assert days[1].low_window_s[k] == low[first_day_windows:].max()
        assert days[0].high_run_s[k] == _longest_run(high[:first_day_windows])
        assert days[1].high_run_s[k] == _longest_run(high[first_day_windows:])
    assert any(d.low_window_s[93 - LEVELS[0]] > 0 for d in days)


def test_median_at_or_above_whenever_more_than_half_is() -> None:
    rng = np.random.default_rng(3)
    values = rng.integers(88, 99, size=WINDOW_S + 50).astype(float)
    windows = sliding_window_view(values, WINDOW_S)
    for level in range(88, 99):
        more_than_half = 2 * (windows >= level).sum(axis=1) > WINDOW_S
        assert (np.median(windows[more_than_half], axis=1) >= level).all()


def test_a_grid_shorter_than_an_hour_has_counts_but_no_windows() -> None:
    days = aggregate_spo2_days(JAN_1_NOON_UTC, np.full(600, 96.0), CHINA_S)
    assert len(days) == 1 and days[0].valid_s == 600
    assert set(days[0].low_window_s) == {0} and set(days[0].high_run_s) == {0}
