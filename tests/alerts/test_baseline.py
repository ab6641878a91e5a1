"""The trend rules S5, H3, T5 and T3 on small constructed histories: onset, clear, minimum
history, and that a day exactly at the baseline never raises."""

from __future__ import annotations

import datetime as dt
import math
import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.baseline import (
    DayCondition,
    DayOutcome,
    DayTransition,
    evaluate_h3,
    evaluate_s5,
    evaluate_t3,
    evaluate_t5,
    spo2_baseline,
)
from alerts.daily import NightValue, SpO2Day, TemperatureDay, aggregate_spo2_days
from alerts.rules import Profile

DAY_0 = dt.date(2024, 3, 1)
MIN_S = 60
HOUR_S = 3600
RAISED, CLEARED = DayTransition.RAISED, DayTransition.CLEARED


def day(n: int) -> dt.date:
    return DAY_0 + dt.timedelta(days=n)


def spot_days(*means: int | tuple[int, ...] | None) -> list[SpO2Day]:
    """One day per argument: three readings at that level, or the readings given (None: no
    record that day)."""
    return [
        SpO2Day.from_readings(day(n), [level] * 3 if isinstance(level, int) else level)
        for n, level in enumerate(means)
        if level is not None
    ]


def transitions(outcomes: list[DayOutcome]) -> list[DayTransition | None]:
    return [o.transition for o in outcomes]


def continuous_day(n: int, *blocks: tuple[float, int]) -> SpO2Day:
    """One local day (UTC here) built from (level, seconds) blocks from 06:00 on."""
    start_s = int(dt.datetime.combine(day(n), dt.time(6), dt.UTC).timestamp())
    values = np.concatenate([np.full(seconds, float(level)) for level, seconds in blocks])
    (aggregate,) = aggregate_spo2_days(start_s, values, 0)
    return aggregate


# ---- S5 -----------------------------------------------------------------------------------


def test_s5_without_three_days_of_baseline_is_indeterminate_not_clear() -> None:
    outcomes = evaluate_s5(spot_days(96, 96, 85))
    assert [o.condition for o in outcomes] == [DayCondition.INDETERMINATE] * 3
    assert outcomes[2].reason == "baseline has 2 of 3 days"
    assert not any(o.active for o in outcomes)


@pytest.mark.parametrize(
    ("means", "expected"),
    [
        # two consecutive daily means <= baseline - 3 raise; a mean within 2 points clears
        ((96, 96, 96, 93, 93, 95), [None, None, None, None, RAISED, CLEARED]),
        # one low day is not enough
        ((96, 96, 96, 93, 95, 96), [None] * 6),
        # a mean between the limits (93.7) neither raises nor clears
        ((96, 96, 96, 93, 93, (93, 94, 94), 94), [None, None, None, None, RAISED, None, CLEARED]),
        # a day-to-day drop of more than 4 points raises at once; exactly 4 does not
        ((96, 96, 96, 91), [None, None, None, RAISED]),
        ((96, 96, 96, 92), [None] * 4),
        # a missing calendar day breaks "consecutive"
        ((96, 96, 96, 93, None, 93), [None] * 5),
    ],
)
def test_s5_daily_means(
    means: tuple[int | tuple[int, ...] | None, ...], expected: list[object]
) -> None:
    assert transitions(evaluate_s5(spot_days(*means))) == expected


def test_s5_copd_needs_a_drop_of_four() -> None:
    history = spot_days(90, 90, 90, 87, 87)
    assert transitions(evaluate_s5(history))[-1] is RAISED
    assert transitions(evaluate_s5(history, Profile.COPD)) == [None] * 5
    assert transitions(evaluate_s5(spot_days(90, 90, 90, 86, 86), Profile.COPD))[-1] is RAISED


def test_s5_baseline_is_the_median_of_the_previous_14_days_of_samples() -> None:
    old_low_days = [(80,) * 100] * 3  # enough samples to move the median if counted
    history = spot_days(*old_low_days, *([96] * 4), 97, 97, 95, 95, *([96] * 6), 50)
    assert spo2_baseline(history, 17) == (96.0, 14)  # the 80s are older than 14 days
    too_few, n_days = spo2_baseline(history, 2)
    assert math.isnan(too_few) and n_days == 2
    even = [SpO2Day.from_readings(day(n), [v]) for n, v in enumerate([95, 96, 95, 96])]
    assert spo2_baseline(even, 3) == (95.0, 3)
    assert spo2_baseline([*even, SpO2Day.from_readings(day(4), [])], 4) == (95.5, 4)


