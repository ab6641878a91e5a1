"""Alert lifecycle: transitions, re-notification intervals per tier, escalations."""

from __future__ import annotations

import pytest

from alerts.lifecycle import (
    Alert,
    AlertEventKind,
    AlertStatus,
    due_event,
    on_ack,
    on_onset,
    on_resolved,
)
from alerts.rules import Priority, Profile, RuleId, Tier

MIN = 60


def alert(rule: RuleId, priority: Priority, tier: Tier, status: AlertStatus) -> Alert:
    return Alert("id", "gw", "p", rule, priority, tier, Profile.DEFAULT, status, 0.0, {})


def test_transitions() -> None:
    assert on_onset(None) == (AlertStatus.OPEN, AlertEventKind.RAISED)
    assert on_resolved(AlertStatus.OPEN, latching=True) == (
        AlertStatus.RESOLVED,
        AlertEventKind.RESOLVED,
    )
    assert on_resolved(AlertStatus.OPEN, latching=False) == (
        AlertStatus.CLOSED,
        AlertEventKind.CLOSED,
    )
    assert on_ack(AlertStatus.RESOLVED) == (AlertStatus.CLOSED, AlertEventKind.ACKED)
    assert on_ack(AlertStatus.CLOSED) == (AlertStatus.CLOSED, None)


@pytest.mark.parametrize(
    ("priority", "tier", "interval_s"),
    [
        (Priority.HIGH, Tier.RED, 5 * MIN),
        (Priority.HIGH, Tier.YELLOW, 15 * MIN),
        (Priority.HIGH, Tier.GREEN, 15 * MIN),
        (Priority.MEDIUM, Tier.RED, 30 * MIN),
    ],
)
def test_unacknowledged_alerts_are_renotified_after_the_tier_interval(
    priority: Priority, tier: Tier, interval_s: float
) -> None:
    live = alert(RuleId.S2, priority, tier, AlertStatus.OPEN)
    assert due_event(live, 1000.0, False, 1000.0 + interval_s - 1) is None
    assert due_event(live, 1000.0, False, 1000.0 + interval_s) == (
        AlertEventKind.RENOTIFIED,
        priority,
    )


@pytest.mark.parametrize(
    ("priority", "tier"), [(Priority.MEDIUM, Tier.YELLOW), (Priority.LOW, Tier.RED)]
)
def test_batched_priorities_are_not_renotified(priority: Priority, tier: Tier) -> None:
    live = alert(RuleId.H2, priority, tier, AlertStatus.OPEN)
    assert due_event(live, 0.0, False, 24 * 3600) is None


def test_acknowledged_alerts_are_left_alone() -> None:
    acked = alert(RuleId.S1, Priority.HIGH, Tier.RED, AlertStatus.ACKED)
    assert due_event(acked, 0.0, False, 3600.0) is None


def test_s3_escalates_once_after_4_hours_in_red() -> None:
    s3 = alert(RuleId.S3, Priority.MEDIUM, Tier.RED, AlertStatus.OPEN)
    assert due_event(s3, 3.9 * 3600, False, 3.9 * 3600 + 1) is None
    assert due_event(s3, 3.9 * 3600, False, 4 * 3600) == (AlertEventKind.ESCALATED, Priority.HIGH)
    assert due_event(s3, 4 * 3600, True, 4 * 3600 + 1) is None
    yellow = alert(RuleId.S3, Priority.MEDIUM, Tier.YELLOW, AlertStatus.OPEN)
    assert due_event(yellow, 0.0, False, 10 * 3600) is None


def test_probe_off_escalates_after_15_minutes_in_red() -> None:
    q1 = alert(RuleId.Q1, Priority.LOW, Tier.RED, AlertStatus.OPEN)
    assert due_event(q1, 0.0, False, 15 * MIN) == (AlertEventKind.ESCALATED, Priority.MEDIUM)
