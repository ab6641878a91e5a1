"""Queue per-patient summaries (sync/summaries.py) of the minutes that are complete.

The per-minute figures are computed by the same function that rolls old raw readings up for
retention (gateway.retention.summarise), grouped by metric instead of by device series.
Each patient has a watermark (uplink_watermarks): the minutes before it were summarised. A
batch's outbox row and the watermark's move are one transaction, so every minute is summarised
exactly once, through restarts and power cuts. Runs on the store's thread.
"""

from __future__ import annotations

from devices.protocols.reading import Metric
from gateway.migrations import reading_id_floor
from gateway.retention import summarise
from gateway.store import Store
from gateway.uplink_devices import Topics, queue_messages
from sync.summaries import MinuteRow, summary_message

SUMMARY_METRICS = (Metric.SPO2, Metric.PULSE, Metric.PI, Metric.TEMP, Metric.RESP_RATE)
BATCH_S = 900  # one summary message per patient per 15 minutes (see bench/bench_upstream.py)
_METRICS_SQL = ",".join(f"'{m.value}'" for m in SUMMARY_METRICS)


def watermarks(store: Store) -> dict[str, int]:
    """patient id -> the minutes before this second were summarised."""
    rows = store.db.execute("SELECT patient_id, summarised_through_s FROM uplink_watermarks")
    return {patient: int(mark) for patient, mark in rows}


def _set_watermark(store: Store, patient_id: str, mark_s: int) -> None:
    store.db.execute(
        "INSERT OR REPLACE INTO uplink_watermarks (patient_id, summarised_through_s) VALUES (?, ?)",
        [patient_id, mark_s],
    )


def _first_reading_s(store: Store, patient_id: str, start_s: int, end_s: int) -> float | None:
    row = store.db.execute(
        "SELECT ts_s FROM readings WHERE id >= ? AND id < ? AND patient_id = ?"
        f" AND metric IN ({_METRICS_SQL}) ORDER BY id LIMIT 1",
        [reading_id_floor(start_s), reading_id_floor(end_s), patient_id],
    ).fetchone()
    return None if row is None else float(row[0])


def minute_rows(store: Store, patient_id: str, start_s: int, end_s: int) -> list[MinuteRow]:
    """Each summarised metric of `patient_id` per minute of [start_s, end_s)."""
    rows = store.db.execute(
        "SELECT ts_s, metric, value, quality FROM readings WHERE id >= ? AND id < ?"
        f" AND patient_id = ? AND metric IN ({_METRICS_SQL})",
        [reading_id_floor(start_s), reading_id_floor(end_s), patient_id],
    ).fetchall()
    index = {metric.value: i for i, metric in enumerate(SUMMARY_METRICS)}
    minutes = summarise([(ts_s, index[metric], value, q) for ts_s, metric, value, q in rows])
    return [
        MinuteRow(m.minute_s, SUMMARY_METRICS[m.series_id].value, m.n, m.missing, m.min,
                  m.median, m.max, m.quality)
        for m in minutes
    ]  # fmt: skip


def summarise_patient(
    store: Store, patient_id: str, mark_s: int, end_s: int, topics: Topics
) -> int:
    """Queue every complete batch of `patient_id` from `mark_s` to `end_s`; returns how many.
    Stretches without readings are skipped (no message)."""
    queued = 0
    while end_s - mark_s >= BATCH_S:
        first_s = _first_reading_s(store, patient_id, mark_s, end_s)
        start_s = end_s if first_s is None else max(mark_s, int(first_s // 60 * 60))
        if end_s - start_s < BATCH_S:
            with store.transaction():
                _set_watermark(store, patient_id, start_s)
            break
        span = (start_s, start_s + BATCH_S)
        rows = minute_rows(store, patient_id, *span)
        message = summary_message(
            topics.prefix, topics.site, topics.gateway_id, patient_id, span, rows
        )
        with store.transaction():
            queue_messages(store, [(message, float(span[1]))])
            _set_watermark(store, patient_id, span[1])
        mark_s = span[1]
        queued += 1
    return queued


def summarise_due(store: Store, through_s: float, topics: Topics) -> int:
    """Queue the summaries of every patient's complete batches of minutes before
    `through_s` (readings before it are all committed); returns how many were queued. A
    patient seen for the first time starts with the last full batch."""
    end_s = int(through_s // 60 * 60)
    marks = watermarks(store)
    queued = 0
    for patient in store.list_patients():
        mark_s = marks.get(patient.id, end_s - BATCH_S)
        queued += summarise_patient(store, patient.id, mark_s, end_s, topics)
    return queued
