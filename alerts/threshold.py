"""Vectorised window rules over a 1 Hz grid: persistence, SatSeconds and hysteresis.

Pure numpy: arrays in, per-sample state out. Every channel array holds the carried history
(`history_s` samples of the past) followed by the new samples; NaN where nothing was received.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alerts.rules import (
    CROSSING_WINDOW_S,
    LOW_QUALITY_FRACTION,
    LOW_QUALITY_WINDOW_S,
    Band,
    Channel,
    Statistic,
    WindowRule,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


def window_sums(indicator: npt.NDArray[np.bool_], window_s: int) -> IntArray:
    """For each window of `window_s` samples ending at indicator[window_s-1:], how many are
    True (a difference of cumulative sums: O(1) per window)."""
    counts = np.concatenate(([0], np.cumsum(indicator, dtype=np.int64)))
    return np.asarray(counts[window_s:] - counts[:-window_s], dtype=np.int64)


class Counts:
    """Cumulative counts of predicates over one series, computed once and shared by every
    window and rule that asks (S1, S2 and S3 all read SpO2)."""

    def __init__(self, history: FloatArray) -> None:
        self.history = history
        self._cumulative: dict[tuple[str, float], npt.NDArray[np.int32]] = {}

    def cumulative(self, op: str, value: float = 0.0) -> npt.NDArray[np.int32]:
        key = (op, value)
        found = self._cumulative.get(key)
        if found is None:
            indicator = _indicator(self.history, op, value)
            found = np.zeros(len(indicator) + 1, dtype=np.int32)
            np.cumsum(indicator, dtype=np.int32, out=found[1:])
            self._cumulative[key] = found
        return found

    def in_windows(self, op: str, value: float, window_s: int, new: int) -> npt.NDArray[np.int32]:
        """Count of the predicate in the windows of `window_s` ending at the last `new`."""
        cumulative = self.cumulative(op, value)
        end = len(self.history) + 1
        return cumulative[end - new : end] - cumulative[end - new - window_s : end - window_s]


def _indicator(history: FloatArray, op: str, value: float) -> BoolArray:
    """Where `history op value` holds (NaN never does; "valid" means not NaN). Comparisons
    with NaN are simply False in numpy: no floating-point warning to silence."""
    if op == "valid":
        return np.asarray(~np.isnan(history), dtype=np.bool_)
    if op == "<=":
        return np.asarray(history <= value, dtype=np.bool_)
    if op == "<":
        return np.asarray(history < value, dtype=np.bool_)
    if op == "==":
        return np.asarray(history == value, dtype=np.bool_)
    raise ValueError(f"unknown predicate {op!r}")


@dataclass(frozen=True, slots=True)
class Windows:
    """The windows of `window_s` samples ending at each of the last `new` samples of a series.

    The "window median" of the rules is the lower median (the ceil(n/2)-th smallest of the n
    valid samples, `statistics.median_low`): then "median <= x" is exactly "at least half of the
    valid samples are <= x", a count that cumulative sums give for every window at once.
    """

    counts: Counts
    window_s: int
    new: int
    valid: npt.NDArray[np.int32]
    determinate: BoolArray

    @classmethod
    def of(cls, counts: Counts, window_s: int, new: int, min_valid: float) -> Windows:
        valid = counts.in_windows("valid", 0.0, window_s, new)
        return cls(counts, window_s, new, valid, valid >= max(1.0, min_valid * window_s))

    def count(self, op: str, value: float) -> npt.NDArray[np.int32]:
        return self.counts.in_windows(op, value, self.window_s, self.new)

    def median_in(self, band: Band) -> BoolArray:
        """Lower median inside `band`, per window (False where indeterminate)."""
        half = (self.valid + 1) // 2
        ok = self.determinate.copy()
        if np.isfinite(band.high):
            ok &= self.count("<=", band.high) >= half
        if np.isfinite(band.low):
            ok &= self.count("<" if band.low_inclusive else "<=", band.low) < half
        return ok

    def fractions(self) -> FloatArray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(self.count("==", 1.0) / self.valid, dtype=np.float64)

    def in_bands(self, statistic: Statistic, bands: tuple[Band, ...]) -> BoolArray:
        result = np.zeros(self.new, dtype=np.bool_)
        fractions = self.fractions() if statistic == "fraction" else None
        for band in bands:
            if fractions is None:
                result |= self.median_in(band)
            else:
                result |= self.determinate & in_band(fractions, band)
        return result

    def value_at(self, statistic: Statistic, index: int) -> float:
        """The statistic of one window (for the record of an alert), NaN if indeterminate."""
        if not self.determinate[index]:
            return math.nan
        end = len(self.counts.history) - self.new + index + 1
        window = self.counts.history[end - self.window_s : end]
        values = np.sort(window[~np.isnan(window)])
        if statistic == "fraction":
            return float(values.sum() / len(values))
        return float(values[(len(values) + 1) // 2 - 1])


def in_band(values: FloatArray, band: Band) -> BoolArray:
    """`band` membership; NaN is never in a band."""
    with np.errstate(invalid="ignore"):
        above = values >= band.low if band.low_inclusive else values > band.low
        return np.asarray(above & (values <= band.high), dtype=np.bool_)


def run_lengths(mask: BoolArray, carried_run: int) -> IntArray:
    """Length of the run of True ending at each position, continuing a run of `carried_run`."""
    index = np.arange(len(mask), dtype=np.int64)
    last_false = np.maximum.accumulate(np.where(mask, -1, index))
    return np.where(last_false < 0, index + 1 + carried_run, index - last_false)


def hysteresis(set_mask: BoolArray, clear_mask: BoolArray, initial: bool) -> BoolArray:
    """On after a set, off after a clear (a set wins over a clear at the same sample)."""
    index = np.arange(len(set_mask), dtype=np.int64)
    last_set = np.maximum.accumulate(np.where(set_mask, index, -1))
    last_clear = np.maximum.accumulate(np.where(clear_mask, index, -1))
    untouched = (last_set < 0) & (last_clear < 0)
    return np.asarray(np.where(untouched, initial, last_set >= last_clear), dtype=np.bool_)


def run_sums(values: FloatArray, carried_sum: float) -> FloatArray:
    """Running sum of `values` that restarts after every 0; the first run continues from
    `carried_sum`."""
    total = np.cumsum(values)
    index = np.arange(len(values))
    last_zero = np.maximum.accumulate(np.where(values == 0, index, -1))
    base = np.where(last_zero >= 0, total[np.maximum(last_zero, 0)], -carried_sum)
    return np.asarray(total - base, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """What a rule computed for each new sample."""

    windows: Windows  # the onset windows (the doubled ones where `degraded`)
    short_windows: Windows
    degraded: BoolArray
    active: BoolArray
    clear_run_end: int  # length of the clearable run at the last sample
    satseconds: FloatArray
    trigger: IntArray  # TRIGGERS index of what set the onset condition (0: nothing)


TRIGGERS = ("none", "window", "satseconds", "crossings")


def _tail(history: FloatArray, need: int, new: int) -> FloatArray:
    """The last `need - 1 + new` samples: enough for windows of `need` ending at new samples."""
    return history[len(history) - (need - 1 + new) :]


def low_quality(low_conf: Counts, new: int) -> BoolArray:
    """Over half of the last 5 minutes' samples were low-confidence."""
    windows = Windows.of(low_conf, LOW_QUALITY_WINDOW_S, new, 0.0)
    return windows.in_bands("fraction", (Band(low=LOW_QUALITY_FRACTION, high=1.0),))


