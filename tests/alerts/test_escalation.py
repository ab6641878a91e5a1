"""The escalation ladder: who is told when, retries, and what is never sent twice."""

from __future__ import annotations

import collections
import dataclasses
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.escalation import (
    LADDER,
    MAX_ATTEMPTS,
    Attempt,
    Contact,
    Language,
    Notification,
    Outcome,
    Role,
    due_notifications,
    retry_delay_s,
)
from alerts.lifecycle import Alert, AlertEventKind, AlertStatus
from alerts.rules import Priority, Profile, RuleId, Tier

MIN = 60.0
ONSET_S = 1_000_000.0
RAISED = [(AlertEventKind.RAISED, ONSET_S)]

FAMILY = Contact(1, "p1", Role.FAMILY, "Li", "13800000001", Language.ZH)
DOCTOR = Contact(2, "p1", Role.DOCTOR, "Dr Wang", "13800000002", Language.ZH)
TOWNSHIP = Contact(3, "p1", Role.TOWNSHIP, "Dr Zhao", "13800000003", Language.EN)
CONTACTS = [TOWNSHIP, DOCTOR, FAMILY]  # deliberately not in ladder order


def make_alert(priority: Priority, tier: Tier, status: AlertStatus = AlertStatus.OPEN) -> Alert:
    return Alert("a1", "gw", "p1", RuleId.S2, priority, tier, Profile.DEFAULT, status, ONSET_S, {})


def sent(notes: list[Notification], ts_s: float) -> list[Attempt]:
    return [Attempt(n.contact.id, n.priority, n.step, ts_s, Outcome.SENT) for n in notes]


def who(notes: list[Notification]) -> list[tuple[str, int]]:
    return [(n.contact.role.value, n.step) for n in notes]


# (priority, tier, minutes after onset of the second step, minutes of the third or None)
LADDER_TABLE = [
    (Priority.HIGH, Tier.RED, 5, None),
    (Priority.HIGH, Tier.YELLOW, 10, None),
    (Priority.HIGH, Tier.GREEN, 15, None),
    (Priority.MEDIUM, Tier.RED, 30, 60),
    (Priority.MEDIUM, Tier.YELLOW, 60, 120),
    (Priority.MEDIUM, Tier.GREEN, 120, None),
]


@pytest.mark.parametrize(("priority", "tier", "second_min", "third_min"), LADDER_TABLE)
def test_the_ladder_climbs_one_level_per_tier_interval(
    priority: Priority, tier: Tier, second_min: float, third_min: float | None
) -> None:
    alert = make_alert(priority, tier)
    first = due_notifications(alert, RAISED, CONTACTS, [], ONSET_S)
    high = priority is Priority.HIGH
    assert who(first) == ([("family", 0), ("doctor", 0)] if high else [("family", 0)])
    attempts = sent(first, ONSET_S)
    before = ONSET_S + second_min * MIN - 1
    assert due_notifications(alert, RAISED, CONTACTS, attempts, before) == []
    second = due_notifications(alert, RAISED, CONTACTS, attempts, before + 1)
    assert who(second) == ([("doctor", 1), ("township", 1)] if high else [("doctor", 1)])
    attempts += sent(second, before + 1)
    if third_min is None:
        later = due_notifications(alert, RAISED, CONTACTS, attempts, ONSET_S + 24 * 60 * MIN)
        assert later == []
        return
    assert due_notifications(alert, RAISED, CONTACTS, attempts, ONSET_S + third_min * MIN - 1) == []
    third = due_notifications(alert, RAISED, CONTACTS, attempts, ONSET_S + third_min * MIN)
    assert who(third) == [("township", 2)]


def test_the_table_covers_exactly_high_and_medium_in_every_tier() -> None:
    assert set(LADDER) == set(itertools.product([Priority.HIGH, Priority.MEDIUM], list(Tier)))
    for steps in LADDER.values():
        assert steps[0].after_s == 0  # the first level is told at once
        assert [s.after_s for s in steps] == sorted({s.after_s for s in steps})


