"""`pulsegate hub summaries | gaps | raw-request | raw`: what the hub received besides alerts,
and asking a gateway for a patient's raw readings."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from typing import Any

import click

from gateway.cli_errors import EXIT_USAGE, fail
from gateway.hub_cli import _open, db_option, prefix_option
from gateway.hub_settings_cli import _site_of
from sync import fhir
from sync.hub_raw_requests import list_raw_requests, queue_raw_request, raw_readings
from sync.raw_request import MAX_SPAN_S, raw_request_message

DEFAULT_UTC_OFFSET_H = 8.0  # China
_AGO = re.compile(r"(\d+(?:\.\d+)?)([mhd])")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400}

offset_option = click.option(
    "--utc-offset",
    "utc_offset_h",
    type=click.FloatRange(-14, 14),
    default=DEFAULT_UTC_OFFSET_H,
    show_default=True,
    help="Hours from UTC of the times shown, and of times given without a zone.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="One JSON object a line.")


def parse_time_s(text: str, utc_offset_h: float, now_s: float) -> float:
    """Epoch seconds of an ISO 8601 time (without a zone: at `utc_offset_h`) or of a time
    ago such as 90m, 6h, 2d; ValueError with the accepted forms otherwise."""
    ago = _AGO.fullmatch(text.strip())
    if ago:
        return now_s - float(ago.group(1)) * _UNIT_S[ago.group(2)]
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r}: expected an ISO 8601 time (2027-01-15T08:00, 2027-01-15T00:00Z)"
            " or a time ago (90m, 6h, 2d)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone(dt.timedelta(hours=utc_offset_h)))
    return parsed.timestamp()


def format_time(ts_s: float, utc_offset_h: float, seconds: bool = False) -> str:
    """A time at `utc_offset_h`, e.g. 2027-01-15 16:05 +08:00."""
    zone = dt.timezone(dt.timedelta(hours=utc_offset_h))
    local = dt.datetime.fromtimestamp(ts_s, zone)
    text = (
        local.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if seconds else local.strftime("%Y-%m-%d %H:%M")
    )
    return f"{text} {local.strftime('%z')[:3]}:{local.strftime('%z')[3:]}"


def _time_option(text: str, name: str, utc_offset_h: float) -> float:
    try:
        return parse_time_s(text, utc_offset_h, time.time())
    except ValueError as exc:
        fail(f"{name} {exc}", EXIT_USAGE)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes / 60:.1f} h"


@click.command("summaries")
@click.argument("gateway")
@click.argument("patient")
@click.option(
    "--since", default="24h", show_default=True, help="From this time: ISO 8601 or 90m, 6h, 2d ago."
)
@click.option("--until", help="Up to this time (default: now).")
@offset_option
@json_option
@click.option(
    "--fhir",
    "as_fhir",
    is_flag=True,
    help="A FHIR R4 Bundle of vital-sign Observations: each minute's median of SpO2, heart"
    " rate and body temperature.",
)
@db_option
def hub_summaries(
    gateway: str,
    patient: str,
    since: str,
    until: str | None,
    utc_offset_h: float,
    as_json: bool,
    as_fhir: bool,
    db_url: str,
) -> None:
    """A patient's per-minute summaries as received from GATEWAY (SITE/GATEWAY, or a gateway
    name the hub knows): per minute and metric, readings with and without a value, and the
    min / median / max in the metric's unit."""
    since_s = _time_option(since, "--since", utc_offset_h)
    until_s = None if until is None else _time_option(until, "--until", utc_offset_h)
    with _open(db_url) as store:
        site, name = _site_of(store, gateway)
        rows = store.patient_summaries(site, name, patient, since_s, until_s)
    if as_fhir:
        observations = fhir.summary_observations(site, name, patient, rows)
        click.echo(json.dumps(fhir.summary_bundle(observations, time.time()), indent=2))
        return
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, sort_keys=True))
        return
    if not rows:
        click.echo(f"no summaries of {patient} from {site}/{name} in that time")
    for row in rows:
        click.echo(
            f"  {format_time(row['minute_s'], utc_offset_h)}  {row['metric']:<18}"
            f" n {row['n']:>3}  missing {row['missing']:>3}  min {_number(row['min']):>6}"
            f"  median {_number(row['median']):>6}  max {_number(row['max']):>6}"
        )


@click.command("gaps")
@click.argument("gateway", required=False)
@click.option("--since", default="7d", show_default=True, help="Gaps that ended after this time.")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True)
@offset_option
@json_option
@db_option
def hub_gaps(
    gateway: str | None, since: str, limit: int, utc_offset_h: float, as_json: bool, db_url: str
) -> None:
    """Devices without data now (silent: nothing at all; no_signal: no valid SpO2 or pulse),
    then the data gaps that have closed, newest first, with the reasons the gateway knew."""
    since_s = _time_option(since, "--since", utc_offset_h)
    with _open(db_url) as store:
        site, name = _site_of(store, gateway) if gateway else (None, None)
        ongoing = [
            row
            for row in store.devices_without_data()
            if name is None or (row["site"], row["gateway"]) == (site, name)
        ]
        gaps = store.gap_records(site=site, gateway=name, since_s=since_s, limit=limit)
    if as_json:
        for row in ongoing:
            click.echo(json.dumps({"open": True, **row}, sort_keys=True))
        for row in gaps:
            click.echo(json.dumps({"open": False, **row}, sort_keys=True))
        return
    if not ongoing and not gaps:
        click.echo("no data gaps")
    for row in ongoing:
        click.echo(
            f"  NOW   {row['site']}/{row['gateway']}  {row['patient']:<20} device {row['device']}"
            f"  {row['event']} since {format_time(row['since_s'], utc_offset_h)}"
            f"  ({'; '.join(row['reasons'])})"
        )
    for row in gaps:
        click.echo(
            f"  gap   {row['site']}/{row['gateway']}  {row['patient']:<20} device {row['device']}"
            f"  {format_time(row['start_s'], utc_offset_h)} to"
            f" {format_time(row['end_s'], utc_offset_h)} ({_duration(row['duration_s'])})"
            f"  ({'; '.join(row['reasons'])})"
        )


