"""What the detector says: a rule's condition started or ended."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from alerts.rules import Priority, RuleId


class Transition(StrEnum):
    ONSET = "onset"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class RuleEvent:
    """A rule's condition started or ended at `ts_s` (the second of the sample that did it)."""

    rule: RuleId
    transition: Transition
    ts_s: int
    priority: Priority
    latching: bool
    stats: dict[str, float | str]