@pytest.mark.parametrize(("low_minutes", "raised"), [(40, True), (29, False)])
def test_s5_a_1_h_window_with_30_min_at_the_limit_raises(low_minutes: int, raised: bool) -> None:
    baseline_days = [continuous_day(n, (96, 2 * HOUR_S)) for n in range(3)]
    dip = continuous_day(3, (96, HOUR_S), (93, low_minutes * MIN_S), (96, 2 * HOUR_S))
    assert dip.mean_percent > 94  # the daily mean alone would not raise
    outcomes = evaluate_s5([*baseline_days, dip])
    assert (outcomes[-1].transition is RAISED) is raised
    assert outcomes[-1].baseline == 96.0


@pytest.mark.parametrize(("good_hours", "cleared"), [(3, True), (1.5, False)])
def test_s5_clears_after_2_h_of_1_h_median_at_baseline_minus_1(
    good_hours: float, cleared: bool
) -> None:
    history = [continuous_day(n, (96, 2 * HOUR_S)) for n in range(3)]
    history.append(continuous_day(3, (92, 2 * HOUR_S)))
    # 25 min at 93 every hour: no window reaches 30 min at <= 93, yet the mean stays < 94
    pattern = ((93, 25 * MIN_S), (94, 35 * MIN_S)) * 10
    history.append(continuous_day(4, *pattern, (95, int(good_hours * HOUR_S))))
    assert history[-1].mean_percent < 94
    outcomes = evaluate_s5(history)
    assert outcomes[3].transition is RAISED
    assert outcomes[4].condition is (DayCondition.NORMAL if cleared else DayCondition.BETWEEN)
    assert outcomes[4].active is not cleared


# ---- H3 -----------------------------------------------------------------------------------

BASE_RHR = [60.0, 61.0, 59.0, 60.0, 62.0, 58.0, 60.0]  # mean 60, sd 1.29: onset above 65


def nights(*values: float) -> list[NightValue]:
    return [NightValue(day(n), v, 7 * HOUR_S) for n, v in enumerate(values)]


def test_h3_needs_seven_nights_of_baseline() -> None:
    outcomes = evaluate_h3(nights(*BASE_RHR[:6], 80.0, 80.0))
    assert [o.condition for o in outcomes[:7]] == [DayCondition.INDETERMINATE] * 7
    assert outcomes[6].reason == "baseline has 6 of 7 nights"
    assert outcomes[7].transition is None  # first night with a baseline: one high night only


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ((70.0, 70.0, 60.0, 60.0), [None, RAISED, None, CLEARED]),  # 2 high nights, 2 low ones
        ((70.0, 60.0, 70.0), [None] * 3),  # never 2 in a row
        # 67 is between baseline + 1 sd and the onset level: the alert stays
        ((70.0, 70.0, 60.0, 67.0, 60.0, 60.0), [None, RAISED, None, None, None, CLEARED]),
        ((64.0, 64.0), [None, None]),  # above 1.5 sd (62) but below the 5 bpm floor
    ],
)
def test_h3_onset_and_clear(tail: tuple[float, ...], expected: list[object]) -> None:
    outcomes = evaluate_h3(nights(*BASE_RHR, *tail))
    assert transitions(outcomes)[7:] == expected


def test_h3_a_missing_night_or_a_night_without_data_breaks_the_run() -> None:
    history = [*nights(*BASE_RHR), NightValue(day(7), 70.0, 7 * HOUR_S)]
    gap = [*history, NightValue(day(9), 70.0, 7 * HOUR_S)]
    assert RAISED not in transitions(evaluate_h3(gap))
    no_data = [*history, NightValue(day(8), math.nan, 600), NightValue(day(9), 70.0, 7 * HOUR_S)]
    outcomes = evaluate_h3(no_data)
    assert outcomes[8].condition is DayCondition.INDETERMINATE
    assert RAISED not in transitions(outcomes)


def test_history_must_be_in_date_order() -> None:
    with pytest.raises(ValueError, match="date order"):
        evaluate_h3(list(reversed(nights(*BASE_RHR))))


