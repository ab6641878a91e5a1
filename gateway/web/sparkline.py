"""Sparklines as inline SVG, drawn on the server: a series of (time, value) becomes the `d`
attribute of one SVG path, broken where data is missing. No chart library, no JavaScript.

Pure: numbers in, a frozen description of the drawing out (the template writes the SVG).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 300
HEIGHT = 60
PAD = 3.0
MAX_GAP_BUCKETS = 3  # a longer run of missing data breaks the line


@dataclass(frozen=True, slots=True)
class Sparkline:
    path: str  # SVG path data; empty when there is nothing to draw
    width: int
    height: int
    limit_y: float | None  # where a threshold line goes, if it is within the range
    low: float | None  # the range drawn, for the label
    high: float | None
    points: int

    @property
    def empty(self) -> bool:
        return not self.path


def _scale(value: float, low: float, high: float) -> float:
    span = high - low
    fraction = 0.5 if span <= 0 else (value - low) / span
    return round(HEIGHT - PAD - fraction * (HEIGHT - 2 * PAD), 1)


def sparkline(
    series: Sequence[tuple[float, float | None]],
    start_s: float,
    end_s: float,
    *,
    bucket_s: float,
    floor: float | None = None,
    ceiling: float | None = None,
    limit: float | None = None,
) -> Sparkline:
    """Draw `series` (time, value or None), time-ordered, over [start_s, end_s].

    The value axis spans the data, widened to include `floor`/`ceiling` when given (so a
    flat 97 % does not look like a crisis); `limit` adds a threshold line."""
    values = [
        (ts, v) for ts, v in series if v is not None and math.isfinite(v) and start_s <= ts <= end_s
    ]
    if not values or end_s <= start_s:
        return Sparkline("", WIDTH, HEIGHT, None, None, None, 0)
    low = min(v for _, v in values)
    high = max(v for _, v in values)
    if floor is not None:
        low = min(low, floor)
    if ceiling is not None:
        high = max(high, ceiling)
    commands: list[str] = []
    previous_s: float | None = None
    for ts, value in values:
        x = round(PAD + (ts - start_s) / (end_s - start_s) * (WIDTH - 2 * PAD), 1)
        y = _scale(value, low, high)
        gap = previous_s is None or ts - previous_s > MAX_GAP_BUCKETS * bucket_s
        commands.append(f"{'M' if gap else 'L'}{x:g} {y:g}")
        previous_s = ts
    limit_y = _scale(limit, low, high) if limit is not None and low <= limit <= high else None
    return Sparkline(" ".join(commands), WIDTH, HEIGHT, limit_y, low, high, len(values))
