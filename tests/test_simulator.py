"""The simulator's scenarios follow their stated timelines."""

from __future__ import annotations

import random

from devices.protocols.oximeter_berrymed import BciDecoder
from devices.simulator import (
    DESAT_HOLD_END_S,
    DESAT_NADIR_S,
    FEVER_PEAK_S,
    PROBE_OFF_END_S,
    PROBE_OFF_START_S,
    Scenario,
    oximeter_bytes,
    vitals_at,
)


def series(scenario: Scenario, seconds: range) -> list:
    rng = random.Random(1)
    return [vitals_at(scenario, t, rng) for t in seconds]


def test_desaturation_reaches_86_and_recovers() -> None:
    nadir = series(Scenario.DESATURATION, range(DESAT_NADIR_S, DESAT_HOLD_END_S))
    values = sorted(v.spo2_percent for v in nadir)
    assert values[len(values) // 2] == 86
    assert values[0] >= 84
    assert values[-1] <= 88
    recovered = series(Scenario.DESATURATION, range(700, 800))
    assert min(v.spo2_percent for v in recovered) >= 94


def test_fever_rises_to_39_3() -> None:
    peak = series(Scenario.FEVER, range(FEVER_PEAK_S, FEVER_PEAK_S + 60))
    assert abs(sum(v.temp_c for v in peak) / len(peak) - 39.3) < 0.05


def test_probe_off_lasts_two_minutes() -> None:
    vitals = series(Scenario.PROBE_OFF, range(0, 400))
    off = [t for t, v in enumerate(vitals) if v.finger_out]
    assert off == list(range(PROBE_OFF_START_S, PROBE_OFF_END_S))
    assert PROBE_OFF_END_S - PROBE_OFF_START_S == 120


def test_simulated_bytes_decode_to_the_simulated_values() -> None:
    rng = random.Random(2)
    decoder = BciDecoder()
    for vitals in series(Scenario.DESATURATION, range(0, 600, 7)):
        readings = [r for chunk in oximeter_bytes(vitals, rng) for r in decoder.feed(chunk)]
        assert {r.value for r in readings if r.metric == "spo2_percent"} == {vitals.spo2_percent}
    assert decoder.stats.skipped_bytes == 0
