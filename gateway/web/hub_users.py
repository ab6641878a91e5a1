"""Hub staff accounts: who may acknowledge alerts on the hub dashboard. A name and a scrypt
hash of the password (`gateway.web.secret_hash`), in the hub database next to the alerts
(table `hub_users`, created on first use; SQLite or PostgreSQL like the rest of the hub)."""

from __future__ import annotations

import secrets

from gateway.web.secret_hash import HashFormatError, hash_secret, verify_secret
from sync.hub_sql import Engine, HubStoreError, open_engine

MAX_NAME_CHARS = 64
MIN_PASSWORD_CHARS = 8
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS hub_users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL,"
    " created_s DOUBLE PRECISION NOT NULL)"
)


_UNKNOWN_USER_HASH = hash_secret(secrets.token_hex(16))


class UserError(ValueError):
    """A name or password that cannot be used; the message says why."""


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise UserError(f"a staff name is 1-{MAX_NAME_CHARS} printable characters")
    return name


class HubUsers:
    """The hub's staff accounts (one connection; every method is one transaction)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        with engine.transaction() as tx:
            tx.run(_SCHEMA)

    @classmethod
    def open(cls, url: str) -> HubUsers:
        engine = open_engine(url)
        try:
            return cls(engine)
        except HubStoreError:
            engine.close()
            raise

    def close(self) -> None:
        self._engine.close()

    def add(self, name: str, password: str, now_s: float) -> None:
        """Add an account, or set a new password for an existing one."""
        name = check_name(name)
        if len(password) < MIN_PASSWORD_CHARS:
            raise UserError(f"a password has at least {MIN_PASSWORD_CHARS} characters")
        with self._engine.transaction() as tx:
            tx.run(
                "INSERT INTO hub_users (name, password_hash, created_s) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash",
                (name, hash_secret(password), now_s),
            )

    def remove(self, name: str) -> bool:
        with self._engine.transaction() as tx:
            return tx.run("DELETE FROM hub_users WHERE name = ?", (name.strip(),)) > 0

    def names(self) -> list[str]:
        with self._engine.transaction() as tx:
            return [row["name"] for row in tx.rows("SELECT name FROM hub_users ORDER BY name")]

    def verify(self, name: str, password: str) -> bool:
        """The account exists and the password is its password."""
        with self._engine.transaction() as tx:
            rows = tx.rows("SELECT password_hash FROM hub_users WHERE name = ?", (name.strip(),))
        if not rows:
            verify_secret(password, _UNKNOWN_USER_HASH)  # the same time as for a known name
            return False
        try:
            return verify_secret(password, str(rows[0]["password_hash"]))
        except HashFormatError:
            return False
