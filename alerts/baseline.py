"""The day- and night-level trend rules of CLINICAL_RULES.md section 1.10, as pure functions of a
history of daily aggregates (alerts/daily.py): S5 drop from the personal SpO2 baseline, H3
resting-HR rise, T5 wearable skin-temperature trend and T3 persistent high fever.

Each `evaluate_*` takes the patient's history in date order (one record per local day or night;
missing dates are allowed) and returns one `DayOutcome` per record: what that day's data says
(`condition`) and the alert's state after it (`active`, `transition`). Without enough history for
a baseline, or without data, a day is INDETERMINATE: it neither raises nor clears, and it breaks
a run of consecutive days. Days count as consecutive only on consecutive calendar dates.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from alerts.daily import LEVELS, NightValue, SpO2Day, TemperatureDay
from alerts.rules import Profile

S5_BASELINE_DAYS = 14
S5_MIN_BASELINE_DAYS = 3
S5_DROP_PERCENT = {Profile.DEFAULT: 3, Profile.COPD: 4}
S5_LOW_WINDOW_S = 30 * 60  # of a rolling 1-h window
S5_DAY_TO_DAY_DROP_PERCENT = 4.0
S5_CLEAR_MARGIN_PERCENT = 1  # 1-h median >= baseline - 1 ...
S5_CLEAR_RUN_S = 2 * 3600  # ... for 2 h
S5_CLEAR_MEAN_WITHIN_PERCENT = 2.0  # or the day's mean within 2 points of the baseline
H3_BASELINE_NIGHTS = 28
H3_MIN_BASELINE_NIGHTS = 7
H3_SD_FACTOR = 1.5
H3_MIN_RISE_BPM = 5.0
T5_BASELINE_NIGHTS = 14
T5_MIN_BASELINE_NIGHTS = 7  # CLINICAL_RULES.md 1.8: 7 days minimum before trend alerts
T5_RISE_C = 1.0
T5_CLEAR_WITHIN_C = 0.5
T3_FEVER_C = 38.5
T3_CLEAR_BELOW_C = 38.0
T3_DAYS = 3


class DayCondition(StrEnum):
    ABNORMAL = "abnormal"  # the onset condition holds on this day
    NORMAL = "normal"  # the clear condition holds on this day
    BETWEEN = "between"  # neither (hysteresis band)
    INDETERMINATE = "indeterminate"  # no baseline yet, or no data


class DayTransition(StrEnum):
    RAISED = "raised"
    CLEARED = "cleared"


@dataclass(frozen=True, slots=True)
class DayOutcome:
    """One day of one rule: the day's statistic, its baseline (NaN if none) and the decision."""

    rule: str
    day: dt.date
    condition: DayCondition
    active: bool
    transition: DayTransition | None
    value: float
    baseline: float
    reason: str


@dataclass(frozen=True, slots=True)
class _Verdict:
    day: dt.date
    condition: DayCondition
    value: float
    baseline: float
    reason: str


def _lifecycle(
    rule: str, verdicts: Sequence[_Verdict], onset_days: int, clear_days: int
) -> list[DayOutcome]:
    """Raise after `onset_days` consecutive ABNORMAL days; clear after `clear_days` NORMAL."""
    outcomes: list[DayOutcome] = []
    active, abnormal_run, normal_run = False, 0, 0
    previous: dt.date | None = None
    for verdict in verdicts:
        if previous is None or (verdict.day - previous).days != 1:
            abnormal_run = normal_run = 0
        previous = verdict.day
        abnormal_run = abnormal_run + 1 if verdict.condition is DayCondition.ABNORMAL else 0
        normal_run = normal_run + 1 if verdict.condition is DayCondition.NORMAL else 0
        transition = None
        if not active and abnormal_run >= onset_days:
            active, transition = True, DayTransition.RAISED
        elif active and normal_run >= clear_days:
            active, transition = False, DayTransition.CLEARED
        outcomes.append(
            DayOutcome(
                rule,
                verdict.day,
                verdict.condition,
                active,
                transition,
                verdict.value,
                verdict.baseline,
                verdict.reason,
            )
        )
    return outcomes


def _check_order(days: Sequence[dt.date]) -> None:
    if any(later <= earlier for earlier, later in itertools.pairwise(days)):
        raise ValueError("history must be in strictly increasing date order, one record per day")