class ChannelCounts:
    """`Counts` per channel (and per channel without its low-confidence samples), shared by
    all the rules of one step."""

    def __init__(self, channels: Mapping[Channel, FloatArray]) -> None:
        self.channels = channels
        self._counts: dict[tuple[Channel, bool], Counts] = {}

    def of(self, channel: Channel, exclude_low_conf: bool = False) -> Counts:
        key = (channel, exclude_low_conf)
        found = self._counts.get(key)
        if found is None:
            series = self.channels[channel]
            if exclude_low_conf:
                series = np.where(self.channels[Channel.LOW_CONF] == 1.0, np.nan, series)
            found = self._counts[key] = Counts(series)
        return found


def evaluate(
    rule: WindowRule,
    counts: ChannelCounts,
    new: int,
    active_before: bool,
    clear_run_before: int,
    satseconds_before: float,
    suppressed: BoolArray | None = None,
) -> RuleTrace:
    """Run `rule` over the last `new` samples of `channels` (each with its history before);
    `suppressed` marks samples where a dominating rule is active (no onset there)."""
    series_counts = counts.of(rule.channel, rule.exclude_low_conf)
    series = series_counts.history
    windows = Windows.of(series_counts, rule.window_s, new, rule.min_valid_fraction)
    onset = windows.in_bands(rule.statistic, rule.alarm)
    short_windows = windows
    degraded = np.zeros(new, dtype=np.bool_)
    if rule.low_quality_factor > 1:
        degraded = low_quality(counts.of(Channel.LOW_CONF), new)
        long_window = rule.window_s * rule.low_quality_factor
        windows = Windows.of(series_counts, long_window, new, rule.min_valid_fraction)
        onset = np.where(degraded, windows.in_bands(rule.statistic, rule.alarm), onset)
    trigger = np.where(onset, 1, 0).astype(np.int64)
    satseconds = np.zeros(new)
    if rule.satseconds is not None or rule.crossings_in_60s is not None:
        limit = rule.alarm[0].high
        recent = series[len(series) - new :]
        if rule.satseconds is not None:
            deficit = np.nan_to_num(np.clip(limit - recent, 0.0, None), nan=0.0)
            satseconds = run_sums(deficit, satseconds_before)
            setting = np.where(degraded, rule.satseconds * rule.low_quality_factor, rule.satseconds)
            by_satseconds = satseconds >= setting
            trigger = np.where((trigger == 0) & by_satseconds, 2, trigger)
            onset |= by_satseconds
        if rule.crossings_in_60s is not None:
            by_crossings = _crossings(series, limit, new) >= rule.crossings_in_60s
            trigger = np.where((trigger == 0) & by_crossings, 3, trigger)
            onset |= by_crossings
    if suppressed is not None:
        onset &= ~suppressed
    clear_windows = Windows.of(
        series_counts, rule.effective_clear_window_s, new, rule.min_valid_fraction
    )
    clearable = clear_windows.in_bands(rule.statistic, (rule.clear,))
    if not active_before and not onset.any():
        # The common case (nothing happening): no state to follow, only the run to carry.
        active = np.zeros(new, dtype=np.bool_)
        clear_run_end = trailing_run(clearable, clear_run_before)
    else:
        clear_run = run_lengths(clearable, clear_run_before)
        active = hysteresis(onset, clear_run >= rule.clear_s, active_before)
        clear_run_end = int(clear_run[-1])
    return RuleTrace(windows, short_windows, degraded, active, clear_run_end, satseconds, trigger)


def trailing_run(mask: BoolArray, carried_run: int) -> int:
    """Length of the run of True at the end of `mask`, continuing a run of `carried_run`."""
    false_at = np.flatnonzero(~mask)
    if not len(false_at):
        return carried_run + len(mask)
    return len(mask) - 1 - int(false_at[-1])


def _crossings(series: FloatArray, limit: float, new: int) -> IntArray:
    """Per new sample: drops from above `limit` to at or below it in the last 60 s."""
    span = _tail(series, CROSSING_WINDOW_S + 1, new)
    with np.errstate(invalid="ignore"):
        drops = (span[:-1] > limit) & (span[1:] <= limit)
    counts = np.concatenate(([0], np.cumsum(drops, dtype=np.int64)))
    return np.asarray(counts[CROSSING_WINDOW_S:] - counts[:-CROSSING_WINDOW_S], dtype=np.int64)
