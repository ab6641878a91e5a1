"""Vectorised threshold-with-persistence-and-hysteresis detection over a 1 Hz grid.

Pure numpy: arrays in, transitions out. `values` is one sample per second, NaN where no valid
sample exists. The caller prepends the last `window_s - 1` samples of the previous call (the
carried tail) so that windows ending at the first new sample see their history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from alerts.rules import ThresholdRule

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
_MEDIAN_CHUNK_ROWS = 4096


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Per new sample: the window median (NaN if indeterminate) and the valid fraction."""

    median: FloatArray
    valid_fraction: FloatArray
    minimum: FloatArray


def window_stats(history: FloatArray, window_s: int, min_valid_fraction: float) -> WindowStats:
    """Stats of every window of `window_s` samples ending at history[window_s-1:]."""
    windows = sliding_window_view(history, window_s)
    valid = ~np.isnan(windows)
    valid_fraction = valid.sum(axis=1) / window_s
    determinate = valid_fraction >= min_valid_fraction
    median = np.full(len(windows), np.nan)
    minimum = np.full(len(windows), np.nan)
    rows = np.flatnonzero(determinate)
    for start in range(0, len(rows), _MEDIAN_CHUNK_ROWS):
        chunk = rows[start : start + _MEDIAN_CHUNK_ROWS]
        median[chunk] = np.nanmedian(windows[chunk], axis=1)
        minimum[chunk] = np.nanmin(windows[chunk], axis=1)
    return WindowStats(median, valid_fraction, minimum)


def run_lengths(mask: BoolArray, carried_run: int) -> npt.NDArray[np.int64]:
    """Length of the run of True ending at each position; the run before the array was
    `carried_run` long."""
    index = np.arange(len(mask), dtype=np.int64)
    last_false = np.maximum.accumulate(np.where(mask, -1, index))
    return np.where(last_false < 0, index + 1 + carried_run, index - last_false)


def hysteresis(set_mask: BoolArray, clear_mask: BoolArray, initial: bool) -> BoolArray:
    """State per sample: on after a set, off after a clear, `initial` before either."""
    index = np.arange(len(set_mask), dtype=np.int64)
    last_set = np.maximum.accumulate(np.where(set_mask, index, -1))
    last_clear = np.maximum.accumulate(np.where(clear_mask, index, -1))
    untouched = (last_set < 0) & (last_clear < 0)
    return np.where(untouched, initial, last_set > last_clear)


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """Everything the rule computed for the new samples; transitions are derived from it."""

    stats: WindowStats
    active: BoolArray
    clear_run: npt.NDArray[np.int64]


def evaluate(
    rule: ThresholdRule, history: FloatArray, active_before: bool, clear_run_before: int
) -> RuleTrace:
    """Run `rule` over `history` (carried tail of window_s-1 samples + the new samples)."""
    stats = window_stats(history, rule.window_s, rule.min_valid_fraction)
    with np.errstate(invalid="ignore"):
        set_mask = stats.median <= rule.limit
        clearable = stats.median >= rule.clear_level
    clear_run = run_lengths(clearable, clear_run_before)
    active = hysteresis(set_mask, clear_run >= rule.clear_s, active_before)
    return RuleTrace(stats, active, clear_run)
