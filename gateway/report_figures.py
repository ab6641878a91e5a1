"""The numbers of the daily report, from one local day of 1 Hz arrays (NaN = no valid sample).

Pure numpy, no store and no drawing. The oximetry figures are those of the nightly rule S6
(alerts/nightly.py over the day instead of the night: the same preprocessing, ODI3, CT90 and
nadir) plus the time below the report's levels, counted on the same preprocessed series
(`alerts.odi.seconds_below`, strictly below). Charts get per-minute low / median / high
(1,440 points a day rather than 86,400).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alerts.nightly import summarise_night
from alerts.odi import preprocess, seconds_below
from alerts.rules import Profile, Tier, WindowRule, pulse_rules, spo2_rules
from alerts.spot import FEVER_C, HIGH_FEVER_C, HYPOTHERMIA_C
from devices.protocols.reading import Quality

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MINUTE_S = 60
REPORT_LEVELS_PERCENT: dict[Profile, tuple[float, ...]] = {
    Profile.DEFAULT: (94.0, 92.0, 88.0),
    Profile.COPD: (88.0, 85.0, 83.0),  # below the 88-92 % target, S2's and S1's limits
}
COPD_TARGET_PERCENT = (88.0, 92.0)  # NEWS2 SpO2 scale 2 scores 0 in this band
MIN_GAP_S = 60  # shorter dropouts are not listed as gaps
MAX_GAPS = 5
TEMPERATURE_LINES_C = (HYPOTHERMIA_C, FEVER_C, HIGH_FEVER_C)


@dataclass(frozen=True, slots=True)
class MinuteSeries:
    """Per-minute lowest, lower-median and highest valid value of a 1 Hz series (NaN: none)."""

    low: FloatArray
    median: FloatArray
    high: FloatArray


@dataclass(frozen=True, slots=True)
class TimeBelow:
    level_percent: float
    seconds: int
    share_percent: float  # of the monitored (valid, resting) seconds; NaN without any


@dataclass(frozen=True, slots=True)
class SpO2Figures:
    """One day's oximetry. `monitored_s`: seconds of valid resting SpO2 (the denominator of
    every share); `coverage_percent`: seconds with any valid SpO2 over the day's length."""

    monitored_s: int
    coverage_percent: float
    below: tuple[TimeBelow, ...]
    nadir_percent: float
    nadir_at_s: int | None  # UTC epoch second of the first sample at the nadir
    desaturations: int
    odi3_per_hour: float
    ct90_percent: float  # NaN for the COPD profile (not used there, as in S6)
    below_85_percent: float


@dataclass(frozen=True, slots=True)
class Gap:
    """A run of seconds without valid SpO2. `flags`: the OR of the quality flags of the
    readings that arrived in it; `received`: whether any did (none: the device was silent)."""

    start_s: int
    length_s: int
    flags: Quality
    received: bool


@dataclass(frozen=True, slots=True)
class Extreme:
    value: float
    at_s: float


