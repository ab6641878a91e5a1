"""The full check of the database while the daemon runs: `PRAGMA quick_check` of the whole
file on a connection of its own, on a worker thread, FIRST_AFTER_S after the start and then
every EVERY_S. SQLite lets it read while the daemon writes (WAL); a check of a year's database
takes about a minute of one core here, once a day.

The start-up check skips the raw readings and their summaries (gateway/salvage.py); this one
covers them. When it finds damage it leaves the marker that makes the next start check the
whole file and salvage it, and asks the daemon to stop (systemd starts it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from gateway.salvage import is_corruption, quick_check, stop_for_damage

log = logging.getLogger(__name__)
FIRST_AFTER_S = 600.0  # after the start, when devices have reconnected and the backlog drained
EVERY_S = 86_400.0


class BackgroundCheck:
    """Checks the database at `path` now and then until stopped."""

    def __init__(
        self, path: Path, first_after_s: float = FIRST_AFTER_S, every_s: float = EVERY_S
    ) -> None:
        self.path = path
        self.first_after_s = first_after_s
        self.every_s = every_s
        self._conn: sqlite3.Connection | None = None

    async def run(self, stop: asyncio.Event, on_corrupt: Callable[[str], None]) -> None:
        """Until `stop` is set or the task is cancelled; `on_corrupt(problem)` once, after the
        marker is written, when the check fails."""
        wait_s = self.first_after_s
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait_s)
            if stop.is_set():
                return
            wait_s = self.every_s
            try:
                problem = await self._check()
            except asyncio.CancelledError:
                self.interrupt()
                raise
            if problem is not None:
                stop_for_damage(self.path, problem)
                on_corrupt(problem)
                return

    def interrupt(self) -> None:
        """End a check in progress (it then counts as not done)."""
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(sqlite3.ProgrammingError):  # closed meanwhile
                conn.interrupt()

    async def _check(self) -> str | None:
        started = time.monotonic()
        try:
            problem = await asyncio.to_thread(self._check_on_thread)
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorname", "") == "SQLITE_INTERRUPT":
                return None
            log.warning("the database check could not run (%s); it is tried again later", exc)
            return None
        if problem is None:
            log.info("database check: ok (%.0f s)", time.monotonic() - started)
        return problem

    def _check_on_thread(self) -> str | None:
        """What is wrong with the file, or None (also when it cannot be read for another
        reason than damage: sqlite3.OperationalError)."""
        try:
            self._conn = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
            )
        except sqlite3.Error as exc:
            raise sqlite3.OperationalError(f"cannot open {self.path}: {exc}") from exc
        try:
            return quick_check(self._conn, full=True)
        except sqlite3.OperationalError:
            raise  # interrupted, locked, unreadable: not damage
        except sqlite3.DatabaseError as exc:
            if is_corruption(exc):
                return str(exc)
            raise sqlite3.OperationalError(str(exc)) from exc
        finally:
            conn, self._conn = self._conn, None
            conn.close()
