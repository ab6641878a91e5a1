"""How every pulsegate command fails: one `error: ...` line on stderr and an exit code."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

EXIT_FAILURE = 1  # the request could not be carried out
EXIT_USAGE = 2  # bad arguments, configuration or input files


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print `error: message` to stderr and exit with `code`."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)
