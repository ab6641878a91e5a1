"""`pulsegate patients set` and `pulsegate patients show`: a patient's settings on the box."""

from __future__ import annotations

import json
import time

import click

from alerts.rules import Profile, Tier
from gateway.cli_errors import EXIT_USAGE, fail
from gateway.cli_store import config_of, open_store
from gateway.patient_settings import EchoRoute, active_settings, set_local_settings, settings_log
from sync.payload import PayloadError
from sync.settings_payload import (
    ActiveSettings,
    PatientSettings,
    edited_settings,
    parse_override,
)

override_option = click.option(
    "--override",
    "overrides",
    multiple=True,
    metavar="RULE.FIELD=NUMBER",
    help="Change one rule field, e.g. S2.threshold=90 (SpO2 %% of S1/S2/S3), S1.window_s=45,"
    " S2.clear_s=900, S2.min_valid_fraction=0.7. Repeat for several.",
)
reset_option = click.option(
    "--reset-overrides",
    is_flag=True,
    help="Drop the overrides in force first (the rule table's defaults, plus any --override).",
)
tier_option = click.option(
    "--tier", type=click.Choice([t.value for t in Tier]), help="Change the risk tier."
)
profile_option = click.option(
    "--profile", type=click.Choice([p.value for p in Profile]), help="Change the profile."
)


def parsed_overrides(texts: tuple[str, ...]) -> tuple[tuple[str, str, float], ...]:
    """The --override options; a usage error names the one that is wrong."""
    try:
        return tuple(parse_override(text) for text in texts)
    except PayloadError as exc:
        fail(f"--override {exc}", EXIT_USAGE)


def overrides_text(settings: PatientSettings) -> str:
    """`S1.window_s=45 S2.threshold=90`, or `none`."""
    pairs = [
        f"{rule}.{name}={value:g}"
        for rule, fields in sorted(settings.overrides.items())
        for name, value in sorted(fields.items())
    ]
    return " ".join(pairs) or "none"


def settings_line(active: ActiveSettings) -> str:
    settings = active.settings
    origin = "the rule table's defaults" if active.version == 0 else active.source.value
    by = f" by {active.issued_by}" if active.issued_by not in ("", active.source.value) else ""
    return (
        f"version {active.version} ({origin}{by}): tier {settings.tier}, profile"
        f" {settings.profile}, overrides {overrides_text(settings)}"
    )


@click.command("set")
@click.argument("patient_id")
@tier_option
@profile_option
@override_option
@reset_option
@click.option("--by", "issued_by", default="local", show_default=True, help="Who changes them.")
@click.pass_context
def patients_set(
    ctx: click.Context,
    patient_id: str,
    tier: str | None,
    profile: str | None,
    overrides: tuple[str, ...],
    reset_overrides: bool,
    issued_by: str,
) -> None:
    """Change a patient's settings on this box: the next version, reported to the hospital.
    A running daemon uses them within seconds."""
    if not (tier or profile or overrides or reset_overrides):
        fail("nothing to change: give --tier, --profile, --override or --reset-overrides", 2)
    if not issued_by.strip() or len(issued_by) > 64 or not issued_by.isprintable():
        fail("--by: 1-64 printable characters (a staff id, not a patient's name)", EXIT_USAGE)
    changes = parsed_overrides(overrides)
    config = config_of(ctx)
    route = EchoRoute(config.mqtt.topic_prefix, config.gateway.site)

    def edit(settings: PatientSettings) -> PatientSettings:
        return edited_settings(settings, tier, profile, changes, reset_overrides)

    with open_store(ctx) as store:
        try:
            active = set_local_settings(store, patient_id, edit, issued_by, route, time.time())
        except PayloadError as exc:
            fail(f"not changed: {exc}", EXIT_USAGE)
    click.echo(f"patient {patient_id}: now {settings_line(active)}")


@click.command("show")
@click.argument("patient_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def patients_show(ctx: click.Context, patient_id: str, as_json: bool) -> None:
    """The settings in force for a patient (with their version) and the latest changes
    received, applied or refused."""
    with open_store(ctx) as store:
        active = active_settings(store, patient_id)
        history = settings_log(store, patient_id)
    if active is None:
        fail(f"no patient {patient_id!r}; see `pulsegate patients list`")
    if as_json:
        settings = active.settings
        report = {
            "patient": patient_id,
            "version": active.version,
            "tier": settings.tier.value,
            "profile": settings.profile.value,
            "overrides": settings.overrides,
            "source": active.source.value,
            "issued_by": active.issued_by,
            "applied_s": active.applied_s,
            "history": history,
        }
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"patient {patient_id}: {settings_line(active)}")
    for row in history:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["ts_s"]))
        reason = f": {row['reason']}" if row["reason"] else ""
        click.echo(
            f"  {when} UTC  version {row['version']:<4} from {row['source']:<8}"
            f" {row['outcome']}{reason}"
        )
