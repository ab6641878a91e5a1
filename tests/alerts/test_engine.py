"""The vectorised detector against the per-sample reference, in any chunking, and the rules'
clinical behaviour on constructed series."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.engine import PatientDetector, RuleEvent, Transition
from alerts.reference import reference_events, reference_table_events
from alerts.rules import Channel, Profile, RuleId, Tier, WindowRule, window_rules

TIERS = st.sampled_from(list(Tier))
PROFILES = st.sampled_from(list(Profile))
START_S = 1_700_000_000
Series = dict[Channel, list[float]]


@st.composite
def levels(draw: st.DrawFn, low: int, high: int, max_len: int) -> list[float]:
    """Piecewise-constant levels with noise and gaps, 1 Hz."""
    samples: list[float] = []
    while len(samples) < max_len and (not samples or draw(st.booleans())):
        level = draw(st.integers(low, high))
        length = draw(st.integers(1, max_len // 3))
        kind = draw(st.sampled_from(["steady", "noisy", "gap", "flicker"]))
        for _ in range(length):
            if kind == "gap":
                samples.append(math.nan)
            elif kind == "noisy":
                samples.append(float(level + draw(st.integers(-2, 2))))
            elif kind == "flicker":
                samples.append(math.nan if draw(st.booleans()) else float(level))
            else:
                samples.append(float(level))
    return samples[:max_len]


@st.composite
def channel_series(draw: st.DrawFn, max_len: int) -> Series:
    spo2 = draw(levels(78, 99, max_len))
    length = len(spo2)

    def fit(values: list[float]) -> list[float]:
        return (values + [math.nan] * length)[:length]

    def mask(values: list[float]) -> list[float]:
        return [v if math.isnan(v) else float(v >= 1) for v in fit(values)]

    return {
        Channel.SPO2: spo2,
        Channel.PULSE: fit(draw(levels(35, 140, max_len))),
        Channel.RESP: fit(draw(levels(6, 32, max_len))),
        Channel.PROBE_OFF: mask(draw(levels(0, 1, max_len))),
        Channel.LOW_CONF: mask(draw(levels(0, 1, max_len))),
    }


def keys(events: list[RuleEvent]) -> list[tuple[RuleId, Transition, int]]:
    return [(e.rule, e.transition, e.ts_s) for e in events]


def run_chunked(detector: PatientDetector, series: Series, cuts: list[int]) -> list[RuleEvent]:
    length = len(series[Channel.SPO2])
    events: list[RuleEvent] = []
    bounds = [0, *sorted(c % (length + 1) for c in cuts), length]
    for lo, hi in itertools.pairwise(bounds):
        chunk = {ch: np.array(values[lo:hi], dtype=float) for ch, values in series.items()}
        events += detector.step(START_S + lo, chunk)
    return events


def expected_events(rules: tuple[WindowRule, ...], series: Series) -> list[RuleEvent]:
    return reference_table_events(rules, START_S, series)


@st.composite
def shrunk_rule(draw: st.DrawFn) -> WindowRule:
    """Any rule of the table, with its windows shrunk so the reference stays quick."""
    rule = draw(st.sampled_from(window_rules(draw(TIERS), draw(PROFILES))))
    return dataclasses.replace(
        rule,
        suppressed_by=(),
        window_s=draw(st.integers(1, 40)),
        clear_window_s=draw(st.integers(0, 30)),
        clear_s=draw(st.integers(1, 60)),
    )


@settings(max_examples=200, deadline=None)
@given(rule=shrunk_rule(), series=channel_series(max_len=700), cuts=st.lists(st.integers(0, 9999)))
def test_every_rule_matches_the_reference_in_any_chunking(
    rule: WindowRule, series: Series, cuts: list[int]
) -> None:
    detector = PatientDetector(Tier.RED, Profile.DEFAULT, rules=(rule,))
    assert keys(run_chunked(detector, series, cuts)) == keys(expected_events((rule,), series))


@settings(max_examples=15, deadline=None)
@given(
    tier=TIERS,
    profile=PROFILES,
    series=channel_series(max_len=1500),
    cuts=st.lists(st.integers(0, 9999), max_size=4),
)
def test_default_rule_table_matches_the_reference(
    tier: Tier, profile: Profile, series: Series, cuts: list[int]
) -> None:
    detector = PatientDetector(tier, profile)
    expected = expected_events(window_rules(tier, profile), series)
    assert keys(run_chunked(detector, series, cuts)) == keys(expected)


@settings(max_examples=40, deadline=None)
@given(series=channel_series(max_len=1200), cut=st.integers(0, 4000))
def test_state_survives_a_round_trip_through_json(series: Series, cut: int) -> None:
    whole = run_chunked(PatientDetector(Tier.RED, Profile.DEFAULT), series, [])
    first = PatientDetector(Tier.RED, Profile.DEFAULT)
    length = len(series[Channel.SPO2])
    cut %= length + 1
    events = run_chunked(first, {ch: v[:cut] for ch, v in series.items()}, [])
    restored = PatientDetector.from_json(first.to_json(), Tier.RED, Profile.DEFAULT)
    rest = {ch: np.array(v[cut:], dtype=float) for ch, v in series.items()}
    events += restored.step(START_S + cut, rest)
    assert keys(events) == keys(whole)


def steady(seconds: int, spo2: float = 97.0, pulse: float = 72.0, **masks: float) -> Series:
    return {
        Channel.SPO2: [spo2] * seconds,
        Channel.PULSE: [pulse] * seconds,
        Channel.RESP: [16.0] * seconds,
        Channel.PROBE_OFF: [masks.get("probe_off", 0.0)] * seconds,
        Channel.LOW_CONF: [masks.get("low_conf", 0.0)] * seconds,
    }


def join(*parts: Series) -> Series:
    return {ch: [v for part in parts for v in part[ch]] for ch in Channel}


def onsets(events: list[RuleEvent]) -> dict[RuleId, int]:
    return {e.rule: e.ts_s - START_S for e in events if e.transition is Transition.ONSET}


@pytest.mark.parametrize("tier", list(Tier))
@pytest.mark.parametrize("profile", list(Profile))
def test_a_healthy_day_raises_nothing(tier: Tier, profile: Profile) -> None:
    assert run_chunked(PatientDetector(tier, profile), steady(24 * 3600), [3600, 7200]) == []


def test_sustained_desaturation_raises_s1_and_s2_then_resolves() -> None:
    series = join(steady(300), steady(180, spo2=86.0), steady(900, spo2=96.0))
    events = run_chunked(PatientDetector(Tier.RED, Profile.DEFAULT), series, [])
    resolved = {e.rule: e.ts_s - START_S for e in events if e.transition is Transition.RESOLVED}
    # The window median is the lower median: "median <= limit" once half the window is below.
    # RED, S1 (<= 88): 15 of 30 samples at 86; RED, S2 (<= 93): 30 of 60 samples at 86.
    assert onsets(events) == {RuleId.S1: 314, RuleId.S2: 329}
    # Clearing needs the lower median at the clear level (91 / 95): more than half of the
    # window back at 96 (16 of 30, 31 of 60), then 300 s / 600 s.
    assert resolved == {RuleId.S1: 480 + 15 + 299, RuleId.S2: 480 + 30 + 599}


def test_copd_patient_at_89_percent_is_not_alerted() -> None:
    events = run_chunked(PatientDetector(Tier.RED, Profile.COPD), steady(3600, spo2=89.0), [])
    assert events == []


def test_borderline_93_raises_s3_for_green_but_not_s2() -> None:
    series = join(steady(600), steady(1200, spo2=93.0))
    events = run_chunked(PatientDetector(Tier.GREEN, Profile.DEFAULT), series, [])
    assert onsets(events) == {RuleId.S3: 600 + 149}  # 300 s lower median: 150 samples of 93


def test_recovery_through_the_borderline_band_does_not_add_s3() -> None:
    recovery = [86.0 + i * 10.5 / 300 for i in range(300)]
    series = join(steady(600), steady(300, spo2=86.0), steady(300), steady(1200, spo2=96.5))
    series[Channel.SPO2][900:1200] = [round(v) for v in recovery]
    events = run_chunked(PatientDetector(Tier.RED, Profile.DEFAULT), series, [])
    assert set(onsets(events)) == {RuleId.S1, RuleId.S2}
    unsuppressed = tuple(
        dataclasses.replace(r, suppressed_by=()) for r in window_rules(Tier.RED, Profile.DEFAULT)
    )
    without = run_chunked(
        PatientDetector(Tier.RED, Profile.DEFAULT, rules=unsuppressed), series, []
    )
    assert RuleId.S3 in onsets(without)


def test_probe_off_is_a_technical_alert_not_hypoxaemia() -> None:
    probe_off = steady(120, probe_off=1.0)
    probe_off[Channel.SPO2] = [math.nan] * 120
    probe_off[Channel.PULSE] = [math.nan] * 120
    series = join(steady(300), probe_off, steady(300))
    events = run_chunked(PatientDetector(Tier.RED, Profile.DEFAULT), series, [])
    # RED: 60 s with >= 90 % of samples probe-off. Clear needs a valid sample and the onset
    # condition gone: 7 valid seconds bring the window to 53/60 probe-off.
    assert keys(events) == [
        (RuleId.Q1, Transition.ONSET, START_S + 300 + 53),
        (RuleId.Q1, Transition.RESOLVED, START_S + 420 + 6),
    ]


def test_an_hour_without_data_neither_raises_nor_clears() -> None:
    detector = PatientDetector(Tier.YELLOW, Profile.DEFAULT)
    raised = run_chunked(detector, steady(200, spo2=85.0), [])
    assert {RuleId.S1, RuleId.S2} <= set(onsets(raised))
    nothing = {ch: np.full(3600, np.nan) for ch in Channel}
    assert detector.step(START_S + 200, nothing) == []


def test_a_deep_brief_dip_raises_s1_by_satseconds_before_the_window() -> None:
    series = join(steady(120), steady(12, spo2=80.0), steady(120))
    events = run_chunked(PatientDetector(Tier.YELLOW, Profile.DEFAULT), series, [])
    # 8 points below 88 per second: SatSeconds reaches 50 in the 7th second at 80 %.
    assert onsets(events)[RuleId.S1] == 120 + 6
    assert events[0].stats["trigger"] == "satseconds"


def test_low_quality_data_doubles_s1_persistence() -> None:
    good = run_chunked(
        PatientDetector(Tier.RED, Profile.DEFAULT), join(steady(400), steady(200, 86.5)), []
    )
    noisy = join(steady(400, low_conf=1.0), steady(200, 86.5, low_conf=1.0))
    doubled = run_chunked(PatientDetector(Tier.RED, Profile.DEFAULT), noisy, [])
    # 30 s window needs 15 samples; the doubled 60 s window needs 30.
    assert onsets(good)[RuleId.S1] == 400 + 14
    assert onsets(doubled)[RuleId.S1] == 400 + 29


def test_tachycardia_needs_motion_free_samples() -> None:
    still = join(steady(300), steady(600, pulse=135))
    events = run_chunked(PatientDetector(Tier.RED, Profile.DEFAULT), still, [])
    assert onsets(events)[RuleId.H1] == 300 + 60  # 120 s median: 61 samples of 135
    moving = join(steady(300), steady(600, pulse=135, low_conf=1.0))
    moving_events = run_chunked(PatientDetector(Tier.RED, Profile.DEFAULT), moving, [])
    assert RuleId.H1 not in onsets(moving_events)


@settings(max_examples=60, deadline=None)
@given(series=channel_series(max_len=900), delta=st.integers(1, 5))
def test_a_stricter_limit_never_removes_an_onset(series: Series, delta: int) -> None:
    rule = window_rules(Tier.GREEN, Profile.DEFAULT)[1]  # S2
    band = rule.alarm[0]
    stricter = dataclasses.replace(rule, alarm=(dataclasses.replace(band, high=band.high + delta),))

    def onset_count(r: WindowRule) -> int:
        return sum(e.transition is Transition.ONSET for e in reference_events(r, 0, series))

    if onset_count(rule):
        assert onset_count(stricter) >= 1
