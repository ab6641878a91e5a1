"""The status page inside the daemon (started by gateway.web.server when [web] listen is set).

Off unless `[web] listen` is set. Page reads go through the daemon's store thread
(`StoreWorker`); the daily report, which takes a second or so of matplotlib, is drawn on a
thread of its own with its own read connection (WAL: it never blocks the batch writer), one
report at a time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.store import Store
from gateway.web.local_app import LocalSite, ReportRenderer, make_local_app
from gateway.web.local_data import PageData, SeriesCache, gather_page
from gateway.web.render import Renderer

if TYPE_CHECKING:
    from gateway.daemon import Daemon

log = logging.getLogger(__name__)
CACHE_SLICE_S = 300.0  # 5 minutes of readings per store call


def local_date(now_s: float, utc_offset_s: int) -> dt.date:
    return dt.datetime.fromtimestamp(now_s + utc_offset_s, dt.UTC).date()


def report_renderer(daemon: Daemon) -> ReportRenderer:
    """Draws reports with `gateway.report_render.render_report`; matplotlib is imported at
    the first report, not with the daemon."""
    config = daemon.config
    one_at_a_time = asyncio.Semaphore(1)

    def draw(patient_id: str, day: dt.date, fmt: str, lang: str) -> bytes:
        from gateway.report_render import render_report  # noqa: PLC0415 (matplotlib)

        store = Store.open(config.database_path, config.gateway.id)
        try:
            return render_report(
                store,
                patient_id,
                day,
                "pdf" if fmt == "pdf" else "png",  # the route admits only these two
                lang=lang,
                utc_offset_s=config.detector.utc_offset_s,
                site=config.gateway.site,
            )
        finally:
            store.close()

    async def report(patient_id: str, day: dt.date, fmt: str, lang: str) -> bytes:
        async with one_at_a_time:
            return await asyncio.to_thread(draw, patient_id, day, fmt, lang)

    return report


def local_site_of(daemon: Daemon) -> LocalSite:
    """The page's view of a running daemon."""
    config = daemon.config
    cache = SeriesCache()
    worker = daemon.worker

    async def read_page() -> PageData:
        now_s = daemon.clock.now_s()
        # The first page reads 3 hours of readings: in slices, so that the batch writer's
        # calls get their turn on the store thread in between.
        while not await worker.call(cache.refresh, worker.store, now_s, CACHE_SLICE_S):
            pass
        return await worker.call(gather_page, worker.store, cache, now_s)

    def link_state() -> str:
        if daemon.publisher is None:
            return "none"
        return "up" if daemon.publisher.stats.connected else "down"

    def today() -> dt.date:
        return local_date(daemon.clock.now_s(), config.detector.utc_offset_s)

    return LocalSite(
        gateway_id=config.gateway.id,
        configured_language=config.web.language,
        pin_hash=config.web.pin_hash,
        read_page=read_page,
        acknowledge=daemon.ack,
        link_state=link_state,
        today=today,
        render_report=report_renderer(daemon),
        renderer=Renderer(config.detector.utc_offset_s),
    )


async def serve(daemon: Daemon, stop: asyncio.Event) -> None:
    """Serve the status page until `stop` is set (or the task is cancelled). A page that
    cannot listen is logged, and the daemon runs on without it."""
    web_config = daemon.config.web
    if not web_config.enabled:
        return
    runner = web.AppRunner(make_local_app(local_site_of(daemon)), access_log=None)
    await runner.setup()
    host, port = web_config.host_port
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        log.error(
            "status page: cannot listen on %s (%s); running without it: free the port or"
            " change [web] listen",
            web_config.listen,
            exc.strerror or exc,
        )
        await runner.cleanup()
        return
    log.info("status page on http://%s:%d/", host, port)
    if daemon.observer is not None:
        daemon.observer.on_listening(f"http://{host}:{port}/")
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
