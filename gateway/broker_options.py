"""The TLS and credential options of the commands that talk to a broker (`pulsegate hub ...`).

`@security_options` adds --ca-file, --cert-file, --key-file, --username and --password-file
(each also from an environment variable) and hands the command one `security` argument: a
`BrokerSecurity` read and checked before the command runs. A file that cannot be used ends
the command with exit code 2 and one line naming the option; the password is never printed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from gateway.cli_errors import EXIT_USAGE, fail
from sync.broker_security import CLI_LABELS, BrokerSecurity, SecurityError, load_security

_FILE = click.Path(dir_okay=False, path_type=Path)

_OPTIONS = (
    click.option(
        "--ca-file",
        type=_FILE,
        envvar="PULSEGATE_HUB_CA_FILE",
        help="TLS: the CA certificate (PEM) of the broker's certificate; turns TLS on"
        " (env PULSEGATE_HUB_CA_FILE).",
    ),
    click.option(
        "--cert-file",
        type=_FILE,
        envvar="PULSEGATE_HUB_CERT_FILE",
        help="TLS client certificate (PEM), if the broker asks for one"
        " (env PULSEGATE_HUB_CERT_FILE).",
    ),
    click.option(
        "--key-file",
        type=_FILE,
        envvar="PULSEGATE_HUB_KEY_FILE",
        help="The client certificate's private key (default: in --cert-file)"
        " (env PULSEGATE_HUB_KEY_FILE).",
    ),
    click.option(
        "--username",
        default="",
        envvar="PULSEGATE_HUB_USERNAME",
        help="MQTT user name (env PULSEGATE_HUB_USERNAME).",
    ),
    click.option(
        "--password-file",
        type=_FILE,
        envvar="PULSEGATE_HUB_PASSWORD_FILE",
        help="File holding the MQTT password, first line (env PULSEGATE_HUB_PASSWORD_FILE).",
    ),
)


def security_from_options(
    ca_file: Path | None,
    cert_file: Path | None,
    key_file: Path | None,
    username: str,
    password_file: Path | None,
) -> BrokerSecurity:
    """The BrokerSecurity of the options; exits with one `error:` line if a file is unusable."""
    try:
        return load_security(
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
            username=username,
            password_file=password_file,
            labels=CLI_LABELS,
        )
    except SecurityError as exc:
        fail(str(exc), EXIT_USAGE)


def security_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator (below @group.command): the five options in, one `security` argument out."""

    @functools.wraps(command)
    def wrapper(
        *args: Any,
        ca_file: Path | None,
        cert_file: Path | None,
        key_file: Path | None,
        username: str,
        password_file: Path | None,
        **kwargs: Any,
    ) -> Any:
        kwargs["security"] = security_from_options(
            ca_file, cert_file, key_file, username, password_file
        )
        return command(*args, **kwargs)

    decorated: Callable[..., Any] = wrapper
    for option in reversed(_OPTIONS):
        decorated = option(decorated)
    return decorated
