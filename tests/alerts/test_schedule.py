"""Q3 missed scheduled reading: slots in local time, 2 hours of grace, an hour of early
tolerance, missed slots counted in a row, escalation per tier."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.events import Transition
from alerts.rules import Priority, RuleId, Tier
from alerts.schedule import (
    EARLY_S,
    GRACE_S,
    MAX_RUN,
    ScheduleError,
    due_slots,
    format_slots,
    missed_in_a_row,
    parse_slots,
    q3_decision,
)

CHINA_S = 8 * 3600
# 2027-01-15 00:00 in China (UTC+8)
MIDNIGHT_S = dt.datetime(2027, 1, 15, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()
NHS = parse_slots("08:00,14:00,20:00")


def at(hour: float, day: int = 0) -> float:
    return MIDNIGHT_S + day * 86_400 + hour * 3600


def test_slots_are_local_times_sorted_and_checked() -> None:
    assert parse_slots("20:00, 8:00,14:00,08:00") == (480, 840, 1200)
    assert format_slots(NHS) == "08:00,14:00,20:00"
    for bad in ("8am", "24:00", "12:60", ""):
        with pytest.raises(ScheduleError, match="HH:MM"):
            parse_slots(bad)


def test_a_slot_is_due_once_its_two_hours_of_grace_are_over() -> None:
    set_s = at(0, day=-10)
    assert due_slots(NHS, set_s, at(9.99), CHINA_S) == [at(20, -1), at(14, -1), at(8, -1)]
    assert due_slots(NHS, set_s, at(10), CHINA_S) == [at(8), at(20, -1), at(14, -1)]
    # Slots before the schedule was set never count.
    assert due_slots(NHS, at(13), at(23), CHINA_S) == [at(20), at(14)]
    assert due_slots((), set_s, at(23), CHINA_S) == []


@pytest.mark.parametrize(
    ("last_valid", "missed"),
    [
        (None, 3),  # never a reading
        (at(8) - EARLY_S, 0),  # an hour early keeps the slot
        (at(8) - EARLY_S - 1, 1),  # earlier does not
        (at(11), 0),  # a late reading (after the grace) ends the run too
        (at(18.5, -1), 2),  # the last reading was before 19:00 yesterday
    ],
)
def test_slots_missed_in_a_row(last_valid: float | None, missed: int) -> None:
    due = due_slots(NHS, at(0, -10), at(12), CHINA_S)  # today 08:00, yesterday 20:00, 14:00
    assert missed_in_a_row(due, last_valid) == missed


def test_a_missed_slot_raises_a_low_reminder_and_a_reading_clears_it() -> None:
    raised = q3_decision({"spo2_percent": 1, "temp_c": 0}, Tier.RED, None, 100)
    assert raised.event is not None
    assert (raised.event.rule, raised.event.transition) == (RuleId.Q3, Transition.ONSET)
    assert raised.event.priority is Priority.LOW
    assert raised.event.stats == {"missed_metrics": "spo2_percent", "missed_slots": 1}
    assert q3_decision({"spo2_percent": 1}, Tier.RED, Priority.LOW, 160) == type(raised)()
    cleared = q3_decision({"spo2_percent": 0, "temp_c": 0}, Tier.RED, Priority.LOW, 200).event
    assert cleared is not None and cleared.transition is Transition.RESOLVED
    assert q3_decision({"spo2_percent": 0}, Tier.RED, None, 200).event is None


@pytest.mark.parametrize(
    ("tier", "missed", "escalated"),
    [
        (Tier.RED, 1, False),
        (Tier.RED, 2, True),
        (Tier.YELLOW, 2, False),
        (Tier.YELLOW, 3, True),
        (Tier.GREEN, 3, False),  # green stays LOW
    ],
)
def test_the_staff_are_told_after_the_tiers_missed_slots(
    tier: Tier, missed: int, escalated: bool
) -> None:
    decision = q3_decision({"temp_c": missed}, tier, Priority.LOW, 0)
    assert decision.escalate_to is (Priority.MEDIUM if escalated else None)
    assert decision.event is None
    # Already that far behind when first seen (the box was off): raised for the staff at once.
    onset = q3_decision({"temp_c": missed}, tier, None, 0).event
    assert onset is not None
    assert onset.priority is (Priority.MEDIUM if escalated else Priority.LOW)


@given(
    slots=st.lists(st.integers(0, 1439), min_size=1, max_size=6),
    now_h=st.floats(0, 24 * 5),
    last_h=st.one_of(st.none(), st.floats(0, 24 * 5)),
)
def test_due_slots_are_past_their_grace_newest_first_and_a_later_reading_never_adds_misses(
    slots: list[int], now_h: float, last_h: float | None
) -> None:
    set_s, now_s = at(0, -1), at(now_h, -1)
    due = due_slots(slots, set_s, now_s, CHINA_S)
    assert len(due) <= MAX_RUN
    assert due == sorted(due, reverse=True)
    assert all(set_s <= slot_s <= now_s - GRACE_S for slot_s in due)
    last_s = None if last_h is None else at(last_h, -1)
    missed = missed_in_a_row(due, last_s)
    later = missed_in_a_row(due, now_s)
    assert later == 0 and 0 <= missed <= len(due)
