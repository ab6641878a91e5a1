"""S6, the nightly oximetry summary (CLINICAL_RULES.md section 1.10), as a pure function of one
night's 1 Hz SpO2 (NaN = missing), the patient's profile and the previous night's summary.

Default profile: alert if ODI3 > 15/h, or CT90 > 10 %, or SpO2 < 85 % for >= 60 s in a row.
COPD profile (target 88-92 %): CT90 is not used; instead alert if > 10 % of the valid time is
below 85 % (the ODI3 and the 60 s < 85 % clauses stay). Evaluated only with >= 4 h of valid data,
otherwise indeterminate (never "clear"). Priority: MEDIUM if ODI3 is newly > 15/h (the previous
evaluated night was not) or > 30/h, else LOW, for all tiers. A clear night closes the alert.

ODI3 is per hour of VALID data (pobm divides by all samples, NaN included), so probe-off time
neither dilutes nor inflates it; CT90 and time below 85 % are shares of valid time too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from alerts.odi import (
    SECONDS_PER_HOUR,
    ct_percent,
    detect_desaturations,
    longest_run_below_s,
    nadir,
    odi_per_hour,
    preprocess,
    seconds_below,
)
from alerts.rules import Priority, Profile

MIN_VALID_S = 4 * SECONDS_PER_HOUR
ODI3_LIMIT_PER_HOUR = 15.0
ODI3_SEVERE_PER_HOUR = 30.0  # AASM severe band
CT90_LIMIT_PERCENT = 10.0  # heuristic, no guideline found (CLINICAL_RULES.md 1.10)
LOW_LEVEL_PERCENT = 85.0
LOW_RUN_LIMIT_S = 60
COPD_BELOW_LOW_LIMIT_PERCENT = 10.0


class NightStatus(StrEnum):
    ALERT = "alert"
    CLEAR = "clear"
    INDETERMINATE = "indeterminate"  # < 4 h of valid data: says nothing, clears nothing


@dataclass(frozen=True, slots=True)
class NightlySummary:
    """One night's figures and the S6 decision.

    `ct90_percent` is NaN for the COPD profile (not used there). `nadir_s` is the number of
    seconds at the nadir value; `longest_below_85_s` the longest run below 85 %.
    """

    profile: Profile
    recorded_s: int
    valid_s: int
    desaturations: int
    odi3_per_hour: float
    ct90_percent: float
    below_85_percent: float
    longest_below_85_s: int
    nadir_percent: float
    nadir_s: int
    status: NightStatus
    priority: Priority | None
    reasons: tuple[str, ...]

    @property
    def valid_hours(self) -> float:
        return self.valid_s / SECONDS_PER_HOUR


def summarise_night(
    spo2_percent: npt.ArrayLike,
    profile: Profile = Profile.DEFAULT,
    previous: NightlySummary | None = None,
) -> NightlySummary:
    """Figures and S6 decision for one night of 1 Hz SpO2 (raw: sentinels and values outside
    50-100 % become missing, then the 9 s median; see `alerts.odi.preprocess`).

    `previous` is the last evaluated night (or None): it decides whether ODI3 > 15/h is new.
    """
    raw = np.asarray(spo2_percent, dtype=np.float64)
    spo2 = preprocess(raw)
    valid_s = int(np.count_nonzero(~np.isnan(spo2)))
    events = len(detect_desaturations(spo2))
    odi3 = odi_per_hour(events, valid_s)
    lowest, at_lowest_s = nadir(spo2)
    below_s = seconds_below(spo2, LOW_LEVEL_PERCENT)
    below_percent = 100.0 * below_s / valid_s if valid_s else math.nan
    ct90 = ct_percent(spo2) if profile is Profile.DEFAULT else math.nan
    longest_s = longest_run_below_s(spo2, LOW_LEVEL_PERCENT)

    reasons: list[str] = []
    if odi3 > ODI3_LIMIT_PER_HOUR:
        reasons.append(f"ODI3 {odi3:.1f}/h > {ODI3_LIMIT_PER_HOUR:g}/h")
    if ct90 > CT90_LIMIT_PERCENT:
        reasons.append(f"CT90 {ct90:.1f} % > {CT90_LIMIT_PERCENT:g} %")
    if profile is Profile.COPD and below_percent > COPD_BELOW_LOW_LIMIT_PERCENT:
        reasons.append(f"time < 85 % is {below_percent:.1f} % > {COPD_BELOW_LOW_LIMIT_PERCENT:g} %")
    if longest_s >= LOW_RUN_LIMIT_S:
        reasons.append(f"SpO2 < 85 % for {longest_s} s in a row (nadir {lowest:g} %)")

    priority: Priority | None = None
    if valid_s < MIN_VALID_S:
        status = NightStatus.INDETERMINATE
        reasons = [f"only {valid_s / SECONDS_PER_HOUR:.2f} h of valid data (< 4 h)"]
    elif reasons:
        status = NightStatus.ALERT
        priority = _priority(odi3, previous)
    else:
        status = NightStatus.CLEAR
    return NightlySummary(
        profile=profile,
        recorded_s=len(raw),
        valid_s=valid_s,
        desaturations=events,
        odi3_per_hour=odi3,
        ct90_percent=ct90,
        below_85_percent=below_percent,
        longest_below_85_s=longest_s,
        nadir_percent=lowest,
        nadir_s=at_lowest_s,
        status=status,
        priority=priority,
        reasons=tuple(reasons),
    )


def _priority(odi3: float, previous: NightlySummary | None) -> Priority:
    """MEDIUM if ODI3 > 30/h, or > 15/h when the previous evaluated night was not."""
    if odi3 > ODI3_SEVERE_PER_HOUR:
        return Priority.MEDIUM
    was_high = (
        previous is not None
        and previous.status is not NightStatus.INDETERMINATE
        and previous.odi3_per_hour > ODI3_LIMIT_PER_HOUR
    )
    if odi3 > ODI3_LIMIT_PER_HOUR and not was_high:
        return Priority.MEDIUM
    return Priority.LOW
