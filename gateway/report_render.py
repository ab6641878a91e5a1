"""The daily report page: a `ReportData` drawn with matplotlib on one A4 portrait page, as
PDF or PNG bytes, in Chinese (default) or English.

matplotlib is used through its object API (no pyplot, so no GUI backend and no global
figures); text goes through the gettext catalog of gateway/i18n.py. Chinese needs a CJK font
from the system (Debian: fonts-noto-cjk or fonts-wqy-microhei), found with
`matplotlib.font_manager`; without one the report fails with a clear error instead of drawing
empty boxes. PDF text is embedded as TrueType (Type 42), so it stays searchable.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import math
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from alerts.rules import Profile
from gateway.i18n import translator
from gateway.report_data import FORMATS, Format, ReportData, ReportError, read_report_data
from gateway.report_figures import (
    COPD_TARGET_PERCENT,
    TEMPERATURE_LINES_C,
    MinuteSeries,
    gap_reason,
    pulse_lines,
    spo2_lines,
)
from gateway.report_text import (
    N_,
    PRIORITY_NAMES,
    PROFILE_NAMES,
    RULE_NAMES,
    STATUS_NAMES,
    TIER_COLOURS,
    TIER_NAMES,
    clock_time,
    minutes,
    number,
)
from gateway.store import Store

A4_PORTRAIT_IN = (8.27, 11.69)
PNG_DPI = 110
MAX_ALERT_ROWS = 8
# Families with Simplified Chinese glyphs, best first (Debian: fonts-noto-cjk, fonts-wqy-*).
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
)
_CJK_FILE_HINTS = ("notosanscjk", "sourcehansans", "wqy", "droidsansfallback")
Translate = Callable[[str], str]


def render_report(
    store: Store,
    patient_id: str,
    day: dt.date,
    fmt: Format,
    *,
    lang: str = "zh",
    utc_offset_s: int = 8 * 3600,
    site: str = "",
) -> bytes:
    """The daily report of `patient_id` for local `day` as PDF or PNG bytes. Raises
    ReportError for an unknown patient, format or language, or a missing CJK font."""
    if fmt not in FORMATS:
        raise ReportError(f"unknown report format {fmt!r}; use pdf or png")
    data = read_report_data(store, patient_id, day, utc_offset_s, site)
    return draw_report(data, fmt, lang)


def draw_report(data: ReportData, fmt: Format, lang: str = "zh") -> bytes:
    """Draw `data` on one A4 page; PDF or PNG bytes."""
    try:
        _ = translator(lang).gettext
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    families = [cjk_font_family(), "DejaVu Sans"]
    with mpl.rc_context({"font.family": families, "pdf.fonttype": 42, "axes.unicode_minus": False}):
        figure = Figure(figsize=A4_PORTRAIT_IN)
        _header(figure, data, _)
        _charts(figure, data, _)
        _figures_table(figure, data, _)
        _gaps_table(figure, data, _)
        _alerts_table(figure, data, _)
        if data.from_summaries:
            note = _(SUMMARY_NOTE)
            width = NOTE_WIDTH_CJK if any(ord(c) >= CJK_START for c in note) else NOTE_WIDTH
            figure.text(0.06, 0.012, textwrap.fill(note, width), fontsize=7, color="#555555")
        buffer = io.BytesIO()
        metadata = {"Title": _("Daily oximetry and temperature report"), "Creator": "pulsegate"}
        if fmt == "pdf":
            metadata["CreationDate"] = None  # type: ignore[assignment]
        figure.savefig(buffer, format=fmt, dpi=PNG_DPI, metadata=metadata)
    return buffer.getvalue()


@functools.cache
def cjk_font_family() -> str:
    """The name of an installed font family with Chinese glyphs (ReportError if none)."""
    found = _known_family()
    if found is None:
        # Installed after matplotlib cached its font list: register the files themselves.
        for path in font_manager.findSystemFonts():
            if any(hint in Path(path).name.lower() for hint in _CJK_FILE_HINTS):
                font_manager.fontManager.addfont(path)
        found = _known_family()
    if found is None:
        raise ReportError(
            "no Chinese font installed; install one: apt-get install fonts-wqy-microhei"
            " (or fonts-noto-cjk)"
        )
    return found


def _known_family() -> str | None:
    names = {font.name for font in font_manager.fontManager.ttflist}
    return next((family for family in CJK_FAMILIES if family in names), None)


UNKNOWN_TIER_COLOUR = "#777777"
NOTE_WIDTH, NOTE_WIDTH_CJK = 165, 64  # characters a line of the 7-point note across the page
CJK_START = 0x2E80  # CJK characters are about twice as wide as Latin ones
SUMMARY_NOTE = N_(
    "Made at the township hub from per-minute summaries: each minute's valid seconds are"
    " counted at its median (one at its minimum, one at its maximum) for the time below each"
    " level and the coverage; the nadir is the lowest minute minimum; ODI3 needs every second"
    " and is left out; temperatures as measured."
)


def _header(figure: Figure, data: ReportData, _: Translate) -> None:
    figure.text(0.06, 0.965, _("Daily oximetry and temperature report"), fontsize=17)
    figure.text(0.94, 0.965, data.day.isoformat(), fontsize=15, ha="right")
    name = data.display_name or data.patient_id
    if data.display_name:
        name += f"  ({data.patient_id})"
    figure.text(0.06, 0.94, _("Patient: {name}").format(name=name), fontsize=11)
    tier = _(TIER_NAMES[data.tier.value]) if data.tier is not None else _("tier not known here")
    colour = TIER_COLOURS[data.tier.value] if data.tier is not None else UNKNOWN_TIER_COLOUR
    figure.text(
        0.06,
        0.918,
        f" {tier} ",
        fontsize=10,
        color="white",
        bbox={"facecolor": colour, "edgecolor": "none", "pad": 2},
    )
    figure.text(0.94, 0.918, _(PROFILE_NAMES[data.profile.value]), fontsize=10, ha="right")
    where = data.gateway_id + (f" / {data.site}" if data.site else "")
    offset_h = data.utc_offset_s / 3600
    figure.text(
        0.94,
        0.94,
        _("Gateway {where}, times UTC{offset:+g}").format(where=where, offset=offset_h),
        fontsize=9,
        ha="right",
    )


def _charts(figure: Figure, data: ReportData, _: Translate) -> None:
    spo2_ax = figure.add_axes((0.09, 0.7, 0.84, 0.19))
    pulse_ax = figure.add_axes((0.09, 0.595, 0.84, 0.095), sharex=spo2_ax)
    temp_ax = figure.add_axes((0.09, 0.49, 0.84, 0.095), sharex=spo2_ax)
    hours = np.arange(len(data.spo2.median)) * (24.0 / len(data.spo2.median))

    _band(spo2_ax, hours, data.spo2, "#1f77b4")
    spo2_low = np.nanmin(data.spo2.low) if not np.all(np.isnan(data.spo2.low)) else 90.0
    spo2_ax.set_ylim(min(80.0, np.floor(spo2_low) - 2), 100.5)
    if data.profile is Profile.COPD:
        spo2_ax.axhspan(*COPD_TARGET_PERCENT, color="#2ca02c", alpha=0.12, lw=0)
    for rule, level in spo2_lines(data.tier, data.profile) if data.tier is not None else ():
        _limit(spo2_ax, level, f"{rule} {level:g}")
    spo2_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    spo2_ax.set_ylabel("SpO2 %")

    _band(pulse_ax, hours, data.pulse, "#9467bd")
    pulse_values = data.pulse.high[~np.isnan(data.pulse.high)]
    top = max(150.0, float(pulse_values.max()) + 5) if len(pulse_values) else 150.0
    bottom = min(30.0, float(np.nanmin(data.pulse.low)) - 5) if len(pulse_values) else 30.0
    pulse_ax.set_ylim(bottom, top)
    for level in pulse_lines(data.tier) if data.tier is not None else ():
        _limit(pulse_ax, level, f"{level:g}")
    pulse_ax.set_ylabel(_("pulse /min"))

    if data.temperatures:
        times, temps = zip(*data.temperatures, strict=True)
        temp_hours = (np.asarray(times) - data.start_s) / 3600.0
        temp_ax.plot(temp_hours, temps, "o-", color="#d62728", ms=3, lw=1)
        temp_ax.set_ylim(min(34.5, min(temps) - 0.3), max(39.5, max(temps) + 0.3))
    else:
        temp_ax.set_ylim(34.5, 39.5)
    for level in TEMPERATURE_LINES_C:
        _limit(temp_ax, level, f"{level:g}")
    temp_ax.set_ylabel(_("temp °C"))

    for axes in (spo2_ax, pulse_ax, temp_ax):
        axes.grid(axis="x", color="#dddddd", lw=0.6)
        axes.tick_params(labelsize=8)
        if axes is not temp_ax:
            axes.tick_params(labelbottom=False)
    temp_ax.set_xlim(0, 24)
    temp_ax.set_xticks(range(0, 25, 3))
    temp_ax.set_xticklabels([f"{h:02d}:00" for h in range(0, 25, 3)])
    temp_ax.set_xlabel(_("local time"), fontsize=8)
    if not data.has_data:
        spo2_ax.text(12, 90, _("no data for this day"), ha="center", va="center", fontsize=16)


def _band(axes: Axes, hours: np.ndarray, series: MinuteSeries, colour: str) -> None:
    """Per-minute median as a line, the minute's range as a light band."""
    axes.fill_between(hours, series.low, series.high, color=colour, alpha=0.25, lw=0)
    axes.plot(hours, series.median, color=colour, lw=0.8)


