"""Vectorised window rules over a 1 Hz grid: persistence, SatSeconds and hysteresis.

Pure numpy: arrays in, per-sample state out. Every channel array holds the carried history
(`history_s` samples of the past) followed by the new samples; NaN where nothing was received.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

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
_CHUNK_ROWS = 4096


def window_statistic(
    history: FloatArray, window_s: int, statistic: Statistic, min_valid_fraction: float
) -> FloatArray:
    """The statistic of every window of `window_s` samples ending at history[window_s-1:];
    NaN where fewer than `min_valid_fraction` of the window's samples exist."""
    windows = sliding_window_view(history, window_s)
    valid_count = (~np.isnan(windows)).sum(axis=1)
    result = np.full(len(windows), np.nan)
    rows = np.flatnonzero(valid_count >= max(1.0, min_valid_fraction * window_s))
    if statistic == "fraction":
        sums = np.nansum(windows[rows], axis=1)
        result[rows] = sums / valid_count[rows]
        return result
    for start in range(0, len(rows), _CHUNK_ROWS):
        chunk = rows[start : start + _CHUNK_ROWS]
        result[chunk] = np.nanmedian(windows[chunk], axis=1)
    return result


def in_band(values: FloatArray, band: Band) -> BoolArray:
    """`band` membership; NaN is never in a band."""
    with np.errstate(invalid="ignore"):
        above = values >= band.low if band.low_inclusive else values > band.low
        return np.asarray(above & (values <= band.high), dtype=np.bool_)


def in_any_band(values: FloatArray, bands: tuple[Band, ...]) -> BoolArray:
    result = np.zeros(len(values), dtype=np.bool_)
    for band in bands:
        result |= in_band(values, band)
    return result


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

    statistic: FloatArray
    active: BoolArray
    clear_run: IntArray
    satseconds: FloatArray
    trigger: IntArray  # TRIGGERS index of what set the onset condition (0: nothing)


TRIGGERS = ("none", "window", "satseconds", "crossings")


def _tail(history: FloatArray, need: int, new: int) -> FloatArray:
    """The last `need - 1 + new` samples: enough for windows of `need` ending at new samples."""
    return history[len(history) - (need - 1 + new) :]


def low_quality(low_conf: FloatArray, new: int) -> BoolArray:
    """Over half of the last 5 minutes' samples were low-confidence."""
    fraction = window_statistic(
        _tail(low_conf, LOW_QUALITY_WINDOW_S, new), LOW_QUALITY_WINDOW_S, "fraction", 0.0
    )
    with np.errstate(invalid="ignore"):
        return np.asarray(fraction > LOW_QUALITY_FRACTION, dtype=np.bool_)


def rule_series(rule: WindowRule, channels: Mapping[Channel, FloatArray]) -> FloatArray:
    """The rule's channel, with low-confidence samples removed where the rule says so."""
    series = channels[rule.channel]
    if rule.exclude_low_conf:
        series = np.where(channels[Channel.LOW_CONF] == 1.0, np.nan, series)
    return series


def evaluate(
    rule: WindowRule,
    channels: Mapping[Channel, FloatArray],
    new: int,
    active_before: bool,
    clear_run_before: int,
    satseconds_before: float,
    suppressed: BoolArray | None = None,
) -> RuleTrace:
    """Run `rule` over the last `new` samples of `channels` (each with its history before);
    `suppressed` marks samples where a dominating rule is active (no onset there)."""
    series = rule_series(rule, channels)
    stat = window_statistic(
        _tail(series, rule.window_s, new), rule.window_s, rule.statistic, rule.min_valid_fraction
    )
    degraded = np.zeros(new, dtype=np.bool_)
    if rule.low_quality_factor > 1:
        degraded = low_quality(channels[Channel.LOW_CONF], new)
        long_window = rule.window_s * rule.low_quality_factor
        long_stat = window_statistic(
            _tail(series, long_window, new), long_window, rule.statistic, rule.min_valid_fraction
        )
        stat = np.where(degraded, long_stat, stat)
    onset = in_any_band(stat, rule.alarm)
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
    clear_stat = window_statistic(
        _tail(series, rule.effective_clear_window_s, new),
        rule.effective_clear_window_s,
        rule.statistic,
        rule.min_valid_fraction,
    )
    clear_run = run_lengths(in_band(clear_stat, rule.clear), clear_run_before)
    active = hysteresis(onset, clear_run >= rule.clear_s, active_before)
    return RuleTrace(stat, active, clear_run, satseconds, trigger)


def _crossings(series: FloatArray, limit: float, new: int) -> IntArray:
    """Per new sample: drops from above `limit` to at or below it in the last 60 s."""
    span = _tail(series, CROSSING_WINDOW_S + 1, new)
    with np.errstate(invalid="ignore"):
        drops = (span[:-1] > limit) & (span[1:] <= limit)
    counts = np.concatenate(([0], np.cumsum(drops, dtype=np.int64)))
    return np.asarray(counts[CROSSING_WINDOW_S:] - counts[:-CROSSING_WINDOW_S], dtype=np.int64)
