"""The relative desaturation detector (CLINICAL_RULES.md 1.6) on hand-built 1 Hz series, its
invariants under hypothesis, and the burden measures (CT90 with <=, nadir, time below)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.odi import (
    DESAT_MAX_LENGTH_S,
    Desaturation,
    ct_percent,
    detect_desaturations,
    longest_run_below_s,
    nadir,
    odi_per_hour,
    preprocess,
    seconds_below,
)

NAN = math.nan


def flat(level: float, seconds: int) -> list[float]:
    return [float(level)] * seconds


def dip(start: int, depth: int, hold_s: int) -> list[float]:
    """Fall 1 point a second from `start` by `depth`, hold the bottom, recover 1 point/s."""
    down = [float(start - k) for k in range(1, depth + 1)]
    return down + flat(start - depth, hold_s) + down[::-1][1:] + [float(start)]


def test_a_four_point_dip_of_20_s_is_one_event() -> None:
    series = flat(97, 30) + dip(97, 4, 13) + flat(97, 30)
    assert len(series) == 30 + 4 + 13 + 4 + 30

    events = detect_desaturations(series)

    # begin = the 96 after the first one-second fall; the drop of 3 is counted from it; the
    # end is the first sample >= 10 s after begin that is within 1 point of 96 (i.e. 95).
    assert events == [Desaturation(begin=30, nadir=33, end=48, recovery=48, depth_percent=3.0)]
    assert series[30] == 96 and series[33] == 93 and series[48] == 95


def test_a_two_point_dip_is_not_an_event() -> None:
    assert detect_desaturations(flat(97, 30) + dip(97, 2, 30) + flat(97, 30)) == []


def test_a_three_point_dip_in_one_point_steps_falls_short_of_three_from_its_start() -> None:
    # The drop is measured from the first sample after the fall began (96), so 97 -> 94 is 2.
    assert detect_desaturations(flat(97, 30) + dip(97, 3, 30) + flat(97, 30)) == []


def test_a_one_second_fall_bigger_than_the_threshold_does_not_start_an_event() -> None:
    # 97 -> 93 in one second, then 1 point/s to 90: the start is 92 (the first fall of 1..3
    # points), and 92 -> 90 is only 2 points.
    tail = [92.0, 91.0, *flat(90, 15), 93.0, 95.0, 97.0, *flat(97, 30)]
    assert detect_desaturations([*flat(97, 30), 93.0, *tail]) == []
    assert len(detect_desaturations([*flat(97, 30), 96.0, 95.0, 94.0, 93.0, *tail])) == 1


def test_a_dip_that_ends_sooner_than_10_s_after_its_start_waits_for_10_s() -> None:
    events = detect_desaturations(flat(97, 30) + dip(97, 4, 0) + flat(97, 30))
    assert len(events) == 1
    assert events[0].length_s == 10


def test_a_slow_drift_down_and_staying_low_is_not_an_event() -> None:
    drift = [float(97 - k // 60) for k in range(12 * 60)]  # 1 point a minute, 97 -> 86
    assert detect_desaturations(flat(97, 30) + drift + flat(86, 600)) == []


def test_a_slow_drift_down_and_back_is_too_long_to_count() -> None:
    down = [float(97 - k // 30) for k in range(6 * 30)]  # 97 -> 92 over 3 min
    series = flat(97, 30) + down + down[::-1] + flat(97, 30)
    assert detect_desaturations(series) == []
    assert len(detect_desaturations(series, max_length_s=10**6)) == 1


def test_a_200_s_dip_is_longer_than_the_maximum_and_not_counted() -> None:
    series = flat(97, 30) + dip(97, 5, 200) + flat(97, 30)
    assert detect_desaturations(series) == []
    longer = detect_desaturations(series, max_length_s=300)
    assert len(longer) == 1 and longer[0].length_s > DESAT_MAX_LENGTH_S


def test_two_dips_back_to_back_are_two_events() -> None:
    series = flat(97, 30) + dip(97, 4, 15) + dip(97, 5, 15) + flat(97, 30)
    events = detect_desaturations(series)
    assert len(events) == 2
    first, second = events
    assert first.end < second.begin
    assert (first.depth_percent, second.depth_percent) == (3.0, 4.0)


def test_a_rebound_of_three_above_the_nadir_ends_the_event_and_finds_d_later() -> None:
    # 97 -> 90, back up to 93 (3 above the nadir, still 6 below the start), then 96 later.
    series = flat(97, 20) + dip(97, 7, 10)[:18] + flat(93, 20) + flat(96, 20)
    events = detect_desaturations(series)
    assert len(events) == 1
    event = events[0]
    assert series[event.end] == 93
    assert series[event.recovery] == 96  # D: first sample within 1 point of the start (96)
    assert event.recovery > event.end


def test_nan_in_a_candidate_abandons_it_and_probe_off_makes_no_event() -> None:
    broken = flat(97, 30) + dip(97, 4, 13)
    broken[40] = NAN
    assert detect_desaturations(broken + flat(97, 30)) == []
    probe_off = flat(97, 30) + flat(0, 300) + flat(97, 30) + flat(127, 60) + flat(97, 30)
    cleaned = preprocess(probe_off)
    assert np.isnan(cleaned[30:330]).all()
    assert detect_desaturations(cleaned) == []


def test_preprocess_gates_range_rounds_and_median_filters_without_filling_gaps() -> None:
    raw = [97.4, 97.6, 49.0, 101.0, NAN, *flat(97, 10), 90.0, 90.0, 90.0, *flat(97, 10)]
    out = preprocess(raw)
    assert out[0] == 98  # median of the valid neighbours 97 and 98 is 97.5; halves round up
    assert np.isnan(out[2:5]).all()
    assert (out[5:] == 97).all()  # a 3 s spike is removed by the 9 s median
    unfiltered = preprocess(raw, median_s=1)
    assert list(unfiltered[:2]) == [97.0, 98.0]
    assert (unfiltered[15:18] == 90).all()


def test_odi_per_hour() -> None:
    assert odi_per_hour(5, 1800) == 10.0
    assert math.isnan(odi_per_hour(5, 0))


def test_ct90_counts_at_or_below_over_valid_samples() -> None:
    assert ct_percent([90.0, 91.0, NAN, 89.0]) == pytest.approx(200 / 3)
    assert ct_percent([91.0, 95.0]) == 0.0
    assert math.isnan(ct_percent([NAN, NAN]))


def test_time_below_nadir_and_longest_run() -> None:
    series = [86.0, 84.0, 84.0, NAN, 83.0, 84.0, 85.0, 83.0]
    assert seconds_below(series, 85) == 5
    assert longest_run_below_s(series, 85) == 2
    assert longest_run_below_s([90.0, 91.0], 85) == 0
    assert nadir(series) == (83.0, 2)
    lowest, count = nadir([NAN])
    assert math.isnan(lowest) and count == 0


@st.composite
def oximetry(draw: st.DrawFn) -> list[float]:
    """Integer SpO2 in 60..100 made of flats, one-point-a-second dips, noise and gaps."""
    series: list[float] = []
    for _ in range(draw(st.integers(1, 12))):
        level = draw(st.integers(70, 99))
        kind = draw(st.sampled_from(["flat", "dip", "noise", "gap"]))
        if kind == "flat":
            series += flat(level, draw(st.integers(1, 60)))
        elif kind == "dip":
            series += dip(level, draw(st.integers(1, 9)), draw(st.integers(0, 150)))
        elif kind == "noise":
            steps = draw(st.lists(st.integers(-3, 3), min_size=1, max_size=120))
            series += [float(min(100, max(60, level + s))) for s in np.cumsum(steps)]
        else:
            series += flat(NAN, draw(st.integers(1, 20)))
    return series


@settings(max_examples=200, deadline=None)
@given(series=oximetry())
def test_events_never_overlap_and_are_deep_and_short_enough(series: list[float]) -> None:
    data = preprocess(series)
    events = detect_desaturations(data)
    for before, after in itertools.pairwise(events):
        assert before.end < after.begin
    for event in events:
        assert event.begin < event.nadir <= event.end <= event.recovery
        assert event.depth_percent >= 3
        assert 10 <= event.length_s <= DESAT_MAX_LENGTH_S
        assert not np.isnan(data[event.begin - 1 : event.end + 1]).any()


@settings(max_examples=200, deadline=None)
@given(series=oximetry(), shift_fraction=st.floats(0, 1))
def test_odi_is_invariant_to_a_constant_shift_within_range(
    series: list[float], shift_fraction: float
) -> None:
    valid = [v for v in series if not math.isnan(v)]
    if not valid:
        return
    low, high = 50 - min(valid), 100 - max(valid)
    shift = round(low + shift_fraction * (high - low))
    shifted = [v + shift for v in series]
    assert detect_desaturations(preprocess(shifted)) == detect_desaturations(preprocess(series))
