"""The streaming detector for one patient: carries its state between calls so that feeding
data in any chunks gives the same events as one batch. No clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from alerts.rules import Priority, Profile, RuleId, ThresholdRule, Tier, spo2_rules
from alerts.threshold import FloatArray, evaluate


class Transition(StrEnum):
    ONSET = "onset"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class RuleEvent:
    """A rule's condition started or ended at `ts_s` (the second of the sample that did it)."""

    rule: RuleId
    transition: Transition
    ts_s: int
    priority: Priority
    latching: bool
    stats: dict[str, float]


@dataclass(slots=True)
class _RuleState:
    active: bool = False
    clear_run_s: int = 0


@dataclass(slots=True)
class PatientDetector:
    """SpO2 threshold rules for one patient over a 1 Hz grid of samples (NaN = no sample)."""

    tier: Tier
    profile: Profile
    next_slot_s: int | None = None
    tail: FloatArray = field(default_factory=lambda: np.empty(0))
    rule_states: dict[RuleId, _RuleState] = field(default_factory=dict)

    @property
    def rules(self) -> tuple[ThresholdRule, ...]:
        return spo2_rules(self.tier, self.profile)

    @property
    def tail_len(self) -> int:
        return max(rule.window_s for rule in self.rules) - 1

    def step(self, start_s: int, spo2_percent: FloatArray) -> list[RuleEvent]:
        """Consume samples for seconds start_s, start_s+1, ...; return the transitions.

        A gap since the previous call is filled with NaN (no data is not normal data).
        Samples for seconds already consumed are ignored.
        """
        if self.next_slot_s is not None and start_s < self.next_slot_s:
            spo2_percent = spo2_percent[self.next_slot_s - start_s :]
            start_s = self.next_slot_s
        if len(spo2_percent) == 0:
            return []
        tail = self._tail_for(start_s)
        history = np.concatenate((tail, np.asarray(spo2_percent, dtype=np.float64)))
        events: list[RuleEvent] = []
        for rule in self.rules:
            events.extend(self._step_rule(rule, history, start_s))
        events.sort(key=lambda e: (e.ts_s, e.rule))
        self.tail = history[len(history) - self.tail_len :]
        self.next_slot_s = start_s + len(spo2_percent)
        return events

    def _tail_for(self, start_s: int) -> FloatArray:
        """The last tail_len samples before start_s, NaN where nothing was seen."""
        length = self.tail_len
        if self.next_slot_s is None:
            return np.full(length, np.nan)
        gap = start_s - self.next_slot_s
        known = np.concatenate((np.full(length, np.nan), self.tail, np.full(gap, np.nan)))
        return known[len(known) - length :]

    def _step_rule(self, rule: ThresholdRule, history: FloatArray, start_s: int) -> list[RuleEvent]:
        state = self.rule_states.setdefault(rule.rule, _RuleState())
        offset = self.tail_len - (rule.window_s - 1)
        trace = evaluate(rule, history[offset:], state.active, state.clear_run_s)
        previous = np.concatenate(([state.active], trace.active[:-1]))
        changed = np.flatnonzero(trace.active != previous)
        events = [
            RuleEvent(
                rule=rule.rule,
                transition=Transition.ONSET if trace.active[i] else Transition.RESOLVED,
                ts_s=start_s + int(i),
                priority=rule.priority,
                latching=rule.latching,
                stats={
                    "window_median": float(trace.stats.median[i]),
                    "window_min": float(trace.stats.minimum[i]),
                    "valid_fraction": round(float(trace.stats.valid_fraction[i]), 3),
                    "limit": rule.limit,
                    "window_s": float(rule.window_s),
                },
            )
            for i in changed
        ]
        state.active = bool(trace.active[-1])
        state.clear_run_s = int(min(trace.clear_run[-1], rule.clear_s))
        return events

    def to_json(self) -> dict[str, Any]:
        """The carried state, for the store (written in the same transaction as the data)."""
        return {
            "tier": self.tier.value,
            "profile": self.profile.value,
            "next_slot_s": self.next_slot_s,
            "tail": [None if np.isnan(v) else float(v) for v in self.tail],
            "rules": {
                rule.value: [state.active, state.clear_run_s]
                for rule, state in self.rule_states.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], tier: Tier, profile: Profile) -> PatientDetector:
        """Restore a detector; a changed tier or profile keeps the history but not the rules."""
        detector = cls(tier, profile, data.get("next_slot_s"))
        detector.tail = np.array([np.nan if v is None else v for v in data["tail"]], dtype=float)
        detector.tail = detector.tail[-detector.tail_len :] if detector.tail_len else detector.tail
        if data.get("tier") == tier.value and data.get("profile") == profile.value:
            for rule, (active, clear_run_s) in data.get("rules", {}).items():
                detector.rule_states[RuleId(rule)] = _RuleState(bool(active), int(clear_run_s))
        return detector
