"""Run the detector over a whole recording, as the daemon would have run it live, and give
the alert timeline. Pure: samples in, events out. Clinicians use it to see what a rule would
have done; the evaluation in bench/ uses it too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from alerts.channels import Sample, build_channels
from alerts.engine import PatientDetector
from alerts.events import RuleEvent, Transition
from alerts.lifecycle import AlertEventKind, AlertStatus, alert_id, on_onset, on_resolved
from alerts.rules import Priority, Profile, RuleId, Tier
from alerts.spot import TemperatureReading
from devices.protocols.reading import Metric

REPLAY_GATEWAY = "replay"
CHUNK_S = 3600  # fed an hour at a time, as a stream: the engine is chunk-invariant


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One line of the alert timeline."""

    at_s: float
    rule: RuleId
    priority: Priority
    event: AlertEventKind
    alert_id: str
    stats: dict[str, float | str]


def replay(
    samples: Iterable[Sample], tier: Tier, profile: Profile, patient_id: str = "replay"
) -> list[TimelineEvent]:
    """The alert timeline of `samples` (UTC s, metric, value or None, quality), time-ordered."""
    ordered = sorted(samples, key=lambda sample: sample[0])
    detector = PatientDetector(tier, profile)
    rule_events: list[RuleEvent] = []
    continuous = [s for s in ordered if s[1] != Metric.TEMP]
    for chunk in _hourly(continuous):
        built = build_channels(chunk)
        if built is not None:
            rule_events += detector.step(*built)
    temperatures: list[TemperatureReading] = [
        (ts_s, value, None) for ts_s, metric, value, _ in ordered if metric == Metric.TEMP and value
    ]
    rule_events += detector.step_temperatures(temperatures)
    rule_events.sort(key=lambda e: (e.ts_s, e.rule))
    return _lifecycle(rule_events, patient_id)


def _hourly(samples: Sequence[Sample]) -> Iterable[list[Sample]]:
    chunk: list[Sample] = []
    chunk_end_s = None
    for sample in samples:
        if chunk_end_s is None:
            chunk_end_s = sample[0] - sample[0] % CHUNK_S + CHUNK_S
        if sample[0] >= chunk_end_s:
            yield chunk
            chunk = []
            chunk_end_s = sample[0] - sample[0] % CHUNK_S + CHUNK_S
        chunk.append(sample)
    if chunk:
        yield chunk


def _lifecycle(events: Sequence[RuleEvent], patient_id: str) -> list[TimelineEvent]:
    """Alert events as the store would record them (no acknowledgements in a replay)."""
    open_alerts: dict[RuleId, tuple[str, AlertStatus]] = {}
    timeline: list[TimelineEvent] = []
    for event in events:
        current = open_alerts.get(event.rule)
        if event.transition is Transition.ONSET:
            status, kind = on_onset(current[1] if current else None)
            ident = (
                current[0]
                if current and current[1] is not AlertStatus.CLOSED
                else alert_id(REPLAY_GATEWAY, patient_id, event.rule, event.ts_s)
            )
        elif current is None:
            continue
        else:
            ident = current[0]
            status, kind = on_resolved(current[1], event.latching)
        open_alerts[event.rule] = (ident, status)
        if kind is not None:
            timeline.append(
                TimelineEvent(event.ts_s, event.rule, event.priority, kind, ident, event.stats)
            )
    return timeline
