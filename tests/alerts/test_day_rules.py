"""From the day- and night-level decisions to detector events: priorities per tier, the same
transitions as alerts/baseline.py's lifecycle when driven a day at a time against the live
alert, the cases that lifecycle cannot see (an alert older than the history read), and
details that JSON can carry."""

from __future__ import annotations

import datetime as dt
import json
import math

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
)
from alerts.daily import NightValue, SpO2Day, TemperatureDay
from alerts.day_rules import (
    DAY_RULES,
    MAX_REASON_CHARS,
    day_rule_event,
    night_rule_event,
    run_length,
)
from alerts.events import RuleEvent, Transition
from alerts.nightly import NightStatus, summarise_night
from alerts.rules import Priority, Profile, RuleId, Tier

DAY_0 = dt.date(2024, 3, 1)
HOUR_S = 3600
TS_S = 1_709_280_000
H, M, L = Priority.HIGH, Priority.MEDIUM, Priority.LOW


def day(n: int) -> dt.date:
    return DAY_0 + dt.timedelta(days=n)


def outcome(n: int, condition: DayCondition, rule: str = "T3") -> DayOutcome:
    return DayOutcome(rule, day(n), condition, False, None, 38.9, math.nan, "constructed")


ABNORMAL, NORMAL, BETWEEN, UNKNOWN = (
    DayCondition.ABNORMAL,
    DayCondition.NORMAL,
    DayCondition.BETWEEN,
    DayCondition.INDETERMINATE,
)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (RuleId.S5, (M, M, L)),
        (RuleId.H3, (M, L, L)),
        (RuleId.T3, (H, M, M)),
        (RuleId.T5, (L, L, L)),
    ],
)
def test_onset_priority_per_tier_and_latching_only_when_high(
    rule: RuleId, expected: tuple[Priority, ...]
) -> None:
    onset_days = DAY_RULES[rule].onset_days
    history = [outcome(n, ABNORMAL, rule.value) for n in range(onset_days)]
    last = day(onset_days - 1)
    for tier, priority in zip((Tier.RED, Tier.YELLOW, Tier.GREEN), expected, strict=True):
        event = day_rule_event(rule, history, last, tier, None, TS_S)
        assert event is not None
        assert (event.rule, event.transition, event.ts_s) == (rule, Transition.ONSET, TS_S)
        assert event.priority is priority
        assert event.latching is (priority is Priority.HIGH)


def test_run_length_counts_consecutive_calendar_days_ending_on_the_day() -> None:
    history = [outcome(0, ABNORMAL), outcome(1, ABNORMAL), outcome(3, ABNORMAL)]
    assert run_length(history, day(1), ABNORMAL) == 2
    assert run_length(history, day(3), ABNORMAL) == 1  # day 2 is missing
    assert run_length(history, day(2), ABNORMAL) == 0
    assert run_length(history, day(1), NORMAL) == 0


def test_t3_needs_three_consecutive_days_and_an_open_alert_does_not_raise_again() -> None:
    two = [outcome(0, BETWEEN), outcome(1, ABNORMAL), outcome(2, ABNORMAL)]
    assert day_rule_event(RuleId.T3, two, day(2), Tier.RED, None, TS_S) is None
    three = [*two, outcome(3, ABNORMAL)]
    assert day_rule_event(RuleId.T3, three, day(3), Tier.RED, None, TS_S) is not None
    assert day_rule_event(RuleId.T3, three, day(3), Tier.RED, H, TS_S) is None


def test_an_alert_raised_before_the_history_read_clears_on_a_normal_day() -> None:
    # The fever days that raised it are older than what is read again today: the history's
    # own lifecycle never became active, so it has no CLEARED transition to give.
    history = [outcome(0, BETWEEN), outcome(1, ABNORMAL), outcome(2, NORMAL)]
    event = day_rule_event(RuleId.T3, history, day(2), Tier.YELLOW, H, TS_S)
    assert event is not None
    assert event.transition is Transition.RESOLVED
    # Resolved at the live alert's priority: a HIGH one stays latched until acknowledged.
    assert (event.priority, event.latching) == (H, True)


@pytest.mark.parametrize("condition", [UNKNOWN, BETWEEN])
@pytest.mark.parametrize("live", [None, M])
def test_an_indeterminate_or_in_between_day_neither_raises_nor_clears(
    condition: DayCondition, live: Priority | None
) -> None:
    history = [outcome(n, ABNORMAL, "S5") for n in range(3)] + [outcome(3, condition, "S5")]
    assert day_rule_event(RuleId.S5, history, day(3), Tier.RED, live, TS_S) is None


