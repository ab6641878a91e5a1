"""The `pulsegate` command line: a thin click layer over the gateway library."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import click

from alerts.lifecycle import Alert, AlertEventKind
from alerts.rules import Profile, Tier
from devices.clock import Clock, ScaledClock
from devices.simulator import DEMO_PATIENTS, SimulatedPatient, run_patient
from gateway import box_status
from gateway.cli_errors import EXIT_USAGE, fail
from gateway.cli_store import config_of, open_store
from gateway.config import Config, ConfigError, load_config
from gateway.console import ConsoleReporter
from gateway.contacts_cli import contacts, notifications
from gateway.daemon import Daemon, DeviceSource, StoreWorker
from gateway.decode_cli import convert, decode
from gateway.devices_cli import devices, link_status_lines, link_statuses
from gateway.hub_cli import hub
from gateway.hub_data_cli import HUB_DATA_COMMANDS
from gateway.hub_settings_cli import hub_settings
from gateway.ingest import Ingest
from gateway.replay_cli import replay_command
from gateway.report_cli import report_command
from gateway.schedule_cli import patients_schedule
from gateway.settings_cli import patients_set, patients_show
from gateway.sources import build_sources
from gateway.store import Patient, Store
from gateway.timekeeper import Timekeeper
from gateway.web_cli import PAGE_OFF_LINE, demo_web, patients_name, web
from sync.payload import OutboxMessage, alert_event_message, pseudonym_problem


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML configuration (default: /etc/pulsegate/pulsegate.toml if it exists, "
    "else built-in defaults: data in ./pulsegate-data, no broker).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Override gateway.log_level.",
)
@click.version_option(package_name="pulsegate")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, log_level: str | None) -> None:
    """pulsegate: reads home oximeters and thermometers, raises clinical alerts locally,
    keeps everything in SQLite and forwards alerts to the township hospital over MQTT."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    logging.basicConfig(
        level=(log_level or config.gateway.log_level).upper(),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    ctx.obj = {"config": config}


@main.command()
@click.option("--simulate", is_flag=True, help="Use simulated patients and devices.")
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop after this many seconds (default: run until SIGINT/SIGTERM).",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0.1, max=100),
    default=1.0,
    show_default=True,
    help="With --simulate: how many times faster than real time the scenarios run.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Simulator noise seed.")
@click.option(
    "--quiet",
    is_flag=True,
    help="Do not print readings and alerts to stdout (with --simulate: and no demo status page).",
)
@click.pass_context
def run(
    ctx: click.Context,
    simulate: bool,
    duration: float | None,
    speed: float,
    seed: int,
    quiet: bool,
) -> None:
    """Run the gateway daemon (stops cleanly on SIGINT/SIGTERM).

    Exits 1 when it stopped because the database is damaged: the next start checks it whole
    and salvages it."""
    config = config_of(ctx)
    if speed != 1.0 and not simulate:
        fail("--speed only makes sense with --simulate", EXIT_USAGE)
    demo_pin = None
    if simulate and not quiet:
        config, demo_pin = demo_web(config)  # the demo's status page, its PIN printed below
    with open_store(ctx, checked=True) as store:
        box_status.record_start(store, time.time())
        last_s = store.last_reading_s() or 0.0
        clock: Clock
        if simulate:
            # Simulated time runs ahead of the wall clock; never start before stored data.
            clock = ScaledClock(speed, start_s=max(time.time(), last_s + 1.0))
        else:
            # The system clock may be wrong at boot: the timekeeper flags, then corrects.
            clock = Timekeeper(not_before_s=last_s)
        ingest = Ingest()
        worker = StoreWorker(store)
        sources: list[DeviceSource] = []
        if simulate:
            sources = _simulation(store, ingest, clock, seed)
        else:
            sources = build_sources(config, worker, ingest, clock)
        reporter = None if quiet else ConsoleReporter(click.echo, demo_pin=demo_pin)
        if reporter is not None:
            where = (
                f"broker {config.mqtt.host}:{config.mqtt.port}"
                if config.mqtt.enabled
                else ("no broker (alerts stay in the outbox)")
            )
            click.echo(f"pulsegate {config.gateway.id}: data in {config.database_path}, {where}")
            if simulate:
                click.echo(f"simulating {len(DEMO_PATIENTS)} patients at {speed:g}x real time")
        if reporter is not None and not config.web.enabled:
            click.echo(PAGE_OFF_LINE)  # when on, the reporter prints the address once it listens
        try:
            daemon = Daemon(config, worker, clock, ingest, sources, reporter)
        except ConfigError as exc:
            worker.shutdown()
            fail(str(exc), EXIT_USAGE)
        asyncio.run(_run_for(daemon, duration))
        worker.shutdown()
        _exit_if_damaged(daemon, config)
        if reporter is not None:
            backlog = sum(store.outbox_backlog().values())
            sent = store.count("outbox") - backlog
            click.echo("--- summary ---")
            for line in reporter.summary(backlog, sent):
                click.echo(line)


