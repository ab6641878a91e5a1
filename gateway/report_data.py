"""What the daily report shows, read from the store: one patient's local day as a frozen
`ReportData` (per-minute chart series, figures, gaps, the day's alerts).

Readings come through gateway/day_history.py (raw readings, or per-minute summaries for days
older than the retention period), the figures from gateway/report_figures.py. Runs on whatever
thread owns the store (the daemon's StoreWorker for the status page).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import numpy as np

from alerts.daily import SECONDS_PER_DAY
from alerts.rules import Priority, Profile, Tier
from devices.protocols.reading import Metric
from gateway.day_history import (
    Row,
    axillary_readings,
    local_midnight_s,
    one_hz_grid,
    read_rows,
)
from gateway.display_names import display_name
from gateway.report_figures import (
    MAX_GAPS,
    Extreme,
    Gap,
    MinuteSeries,
    SpO2Figures,
    extreme,
    find_gaps,
    per_minute,
    spo2_figures,
)
from gateway.store import Store

Format = Literal["pdf", "png"]
FORMATS: tuple[Format, ...] = ("pdf", "png")


class ReportError(ValueError):
    """A report that cannot be made; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class AlertLine:
    """One alert live during the day: when it was raised, acknowledged (and by whom) and
    cleared (its condition resolved, or the alert closed), as UTC epoch seconds."""

    alert_id: str
    rule: str
    priority: Priority
    status: str
    raised_s: float
    acked_s: float | None
    acked_by: str | None
    cleared_s: float | None


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything the daily report shows. Times are UTC epoch seconds; `start_s` is local
    midnight of `day`, and each series has one point per local minute from there."""

    patient_id: str
    display_name: str | None
    tier: Tier | None  # None: not known where the report is made (the hub, without alerts)
    profile: Profile
    day: dt.date
    utc_offset_s: int
    gateway_id: str
    site: str
    start_s: int
    spo2: MinuteSeries
    pulse: MinuteSeries
    temperatures: tuple[tuple[float, float], ...]  # (time, axillary-equivalent °C)
    figures: SpO2Figures
    pulse_low: Extreme | None
    pulse_high: Extreme | None
    max_temperature: Extreme | None
    gaps: tuple[Gap, ...]  # the longest first, at most MAX_GAPS
    gap_total_s: int  # every gap of at least a minute
    alerts: tuple[AlertLine, ...]
    from_summaries: bool = False  # made at the hub from per-minute summaries (hub_report.py)

    @property
    def has_data(self) -> bool:
        """Whether anything at all was measured that day."""
        return (
            self.figures.coverage_percent > 0
            or bool(self.temperatures)
            or bool(np.any(~np.isnan(self.pulse.median)))
        )


def read_report_data(
    store: Store, patient_id: str, day: dt.date, utc_offset_s: int, site: str = ""
) -> ReportData:
    """The report of `patient_id` for local `day`. Raises ReportError for an unknown patient;
    a day without data gives a report whose `has_data` is False."""
    patient = store.get_patient(patient_id)
    if patient is None:
        raise ReportError(f"no patient {patient_id!r}; see `pulsegate patients list`")
    start_s = local_midnight_s(day, utc_offset_s)
    end_s = start_s + SECONDS_PER_DAY
    times = start_s + np.arange(SECONDS_PER_DAY, dtype=np.float64)

    spo2_rows = read_rows(store, patient_id, Metric.SPO2, start_s, end_s)
    spo2_valid = one_hz_grid(start_s, SECONDS_PER_DAY, spo2_rows, Metric.SPO2, resting=False)
    spo2_resting = one_hz_grid(start_s, SECONDS_PER_DAY, spo2_rows, Metric.SPO2)
    pulse_rows = read_rows(store, patient_id, Metric.PULSE, start_s, end_s)
    pulse = one_hz_grid(start_s, SECONDS_PER_DAY, pulse_rows, Metric.PULSE, resting=False)
    temp_times, temps = axillary_readings(store, patient_id, start_s, end_s)

    flags, received = _arrivals(start_s, SECONDS_PER_DAY, spo2_rows)
    gaps = find_gaps(start_s, ~np.isnan(spo2_valid), flags, received)
    return ReportData(
        patient_id=patient_id,
        display_name=display_name(store, patient_id),
        tier=patient.tier,
        profile=patient.profile,
        day=day,
        utc_offset_s=utc_offset_s,
        gateway_id=store.gateway_id,
        site=site,
        start_s=start_s,
        spo2=per_minute(spo2_valid),
        pulse=per_minute(pulse),
        temperatures=tuple(zip(temp_times, temps, strict=True)),
        figures=spo2_figures(start_s, spo2_valid, spo2_resting, patient.profile),
        pulse_low=extreme(times, pulse, highest=False),
        pulse_high=extreme(times, pulse),
        max_temperature=extreme(temp_times, temps),
        gaps=tuple(gaps[:MAX_GAPS]),
        gap_total_s=sum(gap.length_s for gap in gaps),
        alerts=tuple(day_alerts(store, patient_id, start_s, end_s)),
    )


def _arrivals(start_s: int, n_s: int, rows: list[Row]) -> tuple[np.ndarray, np.ndarray]:
    """Per second of the grid: the OR of the quality flags of the rows received, and
    whether any row was received."""
    flags = np.zeros(n_s, dtype=np.int64)
    received = np.zeros(n_s, dtype=np.bool_)
    if rows:
        index = np.floor([row[0] for row in rows]).astype(np.int64) - start_s
        quality = np.array([row[2] for row in rows], dtype=np.int64)
        inside = (index >= 0) & (index < n_s)
        np.bitwise_or.at(flags, index[inside], quality[inside])
        received[index[inside]] = True
    return flags, received


def day_alerts(store: Store, patient_id: str, start_s: int, end_s: int) -> list[AlertLine]:
    """The patient's alerts live at some time in [start_s, end_s): raised before its end and
    not closed before its start; oldest first."""
    rows = store.db.execute(
        "SELECT id, rule, priority, status, onset_s, acked_by FROM alerts"
        " WHERE patient_id = ? AND onset_s < ? AND (status != 'closed' OR updated_s >= ?)"
        " ORDER BY onset_s, rule",
        [patient_id, end_s, start_s],
    ).fetchall()
    lines: list[AlertLine] = []
    for alert_id, rule, priority, status, onset_s, acked_by in rows:
        events = store.db.execute(
            "SELECT kind, ts_s FROM alert_events WHERE alert_id = ? ORDER BY ts_s, id",
            [alert_id],
        ).fetchall()
        acked = next((ts_s for kind, ts_s in events if kind == "acked"), None)
        cleared = next((ts_s for kind, ts_s in events if kind in ("resolved", "closed")), None)
        lines.append(
            AlertLine(alert_id, rule, Priority(priority), status, onset_s, acked, acked_by, cleared)
        )
    return lines
