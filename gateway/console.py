"""What a demo or foreground run prints: readings now and then, alerts as they happen, and a
summary at the end. Plain lines; the daemon itself logs to stderr.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from alerts.lifecycle import Alert, AlertEventKind
from devices.protocols.reading import Metric
from gateway.store import ReadingRow

FEVER_C = 37.3
READINGS_EVERY_S = 30

_LABELS = {Metric.SPO2: ("SpO2", "%"), Metric.PULSE: ("pulse", "bpm"), Metric.TEMP: ("temp", "°C")}


@dataclass(slots=True)
class ConsoleReporter:
    """Prints a line per patient every READINGS_EVERY_S seconds of data, each temperature,
    and every alert event."""

    echo: Callable[[str], None]
    latest: dict[str, dict[str, tuple[float, float | None]]] = field(default_factory=dict)
    last_line_s: dict[str, float] = field(default_factory=dict)
    alerts: list[tuple[Alert, AlertEventKind]] = field(default_factory=list)
    rows_seen: int = 0
    max_temp_c: dict[str, float] = field(default_factory=dict)
    min_spo2: dict[str, float] = field(default_factory=dict)
    demo_pin: str | None = None  # shown with the status page's address in a demo run

    def on_rows(self, rows: Sequence[ReadingRow]) -> None:
        self.rows_seen += len(rows)
        for row in rows:
            if row.patient_id is None:
                continue
            self.latest.setdefault(row.patient_id, {})[row.metric] = (row.ts_s, row.value)
            if row.value is not None and row.metric == Metric.SPO2:
                low = self.min_spo2.get(row.patient_id, row.value)
                self.min_spo2[row.patient_id] = min(low, row.value)
            if row.metric == Metric.TEMP:
                self._temperature(row)
        for patient_id, metrics in sorted(self.latest.items()):
            newest_s = max(ts for ts, _ in metrics.values())
            if newest_s - self.last_line_s.get(patient_id, 0.0) >= READINGS_EVERY_S:
                self.last_line_s[patient_id] = newest_s
                self.echo(f"{_clock(newest_s)}  {patient_id:<20} {self._vitals(metrics)}")

    def _temperature(self, row: ReadingRow) -> None:
        assert row.patient_id is not None
        if row.value is None:
            self.echo(f"{_clock(row.ts_s)}  {row.patient_id:<20} temp: no value")
            return
        self.max_temp_c[row.patient_id] = max(self.max_temp_c.get(row.patient_id, 0), row.value)
        note = "  FEVER" if row.value >= FEVER_C else ""
        site = f" ({row.site})" if row.site else ""
        self.echo(f"{_clock(row.ts_s)}  {row.patient_id:<20} temp {row.value:.1f} °C{site}{note}")

    @staticmethod
    def _vitals(metrics: dict[str, tuple[float, float | None]]) -> str:
        parts = []
        for metric, (label, unit) in _LABELS.items():
            if metric in metrics:
                value = metrics[metric][1]
                shown = (
                    "--"
                    if value is None
                    else f"{value:.1f}"
                    if metric == Metric.TEMP
                    else f"{value:g}"
                )
                parts.append(f"{label} {shown} {unit}")
        if metrics.get(Metric.SPO2, (0, 0.0))[1] is None:
            parts.append("(no finger / no signal)")
        return "  ".join(parts)

    def on_alert(self, alert: Alert, kind: AlertEventKind, ts_s: float) -> None:
        self.alerts.append((alert, kind))
        why = f": {describe(alert.details)}" if kind is AlertEventKind.RAISED else ""
        self.echo(
            f"{_clock(ts_s)}  ALERT {alert.priority} {alert.rule} {kind.value.upper()} "
            f"patient {alert.patient_id} ({alert.tier}){why}  [id {alert.id[:8]}]"
        )

    def on_listening(self, url: str) -> None:
        pin = f"  (demo PIN for acknowledging: {self.demo_pin})" if self.demo_pin else ""
        self.echo(f"status page: {url}{pin}")

    def summary(self, backlog: int, sent: int) -> list[str]:
        lines = [f"readings stored: {self.rows_seen}"]
        for patient_id in sorted(self.latest):
            low = self.min_spo2.get(patient_id)
            high = self.max_temp_c.get(patient_id)
            lines.append(
                f"  {patient_id:<20} lowest SpO2 {low:g} %"
                if low is not None
                else f"  {patient_id:<20} lowest SpO2 --"
            )
            if high is not None:
                lines[-1] += f", highest temp {high:.1f} °C"
        raised = [a for a, k in self.alerts if k is AlertEventKind.RAISED]
        lines.append(f"alerts raised: {len(raised)}")
        lines.extend(
            f"  {a.priority} {a.rule} patient {a.patient_id} [id {a.id[:8]}]" for a in raised
        )
        lines.append(f"outbox: {sent} sent to the broker, {backlog} waiting")
        return lines


def describe(details: dict[str, Any]) -> str:
    """Why a rule fired, in words, from the statistics the alert stored."""
    if "axillary_c" in details:
        site = f" {details['site']}" if "site" in details else ""
        return (
            f"temperature {details['value']:.1f} °C{site} "
            f"(axillary equivalent {details['axillary_c']:.1f} °C)"
        )
    channel = str(details.get("channel", ""))
    label, unit = _CHANNEL_LABELS.get(channel, (channel, ""))
    trigger = details.get("trigger")
    limit = details.get("limit")
    if trigger == "satseconds" and limit is not None:
        return (
            f"{label} {details['value']:g} {unit}, {details['satseconds']:g} {unit}·s "
            f"below {limit:g} {unit}"
        )
    if trigger == "crossings" and limit is not None:
        return f"{label} fell to <= {limit:g} {unit} 3 times within 60 s"
    if "window_fraction" in details:
        return f"{details['window_fraction']:.0%} of the last {details['window_s']:g} s"
    if "window_median" in details:
        text = f"{label} median {details['window_median']:g} {unit} over {details['window_s']:g} s"
        return f"{text} (limit {limit:g} {unit})" if limit is not None else text
    return ""


_CHANNEL_LABELS = {
    "spo2": ("SpO2", "%"),
    "pulse": ("pulse", "bpm"),
    "resp": ("respiration", "/min"),
    "probe_off": ("probe off", ""),
    "low_conf": ("low-quality data", ""),
}


def _clock(ts_s: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts_s))
