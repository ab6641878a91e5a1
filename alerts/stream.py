"""The window rules stepped one second at a time, for the few new seconds of each call of a
running detector (the daemon's 1-second batches).

Exactly the decisions of the vectorised `threshold.evaluate`, with the window counts carried
from second to second instead of recomputed over the whole history: a count moves by the
sample that enters and the one that leaves, and the per-call fixed cost of dozens of small
numpy operations disappears. Everything here is derived from the detector's tails and rule
states and can be rebuilt from them at any time (nothing of it is stored).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from alerts.events import RuleEvent, Transition
from alerts.rules import (
    CROSSING_WINDOW_S,
    LOW_QUALITY_FRACTION,
    LOW_QUALITY_WINDOW_S,
    Band,
    Channel,
    RuleId,
    Statistic,
    WindowRule,
)
from alerts.threshold import FloatArray, band_predicates, event_stats, window_statistic

SeriesKey = tuple[Channel, bool]  # a channel, and whether its low-confidence samples are left out
_QUALITY = (Band(low=LOW_QUALITY_FRACTION, high=1.0),)
TRIM_EVERY_S = 64  # the kept seconds are trimmed back to what the windows need this often


@dataclass(slots=True)
class RuleState:
    """What a rule carries from one call to the next (stored with the detector)."""

    active: bool = False
    clear_run_s: int = 0
    satseconds: float = 0.0


def _predicate(op: str, value: float) -> Callable[[float], bool]:
    """The same predicates as `threshold._indicator`, on one float (NaN satisfies none)."""
    if op == "valid":
        return lambda x: not math.isnan(x)
    if op == "<=":
        return lambda x: x <= value
    if op == "<":
        return lambda x: x < value
    if op == "==":
        return lambda x: x == value
    raise ValueError(f"unknown predicate {op!r}")


class _WindowCount:
    """How many of the last `window_s` samples of a series satisfy a predicate."""

    __slots__ = ("holds", "pending", "total", "values", "window_s")

    def __init__(self, values: array[float], holds: Callable[[float], bool], window_s: int) -> None:
        self.values = values
        self.holds = holds
        self.window_s = window_s
        self.total = 0
        # The count over the last window_s - 1 samples: the window of the next sample less
        # the sample still to come.
        self.pending = sum(map(holds, values[max(0, len(values) - (window_s - 1)) :]))

    def push(self) -> None:
        """Take in the sample just appended to `values`."""
        values = self.values
        self.total = self.pending + self.holds(values[-1])
        self.pending = self.total - self.holds(values[-self.window_s])


class _Crossings:
    """Drops from above `limit` to at or below it in the last 60 s (sample pairs)."""

    __slots__ = ("limit", "pending", "total", "values")

    def __init__(self, values: array[float], limit: float) -> None:
        self.values = values
        self.limit = limit
        self.total = 0
        last = len(values) - 1
        self.pending = sum(self._drop(i) for i in range(last - CROSSING_WINDOW_S + 2, last + 1))

    def _drop(self, i: int) -> bool:
        """A drop from sample i-1 to sample i."""
        return self.values[i - 1] > self.limit and self.values[i] <= self.limit

    def push(self) -> None:
        last = len(self.values) - 1
        self.total = self.pending + self._drop(last)
        self.pending = self.total - self._drop(last - CROSSING_WINDOW_S + 1)


class _WindowTest:
    """A rule's statistic over one window size inside any of its bands (`Windows.in_bands`)."""

    __slots__ = ("bands", "median_counts", "need", "ones", "statistic", "valid", "values")

    def __init__(
        self,
        stream: RuleStream,
        series: SeriesKey,
        window_s: int,
        min_valid: float,
        statistic: Statistic,
        bands: tuple[Band, ...],
    ) -> None:
        self.values = stream.series(series)
        self.statistic = statistic
        self.bands = bands
        self.valid = stream.count(series, "valid", 0.0, window_s)
        self.need = max(1.0, min_valid * window_s)
        self.ones = stream.count(series, "==", 1.0, window_s) if statistic == "fraction" else None
        self.median_counts = [
            tuple(None if p is None else stream.count(series, *p, window_s) for p in predicates)
            for predicates in map(band_predicates, bands)
        ]

    @property
    def window_s(self) -> int:
        return self.valid.window_s

    def determinate(self) -> bool:
        return self.valid.total >= self.need

    def holds(self) -> bool:
        valid = self.valid.total
        if valid < self.need:
            return False
        if self.ones is not None:
            fraction = self.ones.total / valid
            return any(_in_band(fraction, band) for band in self.bands)
        half = (valid + 1) // 2
        return any(
            (high is None or high.total >= half) and (low is None or low.total < half)
            for high, low in self.median_counts
        )

    def value(self) -> float:
        """The statistic of the current window (for an alert's record), NaN if indeterminate."""
        if not self.determinate():
            return math.nan
        window = np.array(self.values[len(self.values) - self.window_s :], dtype=np.float64)
        return window_statistic(window, self.statistic)


def _in_band(value: float, band: Band) -> bool:
    above = value >= band.low if band.low_inclusive else value > band.low
    return above and value <= band.high


