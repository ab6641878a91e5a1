"""What the status page and the hub dashboard share: security headers, the CSRF cookie,
language cookies, message pages and small form checks (aiohttp)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.i18n import normalise_language
from gateway.store import StoreError
from gateway.web.guard import (
    CSRF_COOKIE,
    CSRF_FIELD,
    csrf_ok,
    is_csrf_token,
    new_csrf_token,
    same_origin,
)
from gateway.web.lang import LANG_COOKIE, choose_language
from gateway.web.render import Renderer
from gateway.web.words import N_

log = logging.getLogger(__name__)
ReportDraw = Callable[[dt.date, str], Awaitable[bytes]]  # (day, pdf | png) -> the file

FORM_EXPIRED = N_("The form has expired. Reload the page and try again.")
MAX_ACTOR_CHARS = 64
LANG_COOKIE_MAX_AGE_S = 365 * 86_400
# Pages load only their own stylesheet and script; nothing may frame them.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:;"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    # same-origin, not no-referrer: with no-referrer a browser posts forms with Origin "null"
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def ok_language(value: str | None) -> str | None:
    """A supported language named by a query parameter or cookie, or None."""
    return normalise_language(value) if value else None


def request_language(
    request: web.Request, configured_language: str | None, form: Any = None
) -> str:
    """The page's language: a posted form's `lang`, else `?lang=`, else the language cookie,
    else the configured one, else the browser's Accept-Language."""
    picked = (
        (ok_language(str(form.get("lang", ""))) if form is not None else None)
        or ok_language(request.query.get("lang"))
        or ok_language(request.cookies.get(LANG_COOKIE))
    )
    return choose_language(picked, configured_language, request.headers.get("Accept-Language"))


def client_of(request: web.Request) -> str:
    """The peer address (the limit on wrong secrets counts per address)."""
    return request.remote or "unknown"


def csrf_token_of(request: web.Request) -> tuple[str, bool]:
    """The CSRF token of this browser (its cookie), or a new one; True when new."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if cookie is not None and is_csrf_token(cookie):
        return cookie, False
    return new_csrf_token(), True


def form_is_genuine(request: web.Request, form: Any) -> bool:
    """The form came from our own page: same origin, and its token matches the cookie."""
    if not same_origin(request.headers.get("Origin"), request.host):
        return False
    return csrf_ok(request.cookies.get(CSRF_COOKIE), str(form.get(CSRF_FIELD, "")))


def valid_actor(name: str) -> bool:
    """Who acknowledges: 1-64 printable characters (a staff id or first name)."""
    return 0 < len(name) <= MAX_ACTOR_CHARS and name.isprintable()


def page_response(request: web.Request, html: str, lang: str, new_csrf: str | None) -> web.Response:
    """An HTML page; sets the CSRF cookie when it is new and remembers a picked language."""
    response = web.Response(text=html, content_type="text/html", charset="utf-8")
    response.enable_compression()  # a 20-patient page is ~135 kB, ~15 kB gzipped
    if new_csrf is not None:
        response.set_cookie(CSRF_COOKIE, new_csrf, httponly=True, samesite="Strict", path="/")
    picked = ok_language(request.query.get("lang"))
    if picked is not None:
        response.set_cookie(
            LANG_COOKIE, picked, max_age=LANG_COOKIE_MAX_AGE_S, samesite="Lax", path="/"
        )
    return response


def message_page(
    request: web.Request, renderer: Renderer, lang: str, status: int, message: str, back: str
) -> web.Response:
    """A short page saying what happened (a refused PIN, an expired form...)."""
    title = renderer.gettext(lang, N_("Done") if status < 400 else N_("Not done"))
    html = renderer.render(
        lang,
        "message.html",
        title=title,
        message=message,
        kind="ok" if status < 400 else "error",
        back=back,
    )
    response = page_response(request, html, lang, None)
    response.set_status(status)
    return response


def refusal_page(
    request: web.Request,
    renderer: Renderer,
    lang: str,
    status: int,
    message: str,
    values: dict[str, object],
) -> web.Response:
    """A message page with `message` translated (and filled with `values`), back to `/`."""
    text = renderer.gettext(lang, message)
    return message_page(request, renderer, lang, status, text % values if values else text, "/")


async def report_response(
    request: web.Request,
    renderer: Renderer,
    lang: str,
    *,
    name: str,
    fmt: str,
    today: dt.date,
    draw: ReportDraw,
    back: str,
) -> web.Response:
    """A daily report as the response: the day from `?day=YYYY-MM-DD` (default `today`),
    drawn by `draw`; a bad day or a report that cannot be made is a message page (an unknown
    patient, a missing font: ReportError, a ValueError; a store that refused: StoreError)."""
    try:
        day = dt.date.fromisoformat(request.query["day"]) if "day" in request.query else today
    except ValueError:
        text = renderer.gettext(lang, N_("Give the day as YYYY-MM-DD."))
        return message_page(request, renderer, lang, 400, text, back)
    try:
        body = await draw(day, fmt)
    except (ValueError, StoreError) as exc:
        log.info("report of %s for %s not made: %s", name, day, exc)
        return message_page(request, renderer, lang, 404, str(exc), back)
    return web.Response(
        body=body,
        content_type="application/pdf" if fmt == "pdf" else "image/png",
        headers={"Content-Disposition": f'inline; filename="{name}-{day}.{fmt}"'},
    )
