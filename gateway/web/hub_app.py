"""The township hub's dashboard: an aiohttp application over the hub database.

Routes:
- `GET /`: the gateways (online, last seen, synced through, backlog, Last Will fired) and
  every open alert across villages, most urgent first (priority, then the longest waiting);
- `POST /ack`: acknowledge an alert as a staff member (name + password of `pulsegate hub user
  add`, CSRF token, a limit on wrong passwords); recorded exactly like `pulsegate hub ack`,
  and the running hub sends it down to the gateway;
- `GET /patient/<site>/<gateway>/<patient>`: a patient's alerts and, when the hub stores
  them, the received per-minute summaries as server-rendered SVG charts;
- `GET /patient/<site>/<gateway>/<patient>/report.pdf|.png[?day=YYYY-MM-DD]`: the daily
  report drawn from those summaries and alerts (gateway/hub_report.py; today by default).

Database calls run on one thread of their own (`HubSite.call`), never on the event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from gateway.hub_report import hub_report_data
from gateway.report_data import Format
from gateway.web import words
from gateway.web.guard import FailureLimiter
from gateway.web.hub_charts import SummaryChart, summary_charts
from gateway.web.hub_users import HubUsers
from gateway.web.pages import (
    FORM_EXPIRED,
    client_of,
    csrf_token_of,
    form_is_genuine,
    page_response,
    refusal_page,
    report_response,
    request_language,
    security_headers,
    valid_actor,
)
from gateway.web.render import STATIC_DIR, Renderer
from gateway.web.words import N_
from sync.hub_store import HubStore
from sync.payload import ack_message

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_FORM_BYTES = 16 * 1024
ALERTS_SHOWN = 500
_ALERT_REF = re.compile(r"^[0-9a-fA-F-]{8,64}$")
_PART = r"[A-Za-z0-9_.-]{1,64}"
DEFAULT_UTC_OFFSET_S = 8 * 3600  # China


@dataclass(slots=True)
class HubSite:
    """The dashboard's view of the hub database (a connection of its own)."""

    store: HubStore
    users: HubUsers
    topic_prefix: str = "pulsegate"
    configured_language: str | None = None
    renderer: Renderer = field(default_factory=Renderer)
    limiter: FailureLimiter = field(default_factory=FailureLimiter)
    wall_clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    utc_offset_s: int = DEFAULT_UTC_OFFSET_S  # the villages' local time, for report days
    drawing: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))  # reports
    _executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-web")
    )

    async def call(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


HUB_SITE = web.AppKey("hub_site", HubSite)


def make_hub_app(site: HubSite) -> web.Application:
    app = web.Application(client_max_size=MAX_FORM_BYTES, middlewares=[security_headers])
    app[HUB_SITE] = site
    app.router.add_get("/", dashboard)
    app.router.add_post("/ack", acknowledge)
    patient_path = f"/patient/{{site:{_PART}}}/{{gateway:{_PART}}}/{{patient:{_PART}}}"
    app.router.add_get(patient_path, patient)
    app.router.add_get(patient_path + "/report.{fmt:pdf|png}", patient_report)
    app.router.add_static("/static", STATIC_DIR)
    return app


def _names() -> dict[str, Any]:
    return {
        "rule_names": words.RULE_NAMES,
        "tier_names": words.TIER_NAMES,
        "priority_names": words.PRIORITY_NAMES,
        "status_names": words.STATUS_NAMES,
        "gateway_states": words.GATEWAY_STATES,
        "metric_names": words.METRIC_NAMES,
    }


def _read_dashboard(store: HubStore) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return store.list_gateways(), store.list_alerts(open_only=True, limit=ALERTS_SHOWN)


async def dashboard(request: web.Request) -> web.Response:
    site = request.app[HUB_SITE]
    lang = request_language(request, site.configured_language)
    gateways, alerts = await site.call(_read_dashboard, site.store)
    csrf, new_csrf = csrf_token_of(request)
    acked = request.query.get("acked", "")
    notice = (
        site.renderer.gettext(
            lang, N_("Acknowledgement of %(id)s recorded; it goes to the gateway.")
        )
        % {"id": acked[:8]}
        if _ALERT_REF.match(acked)
        else None
    )
    html = site.renderer.render(
        lang,
        "hub.html",
        gateways=gateways,
        alerts=alerts,
        now_s=site.wall_clock(),
        csrf=csrf,
        notice=notice,
        **_names(),
    )
    return page_response(request, html, lang, csrf if new_csrf else None)


def _record_ack(site: HubSite, alert_ref: str, name: str) -> dict[str, Any] | str:
    """Queue the acknowledgement as `pulsegate hub ack` does; the alert, or why not."""
    found = site.store.find_alerts(alert_ref)
    if len(found) != 1:
        return N_("No such alert.")
    alert = found[0]
    if alert["status"] == "closed":
        return N_("This alert is already closed.")
    acked_at_s = site.wall_clock()
    message = ack_message(
        site.topic_prefix, alert["site"], alert["gateway"], alert["alert_id"], name, acked_at_s
    )
    site.store.record_ack(alert, message, name, acked_at_s)
    return alert


async def acknowledge(request: web.Request) -> web.Response:
    """POST /ack: alert, name, password, csrf."""
    site = request.app[HUB_SITE]
    form = await request.post()
    lang = request_language(request, site.configured_language, form)

    def refuse(status: int, message: str, **values: object) -> web.Response:
        return refusal_page(request, site.renderer, lang, status, message, values)

    if not form_is_genuine(request, form):
        return refuse(403, FORM_EXPIRED)
    client = client_of(request)
    wait_s = site.limiter.retry_after_s(client, site.monotonic())
    if wait_s is not None:
        log.warning("dashboard: acknowledgement refused, too many wrong passwords from %s", client)
        return refuse(
            429,
            N_("Too many wrong passwords. Try again in %(minutes)d min."),
            minutes=math.ceil(wait_s / 60),
        )
    alert_ref = str(form.get("alert", ""))
    name = str(form.get("name", "")).strip()
    if not _ALERT_REF.match(alert_ref) or not valid_actor(name):
        return refuse(400, N_("The form is incomplete: give your staff name and password."))
    password = str(form.get("password", ""))
    if not await site.call(site.users.verify, name, password):
        site.limiter.failed(client, site.monotonic())
        log.warning("dashboard: wrong name or password for %r from %s", name, client)
        return refuse(403, N_("Wrong name or password. The alert was not acknowledged."))
    outcome = await site.call(_record_ack, site, alert_ref, name)
    if isinstance(outcome, str):
        return refuse(409, outcome)
    log.info("alert %s acknowledged by %s on the dashboard", outcome["alert_id"], name)
    raise web.HTTPSeeOther(f"/?acked={outcome['alert_id'][:8]}")


def _read_patient(
    store: HubStore, site_id: str, gateway: str, patient_id: str, now_s: float
) -> tuple[list[dict[str, Any]], list[SummaryChart]]:
    alerts = store.patient_alerts(site_id, gateway, patient_id)
    return alerts, summary_charts(store, site_id, gateway, patient_id, now_s)


async def patient(request: web.Request) -> web.Response:
    site = request.app[HUB_SITE]
    lang = request_language(request, site.configured_language)
    info = request.match_info
    now_s = site.wall_clock()
    alerts, charts = await site.call(
        _read_patient, site.store, info["site"], info["gateway"], info["patient"], now_s
    )
    if not alerts and not charts:
        raise web.HTTPNotFound()
    html = site.renderer.render(
        lang,
        "hub_patient.html",
        site_id=info["site"],
        gateway=info["gateway"],
        patient=info["patient"],
        alerts=alerts,
        charts=charts,
        now_s=now_s,
        yesterday=_local_day(now_s - 86_400, site.utc_offset_s),
        **_names(),
    )
    return page_response(request, html, lang, None)


def _local_day(now_s: float, utc_offset_s: int) -> dt.date:
    return dt.datetime.fromtimestamp(now_s + utc_offset_s, dt.UTC).date()


async def patient_report(request: web.Request) -> web.Response:
    """The daily report of a patient, from the summaries and alerts the hub received."""
    site = request.app[HUB_SITE]
    lang = request_language(request, site.configured_language)
    info = request.match_info
    key = (info["site"], info["gateway"], info["patient"])

    async def draw(day: dt.date, fmt: str) -> bytes:
        from gateway.report_render import draw_report  # noqa: PLC0415 (matplotlib: when asked)

        data = await site.call(hub_report_data, site.store, *key, day, site.utc_offset_s)
        kind: Format = "pdf" if fmt == "pdf" else "png"
        async with site.drawing:  # one page at a time: matplotlib is heavy on a small box
            return await asyncio.to_thread(draw_report, data, kind, lang)

    return await report_response(
        request,
        site.renderer,
        lang,
        name=info["patient"],
        fmt=info["fmt"],
        today=_local_day(site.wall_clock(), site.utc_offset_s),
        draw=draw,
        back="/patient/{}/{}/{}".format(*key),
    )
