"""NEWS2 scoring against the RCP chart, and rule N1 on partial scores."""

from __future__ import annotations

import numpy as np
import pytest

from alerts.engine import PatientDetector
from alerts.events import Transition
from alerts.news2 import News2Rule, Parameter, parameter_score, score
from alerts.rules import Channel, Priority, Profile, RuleId, Tier


@pytest.mark.parametrize(
    ("parameter", "value", "expected"),
    [
        (Parameter.RESP_RATE, 8, 3),
        (Parameter.RESP_RATE, 9, 1),
        (Parameter.RESP_RATE, 12, 0),
        (Parameter.RESP_RATE, 21, 2),
        (Parameter.RESP_RATE, 25, 3),
        (Parameter.SPO2, 91, 3),
        (Parameter.SPO2, 92, 2),
        (Parameter.SPO2, 94, 1),
        (Parameter.SPO2, 96, 0),
        (Parameter.PULSE, 40, 3),
        (Parameter.PULSE, 41, 1),
        (Parameter.PULSE, 51, 0),
        (Parameter.PULSE, 91, 1),
        (Parameter.PULSE, 111, 2),
        (Parameter.PULSE, 131, 3),
        (Parameter.TEMP, 35.0, 3),
        (Parameter.TEMP, 35.1, 1),
        (Parameter.TEMP, 36.1, 0),
        (Parameter.TEMP, 38.1, 1),
        (Parameter.TEMP, 39.1, 2),
        (Parameter.SYSTOLIC_BP, 90, 3),
        (Parameter.SYSTOLIC_BP, 111, 0),
        (Parameter.SYSTOLIC_BP, 220, 3),
    ],
)
def test_scale_1_scores(parameter: Parameter, value: float, expected: int) -> None:
    assert parameter_score(parameter, value, Profile.DEFAULT) == expected


@pytest.mark.parametrize(
    ("spo2", "on_oxygen", "expected"),
    [
        (83, False, 3),
        (84, False, 2),
        (86, False, 1),
        (88, False, 0),
        (95, False, 0),
        (93, True, 1),
        (95, True, 2),
        (97, True, 3),
    ],
)
def test_copd_uses_scale_2(spo2: float, on_oxygen: bool, expected: int) -> None:
    assert parameter_score(Parameter.SPO2, spo2, Profile.COPD, on_oxygen) == expected


def test_partial_score_lists_the_missing_parameters() -> None:
    result = score({Parameter.SPO2: 93, Parameter.PULSE: 115}, Profile.DEFAULT)
    assert result.total == 4
    assert set(result.missing) == {"resp_rate", "on_oxygen", "systolic_bp", "consciousness", "temp"}
    assert result.priority is None


def test_n1_needs_four_parameters_within_the_hour() -> None:
    rule = News2Rule(Tier.RED, Profile.DEFAULT)
    assert (
        rule.step([(0, Parameter.SPO2, 91), (1, Parameter.PULSE, 115), (2, Parameter.TEMP, 39.2)])
        == []
    )
    # A fourth parameter arrives: 3 + 2 + 2 + 2 (RR 22) = 9 -> HIGH.
    events = rule.step([(3, Parameter.RESP_RATE, 22)])
    assert [(e.rule, e.transition, e.priority) for e in events] == [
        (RuleId.N1, Transition.ONSET, Priority.HIGH)
    ]
    # Two hours later the old observations no longer count: nothing changes on one parameter.
    assert rule.step([(7200, Parameter.SPO2, 97)]) == []


def test_n1_resolves_on_the_next_full_set_below_the_band() -> None:
    rule = News2Rule(Tier.YELLOW, Profile.DEFAULT)
    rule.step(
        [
            (0, Parameter.SPO2, 91),
            (1, Parameter.PULSE, 80),
            (2, Parameter.TEMP, 37),
            (3, Parameter.RESP_RATE, 16),
        ]
    )
    assert rule.active  # single parameter scoring 3 -> MEDIUM
    events = rule.step([(60, Parameter.SPO2, 97)])
    assert [e.transition for e in events] == [Transition.RESOLVED]


def test_detector_feeds_news2_once_a_minute_from_the_channels() -> None:
    detector = PatientDetector(Tier.RED, Profile.DEFAULT)
    detector.step_temperatures([(0.0, 38.9, "axillary")])
    seconds = 600
    channels = {
        Channel.SPO2: np.full(seconds, 95.0),
        Channel.PULSE: np.full(seconds, 118.0),
        Channel.RESP: np.full(seconds, 23.0),
        Channel.PROBE_OFF: np.zeros(seconds),
        Channel.LOW_CONF: np.zeros(seconds),
    }
    events = [e for e in detector.step(0, channels) if e.rule is RuleId.N1]
    # SpO2 95 -> 1, pulse 118 -> 2, RR 23 -> 2, temp 38.9 + 0.4 -> 2: total 7 -> HIGH at 0 s.
    assert [(e.transition, e.ts_s, e.priority) for e in events] == [
        (Transition.ONSET, 0, Priority.HIGH)
    ]
