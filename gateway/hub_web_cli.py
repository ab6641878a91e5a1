"""`pulsegate hub run --http HOST:PORT` (the dashboard) and `pulsegate hub user ...` (the
staff accounts that may acknowledge on it)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from gateway.cli_errors import EXIT_USAGE, fail
from gateway.web.hub_users import HubUsers, UserError
from sync.hub_store import HubStoreError


def _listen(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise click.BadParameter("expected HOST:PORT, e.g. 127.0.0.1:8081")
    return host.strip("[]"), int(port)


def http_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """`--http HOST:PORT`: serve the dashboard there while the hub runs."""
    return click.option(
        "--http",
        "http",
        callback=_listen,
        metavar="HOST:PORT",
        help="Also serve the dashboard (gateways, open alerts, acknowledgement by staff"
        " accounts) at http://HOST:PORT/.",
    )(func)


@contextmanager
def serving_dashboard(
    http: tuple[str, int] | None, db_url: str, topic_prefix: str
) -> Iterator[None]:
    """The dashboard runs for the duration of the block (nothing when `http` is None)."""
    if http is None:
        yield
        return
    from gateway.web.hub_server import DashboardError, HubDashboard  # noqa: PLC0415 (aiohttp)

    dashboard = HubDashboard(db_url, http[0], http[1], topic_prefix, None)
    try:
        dashboard.start()
    except DashboardError as exc:
        fail(str(exc))
    click.echo(f"dashboard: http://{http[0]}:{http[1]}/", err=True)
    try:
        yield
    finally:
        dashboard.stop()


@contextmanager
def _users(db_url: str) -> Iterator[HubUsers]:
    try:
        users = HubUsers.open(db_url)
    except HubStoreError as exc:
        fail(str(exc))
    try:
        yield users
    except HubStoreError as exc:
        fail(str(exc))
    finally:
        users.close()


def user_commands(db_option: Callable[[Callable[..., Any]], Any]) -> click.Group:
    """The `hub user` group (`db_option` is the hub's --db option)."""

    @click.group("user")
    def user() -> None:
        """Staff accounts that may acknowledge alerts on the dashboard."""

    @user.command("add")
    @click.argument("name")
    @db_option
    @click.option(
        "--password",
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        help="The password (asked twice, not echoed, when not given).",
    )
    def user_add(name: str, db_url: str, password: str) -> None:
        """Add a staff account (or set a new password for it)."""
        with _users(db_url) as users:
            try:
                users.add(name, password, time.time())
            except UserError as exc:
                fail(str(exc), EXIT_USAGE)
        click.echo(f"staff account {name.strip()} saved")

    @user.command("remove")
    @click.argument("name")
    @db_option
    def user_remove(name: str, db_url: str) -> None:
        """Remove a staff account."""
        with _users(db_url) as users:
            if not users.remove(name):
                fail(f"no staff account {name!r}; `pulsegate hub user list` lists them")
        click.echo(f"staff account {name.strip()} removed")

    @user.command("list")
    @db_option
    def user_list(db_url: str) -> None:
        """List the staff accounts."""
        with _users(db_url) as users:
            names = users.names()
        if not names:
            click.echo("no staff accounts; add one with `pulsegate hub user add NAME`")
        for name in names:
            click.echo(f"  {name}")

    return user
