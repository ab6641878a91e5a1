"""Detector throughput: the default rule table over many patient-days at 1 Hz, streaming cost
per second of data, and the speed-up over the per-sample reference (with identical events).

    .venv/bin/python bench/bench_detector.py [--patients N] [--hours H]

Prints figures only; asserts nothing. Targets stated by the project: the full default rule set
over 100 patients x 24 h x 1 Hz in <= 2 s on one core; >= 20x faster than the reference;
streaming 50 patients in 1-second chunks at < 10 ms of CPU per second of data. Streaming is
also timed with every call forced through the vectorised path, the simple alternative to the
second-by-second path that small calls take.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from alerts import engine  # noqa: E402
from alerts.engine import PatientDetector, Transition  # noqa: E402
from alerts.reference import reference_table_events  # noqa: E402
from alerts.rules import Channel, Profile, RuleId, Tier, window_rules  # noqa: E402
from alerts.threshold import FloatArray  # noqa: E402

SEED = 7
Event = tuple[RuleId, Transition, int]


def patient_day(rng: np.random.Generator, seconds: int) -> dict[Channel, FloatArray]:
    """A realistic day: SpO2 around 95 with slow wander, dips, probe-off gaps, motion."""
    wander = np.cumsum(rng.normal(0, 0.02, seconds)).clip(-4, 3)
    spo2 = np.round(95.5 + wander + rng.normal(0, 0.7, seconds))
    for start in rng.integers(0, seconds - 600, size=max(1, seconds // 20000)):
        spo2[start : start + rng.integers(30, 400)] -= rng.integers(3, 10)
    pulse = np.round(72 + np.cumsum(rng.normal(0, 0.05, seconds)).clip(-15, 40))
    off = np.zeros(seconds)
    for start in rng.integers(0, seconds - 300, size=max(1, seconds // 30000)):
        off[start : start + rng.integers(20, 300)] = 1.0
    spo2[off == 1.0] = np.nan
    pulse[off == 1.0] = np.nan
    low_conf = (rng.random(seconds) < 0.05).astype(float)
    low_conf[off == 1.0] = np.nan
    return {
        Channel.SPO2: spo2.clip(50, 100),
        Channel.PULSE: pulse,
        Channel.RESP: np.full(seconds, np.nan),
        Channel.PROBE_OFF: off,
        Channel.LOW_CONF: low_conf,
    }


def batch(days: list[dict[Channel, FloatArray]]) -> tuple[float, int]:
    started = time.process_time()
    events = 0
    for channels in days:
        events += len(PatientDetector(Tier.RED, Profile.DEFAULT).step(0, channels))
    return time.process_time() - started, events


def streaming(days: list[dict[Channel, FloatArray]], seconds: int) -> tuple[float, list[Event]]:
    """CPU seconds per second of data, and the events of every patient in turn."""
    detectors = [PatientDetector(Tier.RED, Profile.DEFAULT) for _ in days]
    events: list[list[Event]] = [[] for _ in days]
    started = time.process_time()
    for second in range(seconds):
        for detector, channels, found in zip(detectors, days, events, strict=True):
            chunk = {ch: v[second : second + 1] for ch, v in channels.items()}
            found += [(e.rule, e.transition, e.ts_s) for e in detector.step(second, chunk)]
    return (time.process_time() - started) / seconds, [e for found in events for e in found]


def in_one_call(days: list[dict[Channel, FloatArray]], seconds: int) -> list[Event]:
    return [
        (e.rule, e.transition, e.ts_s)
        for channels in days
        for e in PatientDetector(Tier.RED, Profile.DEFAULT).step(
            0, {ch: v[:seconds] for ch, v in channels.items()}
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)
    seconds = int(args.hours * 3600)
    days = [patient_day(rng, seconds) for _ in range(args.patients)]
    samples = args.patients * seconds
    cpu_s, events = batch(days)
    print(f"batch: {args.patients} patients x {args.hours:g} h = {samples:,} samples per channel")
    print(
        f"  vectorised engine: {cpu_s:.2f} s CPU, {samples / cpu_s:,.0f} samples/s, "
        f"{events} events (target <= 2 s for 100 x 24 h)"
    )

    sample_s = 1800
    subset = [{ch: v[:sample_s] for ch, v in days[0].items()}]
    engine_s = min(batch(subset)[0] for _ in range(5))  # one run is too short to time alone
    started = time.process_time()
    expected = reference_table_events(
        window_rules(Tier.RED, Profile.DEFAULT), 0, {ch: v.tolist() for ch, v in subset[0].items()}
    )
    reference_s = time.process_time() - started
    got = PatientDetector(Tier.RED, Profile.DEFAULT).step(0, subset[0])
    same = [(e.rule, e.transition, e.ts_s) for e in got] == [
        (e.rule, e.transition, e.ts_s) for e in expected
    ]
    print(
        f"reference vs engine on {sample_s} s of one patient: reference {reference_s:.2f} s, "
        f"engine {engine_s:.4f} s: {reference_s / engine_s:,.0f}x, identical events: {same}"
    )

    stream_patients, stream_s = 50, 900
    per_second, streamed = streaming(days[:stream_patients], stream_s)
    same = streamed == in_one_call(days[:stream_patients], stream_s)
    print(
        f"streaming: {stream_patients} patients in 1 s chunks: {per_second * 1000:.1f} ms CPU "
        f"per second of data (target < 10 ms); {len(streamed)} events over {stream_s} s, "
        f"identical to one call per patient: {same}"
    )
    by_seconds_max_s = engine.SECOND_BY_SECOND_MAX_S
    engine.SECOND_BY_SECOND_MAX_S = 0
    try:
        vectorised, _ = streaming(days[:stream_patients], 60)
    finally:
        engine.SECOND_BY_SECOND_MAX_S = by_seconds_max_s
    print(
        f"  the same through the vectorised path only: {vectorised * 1000:.1f} ms "
        f"({vectorised / per_second:.0f}x the second-by-second path)"
    )


if __name__ == "__main__":
    main()
