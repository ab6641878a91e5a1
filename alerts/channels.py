"""From per-second readings to the detector's 1 Hz channels (the quality gate of
CLINICAL_RULES.md section 1.9): invalid and flagged values become NaN, the probe-off and
low-confidence masks say why.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from alerts.rules import Channel
from alerts.threshold import FloatArray
from devices.protocols.reading import INVALIDATING, Metric, Quality, is_plausible

LOW_CONFIDENCE = Quality.LOW_PERFUSION | Quality.MOTION | Quality.LOW_SIGNAL
LOW_PI_PERCENT = 0.5  # Masimo shows PI in red below 0.5 (CLINICAL_RULES.md 1.7)
_VALUE_CHANNELS = {
    Metric.SPO2: Channel.SPO2,
    Metric.PULSE: Channel.PULSE,
    Metric.RESP_RATE: Channel.RESP,
}
_OXIMETER_METRICS = (Metric.SPO2, Metric.PULSE)

Sample = tuple[float, str, float | None, int]  # (UTC epoch s, metric, value or None, quality)


@dataclass(slots=True)
class _Second:
    values: dict[Channel, list[float]] = field(default_factory=lambda: defaultdict(list))
    oximeter_seen: bool = False
    probe_off: bool = False
    low_conf: bool = False


def gate(metric: Metric, value: float | None, quality: int) -> float:
    """The value the rules may use: NaN for a sentinel, an implausible value, or a value the
    device flagged as unusable (finger out, searching, sensor fault)."""
    if value is None or quality & INVALIDATING or not is_plausible(metric, value):
        return math.nan
    return value


def build_channels(samples: Iterable[Sample]) -> tuple[int, dict[Channel, FloatArray]] | None:
    """The 1 Hz channels from the first to the last second of `samples` (None if empty).

    Several values in one second (several devices) are reduced to their median.
    """
    seconds: dict[int, _Second] = defaultdict(_Second)
    for ts_s, metric_name, value, quality in samples:
        metric = Metric(metric_name)
        second = seconds[math.floor(ts_s)]
        usable = gate(metric, value, quality)
        if metric in _OXIMETER_METRICS:
            second.oximeter_seen = True
            if math.isnan(usable):
                second.probe_off |= bool(quality & INVALIDATING)
            else:
                second.low_conf |= bool(quality & LOW_CONFIDENCE)
        if metric is Metric.PI and not math.isnan(usable) and usable < LOW_PI_PERCENT:
            second.low_conf = True
        channel = _VALUE_CHANNELS.get(metric)
        if channel is not None and not math.isnan(usable):
            second.values[channel].append(usable)
    if not seconds:
        return None
    start_s, end_s = min(seconds), max(seconds)
    channels = {channel: np.full(end_s - start_s + 1, np.nan) for channel in Channel}
    for second_s, second in seconds.items():
        i = second_s - start_s
        for channel, values in second.values.items():
            channels[channel][i] = float(np.median(values))
        if second.oximeter_seen:
            has_value = bool(second.values.get(Channel.SPO2) or second.values.get(Channel.PULSE))
            channels[Channel.PROBE_OFF][i] = 1.0 if second.probe_off and not has_value else 0.0
            if has_value:
                channels[Channel.LOW_CONF][i] = 1.0 if second.low_conf else 0.0
    return start_s, channels
