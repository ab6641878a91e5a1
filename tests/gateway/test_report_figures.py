"""The report's pure figures: per-minute series against a plain per-minute reference, gaps and
their reasons, extremes, and the limit lines taken from the rule table."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.rules import Profile, Tier
from devices.protocols.reading import Quality
from gateway.report_figures import (
    Gap,
    extreme,
    find_gaps,
    gap_reason,
    per_minute,
    pulse_lines,
    spo2_lines,
)

values = st.lists(
    st.one_of(st.just(math.nan), st.floats(min_value=50, max_value=100)), max_size=300
)


@given(values)
def test_per_minute_is_the_low_lower_median_and_high_of_each_minute(data: list[float]) -> None:
    series = per_minute(data)
    assert len(series.median) == -(-len(data) // 60)
    for minute in range(len(series.median)):
        valid = sorted(v for v in data[minute * 60 : (minute + 1) * 60] if not math.isnan(v))
        got = (series.low[minute], series.median[minute], series.high[minute])
        if not valid:
            assert all(math.isnan(v) for v in got)
        else:
            assert got == (valid[0], valid[(len(valid) - 1) // 2], valid[-1])


def test_gaps_are_runs_without_a_value_of_at_least_a_minute_longest_first() -> None:
    valid = np.ones(1000, dtype=bool)
    valid[10:69] = False  # 59 s: too short to list
    valid[100:200] = False
    valid[500:800] = False
    valid[950:] = False  # 50 s at the end: too short as well
    flags = np.zeros(1000, dtype=np.int64)
    flags[120] = Quality.FINGER_OUT
    received = np.zeros(1000, dtype=bool)
    received[120] = True
    gaps = find_gaps(1_000_000, valid, flags, received)
    assert [(g.start_s - 1_000_000, g.length_s) for g in gaps] == [(500, 300), (100, 100)]
    assert gaps[1].flags == Quality.FINGER_OUT and gaps[1].received
    assert gaps[0].flags == Quality.OK and not gaps[0].received


def test_a_gap_at_the_end_of_the_day_is_listed() -> None:
    valid = np.ones(200, dtype=bool)
    valid[120:] = False
    gaps = find_gaps(0, valid, np.zeros(200, dtype=np.int64), np.zeros(200, dtype=bool))
    assert [(g.start_s, g.length_s) for g in gaps] == [(120, 80)]


@pytest.mark.parametrize(
    ("flags", "received", "reason"),
    [
        (Quality.FINGER_OUT | Quality.SEARCHING, True, "finger out of the probe"),
        (Quality.SENSOR_FAULT, True, "sensor fault"),
        (Quality.SEARCHING, True, "searching for a pulse"),
        (Quality.OK, True, "no usable value"),
        (Quality.OK, False, "no readings received"),
    ],
)
def test_gap_reasons(flags: Quality, received: bool, reason: str) -> None:
    assert gap_reason(Gap(0, 60, flags, received)) == reason


def test_extreme_gives_the_first_time_of_the_highest_or_lowest_value() -> None:
    times = [10.0, 20.0, 30.0, 40.0]
    found = extreme(times, [37.0, math.nan, 38.5, 38.5])
    assert found is not None and (found.value, found.at_s) == (38.5, 30.0)
    lowest = extreme(times, [37.0, math.nan, 36.0, 38.5], highest=False)
    assert lowest is not None and (lowest.value, lowest.at_s) == (36.0, 30.0)
    assert extreme(times, [math.nan] * 4) is None
    assert extreme([], []) is None


@pytest.mark.parametrize(
    ("tier", "profile", "levels"),
    [
        (Tier.GREEN, Profile.DEFAULT, [94.0, 92.0, 88.0]),
        (Tier.RED, Profile.DEFAULT, [94.0, 93.0, 88.0]),
        (Tier.YELLOW, Profile.COPD, [87.0, 85.0, 83.0]),
    ],
)
def test_spo2_lines_are_the_rules_limits(tier: Tier, profile: Profile, levels: list[float]) -> None:
    lines = spo2_lines(tier, profile)
    assert [rule for rule, _ in lines] == ["S3", "S2", "S1"]
    assert [level for _, level in lines] == levels


def test_pulse_lines_are_where_h1_and_h2_start() -> None:
    assert pulse_lines(Tier.RED) == (40, 50, 111, 131)
