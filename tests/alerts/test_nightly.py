"""S6: the nightly oximetry summary and its decision, on constructed 1 Hz nights."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alerts.nightly import NightlySummary, NightStatus, summarise_night
from alerts.rules import Priority, Profile

HOUR_S = 3600


def night(hours: float, level: float = 96.0) -> np.ndarray:
    return np.full(round(hours * HOUR_S), level)


def with_dips(series: np.ndarray, per_hour: int, depth: int = 4, hold_s: int = 15) -> np.ndarray:
    """Insert `per_hour` dips of `depth` points (1 point/s down and up) at regular spacing."""
    out = series.copy()
    spacing_s = HOUR_S // per_hour
    start = float(series[0])
    shape = [start - k for k in range(1, depth + 1)]
    shape = shape + [start - depth] * hold_s + shape[::-1][1:]
    for at in range(60, len(out) - spacing_s, spacing_s):
        out[at : at + len(shape)] = shape
    return out


def with_plateau(series: np.ndarray, at_s: int, seconds: int, level: float) -> np.ndarray:
    out = series.copy()
    out[at_s : at_s + seconds] = level
    return out


def test_a_steady_night_is_clear() -> None:
    summary = summarise_night(night(6))
    assert summary.status is NightStatus.CLEAR
    assert summary.priority is None
    assert (summary.desaturations, summary.odi3_per_hour, summary.ct90_percent) == (0, 0.0, 0.0)
    assert (summary.nadir_percent, summary.nadir_s) == (96.0, 6 * HOUR_S)
    assert summary.valid_hours == 6.0


def test_twenty_dips_an_hour_is_odi_above_15_and_medium_when_new() -> None:
    series = with_dips(night(5), per_hour=20)
    summary = summarise_night(series)
    assert summary.desaturations == 99  # the last slot of the night does not fit
    assert summary.odi3_per_hour == pytest.approx(99 / 5)
    assert summary.status is NightStatus.ALERT
    assert summary.priority is Priority.MEDIUM
    assert summary.ct90_percent == 0.0  # 92 % at the bottom of each dip
    assert summary.reasons == ("ODI3 19.8/h > 15/h",)


def test_odi_above_15_again_is_low_and_above_30_is_medium() -> None:
    previous = summarise_night(with_dips(night(5), per_hour=20))
    again = summarise_night(with_dips(night(5), per_hour=20), previous=previous)
    assert again.priority is Priority.LOW
    severe = summarise_night(with_dips(night(5), per_hour=40), previous=previous)
    assert severe.odi3_per_hour > 30
    assert severe.priority is Priority.MEDIUM


def test_a_previous_indeterminate_night_does_not_make_odi_old_news() -> None:
    short = summarise_night(with_dips(night(3), per_hour=20))
    assert short.status is NightStatus.INDETERMINATE and short.odi3_per_hour > 15
    summary = summarise_night(with_dips(night(5), per_hour=20), previous=short)
    assert summary.priority is Priority.MEDIUM


def test_ct90_above_10_percent_alerts_the_default_profile_but_not_copd() -> None:
    series = with_plateau(night(5), HOUR_S, 40 * 60, 89.0)  # 40 min at 89 % = 13.3 %
    default = summarise_night(series)
    assert default.ct90_percent == pytest.approx(100 * 40 / 300)
    assert default.status is NightStatus.ALERT and default.priority is Priority.LOW
    assert default.desaturations == 0  # a plateau is not a desaturation event
    copd = summarise_night(series, Profile.COPD)
    assert math.isnan(copd.ct90_percent)
    assert copd.status is NightStatus.CLEAR


def test_copd_alerts_when_over_10_percent_of_the_night_is_below_85() -> None:
    series = with_plateau(night(5, level=90.0), HOUR_S, 40 * 60, 84.0)
    copd = summarise_night(series, Profile.COPD)
    assert copd.below_85_percent == pytest.approx(100 * 40 / 300)
    assert copd.status is NightStatus.ALERT
    assert any("time < 85 %" in reason for reason in copd.reasons)


@pytest.mark.parametrize(("seconds", "status"), [(70, NightStatus.ALERT), (50, NightStatus.CLEAR)])
def test_spo2_below_85_for_60_s_in_a_row(seconds: int, status: NightStatus) -> None:
    summary = summarise_night(with_plateau(night(5), 2 * HOUR_S, seconds, 83.0))
    assert summary.status is status
    assert summary.nadir_percent == 83.0
    assert summary.longest_below_85_s == seconds  # a median filter keeps the edges of a step


def test_less_than_4_h_of_valid_data_is_indeterminate_not_clear() -> None:
    summary = summarise_night(with_plateau(night(3.9), HOUR_S, 600, 80.0))
    assert summary.status is NightStatus.INDETERMINATE
    assert summary.priority is None
    assert summary.reasons == ("only 3.90 h of valid data (< 4 h)",)


def test_probe_off_zeros_are_missing_never_low_spo2() -> None:
    series = with_plateau(night(5), HOUR_S, 30 * 60, 0.0)
    summary: NightlySummary = summarise_night(series)
    assert summary.valid_s == 4.5 * HOUR_S
    assert summary.status is NightStatus.CLEAR
    assert (summary.nadir_percent, summary.longest_below_85_s, summary.desaturations) == (96, 0, 0)
    assert summarise_night(with_plateau(night(5), 0, 90 * 60, 0.0)).status is (
        NightStatus.INDETERMINATE
    )