def test_no_record_for_the_evaluated_day_means_no_event() -> None:
    history = [outcome(n, ABNORMAL, "S5") for n in range(3)]
    assert day_rule_event(RuleId.S5, history, day(4), Tier.RED, None, TS_S) is None


def drive(rule: RuleId, outcomes: list[DayOutcome]) -> list[Transition | None]:
    """Evaluate day after day, the store's live alert carried from one day to the next."""
    live: Priority | None = None
    seen: list[Transition | None] = []
    for current in outcomes:
        event = day_rule_event(rule, outcomes, current.day, Tier.RED, live, TS_S)
        seen.append(None if event is None else event.transition)
        if event is not None:
            live = event.priority if event.transition is Transition.ONSET else None
    return seen


EXPECTED = {DayTransition.RAISED: Transition.ONSET, DayTransition.CLEARED: Transition.RESOLVED}


def lifecycle(outcomes: list[DayOutcome]) -> list[Transition | None]:
    return [None if o.transition is None else EXPECTED[o.transition] for o in outcomes]


def dates(steps: list[int]) -> list[dt.date]:
    return [day(int(n)) for n in np.cumsum(steps)]


BASE_RHR = [60.0, 61.0, 59.0, 60.0, 62.0, 58.0, 60.0]


def nights(*values: float) -> list[NightValue]:
    return [NightValue(day(n), v, 7 * HOUR_S) for n, v in enumerate(values)]


@pytest.mark.parametrize(
    ("rule", "outcomes"),
    [
        # raised on 2 high nights; 67 is in between; cleared after 2 low nights only
        (RuleId.H3, evaluate_h3(nights(*BASE_RHR, 70, 70, 60, 67, 60, 60))),
        (RuleId.T5, evaluate_t5(nights(*([33.0] * 7), 34.2, 34.2, 33.8, 33.4))),
        (
            RuleId.T3,
            evaluate_t3(
                [
                    TemperatureDay(day(n), t, 2)
                    for n, t in enumerate((38.6, 38.7, 38.9, 38.2, 37.9, 38.6, 38.6, 38.6))
                ]
            ),
        ),
        (
            RuleId.S5,
            evaluate_s5(
                [
                    SpO2Day.from_readings(day(n), [m] * 3)
                    for n, m in enumerate((96, 96, 96, 93, 93, 94, 94, 95, 91))
                ]
            ),
        ),
    ],
)
def test_driven_daily_the_known_histories_give_the_lifecycle_transitions(
    rule: RuleId, outcomes: list[DayOutcome]
) -> None:
    expected = lifecycle(outcomes)
    assert Transition.ONSET in expected and Transition.RESOLVED in expected
    assert drive(rule, outcomes) == expected


GAPS = st.lists(st.sampled_from([1, 1, 1, 2]), min_size=1, max_size=30)


@settings(max_examples=100, deadline=None)
@given(steps=GAPS, data=st.data())
def test_driven_daily_t3_gives_the_lifecycle_transitions(
    steps: list[int], data: st.DataObject
) -> None:
    maxima = st.sampled_from([math.nan, 37.0, 38.2, 38.6, 39.5])
    history = [
        TemperatureDay(d, t, 0 if math.isnan(t) else 2)
        for d, t in zip(dates(steps), data.draw(st.lists(maxima, min_size=30)), strict=False)
    ]
    outcomes = evaluate_t3(history)
    assert drive(RuleId.T3, outcomes) == lifecycle(outcomes)


@settings(max_examples=100, deadline=None)
@given(steps=GAPS, data=st.data())
def test_driven_nightly_h3_and_t5_give_the_lifecycle_transitions(
    steps: list[int], data: st.DataObject
) -> None:
    levels = st.sampled_from([math.nan, 58.0, 60.0, 61.0, 63.0, 68.0, 75.0])
    values = data.draw(st.lists(levels, min_size=30))
    history = [NightValue(d, v, HOUR_S) for d, v in zip(dates(steps), values, strict=False)]
    for rule, evaluate in ((RuleId.H3, evaluate_h3), (RuleId.T5, evaluate_t5)):
        scaled = [NightValue(n.day, n.value / 2, n.valid_s) for n in history]  # T5 in °C
        outcomes = evaluate(history if rule is RuleId.H3 else scaled)
        assert drive(rule, outcomes) == lifecycle(outcomes)


