"""Vectorised window rules over a 1 Hz grid: persistence, SatSeconds and hysteresis.

Pure numpy: arrays in, per-sample state out. Every channel array holds the carried history
(`history_s` samples of the past) followed by the new samples; NaN where nothing was received.
Everything a rule asks of a series (cumulative counts, window counts, windows) is computed once
per step and shared by every rule that asks again (S1, S2 and S3 all read SpO2).
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
CountArray = npt.NDArray[np.int32]


def cumulative_counts(indicator: BoolArray) -> CountArray:
    """0 followed by the running count of True (int32: numpy's fast path for bool sums)."""
    counts = np.empty(len(indicator) + 1, dtype=np.int32)
    counts[0] = 0
    counts[1:] = indicator
    return np.cumsum(counts, out=counts)


class Counts:
    """Cumulative and window counts of predicates over one series, and its windows, each
    computed once and shared by every window and rule that asks."""

    def __init__(self, history: FloatArray) -> None:
        self.history = history
        self._cumulative: dict[tuple[str, float], CountArray] = {}
        self._in_windows: dict[tuple[str, float, int, int], CountArray] = {}
        self._fractions: dict[tuple[int, int], FloatArray] = {}
        self._windows: dict[tuple[int, int, float], Windows] = {}

    def cumulative(self, op: str, value: float = 0.0) -> CountArray:
        key = (op, value)
        found = self._cumulative.get(key)
        if found is None:
            found = self._cumulative[key] = cumulative_counts(_indicator(self.history, op, value))
        return found

    def in_windows(self, op: str, value: float, window_s: int, new: int) -> CountArray:
        """Count of the predicate in the windows of `window_s` ending at the last `new`."""
        key = (op, value, window_s, new)
        found = self._in_windows.get(key)
        if found is None:
            cumulative = self.cumulative(op, value)
            end = len(self.history) + 1
            found = cumulative[end - new : end] - cumulative[end - new - window_s : end - window_s]
            self._in_windows[key] = found
        return found

    def fractions(self, window_s: int, new: int) -> FloatArray:
        """Share of the valid samples that are 1.0, per window (NaN where none is valid)."""
        key = (window_s, new)
        found = self._fractions.get(key)
        if found is None:
            ones = self.in_windows("==", 1.0, window_s, new)
            valid = self.in_windows("valid", 0.0, window_s, new)
            with np.errstate(invalid="ignore", divide="ignore"):
                found = self._fractions[key] = np.asarray(ones / valid, dtype=np.float64)
        return found

    def windows(self, window_s: int, new: int, min_valid: float) -> Windows:
        key = (window_s, new, min_valid)
        found = self._windows.get(key)
        if found is None:
            found = self._windows[key] = Windows.of(self, window_s, new, min_valid)
        return found


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


def band_predicates(band: Band) -> tuple[tuple[str, float] | None, tuple[str, float] | None]:
    """The counted predicates that decide "lower median inside `band`": at least half of the
    valid samples satisfy the first (<= top), fewer than half the second (below the bottom)."""
    high = ("<=", band.high) if math.isfinite(band.high) else None
    low = ("<" if band.low_inclusive else "<=", band.low) if math.isfinite(band.low) else None
    return high, low


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
    valid: CountArray
    determinate: BoolArray
    half: CountArray  # ceil(valid / 2): the rank of the lower median

    @classmethod
    def of(cls, counts: Counts, window_s: int, new: int, min_valid: float) -> Windows:
        valid = counts.in_windows("valid", 0.0, window_s, new)
        determinate = valid >= max(1.0, min_valid * window_s)
        return cls(counts, window_s, new, valid, determinate, (valid + 1) // 2)

    def count(self, op: str, value: float) -> CountArray:
        return self.counts.in_windows(op, value, self.window_s, self.new)

    def median_in(self, band: Band) -> BoolArray:
        """Lower median inside `band`, per window (False where indeterminate)."""
        high, low = band_predicates(band)
        ok = self.determinate
        if high is not None:
            ok = ok & (self.count(*high) >= self.half)
        if low is not None:
            ok = ok & (self.count(*low) < self.half)
        return ok

    def fractions(self) -> FloatArray:
        return self.counts.fractions(self.window_s, self.new)

    def in_bands(self, statistic: Statistic, bands: tuple[Band, ...]) -> BoolArray:
        """The statistic inside any of `bands`, per window (False where indeterminate)."""
        if statistic == "fraction":
            fractions = self.fractions()
            inside = [self.determinate & in_band(fractions, band) for band in bands]
        else:
            inside = [self.median_in(band) for band in bands]
        return np.logical_or.reduce(inside) if len(inside) > 1 else inside[0]

    def value_at(self, statistic: Statistic, index: int) -> float:
        """The statistic of one window (for the record of an alert), NaN if indeterminate."""
        if not self.determinate[index]:
            return math.nan
        end = len(self.counts.history) - self.new + index + 1
        return window_statistic(self.counts.history[end - self.window_s : end], statistic)


def window_statistic(window: FloatArray, statistic: Statistic) -> float:
    """The fraction (mean of a 0/1 mask) or the lower median of the valid samples of a window."""
    values = np.sort(window[~np.isnan(window)])
    if statistic == "fraction":
        return float(values.sum() / len(values))
    return float(values[(len(values) + 1) // 2 - 1])


def in_band(values: FloatArray, band: Band) -> BoolArray:
    """`band` membership; NaN is never in a band."""
    with np.errstate(invalid="ignore"):
        above = values >= band.low if band.low_inclusive else values > band.low
        return np.asarray(above & (values <= band.high), dtype=np.bool_)


def clear_reached(clearable: BoolArray, carried_run: int, clear_s: int) -> BoolArray:
    """Where the run of `clearable` ending there (continuing a run of `carried_run` samples)
    is at least `clear_s` long: every one of the last `clear_s` samples was clearable."""
    if clear_s <= 0:
        return np.ones(len(clearable), dtype=np.bool_)
    carried = min(carried_run, clear_s - 1)
    before = np.zeros(clear_s - 1, dtype=np.bool_)
    before[len(before) - carried :] = True
    counts = cumulative_counts(np.concatenate((before, clearable)))
    return np.asarray(counts[clear_s:] - counts[:-clear_s] == clear_s, dtype=np.bool_)


def hysteresis(set_mask: BoolArray, clear_mask: BoolArray, initial: bool) -> BoolArray:
    """On after a set, off after a clear (a set wins over a clear at the same sample)."""
    at = np.flatnonzero(set_mask | clear_mask)
    state_after = set_mask[at]
    flips = at[state_after != np.concatenate(([initial], state_after[:-1]))]
    toggles = np.zeros(len(set_mask), dtype=np.bool_)
    toggles[flips] = True
    flipped = np.logical_xor.accumulate(toggles)
    return np.asarray(~flipped if initial else flipped, dtype=np.bool_)


def satseconds_run(recent: FloatArray, limit: float, carried_sum: float) -> FloatArray:
    """SatSeconds per sample: the sum of (limit - value) over the run of consecutive samples
    below `limit` ending there (0 elsewhere; NaN ends a run); a run at the first sample
    continues from `carried_sum`. Summed over the samples below the limit only: adding the
    zeros in between would change no bit of the running sums."""
    deficit = limit - recent
    below = np.flatnonzero(deficit > 0)  # NaN compares False
    result = np.zeros(len(recent))
    if not len(below):
        return result
    total = np.cumsum(deficit[below])
    starts = np.flatnonzero(np.diff(below, prepend=-2) != 1)
    before = np.concatenate(([0.0], total))[starts]
    if below[0] == 0:
        before[0] = -carried_sum
    result[below] = total - np.repeat(before, np.diff(np.append(starts, len(below))))
    return result


def trailing_run(mask: BoolArray, carried_run: int) -> int:
    """Length of the run of True at the end of `mask`, continuing a run of `carried_run`."""
    false_at = np.flatnonzero(~mask)
    if not len(false_at):
        return carried_run + len(mask)
    return len(mask) - 1 - int(false_at[-1])


TRIGGERS = ("none", "window", "satseconds", "crossings")


def event_stats(
    rule: WindowRule, value: float, statistic: float, satseconds: float, trigger: int | None
) -> dict[str, float | str]:
    """What an alert records about the moment its rule changed state: the sample, the window
    statistic, SatSeconds, and (at an onset) what set it. NaN is not JSON: dropped."""
    numbers = {
        f"window_{rule.statistic}": statistic,
        "value": value,
        "window_s": float(rule.window_s),
        "satseconds": satseconds,
    }
    if rule.alarm and math.isfinite(rule.alarm[0].high) and rule.statistic == "median":
        numbers["limit"] = rule.alarm[0].high
    stats: dict[str, float | str] = {k: v for k, v in numbers.items() if math.isfinite(v)}
    stats["channel"] = rule.channel.value
    if trigger is not None:
        stats["trigger"] = TRIGGERS[trigger]
    return stats


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """What a rule computed for each new sample."""

    windows: Windows  # the onset windows (the doubled ones where `degraded`)
    short_windows: Windows
    degraded: BoolArray | None  # None: the rule has no low-quality mode
    active: BoolArray
    clear_run_end: int  # length of the clearable run at the last sample, at most clear_s
    satseconds: FloatArray | None  # None: the rule has no SatSeconds criterion
    by_window: BoolArray
    by_satseconds: BoolArray | None
    by_crossings: BoolArray | None

    def statistic_at(self, statistic: Statistic, index: int) -> float:
        """The onset window's statistic at a new sample (the doubled window when degraded)."""
        degraded = self.degraded is not None and self.degraded[index]
        return (self.windows if degraded else self.short_windows).value_at(statistic, index)

    def satseconds_at(self, index: int) -> float:
        return 0.0 if self.satseconds is None else float(self.satseconds[index])

    def trigger_at(self, index: int) -> int:
        """TRIGGERS index of what set the onset condition at a new sample (0: nothing)."""
        if self.by_window[index]:
            return 1
        if self.by_satseconds is not None and self.by_satseconds[index]:
            return 2
        if self.by_crossings is not None and self.by_crossings[index]:
            return 3
        return 0


def low_quality(low_conf: Counts, new: int) -> BoolArray:
    """Over half of the last 5 minutes' samples were low-confidence."""
    windows = low_conf.windows(LOW_QUALITY_WINDOW_S, new, 0.0)
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
    windows = short_windows = series_counts.windows(rule.window_s, new, rule.min_valid_fraction)
    by_window = short_windows.in_bands(rule.statistic, rule.alarm)
    degraded = None
    if rule.low_quality_factor > 1:
        degraded = low_quality(counts.of(Channel.LOW_CONF), new)
        long_window_s = rule.window_s * rule.low_quality_factor
        windows = series_counts.windows(long_window_s, new, rule.min_valid_fraction)
        by_window = np.where(degraded, windows.in_bands(rule.statistic, rule.alarm), by_window)
    onset = by_window
    limit = rule.alarm[0].high
    recent = series_counts.history[len(series_counts.history) - new :]
    satseconds = by_satseconds = by_crossings = None
    if rule.satseconds is not None:
        satseconds = satseconds_run(recent, limit, satseconds_before)
        setting: float | FloatArray = rule.satseconds
        if degraded is not None:
            setting = np.where(degraded, rule.satseconds * rule.low_quality_factor, setting)
        by_satseconds = satseconds >= setting
        onset = onset | by_satseconds
    if rule.crossings_in_60s is not None:
        by_crossings = _crossings(series_counts.history, limit, new) >= rule.crossings_in_60s
        onset = onset | by_crossings
    if suppressed is not None:
        onset = onset & ~suppressed
    clear_windows = series_counts.windows(
        rule.effective_clear_window_s, new, rule.min_valid_fraction
    )
    clearable = clear_windows.in_bands(rule.statistic, (rule.clear,))
    clear_run_end = min(trailing_run(clearable, clear_run_before), rule.clear_s)
    if not active_before and not onset.any():
        # The common case (nothing happening): no state to follow, only the run to carry.
        active = np.zeros(new, dtype=np.bool_)
    else:
        cleared = clear_reached(clearable, clear_run_before, rule.clear_s)
        active = hysteresis(onset, cleared, active_before)
    return RuleTrace(
        windows,
        short_windows,
        degraded,
        active,
        clear_run_end,
        satseconds,
        by_window,
        by_satseconds,
        by_crossings,
    )


def _crossings(series: FloatArray, limit: float, new: int) -> CountArray:
    """Per new sample: drops from above `limit` to at or below it in the last 60 s."""
    span = series[len(series) - (CROSSING_WINDOW_S + new) :]
    with np.errstate(invalid="ignore"):
        drops = (span[:-1] > limit) & (span[1:] <= limit)
    counts = cumulative_counts(drops)
    return counts[CROSSING_WINDOW_S:] - counts[:-CROSSING_WINDOW_S]
