"""A plain per-sample implementation of the threshold rules: slow, obviously correct, and the
oracle the vectorised engine is tested against. Not used by the daemon.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from alerts.engine import RuleEvent, Transition
from alerts.rules import ThresholdRule


def reference_events(
    rule: ThresholdRule, start_s: int, samples: Sequence[float]
) -> list[RuleEvent]:
    """Events of `rule` over `samples` (one per second from start_s; NaN = missing)."""
    events = []
    active = False
    clear_run = 0
    for i in range(len(samples)):
        window = [samples[j] if j >= 0 else math.nan for j in range(i - rule.window_s + 1, i + 1)]
        valid = [v for v in window if not math.isnan(v)]
        determinate = len(valid) / rule.window_s >= rule.min_valid_fraction
        median = statistics.median(valid) if determinate else math.nan
        clear_run = clear_run + 1 if determinate and median >= rule.clear_level else 0
        if determinate and median <= rule.limit and not active:
            active = True
            events.append(_event(rule, Transition.ONSET, start_s + i))
        elif active and clear_run >= rule.clear_s:
            active = False
            events.append(_event(rule, Transition.RESOLVED, start_s + i))
    return events


def _event(rule: ThresholdRule, transition: Transition, ts_s: int) -> RuleEvent:
    return RuleEvent(rule.rule, transition, ts_s, rule.priority, rule.latching, {})
