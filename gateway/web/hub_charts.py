"""Charts of a patient's received per-minute summaries on the hub dashboard: per metric, the
min-max band and the median line over the last CHART_WINDOW_S, as SVG path data (drawn on
the server; no chart library).

The rows come from `HubStore.patient_summaries(site, gateway, patient, since_s)` (one dict
per metric and minute: `minute_s`, `metric`, `min`, `median`, `max`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sync.hub_store import HubStore

CHART_WINDOW_S = 24 * 3600
WIDTH = 600
HEIGHT = 120
PAD = 4.0
MIN_SPAN_S = 3600
GAP_S = 180  # a longer gap between minutes breaks the chart
CHARTED = ("spo2_percent", "pulse_bpm", "temp_c")


@dataclass(frozen=True, slots=True)
class SummaryChart:
    metric: str
    band: str  # SVG path data of the min-max band (closed shapes)
    median: str  # SVG path data of the median line
    low: float
    high: float
    minutes: int
    width: int = WIDTH
    height: int = HEIGHT


def _x(ts_s: float, start_s: float, end_s: float) -> float:
    return round(PAD + (ts_s - start_s) / (end_s - start_s) * (WIDTH - 2 * PAD), 1)


def _y(value: float, low: float, high: float) -> float:
    span = high - low or 1.0
    return round(HEIGHT - PAD - (value - low) / span * (HEIGHT - 2 * PAD), 1)


def _runs(points: list[tuple[float, float, float, float]]) -> list[list[tuple[float, ...]]]:
    """Split time-ordered points where minutes are missing for longer than GAP_S."""
    runs: list[list[tuple[float, ...]]] = []
    for point in points:
        if not runs or point[0] - runs[-1][-1][0] > GAP_S:
            runs.append([])
        runs[-1].append(point)
    return runs


def band_chart(
    metric: str, rows: Iterable[tuple[float, float, float, float]], start_s: float, end_s: float
) -> SummaryChart | None:
    """(minute start, min, median, max) rows -> a chart, or None with nothing to draw."""
    points = sorted(
        row for row in rows if start_s <= row[0] <= end_s and all(math.isfinite(v) for v in row)
    )
    if not points or end_s <= start_s:
        return None
    low = min(p[1] for p in points)
    high = max(p[3] for p in points)
    bands, medians = [], []
    for run in _runs(points):
        upper = [f"{_x(t, start_s, end_s):g} {_y(hi, low, high):g}" for t, _, _, hi in run]
        lower = [f"{_x(t, start_s, end_s):g} {_y(lo, low, high):g}" for t, lo, _, _ in run]
        bands.append("M" + " L".join(upper + lower[::-1]) + " Z")
        medians.append(
            "M" + " L".join(f"{_x(t, start_s, end_s):g} {_y(m, low, high):g}" for t, _, m, _ in run)
        )
    return SummaryChart(metric, " ".join(bands), " ".join(medians), low, high, len(points))


def summary_charts(
    store: HubStore, site: str, gateway: str, patient: str, now_s: float
) -> list[SummaryChart]:
    """The patient's charts from the summaries the hub received (none: an empty list)."""
    start_s = now_s - CHART_WINDOW_S
    per_metric: dict[str, list[tuple[float, float, float, float]]] = {}
    for row in store.patient_summaries(site, gateway, patient, start_s):
        low, median, high = row.get("min"), row.get("median"), row.get("max")
        if (
            row.get("metric") in CHARTED
            and low is not None
            and median is not None
            and high is not None
        ):
            point = (float(row["minute_s"]), float(low), float(median), float(high))
            per_metric.setdefault(row["metric"], []).append(point)
    times = [point[0] for points in per_metric.values() for point in points]
    if not times:
        return []
    # The last 24 hours, or less when the data is younger (at least MIN_SPAN_S), up to the
    # newest minute (a gateway whose clock runs ahead is drawn, not cut off).
    end_s = max(now_s, max(times) + 60)
    oldest_s = min(times)
    start_s = max(start_s, min(oldest_s, end_s - MIN_SPAN_S))
    charts = [band_chart(m, per_metric.get(m, []), start_s, end_s) for m in CHARTED]
    return [chart for chart in charts if chart is not None]