class _StreamRule:
    """One rule's per-second decision (`threshold.evaluate` for one sample)."""

    def __init__(self, stream: RuleStream, rule: WindowRule) -> None:
        self.rule = rule
        key = (rule.channel, rule.exclude_low_conf)
        self.values = stream.series(key)
        self.raw = stream.series((rule.channel, False))

        def test(window_s: int, bands: tuple[Band, ...]) -> _WindowTest:
            min_valid = rule.min_valid_fraction
            return _WindowTest(stream, key, window_s, min_valid, rule.statistic, bands)

        self.short = test(rule.window_s, rule.alarm)
        self.clear = test(rule.effective_clear_window_s, (rule.clear,))
        self.long = self.quality = None
        if rule.low_quality_factor > 1:
            self.long = test(rule.window_s * rule.low_quality_factor, rule.alarm)
            self.quality = _WindowTest(
                stream, (Channel.LOW_CONF, False), LOW_QUALITY_WINDOW_S, 0.0, "fraction", _QUALITY
            )
        self.limit = rule.alarm[0].high
        self.crossings = None
        if rule.crossings_in_60s is not None:
            self.crossings = stream.crossings(key, self.limit)

    def step(self, ts_s: int, suppressed: bool, state: RuleState) -> RuleEvent | None:
        """Decide the newest sample, updating `state`; the event if the rule changed there."""
        rule = self.rule
        windows = self.short
        if self.long is not None and self.quality is not None and self.quality.holds():
            windows = self.long  # low-quality data: the doubled window and SatSeconds
        trigger = 1 if windows.holds() else 0
        if rule.satseconds is None:
            state.satseconds = 0.0
        else:
            deficit = self.limit - self.values[-1]
            state.satseconds = deficit + state.satseconds if deficit > 0 else 0.0
            factor = rule.low_quality_factor if windows is self.long else 1
            if not trigger and state.satseconds >= rule.satseconds * factor:
                trigger = 2
        if not trigger and self.crossings is not None and rule.crossings_in_60s is not None:
            trigger = 3 if self.crossings.total >= rule.crossings_in_60s else 0
        state.clear_run_s = min(state.clear_run_s + 1, rule.clear_s) if self.clear.holds() else 0
        was_active = state.active
        if trigger and not suppressed:
            state.active = True
        elif state.clear_run_s >= rule.clear_s:
            state.active = False
        if state.active == was_active:
            return None
        trigger_or_none = trigger if state.active else None
        stats = event_stats(rule, self.raw[-1], windows.value(), state.satseconds, trigger_or_none)
        transition = Transition.ONSET if state.active else Transition.RESOLVED
        return RuleEvent(rule.rule, transition, ts_s, rule.priority, rule.latching, stats)


class RuleStream:
    """The window rules of one detector, stepped one second at a time from its tails.

    `tails` holds the last `tail_len` samples of every channel (NaN-padded); `states` is the
    detector's dict of rule states, updated in place. Each new second is `push`ed (it enters every
    window), then `step` decides it; a second that is only pushed is a gap: it moves the
    windows but is not decided (as in the vectorised path).
    """

    def __init__(
        self,
        rules: tuple[WindowRule, ...],
        tails: Mapping[Channel, FloatArray],
        states: dict[RuleId, RuleState],
        tail_len: int,
    ) -> None:
        self.rules = rules
        self._keep = tail_len + 1  # samples the counts look back on, the newest included
        # Doubles in arrays, not lists of float objects: a quarter of the memory per second kept.
        self._raw = {
            channel: array("d", np.ascontiguousarray(tails[channel], dtype=np.float64).tobytes())
            for channel in Channel
        }
        self._series: dict[SeriesKey, array[float]] = {
            (channel, False): values for channel, values in self._raw.items()
        }
        self._counts: dict[tuple[SeriesKey, str, float, int], _WindowCount] = {}
        self._crossings: dict[tuple[SeriesKey, float], _Crossings] = {}
        self._movers: list[_WindowCount | _Crossings] = []
        self._states = states
        self._rules = [_StreamRule(self, rule) for rule in rules]

    def series(self, key: SeriesKey) -> array[float]:
        """The samples of a channel (with its low-confidence samples as NaN if excluded)."""
        found = self._series.get(key)
        if found is None:
            pairs = zip(self._raw[key[0]], self._raw[Channel.LOW_CONF], strict=True)
            found = array("d", (math.nan if low_conf == 1.0 else v for v, low_conf in pairs))
            self._series[key] = found
        return found

    def count(self, key: SeriesKey, op: str, value: float, window_s: int) -> _WindowCount:
        found = self._counts.get((key, op, value, window_s))
        if found is None:
            found = _WindowCount(self.series(key), _predicate(op, value), window_s)
            self._counts[key, op, value, window_s] = found
            self._movers.append(found)
        return found

    def crossings(self, key: SeriesKey, limit: float) -> _Crossings:
        found = self._crossings.get((key, limit))
        if found is None:
            found = self._crossings[key, limit] = _Crossings(self.series(key), limit)
            self._movers.append(found)
        return found

    def tails(self, tail_len: int) -> dict[Channel, FloatArray]:
        return {
            channel: np.array(values[max(0, len(values) - tail_len) :], dtype=np.float64)
            for channel, values in self._raw.items()
        }

    def push(self, sample: Mapping[Channel, float]) -> None:
        """One more second of every channel (NaN = no sample) enters every window."""
        low_conf = sample[Channel.LOW_CONF] == 1.0
        for (channel, excluded), values in self._series.items():
            values.append(math.nan if excluded and low_conf else sample[channel])
            if len(values) > self._keep + TRIM_EVERY_S:
                del values[: len(values) - self._keep]  # in place: the counts hold the array
        for mover in self._movers:
            mover.push()

    def step(self, ts_s: int) -> list[RuleEvent]:
        """Decide every rule at the newest second (`ts_s`), in table order (for suppression)."""
        active: dict[RuleId, bool] = {}
        events = []
        for stream_rule in self._rules:
            rule = stream_rule.rule
            state = self._states.setdefault(rule.rule, RuleState())
            suppressed = any(active.get(r, False) for r in rule.suppressed_by)
            event = stream_rule.step(ts_s, suppressed, state)
            if event is not None:
                events.append(event)
            active[rule.rule] = state.active
        return events