@click.command("raw-request")
@click.argument("gateway")
@click.argument("patient")
@click.option("--from", "start", required=True, help="Start: ISO 8601 (or 90m, 6h, 2d ago).")
@click.option("--to", "end", required=True, help=f"End, at most {MAX_SPAN_S // 3600} h later.")
@click.option("--by", "requested_by", default="hub", show_default=True, help="A staff id.")
@offset_option
@db_option
@prefix_option
def hub_raw_request(
    gateway: str,
    patient: str,
    start: str,
    end: str,
    requested_by: str,
    utc_offset_h: float,
    db_url: str,
    topic_prefix: str,
) -> None:
    """Ask GATEWAY (SITE/GATEWAY, or a gateway name the hub knows) for a patient's raw
    readings between two times: the running `pulsegate hub run` sends the request, the gateway
    answers in 10-minute chunks, and `pulsegate hub raw` shows what arrived."""
    if not requested_by.strip() or len(requested_by) > 64 or not requested_by.isprintable():
        fail("--by: 1-64 printable characters (a staff id, not a patient's name)", EXIT_USAGE)
    start_s = _time_option(start, "--from", utc_offset_h)
    end_s = _time_option(end, "--to", utc_offset_h)
    if not start_s < end_s <= start_s + MAX_SPAN_S:
        fail(f"--to must be after --from and at most {MAX_SPAN_S // 3600} h later", EXIT_USAGE)
    with _open(db_url) as store:
        site, name = _site_of(store, gateway)
        message = raw_request_message(topic_prefix, site, name, patient, (start_s, end_s))
        added = queue_raw_request(store, message, requested_by, time.time())
    span = f"{format_time(start_s, utc_offset_h)} to {format_time(end_s, utc_offset_h)}"
    state = "queued; the running hub sends it" if added else "already asked for (not sent again)"
    click.echo(
        f"raw-data request {message.message_id[:8]} for {patient} on {site}/{name}, {span}: {state}"
    )


def _request_line(row: dict[str, Any], utc_offset_h: float) -> str:
    if row["published_s"] is None:
        state = "waiting for the hub to send it"
    elif row["chunks"] is None:
        state = "sent, no answer yet"
    else:
        done = "complete" if row["chunks_received"] >= row["chunks"] else "partial"
        state = (
            f"{row['chunks_received']} of {row['chunks']} chunks ({done}),"
            f" {row['readings']} readings"
        )
    return (
        f"  {row['message_id'][:8]}  {row['site']}/{row['gateway']}  {row['patient']:<20}"
        f" {format_time(row['start_s'], utc_offset_h)} to {format_time(row['end_s'], utc_offset_h)}"
        f"  by {row['requested_by']}: {state}"
    )


@click.command("raw")
@click.argument("gateway", required=False)
@click.argument("patient", required=False)
@click.option("--from", "start", help="With GATEWAY PATIENT: the readings from this time.")
@click.option("--to", "end", help="... up to this time (default: now).")
@offset_option
@json_option
@db_option
def hub_raw(
    gateway: str | None,
    patient: str | None,
    start: str | None,
    end: str | None,
    utc_offset_h: float,
    as_json: bool,
    db_url: str,
) -> None:
    """Without arguments: the raw-data requests and how much of each answer arrived. With
    GATEWAY PATIENT --from [--to]: the raw readings received (value '-' = no value)."""
    with _open(db_url) as store:
        if gateway is None:
            for row in list_raw_requests(store):
                click.echo(
                    json.dumps(row, sort_keys=True) if as_json else _request_line(row, utc_offset_h)
                )
            return
        if patient is None or start is None:
            fail("give GATEWAY PATIENT --from TIME (or no arguments for the requests)", EXIT_USAGE)
        start_s = _time_option(start, "--from", utc_offset_h)
        end_s = time.time() if end is None else _time_option(end, "--to", utc_offset_h)
        site, name = _site_of(store, gateway)
        rows = raw_readings(store, (site, name, patient), start_s, end_s)
    for row in rows:
        if as_json:
            click.echo(json.dumps(row, sort_keys=True))
        else:
            click.echo(
                f"  {format_time(row['ts_ms'] / 1000, utc_offset_h, seconds=True)}"
                f"  {row['metric']:<18} {_number(row['value']):>6}  quality {row['quality']}"
            )
    if not rows and not as_json:
        click.echo(f"no raw readings of {patient} from {site}/{name} in that time")


HUB_DATA_COMMANDS = (hub_summaries, hub_gaps, hub_raw_request, hub_raw)