# ---- T5 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("skin_baseline_c", [31.0, 33.0, 35.5])
def test_t5_is_relative_to_the_personal_baseline_only(skin_baseline_c: float) -> None:
    base = [skin_baseline_c] * 7
    rise = [skin_baseline_c + 1.2] * 2
    outcomes = evaluate_t5(nights(*base, *rise, skin_baseline_c + 0.8, skin_baseline_c + 0.4))
    assert transitions(outcomes)[7:] == [None, RAISED, None, CLEARED]
    assert transitions(evaluate_t5(nights(*base, skin_baseline_c + 0.9, 99.0))) == [None] * 9


def test_t5_needs_seven_nights() -> None:
    outcomes = evaluate_t5(nights(*([33.0] * 6), 35.0, 35.0))
    assert outcomes[6].condition is DayCondition.INDETERMINATE
    assert not any(o.active for o in outcomes)


# ---- T3 -----------------------------------------------------------------------------------


def fever_days(*maxima: float | None) -> list[TemperatureDay]:
    return [
        TemperatureDay(day(n), math.nan, 0) if t is None else TemperatureDay(day(n), t, 2)
        for n, t in enumerate(maxima)
    ]


@pytest.mark.parametrize(
    ("maxima", "expected"),
    [
        ((38.6, 38.7, 38.9, 38.2, 37.9), [None, None, RAISED, None, CLEARED]),
        ((38.6, 38.5, 38.9, 38.9), [None] * 4),  # 38.5 is not above 38.5
        ((38.6, None, 38.6, 38.6, 38.6), [None, None, None, None, RAISED]),  # no readings
        ((38.6, 38.7, 38.9, 38.0, 38.6), [None, None, RAISED, None, None]),  # 38.0 isn't < 38.0
    ],
)
def test_t3_persistent_high_fever(maxima: tuple[float | None, ...], expected: list[object]) -> None:
    assert transitions(evaluate_t3(fever_days(*maxima))) == expected


# ---- a day exactly at the baseline ------------------------------------------------------------

DATE_OFFSETS = st.lists(st.integers(1, 3), min_size=7, max_size=20)


@settings(max_examples=150, deadline=None)
@given(steps=DATE_OFFSETS, values=st.lists(st.floats(45, 110), min_size=20, max_size=20))
def test_a_night_exactly_at_the_baseline_never_raises_h3_or_t5(
    steps: list[int], values: list[float]
) -> None:
    dates = [day(int(n)) for n in np.cumsum(steps)]
    history = [NightValue(d, v, 7 * HOUR_S) for d, v in zip(dates, values, strict=False)]
    new_day = dates[-1] + dt.timedelta(days=1)
    for evaluate, span, centre in (
        (evaluate_h3, 28, statistics.fmean),
        (evaluate_t5, 14, statistics.median),
    ):
        earlier = [n.value for n in history if (new_day - n.day).days <= span]
        if len(earlier) < 7:
            continue
        outcomes = evaluate([*history, NightValue(new_day, centre(earlier), 7 * HOUR_S)])
        assert outcomes[-1].transition is not RAISED
        assert outcomes[-1].baseline == pytest.approx(centre(earlier))


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(st.integers(1, 2), min_size=3, max_size=16), data=st.data())
def test_an_spo2_day_exactly_at_the_baseline_raises_only_after_a_fall_of_over_4(
    steps: list[int], data: st.DataObject
) -> None:
    dates = [day(int(n)) for n in np.cumsum(steps)]
    history = [
        SpO2Day.from_readings(d, data.draw(st.lists(st.integers(80, 100), min_size=1, max_size=5)))
        for d in dates
    ]
    new_day = dates[-1] + dt.timedelta(days=1)
    baseline, _ = spo2_baseline([*history, SpO2Day.from_readings(new_day, [])], len(history))
    if math.isnan(baseline):
        return
    at_baseline = SpO2Day.from_readings(new_day, [math.floor(baseline), math.ceil(baseline)])
    assert at_baseline.mean_percent == baseline
    outcome = evaluate_s5([*history, at_baseline])[-1]
    if outcome.transition is RAISED:
        previous = history[-1]
        assert previous.day == dates[-1] and (new_day - previous.day).days == 1
        assert previous.mean_percent - baseline > 4
        assert outcome.reason.startswith("daily mean fell")
