"""NEWS2 (Royal College of Physicians, 2017) as data, and rule N1 on its aggregate.

At home the box rarely sees blood pressure or consciousness, so the score is *partial*: it is
computed from the parameters present, says which are missing, and N1 only judges it when at
least 4 parameters were observed within the last hour (CLINICAL_RULES.md 1.4 and 1.10).
N1 raises on the clinical-response bands that need a clinician (aggregate >= 5, or any single
parameter scoring 3: MEDIUM; >= 7: HIGH); a low score (1-4) is kept in the statistics only, so
that a SpO2 of 95 % does not page anyone. Pure and sequential.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from alerts.events import RuleEvent, Transition
from alerts.rules import Priority, Profile, RuleId, Tier

INF = math.inf
WINDOW_S = 3600
MIN_PARAMETERS = 4
MEDIUM_TOTAL = 5
HIGH_TOTAL = 7
SINGLE_RED = 3


class Parameter(StrEnum):
    RESP_RATE = "resp_rate"
    SPO2 = "spo2"
    ON_OXYGEN = "on_oxygen"
    SYSTOLIC_BP = "systolic_bp"
    PULSE = "pulse"
    CONSCIOUSNESS = "consciousness"  # 0 = alert, 1 = new confusion / voice / pain / unresponsive
    TEMP = "temp"


# (upper bound inclusive, score) per parameter, scanned in order: the first bound >= value wins.
_TABLES: dict[str, tuple[tuple[float, int], ...]] = {
    Parameter.RESP_RATE: ((8, 3), (11, 1), (20, 0), (24, 2), (INF, 3)),
    "spo2_scale1": ((91, 3), (93, 2), (95, 1), (INF, 0)),
    "spo2_scale2_air": ((83, 3), (85, 2), (87, 1), (INF, 0)),
    "spo2_scale2_oxygen": ((83, 3), (85, 2), (87, 1), (92, 0), (94, 1), (96, 2), (INF, 3)),
    Parameter.SYSTOLIC_BP: ((90, 3), (100, 2), (110, 1), (219, 0), (INF, 3)),
    Parameter.PULSE: ((40, 3), (50, 1), (90, 0), (110, 1), (130, 2), (INF, 3)),
    Parameter.TEMP: ((35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1), (INF, 2)),
}


def _lookup(table: str, value: float) -> int:
    for bound, score in _TABLES[table]:
        if value <= bound:
            return score
    raise ValueError(f"{value} outside the {table} table")


def parameter_score(
    parameter: Parameter, value: float, profile: Profile, on_oxygen: bool = False
) -> int:
    """The NEWS2 score of one observation (SpO2 on scale 2 for the COPD profile)."""
    if parameter is Parameter.SPO2:
        if profile is Profile.COPD:
            return _lookup("spo2_scale2_oxygen" if on_oxygen else "spo2_scale2_air", value)
        return _lookup("spo2_scale1", value)
    if parameter is Parameter.ON_OXYGEN:
        return 2 if value else 0
    if parameter is Parameter.CONSCIOUSNESS:
        return 3 if value else 0
    return _lookup(parameter.value, value)


@dataclass(frozen=True, slots=True)
class News2Score:
    total: int
    scores: dict[str, int]
    missing: tuple[str, ...]

    @property
    def any_single_red(self) -> bool:
        return any(score >= SINGLE_RED for score in self.scores.values())

    @property
    def priority(self) -> Priority | None:
        """HIGH for >= 7; MEDIUM for 5-6 or a single 3; None for 0-4 (routine / low)."""
        if self.total >= HIGH_TOTAL:
            return Priority.HIGH
        if self.total >= MEDIUM_TOTAL or self.any_single_red:
            return Priority.MEDIUM
        return None


def score(values: dict[Parameter, float], profile: Profile) -> News2Score:
    """A partial NEWS2 over the parameters present in `values`."""
    on_oxygen = bool(values.get(Parameter.ON_OXYGEN, 0))
    scores = {
        parameter.value: parameter_score(parameter, value, profile, on_oxygen)
        for parameter, value in values.items()
    }
    missing = tuple(p.value for p in Parameter if p not in values)
    return News2Score(sum(scores.values()), scores, missing)


@dataclass(slots=True)
class News2Rule:
    """N1 over the latest observation of each parameter within the last hour."""

    tier: Tier
    profile: Profile
    latest: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (ts, value)
    active: bool = False

    def step(self, observations: Iterable[tuple[float, Parameter, float]]) -> list[RuleEvent]:
        """Events after each observation (time order): onset on a band that needs a clinician,
        resolved on the next set of >= 4 parameters below it."""
        events: list[RuleEvent] = []
        for ts_s, parameter, value in observations:
            self.latest[parameter.value] = (ts_s, value)
            if len(self.latest) < MIN_PARAMETERS:
                continue  # fewer parameters ever seen than a score needs
            recent = {
                Parameter(name): v for name, (t, v) in self.latest.items() if ts_s - t <= WINDOW_S
            }
            if len(recent) < MIN_PARAMETERS:
                continue
            result = score(recent, self.profile)
            priority = result.priority
            stats: dict[str, float | str] = {
                "news2_total": float(result.total),
                "parameters": ",".join(sorted(result.scores)),
                "missing": ",".join(result.missing),
            }
            if priority is not None and not self.active:
                self.active = True
                events.append(
                    RuleEvent(RuleId.N1, Transition.ONSET, int(ts_s), priority, False, stats)
                )
            elif priority is None and self.active:
                self.active = False
                events.append(
                    RuleEvent(
                        RuleId.N1, Transition.RESOLVED, int(ts_s), Priority.MEDIUM, False, stats
                    )
                )
        return events

    def step_table(
        self,
        ts_s: npt.NDArray[np.int64],
        parameters: tuple[Parameter, ...],
        values: npt.NDArray[np.float64],
    ) -> list[RuleEvent]:
        """`step` over observations as a table: row i holds the values of `parameters` at
        `ts_s[i]` (time order; NaN = not observed). While fewer than 4 parameters can be known,
        nothing can be judged: only the latest value of each parameter is kept."""
        seen = ~np.isnan(values)
        columns_seen = np.flatnonzero(seen.any(axis=0)).tolist()
        present = {parameters[column].value for column in columns_seen}
        if len(present | self.latest.keys()) >= MIN_PARAMETERS:
            rows, columns = np.nonzero(seen)  # row-major: time order, then column order
            return self.step(
                (float(ts_s[row]), parameters[column], float(values[row, column]))
                for row, column in zip(rows.tolist(), columns.tolist(), strict=True)
            )
        for column, parameter in enumerate(parameters):
            rows_seen = np.flatnonzero(seen[:, column])
            if len(rows_seen):
                last = rows_seen[-1]
                self.latest[parameter.value] = (float(ts_s[last]), float(values[last, column]))
        return []

    def to_json(self) -> dict[str, Any]:
        return {"latest": {k: list(v) for k, v in self.latest.items()}, "active": self.active}

    @classmethod
    def from_json(cls, data: dict[str, Any], tier: Tier, profile: Profile) -> News2Rule:
        latest = {k: (float(v[0]), float(v[1])) for k, v in data.get("latest", {}).items()}
        return cls(tier, profile, latest, bool(data.get("active", False)))
