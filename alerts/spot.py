"""Temperature rules on spot readings (CLINICAL_RULES.md 1.5 and 1.10: T1, T2, T4).

A thermometer reading is one observation, not a 1 Hz stream: "persistence" means confirmation
by a repeat reading. Every reading is first normalised to an axillary equivalent by its body
site (China's convention is axillary). Skin temperature from a wearable never meets these
absolute cut-offs: it is ignored here (only a trend against the wearer's own baseline may use
it). Pure and sequential: readings must arrive in time order; state carries across calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from alerts.events import RuleEvent, Transition
from alerts.rules import Priority, RuleId, Tier

# Offsets to an axillary equivalent (CLINICAL_RULES.md 1.5: core ~ oral + 0.4 ~ axillary + 0.8;
# tympanic and rectal ~ core; forehead IR thermometers display an oral equivalent).
AXILLARY_OFFSET_C = {
    "axillary": 0.0,
    "body": 0.0,
    "oral": -0.4,
    "forehead": -0.4,
    "ear": -0.8,
    "tympanic": -0.8,
    "rectal": -0.8,
    "gi_tract": -0.8,
}
NOT_CORE_SITES = frozenset({"skin", "finger", "toe"})

FEVER_C = 37.3
FEVER_CLEAR_BELOW_C = 37.2
FEVER_CLEAR_SPACING_S = 4 * 3600
HIGH_FEVER_C = 38.1
VERY_HIGH_FEVER_C = 39.1
HIGH_FEVER_CONFIRM_S = 30 * 60
HIGH_FEVER_CLEAR_BELOW_C = 37.8
HIGH_FEVER_CLEAR_S = 12 * 3600
HYPOTHERMIA_C = 35.0
HYPOTHERMIA_CONFIRM_S = 10 * 60
HYPOTHERMIA_CLEAR_ABOVE_C = 35.5

TemperatureReading = tuple[float, float, str | None]  # (UTC epoch s, °C, body site)


def axillary_equivalent_c(temp_c: float, site: str | None) -> float | None:
    """The axillary equivalent of a reading, or None for sites that are not body temperature.
    An unknown site is taken as axillary (the usual site in China)."""
    if site in NOT_CORE_SITES:
        return None
    return round(temp_c + AXILLARY_OFFSET_C.get(site or "axillary", 0.0), 2)


def _priority(tier: Tier, red: Priority, yellow: Priority, green: Priority) -> Priority:
    return {Tier.RED: red, Tier.YELLOW: yellow, Tier.GREEN: green}[tier]


@dataclass(slots=True)
class TemperatureRules:
    """T1 fever, T2 high fever (confirmed), T4 hypothermia (confirmed) for one patient."""

    tier: Tier
    active: dict[str, bool] = field(default_factory=dict)
    last_high_s: float | None = None  # last reading >= 38.1, awaiting confirmation
    last_cold_s: float | None = None  # last reading <= 35.0, awaiting confirmation
    fever_clear_first_s: float | None = None  # first of the current run below 37.2
    high_clear_since_s: float | None = None  # start of the current run below 37.8
    last_reading_s: float | None = None

    def step(self, readings: Iterable[TemperatureReading]) -> list[RuleEvent]:
        """Events caused by `readings` (in time order; older than the last seen are ignored)."""
        events: list[RuleEvent] = []
        for ts_s, temp_c, site in readings:
            if self.last_reading_s is not None and ts_s <= self.last_reading_s:
                continue
            axillary_c = axillary_equivalent_c(temp_c, site)
            if axillary_c is None:
                continue
            self.last_reading_s = ts_s
            stats: dict[str, float | str] = {"value": temp_c, "axillary_c": axillary_c}
            if site:
                stats["site"] = site
            events += self._fever(ts_s, axillary_c, stats)
            events += self._high_fever(ts_s, axillary_c, stats)
            events += self._hypothermia(ts_s, axillary_c, stats)
        return events

    def _event(
        self, rule: RuleId, onset: bool, ts_s: float, priority: Priority, stats: dict[str, Any]
    ) -> RuleEvent:
        self.active[rule.value] = onset
        transition = Transition.ONSET if onset else Transition.RESOLVED
        latching = priority is Priority.HIGH
        return RuleEvent(rule, transition, int(ts_s), priority, latching, dict(stats))

    def _fever(self, ts_s: float, temp_c: float, stats: dict[str, Any]) -> list[RuleEvent]:
        priority = _priority(self.tier, Priority.LOW, Priority.LOW, Priority.INFO)
        if temp_c >= FEVER_C:
            self.fever_clear_first_s = None
            if not self.active.get(RuleId.T1.value):
                return [self._event(RuleId.T1, True, ts_s, priority, stats)]
            return []
        if temp_c >= FEVER_CLEAR_BELOW_C:
            self.fever_clear_first_s = None
            return []
        if self.fever_clear_first_s is None:
            self.fever_clear_first_s = ts_s
            return []
        spaced = ts_s - self.fever_clear_first_s >= FEVER_CLEAR_SPACING_S
        if spaced and self.active.get(RuleId.T1.value):
            return [self._event(RuleId.T1, False, ts_s, priority, stats)]
        return []

    def _high_fever(self, ts_s: float, temp_c: float, stats: dict[str, Any]) -> list[RuleEvent]:
        if temp_c >= HIGH_FEVER_C:
            self.high_clear_since_s = None
            confirmed = (
                self.last_high_s is not None and ts_s - self.last_high_s <= HIGH_FEVER_CONFIRM_S
            )
            self.last_high_s = ts_s
            if confirmed and not self.active.get(RuleId.T2.value):
                very_high = temp_c >= VERY_HIGH_FEVER_C and self.tier is Tier.RED
                priority = (
                    Priority.HIGH
                    if very_high
                    else _priority(self.tier, Priority.MEDIUM, Priority.MEDIUM, Priority.LOW)
                )
                return [self._event(RuleId.T2, True, ts_s, priority, stats)]
            return []
        self.last_high_s = None
        if temp_c >= HIGH_FEVER_CLEAR_BELOW_C:
            self.high_clear_since_s = None
            return []
        if self.high_clear_since_s is None:
            self.high_clear_since_s = ts_s
        if (
            self.active.get(RuleId.T2.value)
            and ts_s - self.high_clear_since_s >= HIGH_FEVER_CLEAR_S
        ):
            priority = _priority(self.tier, Priority.MEDIUM, Priority.MEDIUM, Priority.LOW)
            return [self._event(RuleId.T2, False, ts_s, priority, stats)]
        return []

    def _hypothermia(self, ts_s: float, temp_c: float, stats: dict[str, Any]) -> list[RuleEvent]:
        priority = _priority(self.tier, Priority.HIGH, Priority.HIGH, Priority.MEDIUM)
        if temp_c <= HYPOTHERMIA_C:
            confirmed = (
                self.last_cold_s is not None and ts_s - self.last_cold_s <= HYPOTHERMIA_CONFIRM_S
            )
            self.last_cold_s = ts_s
            if confirmed and not self.active.get(RuleId.T4.value):
                return [self._event(RuleId.T4, True, ts_s, priority, stats)]
            return []
        self.last_cold_s = None
        if temp_c > HYPOTHERMIA_CLEAR_ABOVE_C and self.active.get(RuleId.T4.value):
            return [self._event(RuleId.T4, False, ts_s, priority, stats)]
        return []

    def to_json(self) -> dict[str, Any]:
        return {
            "active": dict(self.active),
            "last_high_s": self.last_high_s,
            "last_cold_s": self.last_cold_s,
            "fever_clear_first_s": self.fever_clear_first_s,
            "high_clear_since_s": self.high_clear_since_s,
            "last_reading_s": self.last_reading_s,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], tier: Tier) -> TemperatureRules:
        return cls(
            tier,
            active={k: bool(v) for k, v in data.get("active", {}).items()},
            last_high_s=data.get("last_high_s"),
            last_cold_s=data.get("last_cold_s"),
            fever_clear_first_s=data.get("fever_clear_first_s"),
            high_clear_since_s=data.get("high_clear_since_s"),
            last_reading_s=data.get("last_reading_s"),
        )
