"""Oxygen desaturation events, ODI, CT90, nadir and time below a level, for nightly batch use.

The desaturation detector is a clean-room implementation of the relative method described in
CLINICAL_RULES.md section 1.6 (pobm, Levy et al., npj Digit. Med. 4:1, 2021, adapted from Hwang et
al., IEEE TBME 65:706, 2018). It assumes 1 Hz samples quantised to whole percent (see
`preprocess`) and is a plain O(n) scan: run it once per night, never per sample.

Missing data (NaN) is never part of an event: a NaN met while a candidate is being followed
abandons the candidate and the scan resumes after the NaN, so probe-off gaps cannot create,
lengthen or join desaturations. The first sample after a gap cannot start an event either,
because a start needs a valid one-second fall.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

FloatArray = npt.NDArray[np.float64]

SPO2_MIN_PERCENT = 50.0  # pobm set_range: below is not physiological
SPO2_MAX_PERCENT = 100.0
MEDIAN_FILTER_S = 9  # pobm median_spo2 FilterLength on 1 Hz streams
ODI_THRESHOLD_PERCENT = 3  # ODI3
DESAT_MAX_LENGTH_S = 120  # longer drops are sustained hypoxaemia, not desaturation events
DESAT_MIN_LENGTH_S = 10  # an event ends no sooner than 10 s after its start
RECOVERY_MARGIN_PERCENT = 1  # the end: back to within 1 point of the start
_CANDIDATE_FLOOR_PERCENT = 25  # a start must be above this (always true after the range gate)
CT_LEVEL_PERCENT = 90
SECONDS_PER_HOUR = 3600


@dataclass(frozen=True, slots=True)
class Desaturation:
    """One event, as indexes into the 1 Hz series it was found in.

    `begin` is the first sample after the one-second fall that started the event (the drop is
    measured from it), `nadir` the first lowest sample, `end` the sample at which the end
    condition held, and `recovery` the end point D: the first sample back within 1 point of
    `begin` (searched up to `begin + max_length_s`), which may lie after `end`.
    """

    begin: int
    nadir: int
    end: int
    recovery: int
    depth_percent: float

    @property
    def length_s(self) -> int:
        return self.end - self.begin


def preprocess(spo2_percent: npt.ArrayLike, median_s: int = MEDIAN_FILTER_S) -> FloatArray:
    """Range gate (outside 50-100 % -> NaN), round to whole percent, then a centred
    `median_s`-sample median over the valid neighbours of each valid sample, rounded again.

    NaN samples stay NaN (the filter never fills gaps); `median_s` <= 1 skips the filter.
    Halves round up, so shifting integer input by a constant shifts the output by it.
    """
    values = np.asarray(spo2_percent, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        in_range = (values >= SPO2_MIN_PERCENT) & (values <= SPO2_MAX_PERCENT)
    gated = np.where(in_range, _round_half_up(values), np.nan)
    if median_s <= 1 or len(gated) == 0:
        return gated
    half = median_s // 2
    padded = np.pad(gated, half, constant_values=np.nan)
    windows = sliding_window_view(padded, 2 * half + 1)
    out = np.full(len(gated), np.nan)
    rows = np.flatnonzero(~np.isnan(gated))
    out[rows] = _round_half_up(np.nanmedian(windows[rows], axis=1))
    return out


def _round_half_up(values: FloatArray) -> FloatArray:
    return np.floor(values + 0.5)


def detect_desaturations(
    spo2_percent: npt.ArrayLike,
    threshold_percent: int = ODI_THRESHOLD_PERCENT,
    max_length_s: int = DESAT_MAX_LENGTH_S,
    min_length_s: int = DESAT_MIN_LENGTH_S,
) -> list[Desaturation]:
    """Relative desaturations in a preprocessed 1 Hz series (NaN = missing).

    1. A start `a` needs a fall of 1..threshold points from the previous second.
    2. From a+1 the series must not rise until it is `threshold` points below `a`, else the
       scan moves on to a+1.
    3. Then the end `c` is the first sample, at least `min_length_s` after `a`, that is back
       within 1 point of `a` or `threshold` points above the (running) nadir.
    4. The event counts only if c - a <= `max_length_s`; either way the scan resumes at c+1,
       so events never overlap.
    A candidate still open at the end of the series is dropped.
    """
    data: list[float] = np.asarray(spo2_percent, dtype=np.float64).tolist()
    events: list[Desaturation] = []
    begin = 1
    while begin < len(data):
        fall = data[begin] - data[begin - 1]
        if not (data[begin] > _CANDIDATE_FLOOR_PERCENT and -threshold_percent <= fall <= -1):
            begin += 1
            continue
        drop = _follow_drop(data, begin, threshold_percent)
        if drop < 0:
            begin += 1
            continue
        end, nadir = _follow_recovery(data, begin, drop, threshold_percent, min_length_s)
        if end < 0:
            begin = -end + 1  # abandoned at a NaN or at the end of the series
            continue
        if end - begin <= max_length_s:
            recovery = _find_recovery(data, begin, end, max_length_s)
            depth = data[begin] - data[nadir]
            events.append(Desaturation(begin, nadir, end, recovery, depth))
        begin = end + 1
    return events


def _follow_drop(data: list[float], begin: int, threshold: int) -> int:
    """Index where the non-rising walk from `begin` reaches `threshold` below it, or -1."""
    for index in range(begin + 1, len(data)):
        value = data[index]
        if math.isnan(value) or value > data[index - 1]:
            return -1
        if data[begin] - value >= threshold:
            return index
    return -1


def _follow_recovery(
    data: list[float], begin: int, nadir: int, threshold: int, min_length_s: int
) -> tuple[int, int]:
    """(end, nadir) of the candidate; end is -(index) of the NaN or last sample that
    abandoned it."""
    for index in range(nadir + 1, len(data)):
        value = data[index]
        if math.isnan(value):
            return -index, nadir
        if value < data[nadir]:
            nadir = index
            continue
        recovered = data[begin] - value <= RECOVERY_MARGIN_PERCENT
        rebounded = value - data[nadir] >= threshold
        if (recovered or rebounded) and index - begin >= min_length_s:
            return index, nadir
    return -(len(data) - 1), nadir


def _find_recovery(data: list[float], begin: int, end: int, max_length_s: int) -> int:
    """End point D: the first sample from `end` on back within 1 point of the start."""
    target = data[begin] - RECOVERY_MARGIN_PERCENT
    last = min(begin + max_length_s, len(data) - 1)
    for index in range(end, last + 1):
        if data[index] >= target:
            return index
    return last


def odi_per_hour(n_events: int, duration_s: float) -> float:
    """Events per hour of `duration_s` seconds (NaN when there is no time)."""
    if duration_s <= 0:
        return math.nan
    return n_events * SECONDS_PER_HOUR / duration_s


def ct_percent(spo2_percent: npt.ArrayLike, level_percent: float = CT_LEVEL_PERCENT) -> float:
    """Percent of valid samples AT OR BELOW `level_percent` (pobm's CT uses <=); NaN if none.

    pobm divides by all samples, NaN included; here missing samples are not counted, so a
    probe-off hour does not dilute the figure.
    """
    values = np.asarray(spo2_percent, dtype=np.float64)
    valid = values[~np.isnan(values)]
    if len(valid) == 0:
        return math.nan
    return 100.0 * float(np.count_nonzero(valid <= level_percent)) / len(valid)


def seconds_below(spo2_percent: npt.ArrayLike, level_percent: float) -> int:
    """Valid 1 Hz samples strictly below `level_percent`."""
    values = np.asarray(spo2_percent, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return int(np.count_nonzero(values < level_percent))


def longest_run_below_s(spo2_percent: npt.ArrayLike, level_percent: float) -> int:
    """Longest run of consecutive 1 Hz samples strictly below `level_percent` (NaN ends it)."""
    values = np.asarray(spo2_percent, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        below = np.concatenate(([False], values < level_percent, [False]))
    edges = np.flatnonzero(np.diff(below.astype(np.int8)))
    if len(edges) == 0:
        return 0
    return int(np.max(edges[1::2] - edges[::2]))


def nadir(spo2_percent: npt.ArrayLike) -> tuple[float, int]:
    """(lowest valid value, number of samples at that value); (NaN, 0) without valid data."""
    values = np.asarray(spo2_percent, dtype=np.float64)
    valid = values[~np.isnan(values)]
    if len(valid) == 0:
        return math.nan, 0
    lowest = float(np.min(valid))
    return lowest, int(np.count_nonzero(valid == lowest))
