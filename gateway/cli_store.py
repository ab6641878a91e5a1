"""The configuration and the store as every `pulsegate` command gets them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import click

from gateway.cli_errors import fail
from gateway.config import Config
from gateway.salvage import is_corruption, mark_corrupt, open_checked
from gateway.store import Store, StoreError


def config_of(ctx: click.Context) -> Config:
    """The configuration the `pulsegate` group loaded (once) for this invocation."""
    config: Config = ctx.obj["config"]
    return config


@contextmanager
def open_store(ctx: click.Context, checked: bool = False) -> Iterator[Store]:
    """The store; a store error becomes `error: ...` and exit 1. `checked`: integrity-check
    it first, salvaging a corrupt one (the daemon does)."""
    config = config_of(ctx)
    try:
        store = (open_checked if checked else Store.open)(config.database_path, config.gateway.id)
    except StoreError as exc:
        fail(str(exc))
    try:
        yield store
    except StoreError as exc:
        fail(str(exc))
    except sqlite3.DatabaseError as exc:
        if not is_corruption(exc):
            fail(f"the database {config.database_path}: {exc}")
        mark_corrupt(config.database_path, str(exc))
        fail(
            f"the database {config.database_path} is damaged ({exc}): the daemon's next start"
            " checks it whole and salvages it (systemctl restart pulsegate)"
        )
    finally:
        store.close()
