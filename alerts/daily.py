"""Day- and night-level aggregates for the trend rules S5, H3, T3 and T5 (see alerts/baseline.py).

Pure numpy: arrays on a 1 Hz grid (one sample per second from `start_s`, UTC epoch seconds, NaN =
missing or not resting) or spot readings in, small frozen records out, so that the daemon can keep
a few weeks of history as aggregates rather than raw samples. Local calendar days come from the
caller's `utc_offset_s` (China: +8 h = 28_800 s); inputs are already through the quality gate.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from alerts.odi import SPO2_MAX_PERCENT, SPO2_MIN_PERCENT, preprocess

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SECONDS_PER_DAY = 86_400
HOUR_S = 3600
WINDOW_S = HOUR_S  # S5's rolling 1-h window
MIN_VALID_FRACTION = 0.8  # a window with less valid data is indeterminate
LEVEL_MIN = int(SPO2_MIN_PERCENT)
LEVELS = tuple(range(LEVEL_MIN, int(SPO2_MAX_PERCENT) + 1))  # whole-percent SpO2 levels
_EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class SpO2Day:
    """One local day of resting SpO2 for S5, as counts per whole-percent level 50..100.

    `counts[k]`: valid samples at level 50+k (continuous or spot). For each level index k:
    `low_window_s[k]` is the most seconds AT OR BELOW 50+k in any determinate rolling 1-h window
    ending this day (>= 80 % valid); `high_run_s[k]` is the longest run (in seconds) of
    determinate windows in which more than half of the valid samples are AT OR ABOVE 50+k (so
    the window median is >= 50+k). Spot-only days have zeros there.
    """

    day: dt.date
    counts: tuple[int, ...]
    low_window_s: tuple[int, ...] = (0,) * len(LEVELS)
    high_run_s: tuple[int, ...] = (0,) * len(LEVELS)

    @property
    def valid_s(self) -> int:
        return sum(self.counts)

    @property
    def mean_percent(self) -> float:
        total = self.valid_s
        if total == 0:
            return math.nan
        return sum(level * n for level, n in zip(LEVELS, self.counts, strict=True)) / total

    @classmethod
    def from_readings(cls, day: dt.date, readings_percent: npt.ArrayLike) -> SpO2Day:
        """A day of spot readings (whole percent; values outside 50-100 are ignored)."""
        values = np.asarray(readings_percent, dtype=np.float64)
        levels = values[(values >= SPO2_MIN_PERCENT) & (values <= SPO2_MAX_PERCENT)]
        index = np.floor(levels + 0.5).astype(np.int64) - LEVEL_MIN
        return cls(day, tuple(np.bincount(index, minlength=len(LEVELS)).tolist()))


@dataclass(frozen=True, slots=True)
class NightValue:
    """One night's statistic (H3: mean resting HR; T5: median skin temperature), dated by the
    morning; `valid_s` seconds of data went into it (NaN value: not enough data)."""

    day: dt.date
    value: float
    valid_s: int


@dataclass(frozen=True, slots=True)
class TemperatureDay:
    """One local day of (axillary-equivalent) thermometer readings for T3."""

    day: dt.date
    max_c: float
    readings: int


def local_date(ts_s: float, utc_offset_s: int) -> dt.date:
    """The local calendar date of a UTC epoch second."""
    return _EPOCH + dt.timedelta(days=int((ts_s + utc_offset_s) // SECONDS_PER_DAY))


def _day_numbers(start_s: int, n_samples: int, utc_offset_s: int) -> IntArray:
    return (start_s + utc_offset_s + np.arange(n_samples, dtype=np.int64)) // SECONDS_PER_DAY


def local_windows(
    start_s: int, n_samples: int, utc_offset_s: int, from_h: int, to_h: int
) -> list[tuple[dt.date, int, int]]:
    """Sample ranges [lo, hi) of a 1 Hz grid that fall in local hours [from_h, to_h), each dated
    by the day on which it ends (22-07 belongs to the morning's date). Partial windows at the
    edges of the grid are included. `from_h` and `to_h` must differ."""
    if from_h == to_h:
        raise ValueError("local_windows: from_h and to_h must differ")
    local_s = start_s + utc_offset_s + np.arange(n_samples, dtype=np.int64)
    shifted = local_s - to_h * HOUR_S  # the window now ends at local midnight of its date + 1
    length_s = ((to_h - from_h) % 24) * HOUR_S
    inside = (shifted % SECONDS_PER_DAY) >= SECONDS_PER_DAY - length_s
    key = shifted // SECONDS_PER_DAY + 1
    windows: list[tuple[dt.date, int, int]] = []
    edges = np.flatnonzero(np.diff(np.concatenate(([0], inside.astype(np.int8), [0]))))
    for lo, hi in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
        windows.append((_EPOCH + dt.timedelta(days=int(key[lo])), lo, hi))
    return windows


def aggregate_nights(
    start_s: int,
    values: npt.ArrayLike,
    utc_offset_s: int,
    statistic: Literal["mean", "median"],
    min_valid_s: int = HOUR_S,
    from_h: int = 0,
    to_h: int = 7,
) -> list[NightValue]:
    """Per night (local `from_h`..`to_h`, default 00:00-07:00), the mean or median of the valid
    1 Hz samples; NaN when fewer than `min_valid_s` seconds are valid."""
    data = np.asarray(values, dtype=np.float64)
    reduce = np.mean if statistic == "mean" else np.median
    nights: list[NightValue] = []
    for day, lo, hi in local_windows(start_s, len(data), utc_offset_s, from_h, to_h):
        valid = data[lo:hi][~np.isnan(data[lo:hi])]
        value = float(reduce(valid)) if len(valid) >= max(min_valid_s, 1) else math.nan
        nights.append(NightValue(day, value, len(valid)))
    return nights


def aggregate_temperature_days(
    ts_s: npt.ArrayLike, temp_c: npt.ArrayLike, utc_offset_s: int
) -> list[TemperatureDay]:
    """Per local day with at least one valid reading: the highest reading and the count."""
    times = np.asarray(ts_s, dtype=np.float64)
    temps = np.asarray(temp_c, dtype=np.float64)
    keep = ~np.isnan(temps) & ~np.isnan(times)
    days = (times[keep] + utc_offset_s) // SECONDS_PER_DAY
    out: list[TemperatureDay] = []
    for number in np.unique(days):
        on_day = temps[keep][days == number]
        date = _EPOCH + dt.timedelta(days=int(number))
        out.append(TemperatureDay(date, float(on_day.max()), len(on_day)))
    return out


def aggregate_spo2_days(
    start_s: int, spo2_percent: npt.ArrayLike, utc_offset_s: int
) -> list[SpO2Day]:
    """Per local day of a 1 Hz grid of resting SpO2 (NaN = missing or not at rest): counts per
    level and the rolling 1-h window figures of `SpO2Day`. A window belongs to the day of its last
    second, so pass the hour before the first day to have windows from its midnight."""
    spo2 = preprocess(spo2_percent)
    day_numbers = _day_numbers(start_s, len(spo2), utc_offset_s)
    starts = np.flatnonzero(np.diff(day_numbers, prepend=day_numbers[:1] - 1))
    valid = ~np.isnan(spo2)
    level_index = np.where(valid, spo2 - LEVEL_MIN, 0).astype(np.int64)
    per_day = [
        np.bincount(level_index[lo:hi][valid[lo:hi]], minlength=len(LEVELS))
        for lo, hi in zip(starts.tolist(), [*starts[1:].tolist(), len(spo2)], strict=True)
    ]
    low, high = _window_figures(spo2, day_numbers, starts)
    return [
        SpO2Day(
            _EPOCH + dt.timedelta(days=int(day_numbers[lo])),
            tuple(counts.tolist()),
            tuple(low[:, k].tolist()),
            tuple(high[:, k].tolist()),
        )
        for k, (lo, counts) in enumerate(zip(starts.tolist(), per_day, strict=True))
    ]


def _window_figures(
    spo2: FloatArray, day_numbers: IntArray, day_starts: IntArray
) -> tuple[IntArray, IntArray]:
    """(low_window_s, high_run_s) arrays of shape (levels, days)."""
    n_days = len(day_starts)
    low = np.zeros((len(LEVELS), n_days), dtype=np.int64)
    high = np.zeros((len(LEVELS), n_days), dtype=np.int64)
    if len(spo2) < WINDOW_S:
        return low, high
    valid = ~np.isnan(spo2)
    n_valid = _window_sums(valid)
    determinate = n_valid >= MIN_VALID_FRACTION * WINDOW_S
    window_day = day_numbers[WINDOW_S - 1 :]
    segments = np.searchsorted(window_day, day_numbers[day_starts])
    clipped = np.minimum(segments, len(window_day) - 1)
    has_windows = (segments < len(window_day)) & (window_day[clipped] == day_numbers[day_starts])
    segments = segments[has_windows]
    lowest, highest = (np.nanmin(spo2), np.nanmax(spo2)) if valid.any() else (0.0, 0.0)
    cache: dict[float, tuple[IntArray, IntArray]] = {}
    for k, level in enumerate(LEVELS):
        effective = float(np.clip(level, lowest - 1, highest + 1))
        if effective not in cache:
            at_or_below = _window_sums(valid & (spo2 <= effective))
            at_or_above = n_valid - _window_sums(valid & (spo2 < effective))
            low_s = np.where(determinate, at_or_below, 0)
            high_mask = determinate & (2 * at_or_above > n_valid)
            cache[effective] = (
                _segment_max(low_s, segments, has_windows),
                _segment_max(_runs(high_mask, segments), segments, has_windows),
            )
        low[k], high[k] = cache[effective]
    return low, high


def _window_sums(mask: npt.NDArray[np.bool_]) -> IntArray:
    """Count of True in every full window of WINDOW_S samples (one per window end)."""
    total = np.concatenate(([0], np.cumsum(mask, dtype=np.int64)))
    return total[WINDOW_S:] - total[:-WINDOW_S]


def _runs(mask: npt.NDArray[np.bool_], segments: IntArray) -> IntArray:
    """Length of the run of True ending at each position; runs restart at segment starts."""
    index = np.arange(len(mask), dtype=np.int64)
    breaks = np.zeros(len(mask), dtype=bool)
    breaks[segments] = True
    reset = np.where(~mask, index, np.where(breaks, index - 1, -1))
    return np.where(mask, index - np.maximum.accumulate(reset), 0)


def _segment_max(
    values: IntArray, segments: IntArray, has_windows: npt.NDArray[np.bool_]
) -> IntArray:
    """Maximum of `values` within each day's (strictly increasing) segment of window ends;
    0 for days without windows."""
    out = np.zeros(len(has_windows), dtype=np.int64)
    if len(segments):
        out[has_windows] = np.maximum.reduceat(values, segments)
    return out
