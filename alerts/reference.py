"""A plain per-sample implementation of the window rules: slow, obviously correct, and the
oracle the vectorised engine is tested against. Not used by the daemon.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence

from alerts.events import RuleEvent, Transition
from alerts.rules import (
    CROSSING_WINDOW_S,
    LOW_QUALITY_FRACTION,
    LOW_QUALITY_WINDOW_S,
    Band,
    Channel,
    RuleId,
    WindowRule,
)


def reference_table_events(
    rules: Sequence[WindowRule], start_s: int, channels: Mapping[Channel, Sequence[float]]
) -> list[RuleEvent]:
    """Events of a whole rule table, with each rule's suppression by the rules before it."""
    active: dict[RuleId, list[bool]] = {}
    events: list[RuleEvent] = []
    for rule in rules:
        suppressors = [active[r] for r in rule.suppressed_by if r in active]
        suppressed = [any(flags) for flags in zip(*suppressors, strict=True)] or None
        active[rule.rule] = []
        events += reference_events(rule, start_s, channels, suppressed, active[rule.rule])
    return sorted(events, key=lambda e: (e.ts_s, e.rule))


def reference_events(
    rule: WindowRule,
    start_s: int,
    channels: Mapping[Channel, Sequence[float]],
    suppressed: Sequence[bool] | None = None,
    active_out: list[bool] | None = None,
) -> list[RuleEvent]:
    """Events of `rule` over `channels` (one sample per second from start_s; NaN = missing).
    `suppressed[t]`: a dominating rule is active, no onset; `active_out` receives the state."""
    length = max(len(values) for values in channels.values())
    low_conf = list(channels.get(Channel.LOW_CONF, [math.nan] * length))
    series = list(channels.get(rule.channel, [math.nan] * length))
    if rule.exclude_low_conf:
        series = [math.nan if c == 1.0 else v for v, c in zip(series, low_conf, strict=True)]
    events = []
    active = False
    clear_run = 0
    satseconds = 0.0
    for t in range(length):
        degraded = False
        stat = _statistic(rule, series, t, rule.window_s)
        if rule.low_quality_factor > 1:
            fraction = _window_value(low_conf, t, LOW_QUALITY_WINDOW_S, "fraction", 0.0)
            degraded = not math.isnan(fraction) and fraction > LOW_QUALITY_FRACTION
            if degraded:
                stat = _statistic(rule, series, t, rule.window_s * rule.low_quality_factor)
        onset = any(_in_band(stat, band) for band in rule.alarm)
        limit = rule.alarm[0].high
        if rule.satseconds is not None:
            value = series[t]
            deficit = 0.0 if math.isnan(value) else max(0.0, limit - value)
            satseconds = 0.0 if deficit == 0 else satseconds + deficit
            factor = rule.low_quality_factor if degraded else 1
            onset = onset or satseconds >= rule.satseconds * factor
        if rule.crossings_in_60s is not None:
            drops = sum(
                1
                for j in range(t - CROSSING_WINDOW_S + 1, t + 1)
                if j >= 1 and series[j - 1] > limit and series[j] <= limit
            )
            onset = onset or drops >= rule.crossings_in_60s
        if suppressed is not None and suppressed[t]:
            onset = False
        clear_stat = _statistic(rule, series, t, rule.effective_clear_window_s)
        clear_run = clear_run + 1 if _in_band(clear_stat, rule.clear) else 0
        if onset:
            if not active:
                events.append(_event(rule, Transition.ONSET, start_s + t))
            active = True
        elif active and clear_run >= rule.clear_s:
            active = False
            events.append(_event(rule, Transition.RESOLVED, start_s + t))
        if active_out is not None:
            active_out.append(active)
    return events


def _statistic(rule: WindowRule, series: list[float], t: int, window_s: int) -> float:
    return _window_value(series, t, window_s, rule.statistic, rule.min_valid_fraction)


def _window_value(
    series: Sequence[float], t: int, window_s: int, statistic: str, min_valid_fraction: float
) -> float:
    window = [series[j] if j >= 0 else math.nan for j in range(t - window_s + 1, t + 1)]
    valid = [v for v in window if not math.isnan(v)]
    if not valid or len(valid) < min_valid_fraction * window_s:
        return math.nan
    if statistic == "fraction":
        return sum(valid) / len(valid)
    return float(statistics.median_low(valid))


def _in_band(value: float, band: Band) -> bool:
    if math.isnan(value):
        return False
    above = value >= band.low if band.low_inclusive else value > band.low
    return above and value <= band.high


def _event(rule: WindowRule, transition: Transition, ts_s: int) -> RuleEvent:
    return RuleEvent(rule.rule, transition, ts_s, rule.priority, rule.latching, {})
