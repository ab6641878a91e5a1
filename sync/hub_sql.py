"""The hub database connection, SQLite or PostgreSQL, behind one small interface.

The hub's SQL (sync/hub_store.py) is written once, with `?` placeholders, in the subset both
engines share. SQLite ships with Python; PostgreSQL needs psycopg (the `hub-postgres` extra),
imported only when a `postgresql://` URL is opened, so a gateway box never needs it.
"""

from __future__ import annotations

import importlib
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

SQLITE_BUSY_TIMEOUT_S = 30.0
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class HubStoreError(RuntimeError):
    """The hub database failed (unreachable, locked, full); the message says what to do."""


class Transaction(Protocol):
    def run(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Execute; the number of rows changed."""
        ...

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]: ...


class Engine(Protocol):
    url: str
    is_postgres: bool

    def transaction(self) -> AbstractContextManager[Transaction]:
        """Commit on success, roll back on an exception; driver errors become
        HubStoreError."""
        ...

    def close(self) -> None: ...


def redacted_url(url: str) -> str:
    """The URL without a password, for messages."""
    scheme, _, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        return f"{scheme}://{credentials.split(':')[0]}@{host}"
    return url


def failure(url: str, exc: Exception) -> HubStoreError:
    """A one-line error naming the database (without its password)."""
    return HubStoreError(f"hub database {redacted_url(url)}: {' '.join(str(exc).split())}")


class _SqliteTransaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        return self._conn.execute(sql, params).rowcount

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return [dict(row) for row in self._conn.execute(sql, params)]


class SqliteEngine:
    """One SQLite file: WAL, synchronous=FULL, write transactions take the lock up front."""

    is_postgres = False

    def __init__(self, path: Path) -> None:
        self.url = str(path)
        try:
            self._conn = sqlite3.connect(
                path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_S, check_same_thread=False
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as exc:
            raise failure(self.url, exc) from exc

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTransaction(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise failure(self.url, exc) from exc

    def close(self) -> None:
        self._conn.close()


def open_engine(url: str) -> Engine:
    """`postgresql://USER@HOST:PORT/DB` or a SQLite file path."""
    if not url.startswith(POSTGRES_SCHEMES):
        return SqliteEngine(Path(url))
    try:
        postgres = importlib.import_module("sync.hub_postgres")
    except ImportError as exc:
        raise HubStoreError(
            f"hub database {redacted_url(url)}: PostgreSQL needs psycopg:"
            " pip install 'pulsegate[hub-postgres]'"
        ) from exc
    engine: Engine = postgres.PostgresEngine(url)
    return engine
