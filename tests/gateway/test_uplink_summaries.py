"""Per-patient summaries from a real store: complete batches only, each minute once (through a
reopened store too), the figures of the retention roll-up, stretches without data skipped."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from alerts.lifecycle import Alert, AlertEventKind
from alerts.rules import Profile, Tier
from devices.protocols.reading import Metric, Quality
from gateway.store import Patient, ReadingRow, Store
from gateway.uplink_devices import Topics
from gateway.uplink_summaries import BATCH_S, summarise_due, watermarks
from sync.payload import OutboxMessage, OutboxPriority, alert_event_message, iso_utc
from sync.summaries import decode_metrics

T0_S = 1_800_000_000  # a minute boundary
TOPICS = Topics("pulsegate", "village-1", "gw-1")


def message(alert: Alert, kind: AlertEventKind, ts_s: float) -> OutboxMessage:
    return alert_event_message("pulsegate", "village-1", alert, kind, ts_s)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "pulsegate.db", "gw-1")
    store.add_patient(Patient("p-1", Tier.RED, Profile.DEFAULT), T0_S)
    store.add_patient(Patient("p-2", Tier.GREEN, Profile.DEFAULT), T0_S)
    return store


def spo2(second: int) -> float | None:
    """A made-up series: no finger every 7th second, else 90-99 %."""
    return None if second % 7 == 0 else float(90 + second % 10)


def write_oximetry(store: Store, start_s: int, end_s: int, patient: str = "p-1") -> None:
    rows = [
        ReadingRow(
            T0_S + s,
            patient,
            f"ox-{patient}",
            Metric.SPO2,
            spo2(s),
            int(Quality.FINGER_OUT) if spo2(s) is None else 0,
        )
        for s in range(start_s, end_s)
    ]
    rows += [ReadingRow(T0_S + start_s + 30, patient, f"th-{patient}", Metric.TEMP, 36.85, 0)]
    store.write_batch(rows, [], {}, message, T0_S + end_s)


def summaries(store: Store) -> list[dict[str, object]]:
    rows = store.db.execute("SELECT priority, topic, payload FROM outbox ORDER BY id").fetchall()
    assert all(p == OutboxPriority.SUMMARY for p, _, _ in rows)
    assert all(t == "pulsegate/village-1/gw-1/summaries" for _, t, _ in rows)
    return [json.loads(payload) for _, _, payload in rows]


def test_complete_batches_are_summarised_once_even_after_reopening(
    store: Store, tmp_path: Path
) -> None:
    assert summarise_due(store, T0_S + 1, TOPICS) == 0  # starts the watermarks
    write_oximetry(store, 0, 2400)
    assert summarise_due(store, T0_S + 2400, TOPICS) == 2  # 0-15 and 15-30 min
    assert summarise_due(store, T0_S + 2400, TOPICS) == 0
    store.close()
    store = Store.open(tmp_path / "pulsegate.db", "gw-1")
    assert summarise_due(store, T0_S + 2400, TOPICS) == 0
    write_oximetry(store, 2400, 2800)
    assert summarise_due(store, T0_S + 2750, TOPICS) == 1  # 30-45 min
    first, second, third = summaries(store)
    assert [s["start_time"] for s in (first, second, third)] == [
        iso_utc(T0_S + i * BATCH_S) for i in range(3)
    ]
    assert first["patient"] == "p-1"
    assert watermarks(store)["p-1"] == T0_S + 3 * BATCH_S


def test_the_figures_are_each_minutes_count_missing_min_median_max(store: Store) -> None:
    summarise_due(store, T0_S + 1, TOPICS)
    write_oximetry(store, 0, BATCH_S)
    summarise_due(store, T0_S + BATCH_S + 30, TOPICS)
    [summary] = summaries(store)
    metrics = decode_metrics(str(summary["encoding"]), summary["metrics"])
    columns = metrics["spo2_percent"]
    assert columns["minute"] == list(range(15))
    for minute in (0, 7, 14):
        values = [spo2(s) for s in range(minute * 60, minute * 60 + 60)]
        present = [v for v in values if v is not None]
        assert columns["n"][minute] == len(present)
        assert columns["missing"][minute] == values.count(None)
        assert columns["min"][minute] == min(present)
        assert columns["median"][minute] == statistics.median(present)
        assert columns["max"][minute] == max(present)
        assert columns["quality"][minute] == int(Quality.FINGER_OUT)
    assert metrics["temp_c"] == {
        "minute": [0],
        "n": [1],
        "missing": [0],
        "min": [36.85],
        "median": [36.85],
        "max": [36.85],
        "quality": [0],
    }


def test_stretches_without_readings_send_nothing_and_patients_are_apart(store: Store) -> None:
    summarise_due(store, T0_S + 1, TOPICS)
    write_oximetry(store, 0, 600)
    write_oximetry(store, 7200, 8400)
    write_oximetry(store, 100, 200, patient="p-2")
    queued = summarise_due(store, T0_S + 3 * 3600, TOPICS)
    got = [(s["patient"], s["start_time"]) for s in summaries(store)]
    assert got == [
        ("p-1", iso_utc(T0_S)),
        ("p-1", iso_utc(T0_S + 7200)),
        ("p-1", iso_utc(T0_S + 7200 + BATCH_S)),
        ("p-2", iso_utc(T0_S + 60)),
    ]
    assert queued == 4
    assert watermarks(store) == {"p-1": T0_S + 3 * 3600, "p-2": T0_S + 3 * 3600}
