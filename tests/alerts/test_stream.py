"""The second-by-second path of the detector (small calls, as the daemon makes every second)
against the vectorised path and the per-sample reference: same events, same statistics, same
carried state, whichever path each call takes."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts import engine
from alerts.engine import PatientDetector, RuleEvent
from alerts.reference import reference_table_events
from alerts.rules import Channel, Profile, Tier, window_rules
from tests.alerts.test_engine import START_S, Series, channel_series, join, keys, steady

TIERS = st.sampled_from(list(Tier))
PROFILES = st.sampled_from(list(Profile))
Call = tuple[int, int]  # (seconds skipped as a gap, seconds of data)


def full(events: list[RuleEvent]) -> list[tuple[object, ...]]:
    """Everything an event carries (NaN never appears in stats)."""
    return [(e.rule, e.transition, e.ts_s, e.priority, e.latching, e.stats) for e in events]


def run_calls(detector: PatientDetector, series: Series, calls: list[Call]) -> list[RuleEvent]:
    """Feed `series` call by call; a gap drops its seconds (as a receiver outage would)."""
    length = len(series[Channel.SPO2])
    events: list[RuleEvent] = []
    position = 0
    for gap, size in calls:
        position += gap
        if position >= length:
            break
        chunk = {
            ch: np.array(v[position : position + size], dtype=float) for ch, v in series.items()
        }
        events += detector.step(START_S + position, chunk)
        position += size
    return events


def vectorised_only(
    detector: PatientDetector, series: Series, calls: list[Call]
) -> list[RuleEvent]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "SECOND_BY_SECOND_MAX_S", 0)
        return run_calls(detector, series, calls)


CALLS = st.lists(
    st.tuples(
        st.integers(0, 3) | st.integers(0, 400),
        st.integers(1, engine.SECOND_BY_SECOND_MAX_S) | st.integers(1, 60),
    ),
    min_size=1,
    max_size=400,
)


@settings(max_examples=40, deadline=None)
@given(tier=TIERS, profile=PROFILES, series=channel_series(max_len=1200), calls=CALLS)
def test_small_calls_give_the_events_and_state_of_the_vectorised_path(
    tier: Tier, profile: Profile, series: Series, calls: list[Call]
) -> None:
    by_second = PatientDetector(tier, profile)
    vectorised = PatientDetector(tier, profile)
    assert full(run_calls(by_second, series, calls)) == full(
        vectorised_only(vectorised, series, calls)
    )
    assert by_second.to_json() == vectorised.to_json()


@settings(max_examples=40, deadline=None)
@given(
    series=channel_series(max_len=700),
    window_s=st.integers(1, 40),
    clear_window_s=st.integers(0, 30),
    clear_s=st.integers(1, 60),
    calls=CALLS,
)
def test_every_rule_matches_the_vectorised_path_with_short_windows(
    series: Series, window_s: int, clear_window_s: int, clear_s: int, calls: list[Call]
) -> None:
    rules = tuple(
        dataclasses.replace(rule, window_s=window_s, clear_window_s=clear_window_s, clear_s=clear_s)
        for rule in window_rules(Tier.RED, Profile.DEFAULT)
    )
    by_second = PatientDetector(Tier.RED, Profile.DEFAULT, rules=rules)
    vectorised = PatientDetector(Tier.RED, Profile.DEFAULT, rules=rules)
    assert full(run_calls(by_second, series, calls)) == full(
        vectorised_only(vectorised, series, calls)
    )
    assert by_second.to_json() == vectorised.to_json()


@settings(max_examples=10, deadline=None)
@given(tier=TIERS, profile=PROFILES, series=channel_series(max_len=1000))
def test_one_second_at_a_time_matches_the_reference(
    tier: Tier, profile: Profile, series: Series
) -> None:
    calls = [(0, 1)] * len(series[Channel.SPO2])
    events = run_calls(PatientDetector(tier, profile), series, calls)
    assert keys(events) == keys(
        reference_table_events(window_rules(tier, profile), START_S, series)
    )


@settings(max_examples=20, deadline=None)
@given(series=channel_series(max_len=900), cut=st.integers(0, 900))
def test_state_saved_mid_stream_restores_the_same_detector(series: Series, cut: int) -> None:
    ones = [(0, 1)] * len(series[Channel.SPO2])
    whole = run_calls(PatientDetector(Tier.RED, Profile.DEFAULT), series, ones)
    first = PatientDetector(Tier.RED, Profile.DEFAULT)
    events = run_calls(first, series, ones[:cut])
    restored = PatientDetector.from_json(first.to_json(), Tier.RED, Profile.DEFAULT)
    rest = {ch: values[cut:] for ch, values in series.items()}
    position = min(cut, len(series[Channel.SPO2]))
    for i in range(len(rest[Channel.SPO2])):
        chunk = {ch: np.array(values[i : i + 1]) for ch, values in rest.items()}
        events += restored.step(START_S + position + i, chunk)
    assert full(events) == full(whole)


def _flicker(seconds: int, pattern: list[float]) -> Series:
    series = steady(seconds)
    series[Channel.SPO2] = [pattern[i % len(pattern)] for i in range(seconds)]
    return series


def _recovery() -> Series:
    series = join(steady(600), steady(300, spo2=86.0), steady(300), steady(2400, spo2=96.5))
    series[Channel.SPO2][900:1200] = [round(86.0 + i * 10.5 / 300) for i in range(300)]
    return series


SCENARIOS = {
    "desaturation and recovery": lambda: join(
        steady(300), steady(180, spo2=86.0), steady(900, spo2=96.0)
    ),
    "recovery through the borderline band (S3 suppressed)": _recovery,
    "deep brief dip (SatSeconds)": lambda: join(steady(120), steady(12, spo2=80.0), steady(400)),
    "SatSeconds restart at a sample on the limit": lambda: join(
        steady(120),
        steady(4, spo2=80.0),
        steady(2, spo2=88.0),
        steady(4, spo2=80.0),
        steady(200),
        steady(12, spo2=80.0),
        steady(400),
    ),
    "drops across the S1 limit (crossings)": lambda: join(
        steady(100), _flicker(120, [89.0, 88.0, 88.0, 88.0]), steady(400)
    ),
    "low-quality data (doubled window)": lambda: join(
        steady(400, low_conf=1.0), steady(200, 86.5, low_conf=1.0), steady(400)
    ),
    "tachycardia": lambda: join(steady(300), steady(600, pulse=135), steady(1000)),
    "probe off": lambda: join(
        steady(300),
        {**steady(400, probe_off=1.0), Channel.SPO2: [math.nan] * 400},
        steady(300),
    ),
}


@pytest.mark.parametrize("tier", [Tier.RED, Tier.GREEN])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_clinical_scenarios_one_second_at_a_time_match_the_vectorised_path(
    scenario: str, tier: Tier
) -> None:
    series = SCENARIOS[scenario]()
    ones = [(0, 1)] * len(series[Channel.SPO2])
    by_second = PatientDetector(tier, Profile.DEFAULT)
    vectorised = PatientDetector(tier, Profile.DEFAULT)
    events = run_calls(by_second, series, ones)
    assert events, "the scenario raises something"
    assert full(events) == full(vectorised_only(vectorised, series, [(0, len(ones))]))
    assert by_second.to_json() == vectorised.to_json()


@pytest.mark.parametrize("max_s", [engine.SECOND_BY_SECOND_MAX_S, 0])
def test_a_rule_table_changed_between_calls_applies_from_the_next_second(max_s: int) -> None:
    series = SCENARIOS["desaturation and recovery"]()
    longer = tuple(
        dataclasses.replace(rule, window_s=rule.window_s * 3)
        for rule in window_rules(Tier.RED, Profile.DEFAULT)
    )
    changed = PatientDetector(Tier.RED, Profile.DEFAULT)
    fresh = PatientDetector(Tier.RED, Profile.DEFAULT, rules=longer)
    events: list[RuleEvent] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "SECOND_BY_SECOND_MAX_S", max_s)
        for i in range(len(series[Channel.SPO2])):
            if i == 250:
                changed.rules = longer
            chunk = {ch: np.array(values[i : i + 1]) for ch, values in series.items()}
            events += changed.step(START_S + i, chunk)
    # The longer windows see the whole history (it is kept for the longest window): the change
    # at 250 s, before anything happened, gives what the longer rules alone give.
    expected = run_calls(fresh, series, [(0, len(series[Channel.SPO2]))])
    assert expected
    assert full(events) == full(expected)


def test_tails_during_the_stream_are_the_last_samples_seen() -> None:
    detector = PatientDetector(Tier.RED, Profile.DEFAULT)
    spo2 = [96.0, math.nan, 91.0, 97.0]
    for i, value in enumerate(spo2):
        detector.step(START_S + i, {Channel.SPO2: np.array([value])})
    tail = detector.tails[Channel.SPO2]
    assert len(tail) == detector.tail_len
    np.testing.assert_array_equal(tail[-4:], spo2)
    assert np.isnan(tail[:-4]).all()
    assert np.isnan(detector.tails[Channel.PULSE]).all()
