"""The streaming detector for one patient: carries its state between calls so that feeding
data in any chunks gives the same events as one batch. No clock, no I/O.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alerts.events import RuleEvent, Transition
from alerts.news2 import News2Rule, Parameter
from alerts.rules import Channel, Profile, RuleId, Tier, WindowRule, window_rules
from alerts.spot import TemperatureReading, TemperatureRules, axillary_equivalent_c
from alerts.stream import RuleState, RuleStream
from alerts.threshold import BoolArray, ChannelCounts, FloatArray, RuleTrace, evaluate, event_stats

__all__ = ["PatientDetector", "RuleEvent", "Transition"]

NEWS2_EVERY_S = 60
ORAL_FROM_AXILLARY_C = 0.4  # NEWS2 bands are for oral/tympanic readings
_NEWS2_CHANNELS = {
    Channel.SPO2: Parameter.SPO2,
    Channel.PULSE: Parameter.PULSE,
    Channel.RESP: Parameter.RESP_RATE,
}
_NEWS2_PARAMETERS = tuple(_NEWS2_CHANNELS.values())
# Calls with at most this many new seconds (a gap included) are decided second by second with
# carried window counts (`stream.py`); longer ones by the vectorised rules over the whole span.
# Both give the same events; this is only where the per-second path stops being the cheaper.
SECOND_BY_SECOND_MAX_S = 16
_NO_SAMPLE = {channel: math.nan for channel in Channel}


@dataclass(slots=True)
class PatientDetector:
    """The continuous rules for one patient over 1 Hz channels (NaN = no sample)."""

    tier: Tier
    profile: Profile
    rules: tuple[WindowRule, ...] = ()
    next_slot_s: int | None = None
    rule_states: dict[RuleId, RuleState] = field(default_factory=dict)
    temperature: TemperatureRules | None = None
    news2: News2Rule | None = None
    _tails: dict[Channel, FloatArray] = field(default_factory=dict, init=False, repr=False)
    _stream: RuleStream | None = field(default=None, init=False, repr=False, compare=False)

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
        offsets = np.arange((-start_s) % NEWS2_EVERY_S, new, NEWS2_EVERY_S)
        if not len(offsets):
            return []
        values = np.column_stack(
            [history[channel][len(history[channel]) - new + offsets] for channel in _NEWS2_CHANNELS]
        )
        return self.news2.step_table(start_s + offsets, _NEWS2_PARAMETERS, values)

    @property
    def tail_len(self) -> int:
        return _tail_len(self.rules)

    @property
    def tails(self) -> dict[Channel, FloatArray]:
        """The last `tail_len` samples of every channel seen so far (the carried history)."""
        if self._stream is not None:
            return self._stream.tails(self.tail_len)
        return self._tails

    @tails.setter
    def tails(self, tails: Mapping[Channel, FloatArray]) -> None:
        self._tails = dict(tails)
        self._stream = None

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
        gap = 0 if self.next_slot_s is None else start_s - self.next_slot_s
        samples = {channel: _new_samples(channels, channel, skip, length) for channel in Channel}
        if gap + new <= SECOND_BY_SECOND_MAX_S:
            events = self._step_seconds(start_s, gap, samples)
        else:
            events = self._step_vectorised(start_s, gap, samples)
        events.sort(key=lambda e: (e.ts_s, e.rule))
        self.next_slot_s = start_s + new
        return events

    def _step_vectorised(
        self, start_s: int, gap: int, samples: Mapping[Channel, FloatArray]
    ) -> list[RuleEvent]:
        """Every rule over all the new samples at once, on the history with its tail."""
        new = len(samples[Channel.SPO2])
        tails, tail_len = self.tails, self.tail_len
        history = {
            channel: np.concatenate((_padded(tails.get(channel), tail_len, gap), values))
            for channel, values in samples.items()
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
        self._tails = {ch: values[len(values) - tail_len :] for ch, values in history.items()}
        self._stream = None
        return events

    def _step_seconds(
        self, start_s: int, gap: int, samples: Mapping[Channel, FloatArray]
    ) -> list[RuleEvent]:
        """The same decisions second by second, with the window counts carried."""
        assert self.news2 is not None
        stream = self._stream
        if stream is None or stream.rules is not self.rules:
            tails = {ch: _padded(self.tails.get(ch), self.tail_len, 0) for ch in Channel}
            stream = self._stream = RuleStream(self.rules, tails, self.rule_states, self.tail_len)
        for _ in range(gap):
            stream.push(_NO_SAMPLE)
        columns = {channel: values.tolist() for channel, values in samples.items()}
        events: list[RuleEvent] = []
        for i in range(len(columns[Channel.SPO2])):
            second = {channel: values[i] for channel, values in columns.items()}
            stream.push(second)
            events += stream.step(start_s + i)
            if (start_s + i) % NEWS2_EVERY_S == 0:
                observations = [
                    (float(start_s + i), parameter, second[channel])
                    for channel, parameter in _NEWS2_CHANNELS.items()
                    if not math.isnan(second[channel])
                ]
                events += self.news2.step(observations)
        return events

    def _step_rule(
        self,
        rule: WindowRule,
        counts: ChannelCounts,
        new: int,
        start_s: int,
        suppressed: BoolArray | None,
    ) -> tuple[list[RuleEvent], BoolArray]:
        state = self.rule_states.setdefault(rule.rule, RuleState())
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
        state.satseconds = trace.satseconds_at(new - 1)
        return events, trace.active

    def to_json(self, with_tails: bool = True) -> dict[str, Any]:
        """The carried state, for the store (written in the same transaction as the data).

        Without `with_tails` it is a few hundred bytes: the recent samples can be rebuilt from
        the stored readings with `restore_tails` (the daemon does so, to spare the SD card).
        """
        tails = {}
        if with_tails:
            tails = {
                channel.value: [None if np.isnan(v) else float(v) for v in values]
                for channel, values in self.tails.items()
            }
        return {
            "tier": self.tier.value,
            "profile": self.profile.value,
            "next_slot_s": self.next_slot_s,
            "tails": tails,
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
        self._stream = None
        for channel in Channel:
            values = np.full(end_s - first_s, np.nan)
            source = channels.get(channel)
            if source is not None:
                for i in range(len(source)):
                    second = start_s + i
                    if first_s <= second < end_s:
                        values[second - first_s] = source[i]
            self._tails[channel] = values

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
                detector._tails[Channel(name)] = tail[len(tail) - detector.tail_len :]
        if data.get("tier") == tier.value and data.get("profile") == profile.value:
            for rule, saved in data.get("rules", {}).items():
                if rule in RuleId.__members__.values():
                    active, clear_run_s, *rest = saved
                    detector.rule_states[RuleId(rule)] = RuleState(
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


def _padded(tail: FloatArray | None, length: int, gap: int) -> FloatArray:
    """The last `length` samples of `tail` followed by `gap` missing ones, NaN-padded."""
    known = np.concatenate((np.full(length, np.nan), _EMPTY if tail is None else tail))
    return np.concatenate((known, np.full(gap, np.nan)))[gap + len(known) - length :]


_EMPTY = np.empty(0)


def _stats(rule: WindowRule, value: float, trace: RuleTrace, index: int) -> dict[str, float | str]:
    """What an alert records about a state change found by the vectorised rules."""
    trigger = trace.trigger_at(index) if trace.active[index] else None
    return event_stats(
        rule,
        value,
        trace.statistic_at(rule.statistic, index),
        trace.satseconds_at(index),
        trigger,
    )
