"""`pulsegate hub ...`: the township receiver and what a clinician does with it."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from gateway.broker_options import security_options
from gateway.cli_errors import EXIT_USAGE, fail
from gateway.hub_web_cli import http_option, serving_dashboard, user_commands
from sync.broker_security import BrokerSecurity
from sync.fhir import alerts_bundle
from sync.hub import (
    PUBACK_TIMEOUT_S,
    Hub,
    HubSettings,
    default_client_id,
    parse_broker_url,
    send_acks_once,
)
from sync.hub_store import HubStore, HubStoreError, redacted_url
from sync.payload import ack_message

log = logging.getLogger(__name__)

DEFAULT_DB = "pulsegate-hub.db"
ACK_WAIT_S = 10.0

db_option = click.option(
    "--db",
    "db_url",
    envvar="PULSEGATE_HUB_DB",
    default=DEFAULT_DB,
    show_default=True,
    help="The hub database: a SQLite file, or postgresql://USER@HOST:PORT/DB when several hub"
    " processes share one subscription (env PULSEGATE_HUB_DB).",
)
prefix_option = click.option(
    "--topic-prefix",
    default="pulsegate",
    show_default=True,
    help="First level of the gateways' topics (their mqtt.topic_prefix).",
)


run_broker_option = click.option(
    "--broker",
    envvar="PULSEGATE_HUB_BROKER",
    required=True,
    help="The broker, mqtt://HOST[:PORT] or, with TLS (--ca-file), mqtts://HOST[:PORT]"
    " (env PULSEGATE_HUB_BROKER).",
)
ack_broker_option = click.option(
    "--broker",
    envvar="PULSEGATE_HUB_BROKER",
    help="Send it now through this broker, mqtt://HOST[:PORT] (env PULSEGATE_HUB_BROKER);"
    " without it, the running `pulsegate hub run` sends it within seconds.",
)


@contextmanager
def _open(db_url: str) -> Iterator[HubStore]:
    try:
        store = HubStore.open(db_url)
    except HubStoreError as exc:
        fail(str(exc))
    try:
        yield store
    except HubStoreError as exc:
        fail(str(exc))
    finally:
        store.close()


def _settings(
    broker: str,
    client_id: str,
    group: str,
    prefix: str,
    keepalive_s: int,
    security: BrokerSecurity,
) -> HubSettings:
    try:
        host, port = parse_broker_url(broker)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    if broker.startswith("mqtts:") and not security.tls:
        fail(f"broker {broker!r}: mqtts:// needs --ca-file", EXIT_USAGE)
    if not group or any(char in group for char in "/+#$ "):
        fail(f"--group {group!r}: one topic level, without / + # $ or spaces", EXIT_USAGE)
    return HubSettings(host, port, client_id, group, prefix, keepalive_s, security)


@click.group()
def hub() -> None:
    """The township receiver: collects alerts, gateway status, device records, data gaps
    and per-minute summaries from many boxes over MQTT and sends clinicians'
    acknowledgements and raw-data requests back down."""


@hub.command("run")
@run_broker_option
@db_option
@click.option(
    "--group",
    default="hub",
    show_default=True,
    help="Shared-subscription group: hub processes in one group share the alerts between them"
    " (they must then use one PostgreSQL database).",
)
@click.option(
    "--client-id",
    help="MQTT client id; keep it stable, the broker queues for it while the hub is down"
    " (default: pulsegate-hub-<host>-<group>; give each process on one host its own).",
)
@prefix_option
@click.option(
    "--keepalive",
    "keepalive_s",
    type=click.IntRange(min=2, max=3600),
    default=30,
    show_default=True,
    help="MQTT keepalive, seconds.",
)
@security_options
@http_option
def hub_run(
    broker: str,
    db_url: str,
    group: str,
    client_id: str | None,
    topic_prefix: str,
    keepalive_s: int,
    security: BrokerSecurity,
    http: tuple[str, int] | None,
) -> None:
    """Receive alerts, status, device records, gaps, summaries and raw data from every
    gateway into the hub database (stops on SIGINT/SIGTERM)."""
    settings = _settings(
        broker, client_id or default_client_id(group), group, topic_prefix, keepalive_s, security
    )
    with _open(db_url) as store, _open(db_url) as ack_store:
        receiver = Hub(settings, store, ack_store)
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        log.info(
            "hub %s (pid %d): broker %s:%d, database %s",
            settings.client_id,
            os.getpid(),
            settings.host,
            settings.port,
            redacted_url(db_url),
        )
        with serving_dashboard(http, db_url, topic_prefix):  # --http
            receiver.run(stop)
        stats = receiver.stats
        log.info(
            "hub stopped: %d stored, %d duplicates, %d rejected, %d acknowledgements sent",
            stats.stored,
            stats.duplicate,
            stats.rejected,
            stats.acks_sent,
        )


def _age(ts_s: float | None) -> str:
    if ts_s is None:
        return "never"
    seconds = max(0, int(time.time() - ts_s))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def _alert_line(row: dict[str, Any]) -> str:
    ack = ""
    if row["hub_acked_by"] and row["status"] in ("open", "resolved"):
        ack = f"  (ack by {row['hub_acked_by']} sent, not yet applied)"
    return (
        f"  {row['alert_id'][:8]}  {row['priority']:<6} {row['rule']:<3} {row['status']:<8}"
        f" {row['patient']:<20} {row['site']}/{row['gateway']}"
        f"  since {_age(row['onset_s'])}{ack}"
    )


@hub.command("alerts")
@db_option
@click.option("--open", "open_only", is_flag=True, help="Only alerts not yet closed.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per alert.")
def hub_alerts(db_url: str, open_only: bool, limit: int, as_json: bool) -> None:
    """Alerts from every gateway, most urgent first: live before closed, then by priority,
    then the longest-waiting first."""
    with _open(db_url) as store:
        rows = store.list_alerts(open_only=open_only, limit=limit)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, sort_keys=True))
        return
    if not rows:
        click.echo("no open alerts" if open_only else "no alerts")
    for row in rows:
        click.echo(_alert_line(row))


@hub.command("ack")
@click.argument("alert_id")
@click.option(
    "--by", "acked_by", default="hub", show_default=True, help="Who acknowledges (a staff id)."
)
@db_option
@ack_broker_option
@prefix_option
@security_options
def hub_ack(
    alert_id: str,
    acked_by: str,
    db_url: str,
    broker: str | None,
    topic_prefix: str,
    security: BrokerSecurity,
) -> None:
    """Acknowledge an alert (its first 8 characters are enough) and send the
    acknowledgement down to its gateway."""
    if not acked_by.strip() or len(acked_by) > 64 or not acked_by.isprintable():
        fail("--by: 1-64 printable characters (a staff id, not a patient's name)", EXIT_USAGE)
    settings = None
    if broker:
        client_id = f"pulsegate-hub-ack-{os.getpid()}"
        settings = _settings(broker, client_id, "hub", topic_prefix, 30, security)
    with _open(db_url) as store:
        found = store.find_alerts(alert_id)
        if not found:
            fail(f"no alert {alert_id!r}; `pulsegate hub alerts` lists them", EXIT_USAGE)
        if len(found) > 1:
            fail(f"{alert_id!r} matches {len(found)} alerts; give more characters", EXIT_USAGE)
        alert = found[0]
        if alert["status"] == "closed":
            fail(f"alert {alert['alert_id']} is already closed")
        acked_at_s = time.time()
        message = ack_message(
            topic_prefix, alert["site"], alert["gateway"], alert["alert_id"], acked_by, acked_at_s
        )
        store.record_ack(alert, message, acked_by, acked_at_s)
        where = f"{alert['rule']} {alert['patient']} on {alert['site']}/{alert['gateway']}"
        if settings is None:
            click.echo(f"acknowledged {alert['alert_id']} ({where}); the running hub sends it")
            return
        try:
            send_acks_once(settings, store, min(ACK_WAIT_S, PUBACK_TIMEOUT_S))
        except OSError as exc:
            click.echo(
                f"acknowledged {alert['alert_id']} ({where}); the broker is unreachable"
                f" ({exc}): the running hub sends it when it can"
            )
            return
        sent = not any(p.message_id == message.message_id for p in store.pending_acks())
        state = f"sent on {message.topic}" if sent else "queued, the broker did not confirm it"
        click.echo(f"acknowledged {alert['alert_id']} ({where}); {state}")


@hub.command("gateways")
@db_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per gateway.")
def hub_gateways(db_url: str, as_json: bool) -> None:
    """Gateways heard from: online or not, last seen, how far they have synced, and whether
    their Last Will fired (the broker lost them: a silent box, not a quiet patient)."""
    with _open(db_url) as store:
        rows = store.list_gateways()
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, sort_keys=True))
        return
    if not rows:
        click.echo("no gateways heard from yet")
    for row in rows:
        state = row["state"] or "unknown"
        will = f"LAST WILL FIRED {_age(row['will_received_s'])}" if row["will_fired"] else "-"
        backlog = "?" if row["backlog"] is None else str(row["backlog"])
        click.echo(
            f"  {row['site']}/{row['gateway']:<24} {state:<8} last seen {_age(row['last_seen_s'])}"
            f"  synced through {_age(row['synced_through_s'])}  backlog {backlog}  {will}"
        )


@hub.command("export")
@db_option
@click.option(
    "--fhir", "as_fhir", is_flag=True, help="A FHIR R4 Bundle (DetectedIssue + Observation)."
)
@click.option("--open", "open_only", is_flag=True, help="Only alerts not yet closed.")
@click.option("--limit", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("-o", "--output", type=click.File("w"), default="-", help="File (default stdout).")
def hub_export(db_url: str, as_fhir: bool, open_only: bool, limit: int, output: Any) -> None:
    """Export alerts with their events: JSON lines, or with --fhir one FHIR R4 Bundle."""
    with _open(db_url) as store:
        rows = store.list_alerts(open_only=open_only, limit=limit)
        if not as_fhir:
            for row in rows:
                row["events"] = store.alert_events(row["alert_id"])
                output.write(json.dumps(row, sort_keys=True) + "\n")
            return
    output.write(json.dumps(alerts_bundle(rows, time.time()), indent=2) + "\n")


hub.add_command(user_commands(db_option))