def _exit_if_damaged(daemon: Daemon, config: Config) -> None:
    """Exit 1 when the daemon stopped because its background check found damage (systemd
    then starts it again, and that start salvages the database)."""
    if daemon.damaged is not None:
        fail(
            f"the database {config.database_path} is damaged ({daemon.damaged}): stopped;"
            " the next start checks it whole and salvages it"
        )


async def _run_for(daemon: Daemon, duration_s: float | None) -> None:
    stop = asyncio.Event()
    if duration_s is not None:
        asyncio.get_running_loop().call_later(duration_s, stop.set)
    await daemon.run(stop)


def _simulation(store: Store, ingest: Ingest, clock: Clock, seed: int) -> list[DeviceSource]:
    """Register the demo patients and their devices, and return their byte sources."""
    now_s = clock.now_s()
    bindings = store.current_bindings()
    sources: list[DeviceSource] = []
    for sim in DEMO_PATIENTS:
        if store.get_patient(sim.patient_id) is None:
            store.add_patient(Patient(sim.patient_id, Tier(sim.tier), Profile(sim.profile)), now_s)
        for device_id, protocol in ((sim.oximeter_id, "berrymed-bci"), (sim.thermometer_id, "hts")):
            store.ensure_device(device_id, protocol, "simulated", now_s)
            if bindings.get(device_id) != sim.patient_id:
                store.bind(device_id, sim.patient_id, now_s)
            ingest.add_device(device_id, protocol)
        origin_s = store.binding_start_s(sim.oximeter_id)
        sources.append(_source(sim, clock, seed, origin_s))
    return sources


def _source(
    sim: SimulatedPatient, clock: Clock, seed: int, origin_s: float | None = None
) -> DeviceSource:
    async def source(sink: Any) -> None:
        await run_patient(sim, clock, sink, seed, origin_s)

    return source


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """The daemon's uptime, disk use, clock trust and last sync; devices, last readings,
    open alerts and the outbox backlog."""
    with open_store(ctx) as store:
        report: dict[str, Any] = {
            "gateway": config_of(ctx).gateway.id,
            "database": str(config_of(ctx).database_path),
            "patients": len(store.list_patients()),
            "bindings": store.current_bindings(),
            "latest_readings": store.latest_readings(),
            "open_alerts": store.list_alerts(open_only=True),
            "outbox_backlog": sum(store.outbox_backlog().values()),
            "device_links": link_statuses(store),
            **box_status.gather(store, config_of(ctx)),
        }
        link_lines = link_status_lines(store)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    click.echo(f"gateway {report['gateway']}  database {report['database']}")
    for line in box_status.lines(report):
        click.echo(line)
    click.echo(f"patients: {report['patients']}   outbox backlog: {report['outbox_backlog']}")
    click.echo("devices:")
    for row in report["latest_readings"]:
        value = "--" if row["value"] is None else f"{row['value']:g}"
        age = _age(row["ts_s"])
        click.echo(
            f"  {row['device_id']:<32} {row['patient_id'] or '(unbound)':<20} "
            f"{row['metric']:<14} {value:>6}  {age} ago"
        )
    if link_lines:
        click.echo("device links:")
        for line in link_lines:
            click.echo(line)
    click.echo(f"open alerts: {len(report['open_alerts'])}")
    for alert in report["open_alerts"]:
        click.echo(_alert_line(alert))


