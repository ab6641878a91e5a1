"""The vectorised building blocks of the window rules against plain loops over the samples."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from alerts.threshold import clear_reached, hysteresis, satseconds_run, trailing_run

MASKS = st.lists(st.booleans(), min_size=1, max_size=300)


@given(mask=MASKS, carried_run=st.integers(0, 50), clear_s=st.integers(1, 40))
def test_clear_reached_is_a_run_of_clear_s(
    mask: list[bool], carried_run: int, clear_s: int
) -> None:
    run, expected = carried_run, []
    for clearable in mask:
        run = run + 1 if clearable else 0
        expected.append(run >= clear_s)
    assert clear_reached(np.array(mask), carried_run, clear_s).tolist() == expected
    assert trailing_run(np.array(mask), carried_run) == run


@given(
    pairs=st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=300),
    initial=st.booleans(),
)
def test_hysteresis_follows_the_last_set_or_clear(
    pairs: list[tuple[bool, bool]], initial: bool
) -> None:
    state, expected = initial, []
    for set_now, clear_now in pairs:
        state = True if set_now else (False if clear_now else state)
        expected.append(state)
    sets, clears = (np.array(column) for column in zip(*pairs, strict=True))
    assert hysteresis(sets, clears, initial).tolist() == expected


@given(
    values=st.lists(st.sampled_from([math.nan, 80.0, 85.5, 87.0, 88.0, 89.0, 97.0]), max_size=300),
    carried=st.sampled_from([0.0, 3.0, 49.5]),
)
def test_satseconds_sum_the_deficit_over_each_run_below_the_limit(
    values: list[float], carried: float
) -> None:
    limit, total, expected = 88.0, carried, []
    for value in values:
        deficit = limit - value
        total = total + deficit if deficit > 0 else 0.0
        expected.append(total)
    assert satseconds_run(np.array(values), limit, carried).tolist() == expected
