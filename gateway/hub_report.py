"""The daily report at the township hub, from what the hub receives: the per-minute summaries
of SpO2, pulse and temperature, and the alerts with their events. The same page as the box
draws (`gateway.report_render.draw_report`), with what minutes cannot give marked as such.

The box has every second; the hub has, per minute, the count of valid readings and their
lowest, median and highest value. Each minute is laid out on the 1 Hz grid as its valid
seconds: one at the lowest value, one at the highest, the rest at the median. So a minute's
chart point (low, median, high) is the box's, the day's nadir is the lowest minute minimum,
and coverage and the time below each level count the minutes' valid seconds by their median.
The box's nadir leaves one-second dips out as artefacts; at the hub a minute's minimum has no
seconds around it to judge by, so the nadir shown is the lowest minute minimum.
ODI3 needs the seconds themselves and is left out (shown as "-"); gaps are whole minutes
without a valid value. Temperatures are each
minute's highest, as measured (the summaries do not carry the body site). The patient's tier
and profile are those the gateway last reported active, else its newest alert's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

import numpy as np

from alerts.daily import SECONDS_PER_DAY
from alerts.rules import Priority, Profile, Tier
from devices.protocols.reading import Metric
from gateway.day_history import local_midnight_s
from gateway.report_data import AlertLine, ReportData, ReportError
from gateway.report_figures import (
    MAX_GAPS,
    extreme,
    find_gaps,
    per_minute,
    spo2_figures,
)
from sync.hub_settings import active_echo_details
from sync.hub_store import HubStore

MINUTE_S = 60
MINUTES = SECONDS_PER_DAY // MINUTE_S
_CLEARING = ("resolved", "closed")


def _minute_grid(rows: list[dict[str, Any]], metric: Metric, start_s: int) -> np.ndarray:
    """The 1 Hz grid of a day laid out from its minute rows (see the module's docstring)."""
    grid = np.full(SECONDS_PER_DAY, np.nan)
    for row in rows:
        if row["metric"] != metric.value or row["median"] is None or not row["n"]:
            continue
        first = int(row["minute_s"]) - start_s
        if not 0 <= first < SECONDS_PER_DAY:
            continue
        n = min(int(row["n"]), MINUTE_S)
        grid[first : first + n] = row["median"]
        grid[first] = row["min"]
        if n > 1:
            grid[first + 1] = row["max"]
    return grid


def _minute_coverage(
    rows: list[dict[str, Any]], start_s: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per second, from its minute's SpO2 row: whether the minute had a valid value, the
    quality flags of its readings, and whether any reading came. Gaps at the hub are whole
    minutes: where in its minute a missing second lay is not in the summary."""
    valid = np.zeros(SECONDS_PER_DAY, dtype=np.bool_)
    flags = np.zeros(SECONDS_PER_DAY, dtype=np.int64)
    received = np.zeros(SECONDS_PER_DAY, dtype=np.bool_)
    for row in rows:
        first = int(row["minute_s"]) - start_s
        if row["metric"] != Metric.SPO2.value or not 0 <= first < SECONDS_PER_DAY:
            continue
        minute = slice(first, first + MINUTE_S)
        valid[minute] = bool(row["n"]) and row["median"] is not None
        flags[minute] = int(row["quality"] or 0)
        received[minute] = (row["n"] or 0) + (row["missing"] or 0) > 0
    return valid, flags, received


def _tier_and_profile(
    store: HubStore, key: tuple[str, str, str], alerts: list[dict[str, Any]]
) -> tuple[Tier | None, Profile]:
    active = active_echo_details(store, *key)
    if active.get("tier") in {t.value for t in Tier}:
        return Tier(active["tier"]), Profile(active.get("profile", Profile.DEFAULT.value))
    if alerts:
        newest = max(alerts, key=lambda a: a["event_s"])
        return Tier(newest["tier"]), Profile(newest["profile"])
    return None, Profile.DEFAULT


def _day_alerts(
    store: HubStore, key: tuple[str, str, str], start_s: int, end_s: int
) -> tuple[list[dict[str, Any]], list[AlertLine]]:
    with store.transaction() as tx:
        alerts = tx.rows(
            "SELECT alert_id, rule, priority, tier, profile, status, onset_s, event_s, acked_by,"
            " hub_acked_by FROM hub_alerts WHERE site = ? AND gateway = ? AND patient = ?"
            " ORDER BY onset_s, rule",
            key,
        )
        lines = []
        for alert in alerts:
            if alert["onset_s"] >= end_s or (
                alert["status"] == "closed" and alert["event_s"] < start_s
            ):
                continue
            events = tx.rows(
                "SELECT event, event_s FROM hub_events WHERE alert_id = ? ORDER BY event_s",
                (alert["alert_id"],),
            )
            acked = next((e["event_s"] for e in events if e["event"] == "acked"), None)
            cleared = next((e["event_s"] for e in events if e["event"] in _CLEARING), None)
            lines.append(
                AlertLine(
                    alert["alert_id"],
                    alert["rule"],
                    Priority(alert["priority"]),
                    alert["status"],
                    float(alert["onset_s"]),
                    acked,
                    alert["acked_by"] or alert["hub_acked_by"],
                    cleared,
                )
            )
    return alerts, lines


def _nadir(minute_lows: np.ndarray, start_s: int) -> dict[str, Any]:
    """The lowest minute minimum and its minute (the box's nadir drops one-second dips as
    artefacts; a minute's minimum has no seconds around it to judge that by)."""
    if np.isnan(minute_lows).all():
        return {"nadir_percent": math.nan, "nadir_at_s": None}
    minute = int(np.nanargmin(minute_lows))
    return {"nadir_percent": float(minute_lows[minute]), "nadir_at_s": start_s + minute * MINUTE_S}


def _has_summaries(store: HubStore, key: tuple[str, str, str]) -> bool:
    with store.transaction() as tx:
        return bool(
            tx.rows(
                "SELECT 1 AS found FROM hub_summaries"
                " WHERE site = ? AND gateway = ? AND patient = ? LIMIT 1",
                key,
            )
        )


def hub_report_data(
    store: HubStore, site: str, gateway: str, patient: str, day: dt.date, utc_offset_s: int
) -> ReportData:
    """The report of `patient` at `site`/`gateway` for local `day`, from the hub's tables.
    Raises ReportError when the hub has heard nothing at all of the patient."""
    key = (site, gateway, patient)
    start_s = local_midnight_s(day, utc_offset_s)
    end_s = start_s + SECONDS_PER_DAY
    rows = store.patient_summaries(site, gateway, patient, start_s, end_s)
    alerts, lines = _day_alerts(store, key, start_s, end_s)
    if not alerts and not _has_summaries(store, key):
        raise ReportError(
            f"the hub has no summaries and no alerts of {patient} from {site}/{gateway}"
        )
    tier, profile = _tier_and_profile(store, key, alerts)
    spo2 = _minute_grid(rows, Metric.SPO2, start_s)
    pulse = _minute_grid(rows, Metric.PULSE, start_s)
    times = start_s + np.arange(SECONDS_PER_DAY, dtype=np.float64)
    minutes = per_minute(spo2)
    figures = dataclasses.replace(
        spo2_figures(start_s, spo2, spo2, profile),
        odi3_per_hour=math.nan,
        desaturations=0,
        **_nadir(minutes.low, start_s),
    )
    temperatures = tuple(
        (float(row["minute_s"]) + MINUTE_S / 2, float(row["max"]))
        for row in rows
        if row["metric"] == Metric.TEMP.value and row["max"] is not None
    )
    temp_times = np.array([t for t, _ in temperatures], dtype=np.float64)
    temp_values = np.array([v for _, v in temperatures], dtype=np.float64)
    gaps = find_gaps(start_s, *_minute_coverage(rows, start_s))
    return ReportData(
        patient_id=patient,
        display_name=None,  # names stay on the box
        tier=tier,
        profile=profile,
        day=day,
        utc_offset_s=utc_offset_s,
        gateway_id=gateway,
        site=site,
        start_s=start_s,
        spo2=minutes,
        pulse=per_minute(pulse),
        temperatures=temperatures,
        figures=figures,
        pulse_low=extreme(times, pulse, highest=False),
        pulse_high=extreme(times, pulse),
        max_temperature=extreme(temp_times, temp_values),
        gaps=tuple(gaps[:MAX_GAPS]),
        gap_total_s=sum(gap.length_s for gap in gaps),
        alerts=tuple(lines),
        from_summaries=True,
    )
