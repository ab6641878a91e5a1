"""Q5 device disagreement: two oximeters on one patient, minute by minute over 10 minutes,
against a plain reference and on a real recording of four clinical oximeters."""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from alerts.disagreement import (
    MINUTE_S,
    WINDOW_S,
    Agreement,
    DeviceSeries,
    compare,
    minute_differences,
    q5_event,
)
from alerts.events import Transition
from alerts.rules import Priority, RuleId

# Induced hypoxaemia, one subject, 1 Hz, five oximeter columns of which four recorded
# (ubicomplab/oximetry-phone-cam-data data/gt/100001.csv, MIT; see tests/data/ubicomp).
UBICOMP = Path(__file__).resolve().parents[1] / "data" / "ubicomp" / "100001.csv"


def steady(spo2: float, pulse: float = 70.0) -> DeviceSeries:
    return DeviceSeries(np.full(WINDOW_S, spo2), np.full(WINDOW_S, pulse))


def test_devices_that_agree_clear_a_live_alert_and_raise_nothing() -> None:
    comparison = compare({"clip": steady(96.0), "ring": steady(97.0)})
    assert comparison.agreement is Agreement.AGREE
    assert q5_event(comparison, None, 100) is None
    cleared = q5_event(comparison, Priority.LOW, 100)
    assert cleared is not None and cleared.transition is Transition.RESOLVED


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (steady(97.0), steady(92.0), Agreement.APART),  # 5 points apart
        (steady(97.0), steady(93.0), Agreement.BETWEEN),  # 4 points: not more than 4
        (steady(97.0), steady(95.0), Agreement.BETWEEN),  # 2 points: not less than 2
        (steady(97.0, 70.0), steady(97.0, 90.0), Agreement.APART),  # pulse 20 bpm apart
        (steady(97.0, 70.0), steady(97.0, 85.0), Agreement.AGREE),  # pulse 15: not more
    ],
)
def test_the_onset_and_clear_limits(a: DeviceSeries, b: DeviceSeries, expected: Agreement) -> None:
    assert compare({"clip": a, "ring": b}).agreement is expected


def test_an_apart_window_raises_a_low_alert_with_what_it_saw() -> None:
    comparison = compare({"clip": steady(97.0), "ring": steady(91.0)})
    event = q5_event(comparison, None, 1234)
    assert event is not None
    assert (event.rule, event.transition, event.priority) == (
        RuleId.Q5,
        Transition.ONSET,
        Priority.LOW,
    )
    assert event.latching is False
    assert event.stats["devices"] == "clip / ring"
    assert event.stats["min_spo2_difference_points"] == 6.0
    assert q5_event(comparison, Priority.LOW, 1234) is None  # already live


def test_one_device_or_a_minute_without_pairs_is_indeterminate() -> None:
    assert compare({"clip": steady(97.0)}).agreement is Agreement.INDETERMINATE
    ring = steady(90.0)
    ring.spo2_percent[:13] = np.nan  # 47 of the first minute's 60 seconds: under 80 %
    ring.pulse_bpm[:13] = np.nan
    comparison = compare({"clip": steady(97.0), "ring": ring})
    assert comparison.agreement is Agreement.INDETERMINATE
    assert math.isnan(comparison.spo2_difference_points[0])
    assert q5_event(comparison, None, 0) is None
    assert q5_event(comparison, Priority.LOW, 0) is None  # nor does it clear


def test_of_three_devices_the_two_with_most_values_are_compared() -> None:
    sparse = steady(80.0)
    sparse.spo2_percent[::2] = np.nan
    comparison = compare({"a": steady(97.0), "b": steady(96.5), "sparse": sparse})
    assert comparison.devices == ("a", "b")
    assert comparison.agreement is Agreement.AGREE


def reference_minute_differences(a: np.ndarray, b: np.ndarray) -> list[float]:
    """Second by second, in plain Python."""
    out = []
    for minute in range(WINDOW_S // MINUTE_S):
        pairs = [
            (a[i], b[i])
            for i in range(minute * MINUTE_S, (minute + 1) * MINUTE_S)
            if not math.isnan(a[i]) and not math.isnan(b[i])
        ]
        if len(pairs) < 0.8 * MINUTE_S:
            out.append(math.nan)
        else:
            out.append(
                abs(statistics.median(x for x, _ in pairs) - statistics.median(y for _, y in pairs))
            )
    return out


series = arrays(
    np.float64,
    WINDOW_S,
    elements=st.one_of(st.just(math.nan), st.floats(70, 100, allow_nan=False)),
)


@settings(max_examples=60, deadline=None)
@given(a=series, b=series)
def test_minute_differences_match_the_reference(a: np.ndarray, b: np.ndarray) -> None:
    got = minute_differences(a, b)
    expected = reference_minute_differences(a, b)
    assert [math.isnan(x) for x in got] == [math.isnan(x) for x in expected]
    assert np.allclose(got[~np.isnan(got)], [x for x in expected if not math.isnan(x)])


@settings(max_examples=60, deadline=None)
@given(base=st.floats(80, 99), gap=st.floats(0, 10), noise=st.integers(0, 2**32 - 1))
def test_the_verdict_is_symmetric_and_a_wider_gap_never_agrees_more(
    base: float, gap: float, noise: int
) -> None:
    jitter = np.random.default_rng(noise).normal(0, 0.5, WINDOW_S)
    a = DeviceSeries(base + jitter, 70 + jitter)
    b = DeviceSeries(base - gap + jitter, 70 + jitter)
    wider = DeviceSeries(base - gap - 3 + jitter, 70 + jitter)
    verdict = compare({"a": a, "b": b}).agreement
    assert compare({"x": b, "y": a}).agreement is verdict
    order = [Agreement.AGREE, Agreement.BETWEEN, Agreement.APART]
    assert order.index(compare({"a": a, "b": wider}).agreement) >= order.index(verdict)


def read_oximeters() -> dict[int, DeviceSeries]:
    with UBICOMP.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))

    def column(name: str) -> np.ndarray:
        values = []
        for row in rows:
            try:
                value = float(row[name])
            except ValueError:
                value = math.nan
            values.append(value if value > 0 else math.nan)  # 0: the device had nothing
        return np.array(values)

    return {k: DeviceSeries(column(f"SpO2 {k}"), column(f"Pulse {k}")) for k in (1, 2, 4, 5)}


def test_four_clinical_oximeters_through_a_real_desaturation_never_disagree_by_q5() -> None:
    devices = read_oximeters()
    assert np.nanmin(devices[1].spo2_percent) <= 70  # the recording does reach deep hypoxaemia
    windows = 0
    for end in range(WINDOW_S, len(devices[1].spo2_percent) + 1, MINUTE_S):
        for a, b in [(1, 2), (1, 4), (1, 5), (2, 4), (2, 5), (4, 5)]:
            window = {
                f"ox{k}": DeviceSeries(
                    devices[k].spo2_percent[end - WINDOW_S : end],
                    devices[k].pulse_bpm[end - WINDOW_S : end],
                )
                for k in (a, b)
            }
            assert compare(window).agreement is not Agreement.APART, (end, a, b)
            windows += 1
    assert windows == 54
    # A clip that slipped and reads 6 points high on the same real trace is caught.
    slipped = {
        "ox1": DeviceSeries(devices[1].spo2_percent[:WINDOW_S], devices[1].pulse_bpm[:WINDOW_S]),
        "ox4": DeviceSeries(
            devices[4].spo2_percent[:WINDOW_S] - 6, devices[4].pulse_bpm[:WINDOW_S]
        ),
    }
    assert compare(slipped).agreement is Agreement.APART
