"""The words of the daily report that name stored values (rules, priorities, tiers, alert
states), as English message ids for gettext (see gateway/i18n.py) and the way times and
durations are written on the page.
"""

from __future__ import annotations

import math
import time


def N_(message: str) -> str:  # noqa: N802 (gettext's marker for deferred translation)
    """Mark `message` for extraction into the catalog; translated where it is shown."""
    return message


RULE_NAMES = {
    "S1": N_("critical SpO2"),
    "S2": N_("severe SpO2"),
    "S3": N_("borderline SpO2"),
    "S5": N_("SpO2 below baseline"),
    "S6": N_("nightly oximetry"),
    "H1": N_("pulse critical"),
    "H2": N_("pulse abnormal"),
    "H3": N_("resting pulse rise"),
    "R1": N_("respiration rate"),
    "Q1": N_("probe off"),
    "Q2": N_("low-quality data"),
    "T1": N_("fever"),
    "T2": N_("high fever"),
    "T3": N_("persistent fever"),
    "T4": N_("hypothermia"),
    "T5": N_("skin temperature rise"),
    "N1": N_("NEWS2 score"),
    "Q3": N_("scheduled reading missed"),
    "Q5": N_("oximeters disagree"),
}
PRIORITY_NAMES = {
    "HIGH": N_("high"),
    "MEDIUM": N_("medium"),
    "LOW": N_("low"),
    "INFO": N_("info"),
}
TIER_NAMES = {"red": N_("red tier"), "yellow": N_("yellow tier"), "green": N_("green tier")}
PROFILE_NAMES = {"default": N_("standard SpO2 targets"), "copd": N_("COPD target 88-92 %")}
STATUS_NAMES = {
    "open": N_("open"),
    "acked": N_("acknowledged"),
    "resolved": N_("resolved, not acknowledged"),
    "closed": N_("closed"),
}
GAP_REASONS = (
    N_("finger out of the probe"),
    N_("sensor fault"),
    N_("searching for a pulse"),
    N_("no usable value"),
    N_("no readings received"),
)  # the ids gateway.report_figures.gap_reason returns, listed here for extraction
TIER_COLOURS = {"red": "#d62728", "yellow": "#e0a800", "green": "#2ca02c"}


def clock_time(ts_s: float | None, utc_offset_s: int, day_start_s: int) -> str:
    """Local `HH:MM`, prefixed with the local date when outside the report's day; `-` for
    no time."""
    if ts_s is None:
        return "-"
    local = time.gmtime(ts_s + utc_offset_s)
    if day_start_s <= ts_s < day_start_s + 86_400:
        return time.strftime("%H:%M", local)
    return time.strftime("%m-%d %H:%M", local)


def minutes(seconds: float) -> str:
    """Whole minutes (a non-zero time under a minute shows as <1)."""
    if 0 < seconds < 60:
        return "<1"
    return f"{seconds / 60:.0f}"


def number(value: float, digits: int = 1) -> str:
    """A figure with `digits` decimals, `-` when it could not be computed (NaN)."""
    return "-" if math.isnan(value) else f"{value:.{digits}f}"
