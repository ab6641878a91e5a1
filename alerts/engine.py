"""The streaming detector for one patient: carries its state between calls so that feeding
data in any chunks gives the same events as one batch. No clock, no I/O.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alerts.events import RuleEvent, Transition
from alerts.news2 import News2Rule, Parameter
from alerts.rules import Channel, Profile, RuleId, Tier, WindowRule, window_rules
from alerts.spot import TemperatureReading, TemperatureRules, axillary_equivalent_c
from alerts.threshold import TRIGGERS, BoolArray, ChannelCounts, FloatArray, RuleTrace, evaluate

__all__ = ["PatientDetector", "RuleEvent", "Transition"]

NEWS2_EVERY_S = 60
ORAL_FROM_AXILLARY_C = 0.4  # NEWS2 bands are for oral/tympanic readings
_NEWS2_CHANNELS = {
    Channel.SPO2: Parameter.SPO2,
    Channel.PULSE: Parameter.PULSE,
    Channel.RESP: Parameter.RESP_RATE,
}


@dataclass(slots=True)
class _RuleState:
    active: bool = False
    clear_run_s: int = 0
    satseconds: float = 0.0


def _empty() -> FloatArray:
    return np.empty(0)


@dataclass(slots=True)
class PatientDetector:
    """The continuous rules for one patient over 1 Hz channels (NaN = no sample)."""

    tier: Tier
    profile: Profile
    rules: tuple[WindowRule, ...] = ()
    next_slot_s: int | None = None
    tails: dict[Channel, FloatArray] = field(default_factory=dict)
    rule_states: dict[RuleId, _RuleState] = field(default_factory=dict)
    temperature: TemperatureRules | None = None
    news2: News2Rule | None = None

    def __post_init__(self) -> None:
        if not self.rules:
            self.rules = window_rules(self.tier, self.profile)
        if self.temperature is None:
            self.temperature = TemperatureRules(self.tier)
        if self.news2 is None:
            self.news2 = News2Rule(self.tier, self.profile)

    def step_temperatures(self, readings: Iterable[TemperatureReading]) -> list[RuleEvent]:
        """Temperature rule events for spot readings (time order), and NEWS2 with them."""
        assert self.temperature is not None and self.news2 is not None
        readings = list(readings)
        events = self.temperature.step(readings)
        observations = [
            (ts_s, Parameter.TEMP, axillary_c + ORAL_FROM_AXILLARY_C)
            for ts_s, temp_c, site in readings
            if (axillary_c := axillary_equivalent_c(temp_c, site)) is not None
        ]
        return events + self.news2.step(observations)

    def _news2_observations(
        self, history: dict[Channel, FloatArray], new: int, start_s: int
    ) -> list[RuleEvent]:
        """NEWS2 sees the value at each whole minute (one observation a minute)."""
        assert self.news2 is not None
        first = (-start_s) % NEWS2_EVERY_S
        observations = []
        for i in range(first, new, NEWS2_EVERY_S):
            for channel, parameter in _NEWS2_CHANNELS.items():
                series = history[channel]
                value = float(series[len(series) - new + i])
                if not np.isnan(value):
                    observations.append((float(start_s + i), parameter, value))
        return self.news2.step(observations)

    @property
    def tail_len(self) -> int:
        return _tail_len(self.rules)

    def step(self, start_s: int, channels: Mapping[Channel, FloatArray]) -> list[RuleEvent]:
        """Consume samples for seconds start_s, start_s+1, ... of every channel (all the same
        length; a missing channel is all NaN) and return the transitions.

        A gap since the previous call is filled with NaN (no data is not normal data).
        Seconds already consumed are ignored.
        """
        length = max((len(v) for v in channels.values()), default=0)
        skip = 0
        if self.next_slot_s is not None and start_s < self.next_slot_s:
            skip = min(self.next_slot_s - start_s, length)
        new = length - skip
        if new <= 0:
            return []
        start_s += skip
        history = {
            channel: np.concatenate(
                (self._tail_for(channel, start_s), _new_samples(channels, channel, skip, length))
            )
            for channel in Channel
        }
        events: list[RuleEvent] = []
        active: dict[RuleId, BoolArray] = {}
        counts = ChannelCounts(history)
        for rule in self.rules:
            suppressors = [active[r] for r in rule.suppressed_by if r in active]
            suppressed = np.logical_or.reduce(suppressors) if suppressors else None
            rule_events, active[rule.rule] = self._step_rule(rule, counts, new, start_s, suppressed)
            events.extend(rule_events)
        events += self._news2_observations(history, new, start_s)
        events.sort(key=lambda e: (e.ts_s, e.rule))
        self.tails = {ch: values[len(values) - self.tail_len :] for ch, values in history.items()}
        self.next_slot_s = start_s + new
        return events

    def _tail_for(self, channel: Channel, start_s: int) -> FloatArray:
        """The last tail_len samples before start_s, NaN where nothing was seen."""
        length = self.tail_len
        tail = self.tails.get(channel, _empty())
        gap = 0 if self.next_slot_s is None else start_s - self.next_slot_s
        known = np.concatenate((np.full(length, np.nan), tail, np.full(gap, np.nan)))
        return known[len(known) - length :]

    def _step_rule(
        self,
        rule: WindowRule,
        counts: ChannelCounts,
        new: int,
        start_s: int,
        suppressed: BoolArray | None,
    ) -> tuple[list[RuleEvent], BoolArray]:
        state = self.rule_states.setdefault(rule.rule, _RuleState())
        trace = evaluate(
            rule, counts, new, state.active, state.clear_run_s, state.satseconds, suppressed
        )
        previous = np.concatenate(([state.active], trace.active[:-1]))
        changed = np.flatnonzero(trace.active != previous)
        series = counts.channels[rule.channel]
        recent = series[len(series) - new :]
        events = [
            RuleEvent(
                rule=rule.rule,
                transition=Transition.ONSET if trace.active[i] else Transition.RESOLVED,
                ts_s=start_s + int(i),
                priority=rule.priority,
                latching=rule.latching,
                stats=_stats(rule, float(recent[i]), trace, int(i)),
            )
            for i in changed
        ]
        state.active = bool(trace.active[-1])
        state.clear_run_s = min(trace.clear_run_end, rule.clear_s)
        state.satseconds = float(trace.satseconds[-1])
        return events, trace.active

    def to_json(self, with_tails: bool = True) -> dict[str, Any]:
        """The carried state, for the store (written in the same transaction as the data).

        Without `with_tails` it is a few hundred bytes: the recent samples can be rebuilt from
        the stored readings with `restore_tails` (the daemon does so, to spare the SD card).
        """
        tails = {
            channel.value: [None if np.isnan(v) else float(v) for v in values]
            for channel, values in self.tails.items()
        }
        return {
            "tier": self.tier.value,
            "profile": self.profile.value,
            "next_slot_s": self.next_slot_s,
            "tails": tails if with_tails else {},
            "rules": {
                rule.value: [state.active, state.clear_run_s, state.satseconds]
                for rule, state in self.rule_states.items()
            },
            "temperature": self.temperature.to_json() if self.temperature else {},
            "news2": self.news2.to_json() if self.news2 else {},
        }

    def history_span_s(self) -> tuple[int, int] | None:
        """The seconds [start, end) whose samples the tails hold (None before any data)."""
        if self.next_slot_s is None:
            return None
        return self.next_slot_s - self.tail_len, self.next_slot_s

    def restore_tails(self, start_s: int, channels: Mapping[Channel, FloatArray]) -> None:
        """Rebuild the tails from samples for seconds start_s, start_s+1, ... (e.g. read back
        from the store); only the span of `history_span_s` is kept."""
        span = self.history_span_s()
        if span is None:
            return
        first_s, end_s = span
        for channel in Channel:
            values = np.full(end_s - first_s, np.nan)
            source = channels.get(channel)
            if source is not None:
                for i in range(len(source)):
                    second = start_s + i
                    if first_s <= second < end_s:
                        values[second - first_s] = source[i]
            self.tails[channel] = values

    @classmethod
    def from_json(cls, data: dict[str, Any], tier: Tier, profile: Profile) -> PatientDetector:
        """Restore a detector; a changed tier or profile keeps the history but not the rules'
        state. State from an older version without `tails` is dropped (history restarts)."""
        detector = cls(tier, profile, next_slot_s=data.get("next_slot_s"))
        detector.temperature = TemperatureRules.from_json(data.get("temperature", {}), tier)
        detector.news2 = News2Rule.from_json(data.get("news2", {}), tier, profile)
        for name, values in data.get("tails", {}).items():
            if name in Channel.__members__.values():
                tail = np.array([np.nan if v is None else v for v in values], dtype=float)
                detector.tails[Channel(name)] = tail[len(tail) - detector.tail_len :]
        if data.get("tier") == tier.value and data.get("profile") == profile.value:
            for rule, saved in data.get("rules", {}).items():
                if rule in RuleId.__members__.values():
                    active, clear_run_s, *rest = saved
                    detector.rule_states[RuleId(rule)] = _RuleState(
                        bool(active), int(clear_run_s), float(rest[0]) if rest else 0.0
                    )
        return detector


@functools.cache
def _tail_len(rules: tuple[WindowRule, ...]) -> int:
    return max(rule.history_s for rule in rules) - 1


def _new_samples(
    channels: Mapping[Channel, FloatArray], channel: Channel, skip: int, length: int
) -> FloatArray:
    values = channels.get(channel)
    if values is None:
        return np.full(length - skip, np.nan)
    return np.asarray(values, dtype=np.float64)[skip:]


def _statistic(rule: WindowRule, trace: RuleTrace, index: int) -> float:
    windows = trace.windows if trace.degraded[index] else trace.short_windows
    return windows.value_at(rule.statistic, index)


def _stats(rule: WindowRule, value: float, trace: RuleTrace, index: int) -> dict[str, float | str]:
    """What an alert records about the moment it changed state (NaN is not JSON: dropped)."""
    numbers = {
        f"window_{rule.statistic}": _statistic(rule, trace, index),
        "value": value,
        "window_s": float(rule.window_s),
        "satseconds": float(trace.satseconds[index]),
    }
    if rule.alarm and np.isfinite(rule.alarm[0].high) and rule.statistic == "median":
        numbers["limit"] = rule.alarm[0].high
    stats: dict[str, float | str] = {k: v for k, v in numbers.items() if np.isfinite(v)}
    stats["channel"] = rule.channel.value
    if trace.active[index]:
        stats["trigger"] = TRIGGERS[int(trace.trigger[index])]
    return stats
