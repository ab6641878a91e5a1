"""The clinical rule table as data (CLINICAL_RULES.md section 1.10), selected per patient by
risk tier and profile. Defaults live here; `with_overrides` applies a hospital's per-patient
changes. The continuous (1 Hz) rules are `WindowRule`s; temperature rules are in `spot.py`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

INF = math.inf


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
    INFO = "INFO"


class RuleId(StrEnum):
    S1 = "S1"  # SpO2 critical
    S2 = "S2"  # SpO2 severe
    S3 = "S3"  # SpO2 borderline
    H1 = "H1"  # pulse critical
    H2 = "H2"  # pulse abnormal
    R1 = "R1"  # respiratory rate
    Q1 = "Q1"  # probe off (technical)
    Q2 = "Q2"  # low-quality data (technical)
    T1 = "T1"  # fever
    T2 = "T2"  # high fever
    T4 = "T4"  # hypothermia
    N1 = "N1"  # NEWS2 aggregate
    S5 = "S5"  # drop from the personal SpO2 baseline (day level)
    S6 = "S6"  # nightly oximetry summary (night level)
    H3 = "H3"  # resting-HR rise (night level)
    T3 = "T3"  # persistent high fever (day level)
    T5 = "T5"  # wearable skin-temperature trend (night level)
    Q3 = "Q3"  # missed scheduled reading (technical, per the patient's schedule)
    Q5 = "Q5"  # device disagreement (technical, two oximeters on one patient)


class Channel(StrEnum):
    """One 1 Hz series per patient; masks are 1.0 / 0.0, NaN where nothing was received."""

    SPO2 = "spo2"
    PULSE = "pulse"
    RESP = "resp"
    PROBE_OFF = "probe_off"  # the oximeter reported no finger / no signal / sensor fault
    LOW_CONF = "low_conf"  # a value came with low perfusion, motion or a weak signal


Statistic = Literal["median", "fraction"]


@dataclass(frozen=True, slots=True)
class Band:
    """`low < x <= high`, or with `low_inclusive`, `low <= x <= high` (inf bounds allowed)."""

    low: float = -INF
    high: float = INF
    low_inclusive: bool = False


@dataclass(frozen=True, slots=True)
class WindowRule:
    """A condition on a window statistic with persistence and hysteresis.

    Onset: the statistic over the last `window_s` seconds (median of the channel, or fraction of
    a mask; indeterminate unless `min_valid_fraction` of the window has data) is in any `alarm`
    band. S1 also fires on `satseconds` (sum over a run of seconds of points below the band's
    top) or on `crossings_in_60s` drops below it. Under low-quality data (over half of the last
    5 minutes low-confidence), `low_quality_factor` multiplies the window and SatSeconds.
    Clear: the statistic over `clear_window_s` has been inside `clear` for `clear_s` seconds.
    No onset while a rule of `suppressed_by` is active (S3 while S1 or S2 is).
    A latching alert stays open after it clears until someone acknowledges it.
    """

    rule: RuleId
    channel: Channel
    window_s: int
    alarm: tuple[Band, ...]
    clear: Band
    clear_s: int
    priority: Priority
    latching: bool
    statistic: Statistic = "median"
    clear_window_s: int = 0  # 0: the onset window
    min_valid_fraction: float = 0.8
    exclude_low_conf: bool = False
    low_quality_factor: int = 1
    satseconds: float | None = None
    crossings_in_60s: int | None = None
    suppressed_by: tuple[RuleId, ...] = ()  # no onset while one of these is active

    @property
    def effective_clear_window_s(self) -> int:
        return self.clear_window_s or self.window_s

    @property
    def history_s(self) -> int:
        """Seconds of past samples the rule needs to evaluate a new one."""
        quality_s = LOW_QUALITY_WINDOW_S if self.low_quality_factor > 1 else 0
        crossing_s = CROSSING_WINDOW_S + 1 if self.crossings_in_60s else 0
        return max(
            self.window_s * self.low_quality_factor,
            self.effective_clear_window_s,
            quality_s,
            crossing_s,
        )


LOW_QUALITY_WINDOW_S = 300
LOW_QUALITY_FRACTION = 0.5
CROSSING_WINDOW_S = 60


def _by_tier(red: int, other: int, tier: Tier) -> int:
    return red if tier is Tier.RED else other


def _priority(tier: Tier, red: Priority, yellow: Priority, green: Priority) -> Priority:
    return {Tier.RED: red, Tier.YELLOW: yellow, Tier.GREEN: green}[tier]


def spo2_rules(tier: Tier, profile: Profile) -> tuple[WindowRule, ...]:
    """S1 critical, S2 severe and S3 borderline hypoxaemia for one patient."""
    copd = profile is Profile.COPD
    s1_limit = 83.0 if copd else 88.0
    s2_limit = 85.0 if copd else (93.0 if tier is Tier.RED else 92.0)
    s3_top = 87.0 if copd else 94.0
    s2_priority = _priority(tier, Priority.HIGH, Priority.HIGH, Priority.MEDIUM)
    return (
        WindowRule(
            RuleId.S1,
            Channel.SPO2,
            window_s=_by_tier(30, 60, tier),
            alarm=(Band(high=s1_limit),),
            clear=Band(low=s1_limit + 3, low_inclusive=True),
            clear_s=300,
            priority=Priority.HIGH,
            latching=True,
            low_quality_factor=2,
            satseconds=50.0,
            crossings_in_60s=3,
        ),
        WindowRule(
            RuleId.S2,
            Channel.SPO2,
            window_s=_by_tier(60, 120, tier),
            alarm=(Band(high=s2_limit),),
            clear=Band(low=s2_limit + 2, low_inclusive=True),
            clear_s=600,
            priority=s2_priority,
            latching=s2_priority is Priority.HIGH,
        ),
        WindowRule(
            RuleId.S3,
            Channel.SPO2,
            window_s=300,
            alarm=(Band(low=s2_limit, high=s3_top),),
            clear=Band(low=s3_top + 1, low_inclusive=True),
            clear_s=1800,
            priority=_priority(tier, Priority.MEDIUM, Priority.MEDIUM, Priority.LOW),
            latching=False,
            exclude_low_conf=True,
            suppressed_by=(RuleId.S1, RuleId.S2),
        ),
    )


def pulse_rules(tier: Tier) -> tuple[WindowRule, ...]:
    """H1 critical (<= 40 or >= 131) and H2 abnormal (41-50 or 111-130) pulse, motion-free."""
    return (
        WindowRule(
            RuleId.H1,
            Channel.PULSE,
            window_s=120,
            alarm=(Band(high=40.0), Band(low=131.0, low_inclusive=True)),
            clear=Band(low=45.0, high=125.0 - 1e-9),
            clear_s=600,
            priority=_priority(tier, Priority.HIGH, Priority.HIGH, Priority.MEDIUM),
            latching=tier is not Tier.GREEN,
            exclude_low_conf=True,
        ),
        WindowRule(
            RuleId.H2,
            Channel.PULSE,
            window_s=600,
            alarm=(
                Band(low=40.0, high=50.0),
                Band(low=111.0, high=131.0 - 1e-9, low_inclusive=True),
            ),
            clear=Band(low=50.0, high=105.0),
            clear_s=900,
            priority=_priority(tier, Priority.MEDIUM, Priority.LOW, Priority.LOW),
            latching=False,
            exclude_low_conf=True,
        ),
    )


def respiration_rules(tier: Tier) -> tuple[WindowRule, ...]:
    """R1 (>= 25 or <= 8 breaths/min over 5 min), when a device measures respiration."""
    return (
        WindowRule(
            RuleId.R1,
            Channel.RESP,
            window_s=300,
            alarm=(Band(high=8.0), Band(low=25.0, low_inclusive=True)),
            clear=Band(low=12.0, high=20.0, low_inclusive=True),
            clear_s=1800,
            priority=_priority(tier, Priority.HIGH, Priority.HIGH, Priority.MEDIUM),
            latching=tier is not Tier.GREEN,
        ),
    )


def technical_rules(tier: Tier) -> tuple[WindowRule, ...]:
    """Q1 probe off and Q2 low-quality data: technical alerts, never physiological."""
    return (
        WindowRule(
            RuleId.Q1,
            Channel.PROBE_OFF,
            window_s=_by_tier(60, 300, tier),
            statistic="fraction",
            alarm=(Band(low=0.9, high=1.0, low_inclusive=True),),
            clear=Band(high=0.0, low_inclusive=True, low=0.0),
            clear_window_s=1,
            clear_s=1,
            priority=Priority.LOW,
            latching=False,
        ),
        WindowRule(
            RuleId.Q2,
            Channel.LOW_CONF,
            window_s=LOW_QUALITY_WINDOW_S,
            statistic="fraction",
            alarm=(Band(low=LOW_QUALITY_FRACTION, high=1.0),),
            clear=Band(high=0.0, low_inclusive=True, low=0.0),
            clear_window_s=120,
            clear_s=1,
            priority=Priority.LOW,
            latching=False,
        ),
    )


def window_rules(tier: Tier, profile: Profile) -> tuple[WindowRule, ...]:
    """Every continuous rule for a patient of this tier and profile."""
    return (
        *spo2_rules(tier, profile),
        *pulse_rules(tier),
        *respiration_rules(tier),
        *technical_rules(tier),
    )


def with_overrides(
    rules: tuple[WindowRule, ...], overrides: Mapping[str, Mapping[str, object]]
) -> tuple[WindowRule, ...]:
    """Rules with per-patient overrides, e.g. {"S2": {"threshold": 90, "window_s": 90}}.

    Fields: `window_s` (1-3600), `clear_s` (1-86400), `min_valid_fraction` (0-1], and for the
    SpO2 rules S1, S2 and S3 `threshold`: the alarm limit ("median <= threshold"); the clear
    level moves with it, so the hysteresis margin stays. S3 (borderline) starts where S2 ends,
    so an S2 threshold also moves S3's lower bound (S3 never fires when that is at or above
    S3's top). Raises ValueError naming the rule and field for an unknown rule or field, or a
    value of the wrong type or out of range.
    """
    by_id = {rule.rule.value: rule for rule in rules}
    unknown = set(overrides) - set(by_id)
    if unknown:
        raise ValueError(f"unknown rule(s): {', '.join(sorted(unknown))}")
    s2 = by_id.get(RuleId.S2.value)
    s2_fields = overrides.get(RuleId.S2.value, {})
    s2_limit = _overridden(s2, s2_fields).alarm[0].high if s2 and "threshold" in s2_fields else None
    changed = []
    for rule in rules:
        if rule.rule is RuleId.S3 and s2_limit is not None:
            band = dataclasses.replace(rule.alarm[0], low=s2_limit)
            rule = dataclasses.replace(rule, alarm=(band,))  # noqa: PLW2901
        changed.append(_overridden(rule, overrides.get(rule.rule.value, {})))
    return tuple(changed)


_OVERRIDE_RANGES: dict[str, tuple[type, float, float]] = {
    "window_s": (int, 1, 3600),
    "clear_s": (int, 1, 86400),
    "min_valid_fraction": (float, 0.0, 1.0),
    "threshold": (float, 50.0, 100.0),  # SpO2 %, the only thresholded channel so far
}


def _overridden(rule: WindowRule, fields: Mapping[str, object]) -> WindowRule:
    checked = {name: _checked(rule, name, value) for name, value in fields.items()}
    threshold = checked.pop("threshold", None)
    changed = dataclasses.replace(rule, **checked) if checked else rule  # type: ignore[arg-type]
    return changed if threshold is None else _with_threshold(changed, threshold)


def _with_threshold(rule: WindowRule, threshold: float) -> WindowRule:
    """The alarm band's top moved to `threshold`, the clear level by the same amount."""
    band = rule.alarm[0]
    if not threshold > band.low:
        raise ValueError(f"{rule.rule}.threshold: must be above {band.low:g}")
    clear_low = rule.clear.low + threshold - band.high
    _, _, top = _OVERRIDE_RANGES["threshold"]
    if clear_low > top:
        raise ValueError(
            f"{rule.rule}.threshold: at most {top - (rule.clear.low - band.high):g}, or the"
            f" alert could never clear (it clears at {rule.clear.low - band.high:g} above it)"
        )
    return dataclasses.replace(
        rule,
        alarm=(dataclasses.replace(band, high=threshold),),
        clear=dataclasses.replace(rule.clear, low=clear_low),
    )


def _has_threshold(rule: WindowRule) -> bool:
    """One alarm band on a median with a finite top (S1, S2, S3)."""
    return (
        rule.channel is Channel.SPO2
        and rule.statistic == "median"
        and len(rule.alarm) == 1
        and math.isfinite(rule.alarm[0].high)
    )


def _checked(rule: WindowRule, name: str, value: object) -> float:
    """The override's value (an int for whole-second fields); ValueError if it is invalid."""
    expected = _OVERRIDE_RANGES.get(name)
    if expected is None or (name == "threshold" and not _has_threshold(rule)):
        allowed = [n for n in _OVERRIDE_RANGES if n != "threshold" or _has_threshold(rule)]
        raise ValueError(
            f"{rule.rule}.{name}: not a setting that can be overridden"
            f" (possible: {', '.join(allowed)})"
        )
    kind, low, high = expected
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{rule.rule}.{name}: expected a number, got {value!r}")
    if kind is int:
        if value != int(value) or not low <= value <= high:
            raise ValueError(f"{rule.rule}.{name}: expected a whole number {low:g}-{high:g}")
        return int(value)
    if not low < value <= high:
        raise ValueError(f"{rule.rule}.{name}: expected above {low:g} and at most {high:g}")
    return float(value)
