"""Temperature rules on spot readings: site normalisation, confirmation by a repeat reading,
clearing, and skin temperature never meeting absolute cut-offs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.events import Transition
from alerts.rules import Priority, RuleId, Tier
from alerts.spot import TemperatureReading, TemperatureRules, axillary_equivalent_c

MIN = 60
HOUR = 3600


def run(tier: Tier, readings: list[TemperatureReading]) -> list[tuple[RuleId, Transition, int]]:
    return [(e.rule, e.transition, int(e.ts_s)) for e in TemperatureRules(tier).step(readings)]


@pytest.mark.parametrize(
    ("temp_c", "site", "expected"),
    [
        (37.0, "axillary", 37.0),
        (37.4, "oral", 37.0),
        (37.8, "tympanic", 37.0),
        (37.8, "rectal", 37.0),
        (37.0, None, 37.0),
        (33.0, "skin", None),
        (31.0, "finger", None),
    ],
)
def test_axillary_equivalent(temp_c: float, site: str | None, expected: float | None) -> None:
    assert axillary_equivalent_c(temp_c, site) == expected


def test_fever_on_one_reading_and_clear_after_two_normal_readings_4_hours_apart() -> None:
    events = run(
        Tier.GREEN,
        [
            (0, 37.5, "axillary"),
            (HOUR, 37.0, "axillary"),
            (3 * HOUR, 36.9, None),
            (5 * HOUR, 36.8, None),
        ],
    )
    assert events == [(RuleId.T1, Transition.ONSET, 0), (RuleId.T1, Transition.RESOLVED, 5 * HOUR)]


def test_high_fever_needs_a_confirming_reading_within_30_minutes() -> None:
    unconfirmed = run(Tier.YELLOW, [(0, 38.5, None), (40 * MIN, 38.4, None)])
    assert (RuleId.T2, Transition.ONSET, 40 * MIN) not in unconfirmed
    confirmed = run(Tier.YELLOW, [(0, 38.5, None), (15 * MIN, 38.4, None)])
    assert (RuleId.T2, Transition.ONSET, 15 * MIN) in confirmed


def test_very_high_fever_is_high_priority_for_the_red_tier_only() -> None:
    readings: list[TemperatureReading] = [(0, 39.4, None), (10 * MIN, 39.3, None)]
    red = [e for e in TemperatureRules(Tier.RED).step(readings) if e.rule is RuleId.T2]
    green = [e for e in TemperatureRules(Tier.GREEN).step(readings) if e.rule is RuleId.T2]
    assert [e.priority for e in red] == [Priority.HIGH]
    assert red[0].latching
    assert [e.priority for e in green] == [Priority.LOW]


def test_high_fever_clears_after_12_hours_below_37_8() -> None:
    readings: list[TemperatureReading] = [(0, 38.6, None), (10 * MIN, 38.5, None)]
    readings += [(HOUR * h, 37.5, None) for h in (1, 5, 9, 13)]
    events = run(Tier.YELLOW, readings)
    assert (RuleId.T2, Transition.RESOLVED, 13 * HOUR) in events


def test_hypothermia_is_confirmed_within_10_minutes_and_clears_above_35_5() -> None:
    events = run(Tier.RED, [(0, 34.8, None), (5 * MIN, 34.9, None), (HOUR, 36.0, None)])
    assert events == [
        (RuleId.T4, Transition.ONSET, 5 * MIN),
        (RuleId.T4, Transition.RESOLVED, HOUR),
    ]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(min_value=30.0, max_value=36.0), min_size=1, max_size=50))
def test_skin_temperature_never_raises_absolute_rules(values: list[float]) -> None:
    readings = [(i * 10 * MIN, v + 3.0, "skin") for i, v in enumerate(values)]
    assert run(Tier.RED, readings) == []


@settings(max_examples=100, deadline=None)
@given(
    temps=st.lists(st.floats(min_value=34.0, max_value=41.0), min_size=1, max_size=40),
    gaps=st.lists(st.integers(1, 6 * HOUR), min_size=40, max_size=40),
    cut=st.integers(0, 40),
)
def test_state_round_trip_and_chunking_give_the_same_events(
    temps: list[float], gaps: list[int], cut: int
) -> None:
    times = [sum(gaps[: i + 1]) for i in range(len(temps))]
    readings = [(float(t), round(v, 1), None) for t, v in zip(times, temps, strict=False)]
    whole = TemperatureRules(Tier.RED).step(readings)
    first = TemperatureRules(Tier.RED)
    events = first.step(readings[:cut])
    events += TemperatureRules.from_json(first.to_json(), Tier.RED).step(readings[cut:])
    assert events == whole