def _previous(days: Sequence[dt.date], index: int, span_days: int) -> range:
    """Indexes of the records in the `span_days` calendar days before record `index`."""
    first = index
    while first > 0 and (days[index] - days[first - 1]).days <= span_days:
        first -= 1
    return range(first, index)


def spo2_baseline(history: Sequence[SpO2Day], index: int) -> tuple[float, int]:
    """(median of all valid resting SpO2 in the 14 days before history[index], days with data);
    NaN if fewer than 3 such days."""
    days = [record.day for record in history]
    earlier = [history[i] for i in _previous(days, index, S5_BASELINE_DAYS) if history[i].valid_s]
    if len(earlier) < S5_MIN_BASELINE_DAYS:
        return math.nan, len(earlier)
    counts = np.sum([record.counts for record in earlier], axis=0)
    cumulative = np.cumsum(counts)
    total = int(cumulative[-1])
    lower = LEVELS[int(np.searchsorted(cumulative, (total + 1) // 2))]
    upper = LEVELS[int(np.searchsorted(cumulative, total // 2 + 1))]
    return (lower + upper) / 2, len(earlier)


def evaluate_s5(history: Sequence[SpO2Day], profile: Profile = Profile.DEFAULT) -> list[DayOutcome]:
    """S5, drop from the personal baseline (baseline - 3, COPD - 4). ABNORMAL if any 1-h window
    has >= 30 min at or below the limit (i.e. its median is at or below it), or the day's mean and
    the previous day's are both at or below their limits, or the mean fell > 4 points since the
    previous day. NORMAL if the 1-h median stayed >= baseline - 1 for 2 h, or the day's mean is
    within 2 points of the baseline."""
    _check_order([record.day for record in history])
    drop = S5_DROP_PERCENT[profile]
    verdicts: list[_Verdict] = []
    previous_mean, previous_low = math.nan, False
    for index, record in enumerate(history):
        consecutive = index > 0 and (record.day - history[index - 1].day).days == 1
        if not consecutive:
            previous_mean, previous_low = math.nan, False
        baseline, n_days = spo2_baseline(history, index)
        mean = record.mean_percent
        if math.isnan(baseline) or math.isnan(mean):
            reason = "no valid resting SpO2"
            if math.isnan(baseline):
                reason = f"baseline has {n_days} of {S5_MIN_BASELINE_DAYS} days"
            verdicts.append(
                _Verdict(record.day, DayCondition.INDETERMINATE, mean, baseline, reason)
            )
            previous_mean, previous_low = mean, False
            continue
        limit = baseline - drop
        low_s = _at_level(record.low_window_s, math.floor(limit))
        high_s = _at_level(record.high_run_s, math.ceil(baseline - S5_CLEAR_MARGIN_PERCENT))
        mean_low = mean <= limit
        reasons = []
        if low_s >= S5_LOW_WINDOW_S:
            reasons.append(f"{low_s} s of a 1-h window <= {limit:g} %")
        if mean_low and previous_low:
            reasons.append(f"daily means {previous_mean:.1f}, {mean:.1f} <= {limit:g} %")
        if previous_mean - mean > S5_DAY_TO_DAY_DROP_PERCENT:
            reasons.append(f"daily mean fell {previous_mean - mean:.1f} points")
        if reasons:
            condition, reason = DayCondition.ABNORMAL, "; ".join(reasons)
        elif high_s >= S5_CLEAR_RUN_S or mean >= baseline - S5_CLEAR_MEAN_WITHIN_PERCENT:
            condition, reason = DayCondition.NORMAL, f"mean {mean:.1f} %, 1-h median run {high_s} s"
        else:
            condition, reason = DayCondition.BETWEEN, f"mean {mean:.1f} %"
        verdicts.append(_Verdict(record.day, condition, mean, baseline, reason))
        previous_mean, previous_low = mean, mean_low
    return _lifecycle("S5", verdicts, onset_days=1, clear_days=1)


def _at_level(per_level: Sequence[int], level: int) -> int:
    if level < LEVELS[0]:
        return 0
    return per_level[min(level, LEVELS[-1]) - LEVELS[0]]


def _night_verdicts(
    history: Sequence[NightValue],
    span_nights: int,
    min_nights: int,
    judge: Callable[[float, list[float]], tuple[DayCondition, float, str]],
) -> list[_Verdict]:
    """Baseline = the valid values of the `span_nights` nights before each night."""
    days = [night.day for night in history]
    _check_order(days)
    verdicts = []
    for index, night in enumerate(history):
        earlier = [
            history[i].value
            for i in _previous(days, index, span_nights)
            if not math.isnan(history[i].value)
        ]
        if len(earlier) < min_nights or math.isnan(night.value):
            reason = (
                f"baseline has {len(earlier)} of {min_nights} nights"
                if len(earlier) < min_nights
                else "not enough data this night"
            )
            condition, baseline = DayCondition.INDETERMINATE, math.nan
        else:
            condition, baseline, reason = judge(night.value, earlier)
        verdicts.append(_Verdict(night.day, condition, night.value, baseline, reason))
    return verdicts


def _judge_h3(value: float, earlier: list[float]) -> tuple[DayCondition, float, str]:
    mean, sd = statistics.fmean(earlier), statistics.stdev(earlier)
    onset = mean + max(H3_SD_FACTOR * sd, H3_MIN_RISE_BPM)
    text = f"RHR {value:.1f} bpm, baseline {mean:.1f} +/- {sd:.1f}"
    if value > onset:
        return DayCondition.ABNORMAL, mean, f"{text}: > {onset:.1f}"
    if value < mean + sd:
        return DayCondition.NORMAL, mean, f"{text}: < {mean + sd:.1f}"
    return DayCondition.BETWEEN, mean, text


def evaluate_h3(history: Sequence[NightValue]) -> list[DayOutcome]:
    """H3, resting-HR rise: nightly RHR > mean + max(1.5 sd, 5 bpm) of the previous 28 nights
    (at least 7) on 2 consecutive nights; clears after 2 nights below mean + 1 sd."""
    verdicts = _night_verdicts(history, H3_BASELINE_NIGHTS, H3_MIN_BASELINE_NIGHTS, _judge_h3)
    return _lifecycle("H3", verdicts, onset_days=2, clear_days=2)


def _judge_t5(value: float, earlier: list[float]) -> tuple[DayCondition, float, str]:
    baseline = statistics.median(earlier)
    text = f"night median {value:.2f} C, baseline {baseline:.2f} C"
    if value > baseline + T5_RISE_C:
        return DayCondition.ABNORMAL, baseline, text
    if value <= baseline + T5_CLEAR_WITHIN_C:
        return DayCondition.NORMAL, baseline, text
    return DayCondition.BETWEEN, baseline, text


def evaluate_t5(history: Sequence[NightValue]) -> list[DayOutcome]:
    """T5, wearable skin temperature: nightly median > the median of the previous 14 nights (at
    least 7) + 1.0 C on 2 consecutive nights; clears on a night back within 0.5 C. Only ever
    relative to the personal baseline: no absolute fever cut-off applies to skin temperature."""
    verdicts = _night_verdicts(history, T5_BASELINE_NIGHTS, T5_MIN_BASELINE_NIGHTS, _judge_t5)
    return _lifecycle("T5", verdicts, onset_days=2, clear_days=1)


def evaluate_t3(history: Sequence[TemperatureDay]) -> list[DayOutcome]:
    """T3, persistent high fever: a reading > 38.5 C on each of 3 consecutive calendar days;
    clears on a day whose readings are all < 38.0 C. A day without readings is indeterminate."""
    _check_order([record.day for record in history])
    verdicts = []
    for record in history:
        if record.readings == 0 or math.isnan(record.max_c):
            condition = DayCondition.INDETERMINATE
        elif record.max_c > T3_FEVER_C:
            condition = DayCondition.ABNORMAL
        elif record.max_c < T3_CLEAR_BELOW_C:
            condition = DayCondition.NORMAL
        else:
            condition = DayCondition.BETWEEN
        reason = f"highest of {record.readings} readings {record.max_c:.1f} C"
        verdicts.append(_Verdict(record.day, condition, record.max_c, math.nan, reason))
    return _lifecycle("T3", verdicts, onset_days=T3_DAYS, clear_days=1)
