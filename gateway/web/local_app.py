"""The box's status page: an aiohttp application, server-rendered with Jinja2.

Routes:
- `GET /`: every patient with tier colour, latest SpO2 / pulse / temperature and their age,
  sparklines of the last 3 hours, devices, open alerts; the hospital link and the outbox.
- `POST /ack`: acknowledge an alert; needs the PIN (`[web] pin_hash`), the form's CSRF token,
  and is refused for a while after too many wrong PINs. It goes through the same store path as
  `pulsegate ack`, so the acknowledgement flows upstream.
- `GET /report/<patient>.pdf|.png[?day=YYYY-MM-DD]`: the daily report (today by default).
- `GET /static/...`: the stylesheet and the page's few lines of JavaScript.

Everything but reading needs the PIN. The application knows the daemon only through
`LocalSite`'s callables, so tests run it on a store of their own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from alerts.lifecycle import Alert
from gateway.store import StoreError
from gateway.web import words
from gateway.web.guard import CSRF_FIELD, FailureLimiter
from gateway.web.local_data import BUCKET_S, WINDOW_S, PageData
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
from gateway.web.secret_hash import verify_secret
from gateway.web.sparkline import Sparkline, sparkline
from gateway.web.words import N_

log = logging.getLogger(__name__)
DEFAULT_ACTOR = "status-page"
MAX_FORM_BYTES = 16 * 1024
_ALERT_REF = re.compile(r"^[0-9a-fA-F-]{6,64}$")
_REPORT_NAME = re.compile(r"^(?P<patient>[A-Za-z0-9_.-]{1,64})\.(?P<fmt>pdf|png)$")


@dataclass(frozen=True, slots=True)
class VitalSpec:
    unit: str
    digits: int
    floor: float | None  # the sparkline's value axis reaches at least this far
    ceiling: float | None
    limit: float | None  # a dashed threshold line


VITAL_SPECS = {
    "spo2_percent": VitalSpec("%", 0, 90.0, 100.0, 92.0),
    "pulse_bpm": VitalSpec("bpm", 0, 50.0, 110.0, None),
    "temp_c": VitalSpec("°C", 1, 36.0, 38.0, 38.1),
}
COPD_SPO2_LIMIT = 88.0
MIN_SPAN_S = 1800.0
ReportRenderer = Callable[[str, dt.date, str, str], Awaitable[bytes]]  # patient, day, fmt, lang


@dataclass(slots=True)
class LocalSite:
    """What the page needs from the daemon, as callables."""

    gateway_id: str
    configured_language: str | None
    pin_hash: str
    read_page: Callable[[], Awaitable[PageData]]  # on the store's thread
    acknowledge: Callable[[str, str], Awaitable[Alert]]
    link_state: Callable[[], str]  # "up", "down" or "none" (no broker configured)
    today: Callable[[], dt.date]  # the box's local date
    render_report: ReportRenderer | None = None
    renderer: Renderer = field(default_factory=Renderer)
    limiter: FailureLimiter = field(default_factory=FailureLimiter)
    monotonic: Callable[[], float] = time.monotonic


SITE = web.AppKey("site", LocalSite)
LINK_TEXT = {
    "up": words.N_("connected"),
    "down": words.N_("not connected"),
    "none": words.N_("not configured"),
}


def make_local_app(site: LocalSite) -> web.Application:
    """The status page application."""
    app = web.Application(client_max_size=MAX_FORM_BYTES, middlewares=[security_headers])
    app[SITE] = site
    app.router.add_get("/", index)
    app.router.add_post("/ack", acknowledge)
    app.router.add_get("/report/{name}", report)
    app.router.add_static("/static", STATIC_DIR)
    return app


def _sparklines(page: PageData) -> dict[str, dict[str, Sparkline]]:
    """Each patient's sparklines, over the last WINDOW_S, or since the oldest point shown
    (at least MIN_SPAN_S) when the data is younger than that."""
    lines: dict[str, dict[str, Sparkline]] = {}
    for patient in page.patients:
        oldest_s = min(
            (vital.series[0][0] for vital in patient.vitals.values() if vital.series),
            default=page.now_s,
        )
        start_s = max(page.now_s - WINDOW_S, min(oldest_s, page.now_s - MIN_SPAN_S))
        lines[patient.id] = {}
        for metric, vital in patient.vitals.items():
            spec = VITAL_SPECS[metric]
            limit = (
                COPD_SPO2_LIMIT
                if metric == "spo2_percent" and patient.profile == "copd"
                else spec.limit
            )
            lines[patient.id][metric] = sparkline(
                vital.series,
                start_s,
                page.now_s,
                bucket_s=BUCKET_S,
                floor=spec.floor,
                ceiling=spec.ceiling,
                limit=limit,
            )
    return lines


async def index(request: web.Request) -> web.Response:
    site = request.app[SITE]
    lang = request_language(request, site.configured_language)
    page = await site.read_page()
    csrf, new_csrf = csrf_token_of(request)
    acked = request.query.get("acked", "")
    notice = (
        site.renderer.gettext(lang, N_("Alert %(id)s acknowledged.")) % {"id": acked[:8]}
        if _ALERT_REF.match(acked)
        else None
    )
    html = site.renderer.render(
        lang,
        "local.html",
        page=page,
        gateway=site.gateway_id,
        sparklines=_sparklines(page),
        vital_specs=VITAL_SPECS,
        link_class=site.link_state(),
        link_text=LINK_TEXT[site.link_state()],
        notice=notice,
        csrf=csrf,
        can_ack=bool(site.pin_hash),
        reports=site.render_report is not None,
        report_days=[site.today() - dt.timedelta(days=k) for k in range(1, 7)],
        rule_names=words.RULE_NAMES,
        tier_names=words.TIER_NAMES,
        priority_names=words.PRIORITY_NAMES,
        status_names=words.STATUS_NAMES,
        device_states=words.DEVICE_STATES,
        metric_names=words.METRIC_NAMES,
    )
    return page_response(request, html, lang, csrf if new_csrf else None)


async def acknowledge(request: web.Request) -> web.Response:
    """POST /ack: alert, pin, by, csrf."""
    site = request.app[SITE]
    form = await request.post()
    lang = request_language(request, site.configured_language, form)

    def refuse(status: int, message: str, **values: object) -> web.Response:
        return refusal_page(request, site.renderer, lang, status, message, values)

    if not site.pin_hash:
        return refuse(403, N_("Acknowledging on this page is off: no PIN is configured."))
    if not form_is_genuine(request, form):
        return refuse(403, FORM_EXPIRED)
    client = client_of(request)
    wait_s = site.limiter.retry_after_s(client, site.monotonic())
    if wait_s is not None:
        log.warning("status page: acknowledgement refused, too many wrong PINs from %s", client)
        return refuse(
            429,
            N_("Too many wrong PINs. Try again in %(minutes)d min."),
            minutes=math.ceil(wait_s / 60),
        )
    alert_ref = str(form.get("alert", ""))
    actor = str(form.get("by", "")).strip() or DEFAULT_ACTOR
    if not _ALERT_REF.match(alert_ref) or not valid_actor(actor):
        return refuse(
            400, N_("The form is incomplete: give the alert and a name of up to 64 characters.")
        )
    pin = str(form.get("pin", ""))
    if not await asyncio.to_thread(verify_secret, pin, site.pin_hash):
        site.limiter.failed(client, site.monotonic())
        log.warning("status page: wrong PIN for alert %s from %s", alert_ref[:8], client)
        return refuse(403, N_("Wrong PIN. The alert was not acknowledged."))
    try:
        alert = await site.acknowledge(alert_ref, actor)
    except StoreError as exc:
        log.info("status page: acknowledgement of %s not applied: %s", alert_ref[:8], exc)
        return refuse(
            409, N_("This alert cannot be acknowledged now (already acknowledged, or closed).")
        )
    log.info("alert %s acknowledged by %s on the status page", alert.id, actor)
    raise web.HTTPSeeOther(f"/?acked={alert.id[:8]}#patient-{alert.patient_id}")


async def report(request: web.Request) -> web.StreamResponse:
    """GET /report/<patient>.pdf|.png?day=YYYY-MM-DD (default: today on the box)."""
    site = request.app[SITE]
    lang = request_language(request, site.configured_language)
    match = _REPORT_NAME.match(request.match_info["name"])
    render = site.render_report
    if render is None or match is None:
        raise web.HTTPNotFound()
    patient = match["patient"]

    async def draw(day: dt.date, fmt: str) -> bytes:
        return await render(patient, day, fmt, lang)

    return await report_response(
        request,
        site.renderer,
        lang,
        name=patient,
        fmt=match["fmt"],
        today=site.today(),
        draw=draw,
        back="/",
    )


__all__ = ["CSRF_FIELD", "SITE", "LocalSite", "make_local_app"]
