"""What the local status page shows, read from the store: each patient with tier, latest
vitals and their age, per-minute series for the sparklines, devices and open alerts.

Runs on the store's thread (the daemon's `StoreWorker`), never on the event loop. The
sparkline series come from `SeriesCache`, which scans only the readings stored since its last
call (readings ids are time-ordered), so a page refresh reads a few seconds of rows, not hours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devices.protocols.reading import INVALIDATING, Metric, Quality
from gateway.display_names import display_names
from gateway.migrations import READING_ID_SECOND_SHIFT, reading_id_floor
from gateway.store import Store

WINDOW_S = 3 * 3600  # the sparklines show the last 3 hours
BUCKET_S = 60
SILENT_AFTER_S = 60.0  # a continuous device with no data for this long is "silent"
SPOT_SILENT_AFTER_S = 86_400.0  # a thermometer is used now and then: silent after a day
SPOT_METRICS = {Metric.TEMP.value}
RESCAN_MINUTES = 2  # late readings up to this old are still counted
SHOWN_METRICS = (Metric.SPO2.value, Metric.PULSE.value, Metric.TEMP.value)
CACHED_METRICS = (*SHOWN_METRICS, Metric.BATTERY.value)  # the battery: its newest value only
PRIORITY_ORDER = {"HIGH": 0, "MEDIUM": 1, "LOW": 2, "INFO": 3}
ACKABLE = ("open", "resolved")


@dataclass(frozen=True, slots=True)
class Latest:
    ts_s: float
    value: float | None
    quality: int


@dataclass(slots=True)
class _SeriesState:
    """Per-minute sums of one series, and its newest reading."""

    buckets: dict[int, tuple[float, int]] = field(default_factory=dict)  # minute -> sum, n
    latest: Latest | None = None


@dataclass(slots=True)
class SeriesCache:
    """Per-minute means of the shown metrics over the last WINDOW_S, per reading series.

    Built once (in slices of `max_span_s` when asked, so that no single store call is long),
    then kept up to date by reading only what was stored since. Rebuilt when the daemon moved
    stored readings onto a corrected clock (a `clock` entry in the maintenance log)."""

    _series: dict[int, _SeriesState] = field(default_factory=dict)
    _last_id: int = -1
    _clock_mark: int | None = None
    scanned_rows: int = 0  # rows read by the last refresh (for the benchmark)

    def refresh(self, store: Store, now_s: float, max_span_s: float | None = None) -> bool:
        """Read what was stored since the last call, at most `max_span_s` of it; True when
        the cache has caught up. The last RESCAN_MINUTES minutes are read again, so a reading
        stored late (a device's buffered data) still counts."""
        [(clock_mark,)] = store.db.execute(
            "SELECT ifnull(max(id), 0) FROM maintenance_log WHERE kind = 'clock'"
        )
        if clock_mark != self._clock_mark:
            self._series.clear()
            self._last_id = -1
            self._clock_mark = clock_mark
        start_id = reading_id_floor(now_s - WINDOW_S)
        low_id = start_id
        if self._last_id >= 0:
            resume_minute = (self._last_id >> READING_ID_SECOND_SHIFT) // BUCKET_S - RESCAN_MINUTES
            low_id = max(start_id, reading_id_floor(resume_minute * BUCKET_S))
            for state in self._series.values():
                for minute in [m for m in state.buckets if m >= resume_minute]:
                    del state.buckets[minute]
        high_id = None
        if max_span_s is not None:  # from where the last call ended: always forward
            from_second = max(low_id, self._last_id + 1) >> READING_ID_SECOND_SHIFT
            high_id = reading_id_floor(from_second + max(max_span_s, 1.0))
        self._read(store, low_id, high_id)
        oldest_minute = int(now_s - WINDOW_S) // BUCKET_S
        for state in self._series.values():
            for minute in [m for m in state.buckets if m < oldest_minute]:
                del state.buckets[minute]
        if high_id is None:
            return True
        [(newest,)] = store.db.execute("SELECT ifnull(max(id), -1) FROM reading_samples")
        newest_id = int(newest)
        self._last_id = max(self._last_id, min(high_id - 1, newest_id))
        return high_id > newest_id

    def _read(self, store: Store, low_id: int, high_id: int | None) -> None:
        wanted = _shown_series(store)
        rows = store.db.execute(
            "SELECT id, series_id, ts_s, value, quality FROM reading_samples WHERE id >= ?"
            " AND id < ?"
            f" AND series_id IN ({','.join('?' * len(wanted)) or 'NULL'}) ORDER BY id",
            [low_id, high_id if high_id is not None else 2**63 - 1, *wanted],
        ).fetchall()
        self.scanned_rows = len(rows)
        for row_id, series_id, ts_s, value, quality in rows:
            state = self._series.setdefault(series_id, _SeriesState())
            if state.latest is None or ts_s >= state.latest.ts_s:
                state.latest = Latest(float(ts_s), value, int(quality))
            if value is not None:
                minute = int(row_id >> READING_ID_SECOND_SHIFT) // BUCKET_S
                total, count = state.buckets.get(minute, (0.0, 0))
                state.buckets[minute] = (total + value, count + 1)
            self._last_id = max(self._last_id, row_id)

    def series(self, series_id: int) -> list[tuple[float, float | None]]:
        """(minute start, mean) of one series, oldest first."""
        state = self._series.get(series_id)
        if state is None:
            return []
        return [
            (minute * BUCKET_S + BUCKET_S / 2, total / count)
            for minute, (total, count) in sorted(state.buckets.items())
        ]

    def latest(self, series_id: int) -> Latest | None:
        state = self._series.get(series_id)
        return None if state is None else state.latest


def _shown_series(store: Store) -> list[int]:
    rows = store.db.execute(
        f"SELECT id FROM reading_series WHERE metric IN ({','.join('?' * len(CACHED_METRICS))})",
        list(CACHED_METRICS),
    )
    return [int(row[0]) for row in rows]


@dataclass(frozen=True, slots=True)
class DeviceView:
    device_id: str
    protocol: str
    state: str  # a link state (connected, scanning, ...), or receiving / silent when unknown
    battery_percent: float | None
    no_finger: bool
    last_data_s: float | None


@dataclass(frozen=True, slots=True)
class Vital:
    metric: str
    latest: Latest | None
    series: list[tuple[float, float | None]]


@dataclass(frozen=True, slots=True)
class PatientView:
    id: str
    display_name: str | None
    tier: str
    profile: str
    vitals: dict[str, Vital]
    devices: list[DeviceView]
    alerts: list[dict[str, Any]]

    @property
    def worst_priority(self) -> str | None:
        live = [a["priority"] for a in self.alerts if a["status"] in ACKABLE]
        return min(live, key=lambda p: PRIORITY_ORDER.get(p, 0)) if live else None


@dataclass(frozen=True, slots=True)
class PageData:
    now_s: float
    patients: list[PatientView]
    backlog: int
    last_acknowledged_s: float | None
    orphan_alerts: list[dict[str, Any]]  # alerts of patients no longer listed


def gather_page(store: Store, cache: SeriesCache, now_s: float) -> PageData:
    """Everything the page shows, at `now_s` (the daemon's clock)."""
    cache.refresh(store, now_s)
    names = display_names(store)
    series = _patient_series(store)
    devices = _patient_devices(store, cache, now_s)
    alerts = _open_alerts(store)
    patients = []
    for patient in store.list_patients():
        vitals = {}
        for metric in SHOWN_METRICS:
            ids = series.get((patient.id, metric), [])
            vitals[metric] = _vital(cache, metric, ids)
        patients.append(
            PatientView(
                id=patient.id,
                display_name=names.get(patient.id),
                tier=patient.tier.value,
                profile=patient.profile.value,
                vitals=vitals,
                devices=devices.get(patient.id, []),
                alerts=alerts.pop(patient.id, []),
            )
        )
    patients.sort(key=_triage_key)
    [(last_sent_s,)] = store.db.execute("SELECT max(sent_s) FROM outbox")
    backlog = sum(store.outbox_backlog().values())
    orphans = [alert for rows in alerts.values() for alert in rows]
    return PageData(now_s, patients, backlog, last_sent_s, orphans)


def _triage_key(patient: PatientView) -> tuple[int, int, str]:
    worst = patient.worst_priority
    tier_rank = {"red": 0, "yellow": 1, "green": 2}.get(patient.tier, 3)
    return (PRIORITY_ORDER.get(worst, 9) if worst else 9, tier_rank, patient.id)


def _vital(cache: SeriesCache, metric: str, series_ids: list[int]) -> Vital:
    """One metric of a patient, over every series it came from (devices, sites)."""
    latest = None
    points: list[tuple[float, float | None]] = []
    for series_id in series_ids:
        candidate = cache.latest(series_id)
        if candidate is not None and (latest is None or candidate.ts_s > latest.ts_s):
            latest = candidate
        points.extend(cache.series(series_id))
    points.sort(key=lambda point: point[0])
    return Vital(metric, latest, points)


def _patient_series(store: Store) -> dict[tuple[str, str], list[int]]:
    result: dict[tuple[str, str], list[int]] = {}
    rows = store.db.execute(
        "SELECT id, patient_id, metric FROM reading_series WHERE patient_id != ''"
    )
    for series_id, patient_id, metric in rows:
        result.setdefault((patient_id, metric), []).append(int(series_id))
    return result


def _patient_devices(store: Store, cache: SeriesCache, now_s: float) -> dict[str, list[DeviceView]]:
    """Devices bound now, with their link status, or what the data says when there is none."""
    rows = store.db.execute(
        "SELECT b.patient_id, d.id, d.protocol, s.state, s.battery_percent, s.last_data_s"
        " FROM bindings b JOIN devices d ON d.id = b.device_id"
        " LEFT JOIN device_status s ON s.device_id = d.id"
        " WHERE b.end_s IS NULL ORDER BY d.id"
    ).fetchall()
    series_of: dict[str, list[tuple[int, str]]] = {}
    for series_id, device_id, metric in store.db.execute(
        "SELECT id, device_id, metric FROM reading_series"
    ):
        series_of.setdefault(device_id, []).append((int(series_id), metric))
    result: dict[str, list[DeviceView]] = {}
    for patient_id, device_id, protocol, link_state, service_battery, last_data_s in rows:
        newest: Latest | None = None
        in_band: Latest | None = None  # the battery level the device sends with its data
        no_finger = False
        for series_id, metric in series_of.get(device_id, []):
            latest = cache.latest(series_id)
            if latest is None:
                continue
            if newest is None or latest.ts_s > newest.ts_s:
                newest = latest
            if metric == Metric.SPO2.value:
                no_finger = bool(latest.quality & (INVALIDATING | Quality.FINGER_OUT))
            elif metric == Metric.BATTERY.value and latest.value is not None:
                in_band = latest if in_band is None or latest.ts_s > in_band.ts_s else in_band
        # The device's own level is fresher than the Battery Service, read once at connect.
        battery = in_band.value if in_band is not None else service_battery
        seen_s = newest.ts_s if newest is not None else last_data_s
        metrics = {metric for _, metric in series_of.get(device_id, [])}
        spot = bool(metrics) and metrics <= SPOT_METRICS
        silent_after_s = SPOT_SILENT_AFTER_S if spot else SILENT_AFTER_S
        state = link_state or (
            "receiving" if seen_s is not None and now_s - seen_s < silent_after_s else "silent"
        )
        view = DeviceView(device_id, protocol, state, battery, no_finger, seen_s)
        result.setdefault(patient_id, []).append(view)
    return result


def _open_alerts(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Alerts not closed, per patient, most urgent and then oldest first."""
    rows = store.list_alerts(open_only=True, limit=500)
    rows.sort(key=lambda a: (PRIORITY_ORDER.get(a["priority"], 0), a["onset_s"]))
    result: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        row["can_ack"] = row["status"] in ACKABLE
        result.setdefault(row["patient_id"], []).append(row)
    return result