def _limit(axes: Axes, level: float, label: str) -> None:
    axes.axhline(level, color="#888888", lw=0.7, ls="--")
    axes.text(24.1, level, label, fontsize=7, va="center", color="#555555")


def _figures_table(figure: Figure, data: ReportData, _: Translate) -> None:
    figures = data.figures
    rows: list[tuple[str, str]] = []
    for below in figures.below:
        share = number(below.share_percent)
        rows.append(
            (
                _("Time below {level:g} %").format(level=below.level_percent),
                _("{minutes} min ({share} %)").format(minutes=minutes(below.seconds), share=share),
            )
        )
    nadir_at = clock_time(figures.nadir_at_s, data.utc_offset_s, data.start_s)
    rows += [
        (_("Nadir"), f"{number(figures.nadir_percent, 0)} %  ({nadir_at})"),
        (
            _("ODI3 (desaturations per hour)"),
            "-"  # the seconds it needs are not in per-minute summaries
            if math.isnan(figures.odi3_per_hour)
            else _("{odi}/h ({events} events)").format(
                odi=number(figures.odi3_per_hour), events=figures.desaturations
            ),
        ),
    ]
    if data.profile is Profile.COPD:
        rows.append((_("Time below 85 %"), f"{number(figures.below_85_percent)} %"))
    else:
        rows.append((_("CT90 (time at or below 90 %)"), f"{number(figures.ct90_percent)} %"))
    rows.append((_("Pulse range"), _pulse_range(data)))
    hottest = data.max_temperature
    rows.append(
        (
            _("Highest temperature"),
            "-"
            if hottest is None
            else f"{hottest.value:.1f} °C  "
            f"({clock_time(hottest.at_s, data.utc_offset_s, data.start_s)})",
        )
    )
    rows.append(
        (
            _("SpO2 coverage of the day"),
            _("{coverage} % ({hours} h monitored at rest)").format(
                coverage=number(figures.coverage_percent),
                hours=number(figures.monitored_s / 3600),
            ),
        )
    )
    _table(figure, (0.06, 0.215, 0.5, 0.2), _("Figures"), rows, (0.5, 0.5))
    note = _(
        "Figures count SpO2 at rest: values flagged for motion or low perfusion are drawn"
        " but not counted. 'Below' is strictly below the level."
    )
    figure.text(0.06, 0.222, note, fontsize=6.5, color="#555555", wrap=True)


