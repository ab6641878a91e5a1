"""`pulsegate web hash-pin` (the status page's PIN, hashed for the configuration) and
`pulsegate patients name` (a patient's local display name, kept only on the box)."""

from __future__ import annotations

import dataclasses
import secrets
import time

import click

from gateway.cli_errors import EXIT_USAGE, fail
from gateway.cli_store import open_store
from gateway.config import Config, WebConfig
from gateway.display_names import clear_display_name, set_display_name
from gateway.web.secret_hash import hash_secret

MIN_PIN_CHARS = 4
MAX_PIN_CHARS = 64
DEMO_LISTEN = "127.0.0.1:8080"
PAGE_OFF_LINE = "status page: off ([web] listen in the configuration)"


def check_pin(pin: str) -> str:
    """The PIN, or a one-line reason it cannot be used."""
    if not MIN_PIN_CHARS <= len(pin) <= MAX_PIN_CHARS or not pin.isprintable():
        raise click.BadParameter(
            f"a PIN is {MIN_PIN_CHARS}-{MAX_PIN_CHARS} printable characters (digits are easiest"
            " on a phone)"
        )
    return pin


@click.group()
def web() -> None:
    """The local status page ([web] in the configuration)."""


@web.command("hash-pin")
@click.option(
    "--pin",
    prompt="PIN",
    hide_input=True,
    confirmation_prompt=True,
    help="The PIN (asked twice, not echoed, when not given).",
)
def hash_pin(pin: str) -> None:
    """Hash a PIN for `[web] pin_hash`: the status page asks for it before acknowledging."""
    try:
        check_pin(pin)
    except click.BadParameter as exc:
        fail(exc.message, EXIT_USAGE)
    click.echo(f'pin_hash = "{hash_secret(pin)}"')


def demo_web(config: Config) -> tuple[Config, str | None]:
    """For `run --simulate` (not --quiet): the status page on 127.0.0.1:8080 with a fresh
    6-digit PIN, unless the configuration sets [web] itself. Returns the config and the PIN
    (None when the configuration's page is used)."""
    if config.web.enabled:
        return config, None
    pin = f"{secrets.randbelow(10**6):06d}"
    web_config = WebConfig(DEMO_LISTEN, hash_secret(pin), config.web.language)
    return dataclasses.replace(config, web=web_config), pin


@click.command("name")
@click.argument("patient_id")
@click.argument("display_name", required=False)
@click.option("--clear", is_flag=True, help="Remove the display name.")
@click.pass_context
def patients_name(
    ctx: click.Context, patient_id: str, display_name: str | None, clear: bool
) -> None:
    """Give a patient a display name for the status page and reports, kept only on this box
    (messages to the hospital carry the pseudonymous id)."""
    if clear == (display_name is not None):
        fail("give a NAME, or --clear", EXIT_USAGE)
    with open_store(ctx) as store:
        if clear:
            removed = clear_display_name(store, patient_id)
            click.echo(
                f"{patient_id}: display name removed" if removed else f"{patient_id}: had none"
            )
            return
        assert display_name is not None
        set_display_name(store, patient_id, display_name, time.time())
    click.echo(f"{patient_id} is shown as {display_name.strip()}")
