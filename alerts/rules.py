"""The clinical rule table as data (CLINICAL_RULES.md section 1.10), selected per patient by
risk tier and profile. Defaults live here; the hospital can override them per patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from devices.protocols.reading import Metric


class Tier(StrEnum):
    """China's population tiers: key (red), sub-key (yellow), general (green)."""

    RED = "red"
    YELLOW = "yellow"
    GREEN = "green"


class Profile(StrEnum):
    """`copd` uses NEWS2 SpO2 scale 2 (target 88-92 %); set by the clinician only."""

    DEFAULT = "default"
    COPD = "copd"


class Priority(StrEnum):
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


class RuleId(StrEnum):
    S1 = "S1"
    S2 = "S2"


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """Alert while the window median of `metric` is at or below `limit`.

    Onset: the median over the last `window_s` seconds (with at least `min_valid_fraction`
    valid samples; otherwise the window is indeterminate) is <= `limit`.
    Clear: that median has stayed >= `limit + clear_margin` for `clear_s` seconds.
    A latching alert stays open after it clears, until someone acknowledges it.
    """

    rule: RuleId
    metric: Metric
    limit: float
    window_s: int
    clear_margin: float
    clear_s: int
    priority: Priority
    latching: bool
    min_valid_fraction: float = 0.8

    @property
    def clear_level(self) -> float:
        return self.limit + self.clear_margin


# (default-profile limit, COPD limit, window seconds by tier, clear margin, clear seconds,
#  priority by tier). S2's RED limit is China's "severe" SpO2 <= 93 % (v9/v10).
_S1_LIMITS = {Profile.DEFAULT: 88.0, Profile.COPD: 83.0}
_S1_WINDOW_S = {Tier.RED: 30, Tier.YELLOW: 60, Tier.GREEN: 60}
_S2_LIMITS = {Profile.DEFAULT: 92.0, Profile.COPD: 85.0}
_S2_RED_DEFAULT_LIMIT = 93.0
_S2_WINDOW_S = {Tier.RED: 60, Tier.YELLOW: 120, Tier.GREEN: 120}
_S2_PRIORITY = {Tier.RED: Priority.HIGH, Tier.YELLOW: Priority.HIGH, Tier.GREEN: Priority.MEDIUM}


def spo2_rules(tier: Tier, profile: Profile) -> tuple[ThresholdRule, ...]:
    """The SpO2 threshold rules S1 (critical) and S2 (severe) for one patient."""
    s2_limit = _S2_LIMITS[profile]
    if profile is Profile.DEFAULT and tier is Tier.RED:
        s2_limit = _S2_RED_DEFAULT_LIMIT
    s2_priority = _S2_PRIORITY[tier]
    return (
        ThresholdRule(
            rule=RuleId.S1,
            metric=Metric.SPO2,
            limit=_S1_LIMITS[profile],
            window_s=_S1_WINDOW_S[tier],
            clear_margin=3.0,
            clear_s=300,
            priority=Priority.HIGH,
            latching=True,
        ),
        ThresholdRule(
            rule=RuleId.S2,
            metric=Metric.SPO2,
            limit=s2_limit,
            window_s=_S2_WINDOW_S[tier],
            clear_margin=2.0,
            clear_s=600,
            priority=s2_priority,
            latching=s2_priority is Priority.HIGH,
        ),
    )