@settings(max_examples=100, deadline=None)
@given(steps=GAPS, data=st.data())
def test_driven_daily_s5_gives_the_lifecycle_transitions(
    steps: list[int], data: st.DataObject
) -> None:
    readings = st.lists(st.integers(88, 99), max_size=4)
    history = [SpO2Day.from_readings(d, data.draw(readings)) for d in dates(steps)]
    outcomes = evaluate_s5(history)
    assert drive(RuleId.S5, outcomes) == lifecycle(outcomes)


def assert_json_safe(event: RuleEvent) -> None:
    text = json.dumps(event.stats, allow_nan=False)  # raises on NaN or infinity
    for value in json.loads(text).values():
        assert isinstance(value, int | float | str)
        if isinstance(value, str):
            assert len(value) <= MAX_REASON_CHARS


def test_day_event_details_name_the_day_and_its_figures() -> None:
    history = [TemperatureDay(day(n), 38.9, 2) for n in range(3)]
    event = day_rule_event(RuleId.T3, evaluate_t3(history), day(2), Tier.RED, None, TS_S)
    assert event is not None
    assert event.stats == {
        "day": "2024-03-03",
        "condition": "abnormal",
        "day_max_c": 38.9,
        "reason": "highest of 2 readings 38.9 C",
    }
    assert_json_safe(event)
    long_reason = DayOutcome("H3", day(0), ABNORMAL, True, None, 70.0, 60.0, "x" * 500)
    event = day_rule_event(RuleId.H3, [long_reason], day(0), Tier.RED, M, TS_S)
    assert event is None  # abnormal while live: nothing new
    history = [
        DayOutcome("H3", day(n), ABNORMAL, True, None, 70.0, 60.0, "x" * 500) for n in (0, 1)
    ]
    event = day_rule_event(RuleId.H3, history, day(1), Tier.RED, None, TS_S)
    assert event is not None
    assert (event.stats["night_mean_bpm"], event.stats["baseline_bpm"]) == (70.0, 60.0)
    assert_json_safe(event)


def night(hours: float, level: float = 96.0) -> np.ndarray:
    return np.full(round(hours * HOUR_S), level)


def with_dips(series: np.ndarray, per_hour: int) -> np.ndarray:
    """`per_hour` dips of 4 points held 15 s (1 point/s down and up)."""
    out = series.copy()
    start = float(series[0])
    shape = [start - k for k in range(1, 5)]
    shape = shape + [start - 4] * 15 + shape[::-1][1:]
    for at in range(60, len(out) - HOUR_S // per_hour, HOUR_S // per_hour):
        out[at : at + len(shape)] = shape
    return out


def test_s6_raises_at_the_summary_priority_and_a_clear_night_clears() -> None:
    dips = summarise_night(with_dips(night(5), per_hour=20))
    assert dips.status is NightStatus.ALERT
    event = night_rule_event(dips, day(1), None, TS_S)
    assert event is not None
    assert (event.rule, event.transition, event.priority) == (RuleId.S6, Transition.ONSET, M)
    assert not event.latching
    assert event.stats["night"] == "2024-03-02"
    assert event.stats["odi3_per_hour"] == round(dips.odi3_per_hour, 2)
    assert event.stats["reason"] == "; ".join(dips.reasons)
    assert_json_safe(event)
    again = summarise_night(with_dips(night(5), per_hour=20), previous=dips)
    assert again.priority is L
    assert night_rule_event(again, day(2), M, TS_S) is None  # still alerting: nothing new
    assert night_rule_event(again, day(2), None, TS_S).priority is L  # type: ignore[union-attr]
    clear = summarise_night(night(6), previous=again)
    resolved = night_rule_event(clear, day(3), L, TS_S)
    assert resolved is not None
    assert (resolved.transition, resolved.priority) == (Transition.RESOLVED, L)
    assert night_rule_event(clear, day(3), None, TS_S) is None


@pytest.mark.parametrize("live", [None, M])
def test_s6_a_short_night_neither_raises_nor_clears(live: Priority | None) -> None:
    short = summarise_night(with_dips(night(3), per_hour=40))
    assert short.status is NightStatus.INDETERMINATE
    assert night_rule_event(short, day(1), live, TS_S) is None


def test_s6_copd_details_leave_out_ct90_rather_than_sending_nan() -> None:
    summary = summarise_night(with_dips(night(5, 90.0), per_hour=20), Profile.COPD)
    assert math.isnan(summary.ct90_percent)
    event = night_rule_event(summary, day(1), None, TS_S)
    assert event is not None
    assert "ct90_percent" not in event.stats
    assert_json_safe(event)