@pytest.mark.parametrize(
    ("priority", "tier", "status"),
    [
        (priority, tier, status)
        for priority, tier, status in itertools.product(Priority, Tier, AlertStatus)
        if priority in (Priority.LOW, Priority.INFO) or status is not AlertStatus.OPEN
    ],
)
def test_low_priority_and_alerts_no_longer_open_notify_nobody(
    priority: Priority, tier: Tier, status: AlertStatus
) -> None:
    alert = make_alert(priority, tier, status)
    for minutes in (0, 5, 30, 600):
        assert due_notifications(alert, RAISED, CONTACTS, [], ONSET_S + minutes * MIN) == []


def test_without_contacts_of_a_role_that_level_is_skipped() -> None:
    alert = make_alert(Priority.HIGH, Tier.RED)
    notes = due_notifications(alert, RAISED, [FAMILY], [], ONSET_S + 10 * MIN)
    assert who(notes) == [("family", 0)]


def test_other_patients_contacts_are_never_told() -> None:
    alert = make_alert(Priority.HIGH, Tier.RED)
    neighbour = dataclasses.replace(FAMILY, id=9, patient_id="p2")
    assert due_notifications(alert, RAISED, [neighbour], [], ONSET_S) == []


def test_after_a_restart_each_contact_gets_only_the_highest_due_level() -> None:
    alert = make_alert(Priority.HIGH, Tier.RED)
    notes = due_notifications(alert, RAISED, CONTACTS, [], ONSET_S + 20 * MIN)
    assert who(notes) == [("family", 0), ("doctor", 1), ("township", 1)]
    assert all(n.attempt == 1 for n in notes)
    assert notes[0].unacked_s == 20 * MIN


def test_a_failed_attempt_is_retried_with_a_growing_backoff_then_given_up() -> None:
    alert = make_alert(Priority.MEDIUM, Tier.RED)
    attempts: list[Attempt] = []
    now_s = ONSET_S
    for number in range(1, MAX_ATTEMPTS + 1):
        notes = due_notifications(alert, RAISED, [FAMILY], attempts, now_s)
        assert [(n.contact.id, n.attempt) for n in notes] == [(FAMILY.id, number)]
        attempts.append(Attempt(FAMILY.id, Priority.MEDIUM, 0, now_s, Outcome.FAILED))
        wait_s = retry_delay_s(number)
        assert due_notifications(alert, RAISED, [FAMILY], attempts, now_s + wait_s - 0.5) == []
        now_s += wait_s
    assert due_notifications(alert, RAISED, [FAMILY], attempts, now_s + 3600) == []
    assert [retry_delay_s(n) for n in (1, 2, 3, 6, 7, 50)] == [10, 20, 40, 300, 300, 300]


def test_a_retry_says_how_long_the_alert_was_unacknowledged_at_the_first_try() -> None:
    # The same text again, so a modem that learns late that the first try went sends it once.
    alert = make_alert(Priority.HIGH, Tier.RED)
    first_s = ONSET_S + 15 * MIN + 3
    [note] = [n for n in due_notifications(alert, RAISED, CONTACTS, [], first_s) if n.step == 1][:1]
    attempts = [Attempt(note.contact.id, Priority.HIGH, 1, first_s, Outcome.FAILED)]
    later = due_notifications(alert, RAISED, [note.contact], attempts, first_s + 70)
    assert [(n.step, n.attempt, n.unacked_s) for n in later] == [(1, 2, first_s - ONSET_S)]


@pytest.mark.parametrize("outcome", [Outcome.SENT, Outcome.REJECTED])
def test_a_sent_or_rejected_message_is_never_tried_again(outcome: Outcome) -> None:
    alert = make_alert(Priority.MEDIUM, Tier.RED)
    attempts = [Attempt(FAMILY.id, Priority.MEDIUM, 0, ONSET_S, outcome)]
    assert due_notifications(alert, RAISED, [FAMILY], attempts, ONSET_S + 10 * MIN) == []