def per_minute(values: npt.ArrayLike) -> MinuteSeries:
    """Per-minute low, lower median and high of a 1 Hz series (a partial last minute counts)."""
    data = np.asarray(values, dtype=np.float64)
    n_minutes = -(-len(data) // MINUTE_S)
    padded = np.full(n_minutes * MINUTE_S, np.nan)
    padded[: len(data)] = data
    grid = padded.reshape(n_minutes, MINUTE_S)
    count = np.count_nonzero(~np.isnan(grid), axis=1)
    ordered = np.sort(grid, axis=1)  # NaN sorts last
    has_data = count > 0
    middle = np.maximum(count - 1, 0) // 2
    median = np.take_along_axis(ordered, middle[:, None], axis=1)[:, 0]
    high = np.take_along_axis(ordered, np.maximum(count - 1, 0)[:, None], axis=1)[:, 0]
    nan = np.full(n_minutes, np.nan)
    return MinuteSeries(
        low=np.where(has_data, ordered[:, 0], nan),
        median=np.where(has_data, median, nan),
        high=np.where(has_data, high, nan),
    )


def spo2_figures(
    start_s: int,
    valid_percent: npt.ArrayLike,
    resting_percent: npt.ArrayLike,
    profile: Profile,
) -> SpO2Figures:
    """The day's oximetry from its 1 Hz grids from `start_s`: `valid_percent` (every usable
    value) for the coverage, `resting_percent` (low-confidence values left out, as S6 reads
    them) for everything else."""
    valid = np.asarray(valid_percent, dtype=np.float64)
    summary = summarise_night(resting_percent, profile)
    spo2 = preprocess(resting_percent)
    monitored_s = summary.valid_s
    below = tuple(
        TimeBelow(level, n_s, 100.0 * n_s / monitored_s if monitored_s else math.nan)
        for level in REPORT_LEVELS_PERCENT[profile]
        for n_s in [seconds_below(spo2, level)]
    )
    nadir_at_s = None
    if not math.isnan(summary.nadir_percent):
        nadir_at_s = start_s + int(np.flatnonzero(spo2 == summary.nadir_percent)[0])
    coverage = 100.0 * np.count_nonzero(~np.isnan(valid)) / len(valid) if len(valid) else 0.0
    return SpO2Figures(
        monitored_s=monitored_s,
        coverage_percent=float(coverage),
        below=below,
        nadir_percent=summary.nadir_percent,
        nadir_at_s=nadir_at_s,
        desaturations=summary.desaturations,
        odi3_per_hour=summary.odi3_per_hour,
        ct90_percent=summary.ct90_percent,
        below_85_percent=summary.below_85_percent,
    )


def find_gaps(
    start_s: int,
    valid: npt.ArrayLike,
    flags: npt.ArrayLike,
    received: npt.ArrayLike,
    min_gap_s: int = MIN_GAP_S,
) -> list[Gap]:
    """Runs of at least `min_gap_s` seconds where `valid` is False, longest first (then
    earliest). `flags` (int) and `received` (bool) are per second of the same grid."""
    is_valid = np.asarray(valid, dtype=np.bool_)
    quality = np.asarray(flags, dtype=np.int64)
    arrived = np.asarray(received, dtype=np.bool_)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], (~is_valid).astype(np.int8), [0]))))
    gaps = [
        Gap(
            start_s=start_s + lo,
            length_s=hi - lo,
            flags=Quality(int(np.bitwise_or.reduce(quality[lo:hi]))),
            received=bool(arrived[lo:hi].any()),
        )
        for lo, hi in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True)
        if hi - lo >= min_gap_s
    ]
    return sorted(gaps, key=lambda gap: (-gap.length_s, gap.start_s))


def gap_reason(gap: Gap) -> str:
    """The cause of a gap as an English message id (see gateway/i18n.py)."""
    if gap.flags & Quality.FINGER_OUT:
        return "finger out of the probe"
    if gap.flags & Quality.SENSOR_FAULT:
        return "sensor fault"
    if gap.flags & Quality.SEARCHING:
        return "searching for a pulse"
    if gap.received:
        return "no usable value"
    return "no readings received"


def extreme(times_s: npt.ArrayLike, values: npt.ArrayLike, highest: bool = True) -> Extreme | None:
    """The highest (or lowest) value with the time of its first occurrence; None if no
    value is valid."""
    times = np.asarray(times_s, dtype=np.float64)
    data = np.asarray(values, dtype=np.float64)
    keep = ~np.isnan(data)
    if not keep.any():
        return None
    index = np.flatnonzero(keep)
    best = index[np.argmax(data[keep]) if highest else np.argmin(data[keep])]
    return Extreme(float(data[best]), float(times[best]))


def spo2_lines(tier: Tier, profile: Profile) -> tuple[tuple[str, float], ...]:
    """The SpO2 limits of the patient's rules as (rule id, top of the alarm band): S3's top,
    S2's and S1's limits, e.g. 94 / 92 / 88 (red: 93 for S2; COPD: 87 / 85 / 83)."""
    rules = reversed(spo2_rules(tier, profile))
    return tuple((rule.rule.value, _alarm_top(rule)) for rule in rules)


def pulse_lines(tier: Tier) -> tuple[float, ...]:
    """Where the pulse rules' alarm bands start: H1 <= 40 and >= 131, H2 <= 50 and >= 111."""
    limits: set[float] = set()
    for rule in pulse_rules(tier):
        for band in rule.alarm:
            limits.update(round(v) for v in (band.low, band.high) if math.isfinite(v))
    return tuple(sorted(limits))


def _alarm_top(rule: WindowRule) -> float:
    return max(band.high for band in rule.alarm)
