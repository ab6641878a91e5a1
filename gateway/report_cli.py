"""`pulsegate report`: one patient's day on one page, as PDF or PNG."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path

import click

from alerts.daily import local_date
from gateway.cli_errors import EXIT_FAILURE, EXIT_USAGE, fail
from gateway.cli_store import config_of, open_store
from gateway.i18n import DEFAULT_LANGUAGE, LANGUAGES
from gateway.report_data import FORMATS, Format, ReportError, read_report_data

_DAY_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_day(text: str) -> dt.date:
    """A local day written YYYY-MM-DD (click.BadParameter otherwise)."""
    try:
        if not _DAY_PATTERN.match(text):
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"expected a date as YYYY-MM-DD, got {text!r}", param_hint="--day"
        ) from None


def default_output(patient_id: str, day: dt.date) -> Path:
    """`<patient>-<day>.pdf` in the current directory (path separators replaced)."""
    safe = re.sub(r"[/\\\x00]", "_", patient_id)
    return Path(f"{safe}-{day.isoformat()}.pdf")


def output_format(path: Path) -> Format:
    """The report format named by the output file's suffix."""
    suffix = path.suffix.lower().lstrip(".")
    for fmt in FORMATS:
        if suffix == fmt:
            return fmt
    raise click.BadParameter(f"{path}: the file name must end in .pdf or .png", param_hint="-o")


@click.command("report")
@click.argument("patient_id")
@click.option(
    "--day",
    metavar="YYYY-MM-DD",
    help="The local day (detector.utc_offset_h); default: yesterday.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="FILE.pdf or FILE.png (default: PATIENT-DAY.pdf in the current directory).",
)
@click.option(
    "--lang",
    type=click.Choice(LANGUAGES),
    help="Language of the page (default: web.language if set, else zh).",
)
@click.pass_context
def report_command(
    ctx: click.Context,
    patient_id: str,
    day: str | None,
    output: Path | None,
    lang: str | None,
) -> None:
    """Write the daily one-page report of PATIENT_ID (charts of SpO2, pulse and temperature,
    time below 94/92/88 %, nadir, ODI3, coverage and gaps, the day's alerts); prints its path."""
    config = config_of(ctx)
    utc_offset_s = config.detector.utc_offset_s
    try:
        report_day = (
            parse_day(day)
            if day is not None
            else local_date(time.time(), utc_offset_s) - dt.timedelta(days=1)
        )
        path = output if output is not None else default_output(patient_id, report_day)
        fmt = output_format(path)
    except click.BadParameter as exc:
        fail(exc.format_message(), EXIT_USAGE)
    language = lang or config.web.language or DEFAULT_LANGUAGE
    with open_store(ctx) as store:
        try:
            data = read_report_data(
                store, patient_id, report_day, utc_offset_s, config.gateway.site
            )
            from gateway.report_render import draw_report  # noqa: PLC0415 (matplotlib)

            page = draw_report(data, fmt, language)
        except ReportError as exc:
            fail(str(exc), EXIT_FAILURE)
    try:
        path.write_bytes(page)
    except OSError as exc:
        fail(f"cannot write the report to {path}: {exc.strerror or exc}", EXIT_FAILURE)
    if not data.has_data:
        click.echo(f"note: no readings for {patient_id} on {report_day}", err=True)
    click.echo(str(path))
