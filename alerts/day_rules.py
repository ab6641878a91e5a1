"""From the day- and night-level rules' decisions to detector events (CLINICAL_RULES.md 1.10:
S5, S6, H3, T3, T5), so that they raise and clear alerts like every other rule.

Pure. The alert that is live in the store (its condition present: open or acknowledged) is
the rule's state: a rule raises when it is not live and its onset run of consecutive ABNORMAL
days ends on the evaluated day, and clears when it is live and its clear run of NORMAL days
does. Driven one day at a time, this gives the transitions of `alerts/baseline.py`'s lifecycle;
unlike that lifecycle, it stays right when the alert was raised before the history that is read
again each day, or when a day was missed. INDETERMINATE days neither raise nor clear.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from alerts.baseline import T3_DAYS, DayCondition, DayOutcome
from alerts.events import RuleEvent, Transition
from alerts.nightly import NightlySummary, NightStatus
from alerts.rules import Priority, RuleId, Tier

MAX_REASON_CHARS = 200


@dataclass(frozen=True, slots=True)
class DayRule:
    """A day- or night-level rule: its runs (as in alerts/baseline.py), its priority per tier
    and the names, with units, of its day statistic and baseline in the alert's details."""

    rule: RuleId
    onset_days: int
    clear_days: int
    red: Priority
    yellow: Priority
    green: Priority
    value_key: str
    baseline_key: str | None

    def priority(self, tier: Tier) -> Priority:
        return {Tier.RED: self.red, Tier.YELLOW: self.yellow, Tier.GREEN: self.green}[tier]


_M, _L, _H = Priority.MEDIUM, Priority.LOW, Priority.HIGH
DAY_RULES: dict[RuleId, DayRule] = {
    RuleId.S5: DayRule(RuleId.S5, 1, 1, _M, _M, _L, "day_mean_percent", "baseline_percent"),
    RuleId.H3: DayRule(RuleId.H3, 2, 2, _M, _L, _L, "night_mean_bpm", "baseline_bpm"),
    RuleId.T5: DayRule(RuleId.T5, 2, 1, _L, _L, _L, "night_median_c", "baseline_c"),
    RuleId.T3: DayRule(RuleId.T3, T3_DAYS, 1, _H, _M, _M, "day_max_c", None),
}


def run_length(outcomes: Sequence[DayOutcome], day: dt.date, condition: DayCondition) -> int:
    """How many consecutive calendar days, ending on `day`, have `condition`."""
    by_day = {outcome.day: outcome.condition for outcome in outcomes}
    run = 0
    while by_day.get(day - dt.timedelta(days=run)) is condition:
        run += 1
    return run


def day_rule_event(
    rule: RuleId,
    outcomes: Sequence[DayOutcome],
    day: dt.date,
    tier: Tier,
    live: Priority | None,
    ts_s: int,
) -> RuleEvent | None:
    """The event of `rule` for the evaluated `day`, given the history's outcomes (from the
    matching `evaluate_*`) and the priority of the rule's live alert (None: no live alert)."""
    spec = DAY_RULES[rule]
    latest = next((outcome for outcome in outcomes if outcome.day == day), None)
    if latest is None:
        return None
    if live is None and run_length(outcomes, day, DayCondition.ABNORMAL) >= spec.onset_days:
        priority = spec.priority(tier)
        transition = Transition.ONSET
    elif live is not None and run_length(outcomes, day, DayCondition.NORMAL) >= spec.clear_days:
        priority = live
        transition = Transition.RESOLVED
    else:
        return None
    stats = _day_stats(spec, latest)
    return RuleEvent(rule, transition, ts_s, priority, priority is Priority.HIGH, stats)


def _day_stats(spec: DayRule, outcome: DayOutcome) -> dict[str, float | str]:
    stats: dict[str, float | str] = {
        "day": outcome.day.isoformat(),
        "condition": outcome.condition.value,
    }
    _put(stats, spec.value_key, outcome.value)
    if spec.baseline_key is not None:
        _put(stats, spec.baseline_key, outcome.baseline)
    stats["reason"] = outcome.reason[:MAX_REASON_CHARS]
    return stats


def night_rule_event(
    summary: NightlySummary, night: dt.date, live: Priority | None, ts_s: int
) -> RuleEvent | None:
    """S6 for the night that ended on the morning of `night`: an alerting night raises (at the
    summary's priority), a clear night clears, an indeterminate one (< 4 h valid) does neither."""
    if summary.status is NightStatus.ALERT and live is None:
        priority = summary.priority or Priority.LOW
        transition = Transition.ONSET
    elif summary.status is NightStatus.CLEAR and live is not None:
        priority = live
        transition = Transition.RESOLVED
    else:
        return None
    stats: dict[str, float | str] = {
        "night": night.isoformat(),
        "status": summary.status.value,
        "valid_h": round(summary.valid_hours, 2),
        "desaturations": summary.desaturations,
    }
    _put(stats, "odi3_per_hour", summary.odi3_per_hour)
    _put(stats, "ct90_percent", summary.ct90_percent)
    _put(stats, "below_85_percent", summary.below_85_percent)
    stats["longest_below_85_s"] = summary.longest_below_85_s
    _put(stats, "nadir_percent", summary.nadir_percent)
    if summary.reasons:
        stats["reason"] = "; ".join(summary.reasons)[:MAX_REASON_CHARS]
    return RuleEvent(RuleId.S6, transition, ts_s, priority, priority is Priority.HIGH, stats)


def _put(stats: dict[str, float | str], key: str, value: float) -> None:
    """Finite numbers only (JSON has no NaN), to two decimals."""
    if math.isfinite(value):
        stats[key] = round(float(value), 2)
