"""The PostgreSQL engine of the hub database (psycopg 3), for hub processes that share one
MQTT subscription and so must write to one database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from sync.hub_sql import Transaction, failure


def _placeholders(sql: str) -> str:
    """The shared SQL in psycopg's style (the hub's SQL has no other '?' and no '%')."""
    return sql.replace("?", "%s")


class _PostgresTransaction:
    def __init__(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        self._conn = conn

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        return self._conn.execute(_placeholders(sql), params).rowcount

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return self._conn.execute(_placeholders(sql), params).fetchall()


class PostgresEngine:
    """One connection; after the server or the network drops it, the next transaction
    connects again."""

    is_postgres = True

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self._conn = self._connect()
        except psycopg.Error as exc:
            raise failure(url, exc) from exc

    def _connect(self) -> psycopg.Connection[dict[str, Any]]:
        return psycopg.connect(self.url, row_factory=dict_row)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        try:
            if self._conn.closed or self._conn.broken:
                self._conn = self._connect()
            with self._conn.transaction():
                yield _PostgresTransaction(self._conn)
        except psycopg.Error as exc:
            raise failure(self.url, exc) from exc

    def close(self) -> None:
        self._conn.close()
