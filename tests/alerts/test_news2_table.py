"""N1 fed a table of per-minute values (the detector's way) against N1 fed one observation at a
time: the same events and the same remembered values, with and without enough parameters."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from alerts.news2 import News2Rule, Parameter
from alerts.rules import Profile, Tier

COLUMNS = (Parameter.SPO2, Parameter.PULSE, Parameter.RESP_RATE)
VALUES = {
    Parameter.SPO2: [math.nan, 84.0, 91.0, 94.0, 97.0],
    Parameter.PULSE: [math.nan, 38.0, 72.0, 115.0, 135.0],
    Parameter.RESP_RATE: [math.nan, 7.0, 16.0, 22.0, 28.0],
}


@st.composite
def tables(draw: st.DrawFn) -> list[list[float]]:
    rows = draw(st.integers(1, 40))
    return [[draw(st.sampled_from(VALUES[p])) for p in COLUMNS] for _ in range(rows)]


@given(
    table=tables(),
    temperature=st.none() | st.sampled_from([35.0, 37.0, 39.5]),
    known_since_s=st.integers(0, 7200),
    profile=st.sampled_from(list(Profile)),
)
def test_a_table_gives_the_events_of_its_observations_one_by_one(
    table: list[list[float]], temperature: float | None, known_since_s: int, profile: Profile
) -> None:
    start_s = 7200
    earlier = (
        [] if temperature is None else [(start_s - known_since_s, Parameter.TEMP, temperature)]
    )
    by_table, one_by_one = News2Rule(Tier.RED, profile), News2Rule(Tier.RED, profile)
    by_table.step(earlier)
    one_by_one.step(earlier)
    ts_s = start_s + 60 * np.arange(len(table))
    observations = [
        (float(ts_s[row]), parameter, value)
        for row, values in enumerate(table)
        for parameter, value in zip(COLUMNS, values, strict=True)
        if not math.isnan(value)
    ]
    assert by_table.step_table(ts_s, COLUMNS, np.array(table)) == one_by_one.step(observations)
    assert by_table.to_json() == one_by_one.to_json()


def test_with_three_parameters_a_table_only_remembers_the_latest_values() -> None:
    rule = News2Rule(Tier.RED, Profile.DEFAULT)
    table = np.array([[84.0, 135.0, 28.0], [85.0, math.nan, 29.0]])
    assert rule.step_table(np.array([0, 60]), COLUMNS, table) == []
    assert rule.latest == {"spo2": (60.0, 85.0), "pulse": (0.0, 135.0), "resp_rate": (60.0, 29.0)}