def _pulse_range(data: ReportData) -> str:
    if data.pulse_low is None or data.pulse_high is None:
        return "-"
    low, high = data.pulse_low, data.pulse_high
    return (
        f"{low.value:.0f} ({clock_time(low.at_s, data.utc_offset_s, data.start_s)}) - "
        f"{high.value:.0f} ({clock_time(high.at_s, data.utc_offset_s, data.start_s)})"
    )


def _gaps_table(figure: Figure, data: ReportData, _: Translate) -> None:
    rows = [
        (
            clock_time(gap.start_s, data.utc_offset_s, data.start_s),
            _("{minutes} min").format(minutes=minutes(gap.length_s)),
            _(gap_reason(gap)),
        )
        for gap in data.gaps
    ]
    if not rows:
        rows = [("-", "-", "-")]
    title = _("Gaps without SpO2 (total {minutes} min)").format(minutes=minutes(data.gap_total_s))
    _table(figure, (0.6, 0.215, 0.34, 0.2), title, rows, (0.22, 0.24, 0.54))


def _alerts_table(figure: Figure, data: ReportData, _: Translate) -> None:
    header = (_("Rule"), _("Priority"), _("Raised"), _("Acknowledged"), _("Cleared"), _("Status"))
    rows: list[tuple[str, ...]] = [header]
    for alert in data.alerts[:MAX_ALERT_ROWS]:
        when: Callable[[float | None], str] = functools.partial(
            clock_time, utc_offset_s=data.utc_offset_s, day_start_s=data.start_s
        )
        acked = when(alert.acked_s)
        if alert.acked_by:
            acked += f" {alert.acked_by}"
        rows.append(
            (
                f"{alert.rule} {_(RULE_NAMES.get(alert.rule, alert.rule))}",
                _(PRIORITY_NAMES[alert.priority.value]),
                when(alert.raised_s),
                acked,
                when(alert.cleared_s),
                _(STATUS_NAMES.get(alert.status, alert.status)),
            )
        )
    if len(rows) == 1:
        rows.append((_("no alerts on this day"), "", "", "", "", ""))
    title = _("Alerts ({count})").format(count=len(data.alerts))
    if len(data.alerts) > MAX_ALERT_ROWS:
        title += "  " + _("first {shown} shown").format(shown=MAX_ALERT_ROWS)
    _table(figure, (0.06, 0.03, 0.88, 0.155), title, rows, (0.24, 0.09, 0.1, 0.22, 0.1, 0.25))


def _table(
    figure: Figure,
    box: tuple[float, float, float, float],
    title: str,
    rows: Sequence[Sequence[str]],
    widths: Sequence[float],
) -> None:
    axes = figure.add_axes(box)
    axes.set_axis_off()
    axes.set_title(title, fontsize=11, loc="left")
    table = axes.table(
        cellText=[list(row) for row in rows],
        colWidths=list(widths),
        cellLoc="left",
        loc="upper left",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1, 1.25)
    for cell in table.get_celld().values():
        cell.set_edgecolor("#cccccc")
        cell.PAD = 0.03