@main.command()
@click.option("--open", "open_only", is_flag=True, help="Only alerts not yet closed.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def alerts(ctx: click.Context, open_only: bool, limit: int, as_json: bool) -> None:
    """List alerts, newest first."""
    with open_store(ctx) as store:
        rows = store.list_alerts(open_only=open_only, limit=limit)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, default=str))
        return
    if not rows:
        click.echo("no alerts" if not open_only else "no open alerts")
    for row in rows:
        click.echo(_alert_line(row))


@main.command()
@click.argument("alert_id")
@click.option("--by", "acked_by", default="local", show_default=True, help="Who acknowledges.")
@click.pass_context
def ack(ctx: click.Context, alert_id: str, acked_by: str) -> None:
    """Acknowledge an alert (by id, or its first characters as `pulsegate alerts` shows)."""
    config = config_of(ctx)

    def message(alert: Alert, kind: AlertEventKind, ts_s: float) -> OutboxMessage:
        return alert_event_message(config.mqtt.topic_prefix, config.gateway.site, alert, kind, ts_s)

    with open_store(ctx) as store:
        alert = store.ack(alert_id, acked_by, time.time(), message)
    click.echo(f"acknowledged {alert.id} ({alert.rule} {alert.patient_id}), now {alert.status}")


def _alert_line(row: dict[str, Any]) -> str:
    onset = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["onset_s"]))
    return (
        f"  {row['id'][:8]}  {row['priority']:<6} {row['rule']:<3} {row['status']:<8} "
        f"{row['patient_id']:<20} since {onset} UTC"
    )


def _age(ts_s: float) -> str:
    seconds = max(0, int(time.time() - ts_s))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


@main.group()
def patients() -> None:
    """Manage patients (pseudonymous ids only: never names or phone numbers)."""


@patients.command("add")
@click.argument("patient_id")
@click.option(
    "--tier",
    type=click.Choice([t.value for t in Tier]),
    required=True,
    help="red = key population, yellow = sub-key, green = general.",
)
@click.option(
    "--profile",
    type=click.Choice([p.value for p in Profile]),
    default="default",
    show_default=True,
    help="copd: NEWS2 SpO2 scale 2 (set by the clinician).",
)
@click.pass_context
def patients_add(ctx: click.Context, patient_id: str, tier: str, profile: str) -> None:
    """Add a patient."""
    problem = pseudonym_problem(patient_id)
    if problem is not None:
        fail(f"{patient_id!r}: {problem}", EXIT_USAGE)
    with open_store(ctx) as store:
        store.add_patient(Patient(patient_id, Tier(tier), Profile(profile)), time.time())
    click.echo(f"added patient {patient_id} (tier {tier}, profile {profile})")


@patients.command("list")
@click.pass_context
def patients_list(ctx: click.Context) -> None:
    """List patients."""
    with open_store(ctx) as store:
        rows = store.list_patients()
    if not rows:
        click.echo("no patients; add one with `pulsegate patients add ID --tier red|yellow|green`")
    for patient in rows:
        click.echo(f"  {patient.id:<24} tier {patient.tier:<7} profile {patient.profile}")


main.add_command(decode)
main.add_command(convert)
main.add_command(hub)
main.add_command(devices)
main.add_command(replay_command)
main.add_command(report_command)
main.add_command(web)
main.add_command(contacts)
main.add_command(notifications)
patients.add_command(patients_name)
patients.add_command(patients_set)
patients.add_command(patients_show)
patients.add_command(patients_schedule)
hub.add_command(hub_settings)
for command in HUB_DATA_COMMANDS:  # hub summaries, gaps, raw-request, raw
    hub.add_command(command)
