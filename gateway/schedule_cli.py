"""`pulsegate patients schedule`: when a patient on spot checks is to take readings (Q3)."""

from __future__ import annotations

import time

import click

from alerts.schedule import GRACE_S, ScheduleError, format_slots
from devices.protocols.reading import Metric
from gateway.cli_errors import EXIT_USAGE, fail
from gateway.cli_store import open_store
from gateway.technical_rules import clear_schedule, schedules, set_schedule


@click.command("schedule")
@click.argument("patient_id")
@click.option("--spo2", "spo2_slots", help="Local times of SpO2 readings, e.g. 08:00,14:00,20:00.")
@click.option("--temp", "temp_slots", help="Local times of temperature readings, e.g. 08:00,20:00.")
@click.option("--clear", is_flag=True, help="Remove the patient's schedule.")
@click.pass_context
def patients_schedule(
    ctx: click.Context,
    patient_id: str,
    spo2_slots: str | None,
    temp_slots: str | None,
    clear: bool,
) -> None:
    """Schedule a patient's spot readings (times in [detector] utc_offset_h, the box's local
    time). A slot with no valid reading from an hour before it to 2 hours after it raises Q3:
    a LOW reminder, MEDIUM for the staff after 2 missed slots in a row (red) or 3 (yellow).
    Without options: show the schedule."""
    given = {Metric.SPO2: spo2_slots, Metric.TEMP: temp_slots}
    if clear and any(given.values()):
        fail("give --clear alone, or the slots to set", EXIT_USAGE)
    with open_store(ctx) as store:
        if store.get_patient(patient_id) is None:
            fail(f"no patient {patient_id!r}; see `pulsegate patients list`")
        if clear:
            removed = clear_schedule(store, patient_id)
            click.echo(f"{patient_id}: schedule removed" if removed else f"{patient_id}: had none")
            return
        for metric, slots in given.items():
            if slots is None:
                continue
            try:
                stored = set_schedule(store, patient_id, metric, slots, time.time())
            except ScheduleError as exc:
                fail(f"--{'spo2' if metric is Metric.SPO2 else 'temp'}: {exc}", EXIT_USAGE)
            click.echo(
                f"{patient_id}: {metric.value} at {stored} (missed after {GRACE_S // 3600} h)"
            )
        if not any(given.values()):
            rows = [s for s in schedules(store) if s.patient_id == patient_id]
            if not rows:
                click.echo(f"{patient_id}: no schedule (continuous monitoring only)")
            for row in rows:
                click.echo(f"{patient_id}: {row.metric.value} at {format_slots(row.slots_min)}")
