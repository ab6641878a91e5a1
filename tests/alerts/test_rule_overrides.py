"""Per-patient rule overrides: what each field changes, what is refused (naming the rule and
field), and that an overridden threshold changes what the detector raises."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.engine import PatientDetector, Transition
from alerts.rules import (
    Channel,
    Profile,
    RuleId,
    Tier,
    WindowRule,
    window_rules,
    with_overrides,
)


def by_id(rules: tuple[WindowRule, ...]) -> dict[RuleId, WindowRule]:
    return {rule.rule: rule for rule in rules}


DEFAULTS = window_rules(Tier.GREEN, Profile.DEFAULT)


def test_no_overrides_is_the_table_itself() -> None:
    assert with_overrides(DEFAULTS, {}) == DEFAULTS


def test_a_threshold_moves_the_alarm_limit_and_the_clear_level_with_it() -> None:
    rules = by_id(with_overrides(DEFAULTS, {"S2": {"threshold": 90}}))
    default = by_id(DEFAULTS)[RuleId.S2]
    assert rules[RuleId.S2].alarm[0].high == 90.0
    margin = default.clear.low - default.alarm[0].high
    assert rules[RuleId.S2].clear.low == 90.0 + margin


def test_s3_starts_where_an_overridden_s2_ends() -> None:
    rules = by_id(with_overrides(DEFAULTS, {"S2": {"threshold": 90}}))
    assert rules[RuleId.S3].alarm[0].low == 90.0
    assert rules[RuleId.S3].alarm[0].high == by_id(DEFAULTS)[RuleId.S3].alarm[0].high
    both = by_id(with_overrides(DEFAULTS, {"S2": {"threshold": 90}, "S3": {"threshold": 91}}))
    assert (both[RuleId.S3].alarm[0].low, both[RuleId.S3].alarm[0].high) == (90.0, 91.0)


def test_whole_second_fields_become_integers() -> None:
    rules = by_id(with_overrides(DEFAULTS, {"S1": {"window_s": 45.0, "clear_s": 120}}))
    assert rules[RuleId.S1].window_s == 45 and isinstance(rules[RuleId.S1].window_s, int)
    assert rules[RuleId.S1].clear_s == 120


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"S9": {"window_s": 10}}, "unknown rule"),
        ({"S2": {"colour": 1}}, "S2.colour: not a setting"),
        ({"H1": {"threshold": 50}}, "H1.threshold: not a setting"),
        ({"S2": {"window_s": 0}}, "S2.window_s: expected a whole number 1-3600"),
        ({"S2": {"window_s": 90.5}}, "S2.window_s: expected a whole number"),
        ({"S2": {"window_s": 10**9}}, "S2.window_s: expected a whole number"),
        ({"S2": {"window_s": True}}, "S2.window_s: expected a number"),
        ({"S2": {"window_s": "90"}}, "S2.window_s: expected a number"),
        ({"S2": {"min_valid_fraction": 0}}, "S2.min_valid_fraction: expected above 0"),
        ({"S2": {"min_valid_fraction": float("nan")}}, "expected a number"),
        ({"S2": {"threshold": 40}}, "S2.threshold: expected above 50"),
        ({"S2": {"threshold": 99}}, "S2.threshold: at most 98"),
        ({"S3": {"threshold": 91}}, "S3.threshold: must be above 92"),
    ],
)
def test_an_invalid_override_is_refused_naming_rule_and_field(
    overrides: dict[str, dict[str, object]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        with_overrides(DEFAULTS, overrides)


values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5), st.just([])
)


@settings(deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*RuleId.__members__.values(), "X1"]),
        st.dictionaries(
            st.sampled_from(["window_s", "clear_s", "min_valid_fraction", "threshold", "x"]),
            values,
            max_size=4,
        ),
        max_size=4,
    )
)
def test_any_overrides_give_valid_rules_or_a_value_error(overrides: dict[str, object]) -> None:
    try:
        rules = with_overrides(DEFAULTS, overrides)  # type: ignore[arg-type]
    except ValueError:
        return
    assert [rule.rule for rule in rules] == [rule.rule for rule in DEFAULTS]
    for rule in rules:
        assert 1 <= rule.window_s <= 3600 and 1 <= rule.clear_s <= 86400
        assert 0 < rule.min_valid_fraction <= 1


def s2_onsets(rules: tuple[WindowRule, ...] | None, spo2_percent: float) -> int:
    detector = PatientDetector(Tier.GREEN, Profile.DEFAULT, rules=rules or ())
    events = detector.step(0, {Channel.SPO2: np.full(600, spo2_percent)})
    return sum(e.rule is RuleId.S2 and e.transition is Transition.ONSET for e in events)


def test_a_raised_s2_threshold_makes_a_steady_95_percent_an_alert() -> None:
    raised = with_overrides(DEFAULTS, {"S2": {"threshold": 96}})
    assert s2_onsets(None, 95.0) == 0
    assert s2_onsets(raised, 95.0) == 1


def test_a_lowered_s2_threshold_silences_s2_at_91_percent_and_s3_takes_it() -> None:
    lowered = with_overrides(DEFAULTS, {"S2": {"threshold": 90}})
    assert s2_onsets(None, 91.0) == 1
    assert s2_onsets(lowered, 91.0) == 0
    detector = PatientDetector(Tier.GREEN, Profile.DEFAULT, rules=lowered)
    events = detector.step(0, {Channel.SPO2: np.full(600, 91.0)})
    assert any(e.rule is RuleId.S3 and e.transition is Transition.ONSET for e in events)
