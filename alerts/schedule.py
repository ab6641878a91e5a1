"""Q3, missed scheduled reading (CLINICAL_RULES.md 1.10): a patient on spot checks (NHS: SpO2
three times a day; China: temperature twice a day) who has taken no valid reading of a scheduled
metric within its slot and the 2 hours after it. A LOW reminder first; MEDIUM for the staff after
the 2nd missed slot in a row (red) or the 3rd (yellow); green stays LOW. It clears when a
reading of every missed metric arrives.

Pure. A schedule is a set of local times per metric. A slot counts as kept by any valid
reading from an hour before it onwards (a reading taken a little early counts; one taken late
still ends the alert), so the slots missed in a row are the due slots after the newest valid
reading: a slot is due once its 2 hours of grace are over, and only slots after the schedule
was set count.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from alerts.events import RuleEvent, Transition
from alerts.rules import Priority, RuleId, Tier

GRACE_S = 2 * 3600  # a slot is missed when nothing came within it and the 2 h after
EARLY_S = 3600  # a reading up to an hour before the slot keeps it
MAX_RUN = 3  # slots missed in a row are counted up to this (enough for every escalation)
ESCALATE_AFTER_MISSED = {Tier.RED: 2, Tier.YELLOW: 3}  # to MEDIUM; green stays LOW
MAX_SLOTS_PER_DAY = 12
_DAY_S = 86_400
_HHMM = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$")


class ScheduleError(ValueError):
    """A schedule that cannot be used (the message says why)."""


def parse_slots(text: str) -> tuple[int, ...]:
    """ "08:00,14:00,20:00" -> minutes after local midnight, sorted, without repeats."""
    minutes = set()
    for part in (p.strip() for p in text.split(",")):
        match = _HHMM.match(part)
        if match is None:
            raise ScheduleError(f"{part!r}: a slot is a local time HH:MM, e.g. 08:00")
        minutes.add(int(match.group(1)) * 60 + int(match.group(2)))
    if len(minutes) > MAX_SLOTS_PER_DAY:
        raise ScheduleError(f"at most {MAX_SLOTS_PER_DAY} slots a day")
    return tuple(sorted(minutes))


def format_slots(minutes: Sequence[int]) -> str:
    return ",".join(f"{m // 60:02d}:{m % 60:02d}" for m in minutes)


def due_slots(
    slots_min: Sequence[int], set_s: float, now_s: float, utc_offset_s: int
) -> list[float]:
    """The newest MAX_RUN slot times (UTC epoch s, newest first) whose grace is over at
    `now_s`, not before the schedule was set at `set_s`."""
    if not slots_min:
        return []
    local_day = dt.date.fromordinal(
        dt.date(1970, 1, 1).toordinal() + int((now_s + utc_offset_s) // _DAY_S)
    )
    midnight_s = (local_day - dt.date(1970, 1, 1)).days * _DAY_S - utc_offset_s
    due: list[float] = []
    day_start_s = float(midnight_s)
    while len(due) < MAX_RUN and day_start_s + _DAY_S > set_s:
        for minute in sorted(slots_min, reverse=True):
            slot_s = day_start_s + minute * 60
            if slot_s + GRACE_S <= now_s and slot_s >= set_s and len(due) < MAX_RUN:
                due.append(slot_s)
        day_start_s -= _DAY_S
    return due


def missed_in_a_row(due_newest_first: Sequence[float], last_valid_s: float | None) -> int:
    """How many of the due slots, newest first, no valid reading kept (none since their hour
    of early tolerance began)."""
    return sum(
        1 for slot_s in due_newest_first if last_valid_s is None or last_valid_s < slot_s - EARLY_S
    )


@dataclass(frozen=True, slots=True)
class Q3Decision:
    """What the minute's look at the schedule does: an event (raise or clear), or an
    escalation of the live alert to `escalate_to`, or nothing."""

    event: RuleEvent | None = None
    escalate_to: Priority | None = None


def q3_decision(
    missed: Mapping[str, int], tier: Tier, live: Priority | None, ts_s: int
) -> Q3Decision:
    """`missed`: slots missed in a row per scheduled metric; `live`: the priority of the
    patient's live Q3 alert (None: none)."""
    run = max(missed.values(), default=0)
    stats: dict[str, float | str] = {
        "missed_metrics": ",".join(sorted(m for m, n in missed.items() if n)),
        "missed_slots": run,
    }
    threshold = ESCALATE_AFTER_MISSED.get(tier)
    for_staff = threshold is not None and run >= threshold
    if live is None:
        if run == 0:
            return Q3Decision()
        priority = Priority.MEDIUM if for_staff else Priority.LOW  # e.g. the box was off
        return Q3Decision(RuleEvent(RuleId.Q3, Transition.ONSET, ts_s, priority, False, stats))
    if run == 0:
        return Q3Decision(RuleEvent(RuleId.Q3, Transition.RESOLVED, ts_s, live, False, stats))
    if live is Priority.LOW and for_staff:
        return Q3Decision(escalate_to=Priority.MEDIUM)
    return Q3Decision()
