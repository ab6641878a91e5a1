"""The hub dashboard next to `pulsegate hub run`: an aiohttp server on a thread of its own
(the hub's receiver is a plain thread loop), with its own database connections."""

from __future__ import annotations

import asyncio
import logging
import threading

from aiohttp import web

from gateway.web.hub_app import HubSite, make_hub_app
from gateway.web.hub_users import HubUsers
from sync.hub_store import HubStore, HubStoreError

log = logging.getLogger(__name__)
START_TIMEOUT_S = 15.0


class DashboardError(RuntimeError):
    """The dashboard could not start (the port is taken, the database cannot be opened)."""


class HubDashboard:
    """`start()` serves the dashboard on host:port until `stop()`."""

    def __init__(
        self, db_url: str, host: str, port: int, topic_prefix: str, language: str | None
    ) -> None:
        self._db_url = db_url
        self._host, self._port = host, port
        self._topic_prefix = topic_prefix
        self._language = language
        self._thread = threading.Thread(target=self._run, name="hub-dashboard", daemon=True)
        self._started = threading.Event()
        self._error: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def start(self) -> None:
        """Start serving; DashboardError if it cannot."""
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S):
            raise DashboardError("the dashboard did not start in time")
        if self._error is not None:
            self._thread.join()
            raise DashboardError(self._error)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=START_TIMEOUT_S)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except HubStoreError as exc:
            self._error = f"dashboard: {exc}"
            self._started.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        store = HubStore.open(self._db_url)
        try:
            users = HubUsers.open(self._db_url)
        except HubStoreError:
            store.close()
            raise
        site = HubSite(store, users, self._topic_prefix, self._language)
        runner = web.AppRunner(make_hub_app(site), access_log=None)
        try:
            await runner.setup()
            try:
                await web.TCPSite(runner, self._host, self._port).start()
            except OSError as exc:
                self._error = (
                    f"dashboard: cannot listen on {self._host}:{self._port}: {exc.strerror or exc}"
                )
                return
            log.info("dashboard on http://%s:%d/", self._host, self._port)
            self._started.set()
            await self._stop.wait()
        finally:
            self._started.set()
            await runner.cleanup()
            site.close()
            users.close()
            store.close()
