"""`pulsegate replay`: the alert timeline the detector gives for a recording."""

from __future__ import annotations

import json
from pathlib import Path

import click

from alerts.channels import Sample
from alerts.replay import TimelineEvent, replay
from alerts.rules import Profile, Tier
from devices.protocols.reading import Metric
from devices.recording_csv import GenericSample, format_utc
from gateway.console import describe
from gateway.decode_cli import format_option, load_samples, utc_offset_option

_COLUMNS = (Metric.SPO2, Metric.PULSE, Metric.PI, Metric.TEMP)


def to_samples(rows: list[GenericSample]) -> list[Sample]:
    """Generic CSV rows as detector samples (a CSV carries no quality flags)."""
    return [
        (row.time_s, metric.value, value, 0)
        for row in rows
        for metric, value in zip(_COLUMNS, row.values(), strict=True)
        if value is not None or metric in (Metric.SPO2, Metric.PULSE)
    ]


def event_json(event: TimelineEvent) -> dict[str, object]:
    return {
        "rule": event.rule.value,
        "priority": event.priority.value,
        "event": event.event.value,
        "at": format_utc(event.at_s),
        "value": event.stats.get("value"),
        "alert_id": event.alert_id,
        "details": event.stats,
    }


@click.command("replay")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@format_option
@click.option(
    "--tier",
    type=click.Choice([t.value for t in Tier]),
    default="red",
    show_default=True,
    help="The patient's risk tier the rules are selected for.",
)
@click.option(
    "--profile",
    type=click.Choice([p.value for p in Profile]),
    default="default",
    show_default=True,
    help="copd: NEWS2 SpO2 scale 2.",
)
@utc_offset_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per alert event.")
def replay_command(
    file: Path, format_name: str, tier: str, profile: str, utc_offset_h: float, as_json: bool
) -> None:
    """Run the detector over a recording FILE (generic CSV or a device file) and print the
    alert timeline: what the rules would have raised and cleared, and when."""
    loaded = load_samples(file, format_name, utc_offset_h)
    click.echo(loaded.summary(), err=True)
    timeline = replay(to_samples(loaded.samples), Tier(tier), Profile(profile))
    for event in timeline:
        if as_json:
            click.echo(json.dumps(event_json(event)))
        else:
            click.echo(
                f"{format_utc(event.at_s)}  {event.rule:<3} {event.priority:<6} "
                f"{event.event.value:<9} {describe(event.stats)}  [id {event.alert_id[:8]}]"
            )
    if not as_json:
        click.echo(f"{len(timeline)} alert events", err=True)
