"""Q5, device disagreement (CLINICAL_RULES.md 1.10): two oximeters on one patient (a finger
clip and a wearable, say) whose SpO2 differs by more than 4 points for 10 minutes, or whose
minute pulse differs by more than 15 bpm, prompt the family to re-seat the clip and take a
spot reading. LOW in every tier; clears when the SpO2 agrees within 2 points for 10 minutes.

Pure. Input: each device's SpO2 and pulse over the last 10 minutes on a 1 Hz grid (NaN where
it had no usable value: the quality gate of alerts/channels.py, low-confidence values left out,
since motion and low perfusion make two devices disagree for no clinical reason). The window
is judged minute by minute: a minute counts when both devices have a value in at least 80 % of
its seconds, and its difference is that of the two devices' medians over those seconds.
The condition needs all 10 minutes to count; otherwise the window is indeterminate and
neither raises nor clears (a clip taken off for a while is Q1's business, not Q5's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from alerts.events import RuleEvent, Transition
from alerts.rules import Priority, RuleId
from alerts.threshold import FloatArray

WINDOW_S = 600
MINUTE_S = 60
MINUTES = WINDOW_S // MINUTE_S
SPO2_APART_POINTS = 4.0  # onset: the minute medians differ by more than this ...
PULSE_APART_BPM = 15.0  # ... or the minute pulse by more than this, in every minute
SPO2_AGREE_POINTS = 2.0  # clear: within less than this in every minute
MIN_PAIRED_FRACTION = 0.8  # of a minute's seconds with a value from both devices


class Agreement(StrEnum):
    APART = "apart"  # the onset condition holds
    AGREE = "agree"  # the clear condition holds
    BETWEEN = "between"  # neither (hysteresis band)
    INDETERMINATE = "indeterminate"  # fewer than two devices, or a minute without pairs


@dataclass(frozen=True, slots=True)
class DeviceSeries:
    """One device's last `WINDOW_S` seconds (oldest first), NaN where it had no usable value."""

    spo2_percent: FloatArray
    pulse_bpm: FloatArray


@dataclass(frozen=True, slots=True)
class Comparison:
    agreement: Agreement
    devices: tuple[str, ...]  # the two compared (the two with the most SpO2 values)
    spo2_difference_points: tuple[float, ...]  # per minute, NaN where it did not count
    pulse_difference_bpm: tuple[float, ...]


def minute_differences(a: FloatArray, b: FloatArray) -> FloatArray:
    """Per minute of the window, |median(a) - median(b)| over the seconds where both have a
    value; NaN for a minute where fewer than MIN_PAIRED_FRACTION of the seconds pair up."""
    a_min = np.asarray(a, dtype=np.float64)[-WINDOW_S:].reshape(MINUTES, MINUTE_S)
    b_min = np.asarray(b, dtype=np.float64)[-WINDOW_S:].reshape(MINUTES, MINUTE_S)
    paired = ~np.isnan(a_min) & ~np.isnan(b_min)
    out = np.full(MINUTES, np.nan)
    for minute in range(MINUTES):
        mask = paired[minute]
        if mask.sum() >= MIN_PAIRED_FRACTION * MINUTE_S:
            out[minute] = abs(np.median(a_min[minute][mask]) - np.median(b_min[minute][mask]))
    return out


def compare(series: Mapping[str, DeviceSeries]) -> Comparison:
    """Whether the patient's two oximeters (of those given, the two with the most SpO2
    values) agree over the window."""
    ranked = sorted(
        series,
        key=lambda device: (-int(np.count_nonzero(~np.isnan(series[device].spo2_percent))), device),
    )
    if len(ranked) < 2:
        return Comparison(Agreement.INDETERMINATE, tuple(ranked), (), ())
    first, second = series[ranked[0]], series[ranked[1]]
    spo2 = minute_differences(first.spo2_percent, second.spo2_percent)
    pulse = minute_differences(first.pulse_bpm, second.pulse_bpm)
    spo2_counts = not np.isnan(spo2).any()
    pulse_counts = not np.isnan(pulse).any()
    spo2_apart = spo2_counts and bool((spo2 > SPO2_APART_POINTS).all())
    pulse_apart = pulse_counts and bool((pulse > PULSE_APART_BPM).all())
    if spo2_apart or pulse_apart:
        agreement = Agreement.APART
    elif not spo2_counts:
        agreement = Agreement.INDETERMINATE
    elif bool((spo2 < SPO2_AGREE_POINTS).all()):
        agreement = Agreement.AGREE
    else:
        agreement = Agreement.BETWEEN
    return Comparison(
        agreement,
        (ranked[0], ranked[1]),
        tuple(float(x) for x in spo2),
        tuple(float(x) for x in pulse),
    )


def q5_event(comparison: Comparison, live: Priority | None, ts_s: int) -> RuleEvent | None:
    """Raises when the devices are apart and no Q5 alert is live; clears a live one when
    they agree. Indeterminate and in-between windows do neither."""
    if comparison.agreement is Agreement.APART and live is None:
        transition, priority = Transition.ONSET, Priority.LOW
    elif comparison.agreement is Agreement.AGREE and live is not None:
        transition, priority = Transition.RESOLVED, live
    else:
        return None
    stats: dict[str, float | str] = {
        "devices": " / ".join(comparison.devices),
        "agreement": comparison.agreement.value,
        "window_s": WINDOW_S,
    }
    for key, values in (
        ("spo2_difference_points", comparison.spo2_difference_points),
        ("pulse_difference_bpm", comparison.pulse_difference_bpm),
    ):
        finite = [value for value in values if not np.isnan(value)]
        if finite:
            stats[f"min_{key}"] = round(min(finite), 1)
            stats[f"max_{key}"] = round(max(finite), 1)
    return RuleEvent(RuleId.Q5, transition, ts_s, priority, False, stats)
