"""`pulsegate hub settings`: change a patient's settings on its gateway from the hospital, and
list what each gateway says is active."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from gateway.cli_errors import EXIT_USAGE, fail
from gateway.hub_cli import _open, db_option, prefix_option
from gateway.settings_cli import (
    override_option,
    overrides_text,
    parsed_overrides,
    profile_option,
    reset_option,
    tier_option,
)
from sync.hub_settings import active_echo_details, list_settings, newest_version, queue_settings
from sync.hub_store import HubStore
from sync.payload import PayloadError
from sync.settings_payload import PatientSettings, edited_settings, make_settings, settings_message


def _site_of(store: HubStore, gateway: str) -> tuple[str, str]:
    """(site, gateway) of `SITE/GATEWAY`, or of a gateway name the hub has heard from."""
    if "/" in gateway:
        site, _, name = gateway.partition("/")
        return site, name
    sites = [row["site"] for row in store.list_gateways() if row["gateway"] == gateway]
    if len(sites) != 1:
        known = "not heard from yet" if not sites else f"at {len(sites)} sites"
        fail(f"gateway {gateway!r} is {known}: give it as SITE/GATEWAY", EXIT_USAGE)
    return sites[0], gateway


def _base_settings(active: dict[str, Any], tier: str | None) -> PatientSettings:
    """What the gateway last reported as active, or (never heard) the given tier alone."""
    if active:
        return make_settings(active["tier"], active["profile"], active["overrides"])
    if tier is None:
        fail("the hub has not heard this patient's settings yet: give --tier", EXIT_USAGE)
    return make_settings(tier, "default", {})


def _list(store: HubStore, as_json: bool) -> None:
    rows = list_settings(store)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, sort_keys=True))
        return
    if not rows:
        click.echo("no settings sent or reported yet")
    for row in rows:
        where = f"{row['site']}/{row['gateway']}"
        active = row["active"]
        if active is None:
            now = "active: not reported"
        else:
            settings = make_settings(active["tier"], active["profile"], active["overrides"])
            now = (
                f"active: version {row['active_version']} ({active['source']}) tier"
                f" {settings.tier} profile {settings.profile} overrides {overrides_text(settings)}"
            )
        request = row["request"]
        last = f"  last sent: version {request['version']}, {request['state']}" if request else ""
        click.echo(f"  {where:<28} {row['patient']:<20} {now}{last}")


@click.command("settings")
@click.argument("gateway", required=False)
@click.argument("patient", required=False)
@click.option(
    "--version",
    "version",
    type=click.IntRange(min=1),
    help="The new version (default: one above the highest sent or reported for the patient).",
)
@tier_option
@profile_option
@override_option
@reset_option
@click.option("--by", "issued_by", default="hub", show_default=True, help="A staff id.")
@click.option("--list", "list_all", is_flag=True, help="List what each gateway runs, and why not.")
@click.option("--json", "as_json", is_flag=True, help="With --list: one JSON object a patient.")
@db_option
@prefix_option
def hub_settings(
    gateway: str | None,
    patient: str | None,
    version: int | None,
    tier: str | None,
    profile: str | None,
    overrides: tuple[str, ...],
    reset_overrides: bool,
    issued_by: str,
    list_all: bool,
    as_json: bool,
    db_url: str,
    topic_prefix: str,
) -> None:
    """Set a patient's tier, profile and rule overrides on GATEWAY (SITE/GATEWAY, or a gateway
    name the hub knows): the running `pulsegate hub run` sends them, the gateway echoes the
    version it runs. Settings not given stay as the gateway last reported them."""
    with _open(db_url) as store:
        if list_all:
            _list(store, as_json)
            return
        if gateway is None or patient is None:
            fail("give GATEWAY and PATIENT (or --list)", EXIT_USAGE)
        if not issued_by.strip() or len(issued_by) > 64 or not issued_by.isprintable():
            fail("--by: 1-64 printable characters (a staff id, not a patient's name)", EXIT_USAGE)
        changes = parsed_overrides(overrides)
        site, name = _site_of(store, gateway)
        newest = newest_version(store, site, name, patient)
        if version is not None and version <= newest:
            fail(f"--version {version}: version {newest} is already known; use more", EXIT_USAGE)
        version = version or newest + 1
        try:
            base = _base_settings(active_echo_details(store, site, name, patient), tier)
            settings = edited_settings(base, tier, profile, changes, reset_overrides)
        except PayloadError as exc:
            fail(f"not sent: {exc}", EXIT_USAGE)
        now_s = time.time()
        message = settings_message(
            topic_prefix, site, name, patient, version, settings, issued_by, now_s
        )
        queue_settings(store, message, patient, version, issued_by, now_s)
    click.echo(
        f"settings version {version} for {patient} on {site}/{name} queued (tier {settings.tier},"
        f" profile {settings.profile}, overrides {overrides_text(settings)});"
        " the running hub sends them"
    )