def test_an_escalated_alert_starts_the_ladder_of_its_new_priority() -> None:
    # S3 in red: MEDIUM for 4 h, every level told; then escalated to HIGH.
    escalated_s = ONSET_S + 240 * MIN
    medium = make_alert(Priority.MEDIUM, Tier.RED)
    attempts = [
        Attempt(FAMILY.id, Priority.MEDIUM, 0, ONSET_S, Outcome.SENT),
        Attempt(DOCTOR.id, Priority.MEDIUM, 1, ONSET_S + 30 * MIN, Outcome.SENT),
        Attempt(TOWNSHIP.id, Priority.MEDIUM, 2, ONSET_S + 60 * MIN, Outcome.SENT),
    ]
    assert due_notifications(medium, RAISED, CONTACTS, attempts, escalated_s) == []
    high = dataclasses.replace(medium, priority=Priority.HIGH)
    events = [*RAISED, (AlertEventKind.ESCALATED, escalated_s)]
    notes = due_notifications(high, events, CONTACTS, attempts, escalated_s + 1)
    assert who(notes) == [("family", 0), ("doctor", 0)]
    assert notes[0].unacked_s == 1.0
    attempts += sent(notes, escalated_s + 1)
    notes = due_notifications(high, events, CONTACTS, attempts, escalated_s + 5 * MIN)
    assert who(notes) == [("doctor", 1), ("township", 1)]


# -- properties over random histories ------------------------------------------------------------

contacts_strategy = st.lists(
    st.tuples(st.sampled_from(list(Role)), st.sampled_from(["p1", "p2"])), max_size=6
).map(
    lambda pairs: [
        Contact(i + 1, patient, role, f"c{i}", f"1380000{i:04d}", Language.ZH)
        for i, (role, patient) in enumerate(pairs)
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    priority=st.sampled_from(list(Priority)),
    tier=st.sampled_from(list(Tier)),
    contacts=contacts_strategy,
    gaps_s=st.lists(st.floats(0, 3600), min_size=1, max_size=40),
    outcomes=st.lists(st.sampled_from(list(Outcome)), min_size=1, max_size=50),
    ack_after=st.integers(0, 40),
)
def test_no_contact_is_sent_the_same_level_twice_and_an_ack_stops_everything(
    priority: Priority,
    tier: Tier,
    contacts: list[Contact],
    gaps_s: list[float],
    outcomes: list[Outcome],
    ack_after: int,
) -> None:
    alert = make_alert(priority, tier)
    attempts: list[Attempt] = []
    now_s = ONSET_S
    outcome_cycle = itertools.cycle(outcomes)
    finished: set[tuple[int, Priority, int]] = set()  # sent or rejected
    for tick, gap_s in enumerate(gaps_s):
        now_s += gap_s
        if tick == ack_after:
            alert = dataclasses.replace(alert, status=AlertStatus.ACKED)
        notes = due_notifications(alert, RAISED, contacts, attempts, now_s)
        if alert.status is not AlertStatus.OPEN:
            assert notes == []
        keys = [(n.contact.id, n.step) for n in notes]
        assert len(keys) == len(set(keys))
        for note in notes:
            step = LADDER[(priority, tier)][note.step]
            assert note.contact.role in step.roles
            assert note.contact.patient_id == alert.patient_id
            assert now_s - ONSET_S >= step.after_s
            key = (note.contact.id, note.priority, note.step)
            assert key not in finished
            outcome = next(outcome_cycle)
            if outcome in (Outcome.SENT, Outcome.REJECTED):
                finished.add(key)
            attempts.append(Attempt(*key, now_s, outcome))
    sent_keys = [(a.contact_id, a.priority, a.step) for a in attempts if a.outcome is Outcome.SENT]
    assert len(sent_keys) == len(set(sent_keys))
    tries = collections.Counter((a.contact_id, a.priority, a.step) for a in attempts)
    assert all(n <= MAX_ATTEMPTS for n in tries.values())
