"""The status page in-process (aiohttp's test client over a real store): what it shows, the
PIN, the CSRF token, the wrong-PIN limit, the language and HTML escaping."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace
from typing import Any

from alerts.rules import Profile, Tier
from gateway.config import parse_config
from gateway.store import Patient, ReadingRow, Store
from gateway.web.local_data import SeriesCache, gather_page
from gateway.web.local_server import report_renderer
from tests.gateway.web_fixtures import NOW_S, PIN, PageEnv, fill_store, message, page_env

__all__ = ["page_env"]  # the fixture, used by name


def _status(store: Any, alert_id: str) -> tuple[str, str | None]:
    row = store.db.execute("SELECT status, acked_by FROM alerts WHERE id = ?", [alert_id])
    status, acked_by = row.fetchone()
    return status, acked_by


async def _post_ack(env: PageEnv, pin: str, *, csrf: str | None = None, **extra: str) -> Any:
    token = csrf if csrf is not None else await env.csrf()
    form = {"csrf": token, "alert": env.alert_id, "pin": pin, "by": "dr-wang", "lang": "en"}
    form.update(extra)
    return await env.client.post("/ack", data=form, allow_redirects=False)


async def test_page_shows_patients_vitals_devices_and_the_open_alert(page_env: Any) -> None:
    env = await page_env()
    response = await env.client.get("/", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert response.status == 200
    html = await response.text()
    assert "p-red" in html and "p-green" in html
    assert 'class="patient tier-red"' in html and 'class="patient tier-green"' in html
    assert ">87<" in html and ">101<" in html and ">38.4<" in html  # latest values
    assert "critical SpO2" in html and 'name="pin"' in html  # the S1 alert, with its form
    assert "no finger" in html  # p-green's probe is off
    assert html.count("<svg") >= 2  # sparklines of p-red's SpO2 and pulse
    assert "Hospital link: not connected" in html
    # the red patient with a HIGH alert comes first
    assert html.index("p-red") < html.index("p-green")


async def test_display_names_are_escaped_and_the_pseudonym_still_shown(page_env: Any) -> None:
    env = await page_env()
    html = await (await env.client.get("/?lang=en")).text()
    assert "王&lt;b&gt;阿姨&lt;/b&gt;" in html
    assert "<b>阿姨</b>" not in html
    assert '<span class="pseudonym">p-red</span>' in html


async def test_right_pin_acknowledges_through_the_store_and_queues_the_event(
    page_env: Any,
) -> None:
    env = await page_env()
    response = await _post_ack(env, PIN)
    assert response.status == 303
    assert response.headers["Location"].startswith(f"/?acked={env.alert_id[:8]}")
    assert _status(env.store, env.alert_id) == ("acked", "dr-wang")
    payloads = [json.loads(row.payload) for row in env.store.pending_messages(10)]
    acked = [p for p in payloads if p["event"] == "acked"]
    assert len(acked) == 1 and acked[0]["acked_by"] == "dr-wang"
    page = await (
        await env.client.get(response.headers["Location"], headers={"Accept-Language": "en"})
    ).text()
    assert f"Alert {env.alert_id[:8]} acknowledged." in page


async def test_wrong_pin_is_refused_with_a_clear_message(page_env: Any) -> None:
    env = await page_env()
    response = await _post_ack(env, "0000")
    assert response.status == 403
    assert "Wrong PIN. The alert was not acknowledged." in await response.text()
    assert _status(env.store, env.alert_id) == ("open", None)


async def test_a_form_without_the_cookies_token_or_from_another_origin_is_refused(
    page_env: Any,
) -> None:
    env = await page_env()
    forged = await _post_ack(env, PIN, csrf="x" * 32)
    assert forged.status == 403
    assert "The form has expired" in await forged.text()
    token = await env.csrf()
    cross = await env.client.post(
        "/ack",
        data={"csrf": token, "alert": env.alert_id, "pin": PIN, "lang": "en"},
        headers={"Origin": "http://evil.example"},
        allow_redirects=False,
    )
    assert cross.status == 403
    env.client.session.cookie_jar.clear()
    no_cookie = await env.client.post(
        "/ack", data={"csrf": token, "alert": env.alert_id, "pin": PIN}, allow_redirects=False
    )
    assert no_cookie.status == 403
    assert _status(env.store, env.alert_id) == ("open", None)


async def test_after_five_wrong_pins_even_the_right_one_waits(page_env: Any) -> None:
    env = await page_env()
    for _ in range(5):
        assert (await _post_ack(env, "9999")).status == 403
    limited = await _post_ack(env, PIN)
    assert limited.status == 429
    assert "Too many wrong PINs. Try again in 10 min." in await limited.text()
    assert _status(env.store, env.alert_id) == ("open", None)
    env.clock[0] += 601  # the window has passed
    assert (await _post_ack(env, PIN)).status == 303
    assert _status(env.store, env.alert_id)[0] == "acked"


async def test_without_a_configured_pin_nothing_can_be_acknowledged(page_env: Any) -> None:
    env = await page_env(pin_hash="")
    html = await (await env.client.get("/?lang=en")).text()
    assert 'name="pin"' not in html and "needs a PIN in the configuration" in html
    response = await _post_ack(env, PIN)
    assert response.status == 403
    assert _status(env.store, env.alert_id) == ("open", None)


async def test_an_already_acknowledged_alert_says_so(page_env: Any) -> None:
    env = await page_env()
    assert (await _post_ack(env, PIN)).status == 303
    again = await _post_ack(env, PIN)
    assert again.status == 409
    assert "cannot be acknowledged now" in await again.text()


async def test_language_precedence_picked_then_configured_then_browser(page_env: Any) -> None:
    browser_en = {"Accept-Language": "en-GB,en;q=0.8,zh;q=0.5"}
    default_env = await page_env()
    html = await (await default_env.client.get("/", headers={"Accept-Language": "fr"})).text()
    assert '<html lang="zh-CN">' in html and "血氧" in html  # nothing supported: Chinese
    html = await (await default_env.client.get("/", headers=browser_en)).text()
    assert '<html lang="en">' in html and "Patients" in html  # the browser decides
    configured = await page_env(language="zh")
    html = await (await configured.client.get("/", headers=browser_en)).text()
    assert '<html lang="zh-CN">' in html  # the configuration beats the browser
    picked = await configured.client.get("/?lang=en", headers=browser_en)
    assert '<html lang="en">' in await picked.text()  # the visitor's pick beats both
    html = await (await configured.client.get("/", headers=browser_en)).text()
    assert '<html lang="en">' in html  # and is remembered in a cookie


async def test_chinese_page_uses_the_catalog(page_env: Any) -> None:
    env = await page_env()
    html = await (await env.client.get("/?lang=zh")).text()
    for text in ("患者", "血氧危急", "确认", "PIN 码", "未夹手指", "红：重点人群"):  # noqa: RUF001
        assert text in html


async def test_pages_carry_security_headers_and_a_strict_csrf_cookie(page_env: Any) -> None:
    env = await page_env()
    response = await env.client.get("/")
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    css = await env.client.get("/static/style.css")
    assert css.status == 200 and "tier-red" in await css.text()


async def test_reports_are_not_linked_or_served_without_a_renderer(page_env: Any) -> None:
    env = await page_env()
    html = await (await env.client.get("/")).text()
    assert "/report/" not in html
    assert (await env.client.get("/report/p-red.pdf")).status == 404


async def test_report_route_passes_patient_day_format_and_language(page_env: Any) -> None:
    env = await page_env()
    calls: list[tuple[Any, ...]] = []

    async def render(patient: str, day: Any, fmt: str, lang: str) -> bytes:
        calls.append((patient, str(day), fmt, lang))
        return b"%PDF-1.4 fake"

    env.site.render_report = render
    html = await (await env.client.get("/?lang=en")).text()
    assert 'href="/report/p-red.pdf"' in html
    response = await env.client.get("/report/p-red.pdf?day=2027-01-14")
    assert response.status == 200 and response.content_type == "application/pdf"
    png = await env.client.get("/report/p-green.png")
    assert png.content_type == "image/png"
    assert calls == [("p-red", "2027-01-14", "pdf", "en"), ("p-green", "2027-01-15", "png", "en")]
    assert (await env.client.get("/report/p-red.pdf?day=yesterday")).status == 400
    assert (await env.client.get("/report/..%2Fetc.pdf")).status == 404


def test_devices_show_their_own_battery_level_and_go_silent(tmp_path: Any) -> None:
    store = Store.open(tmp_path / "pulsegate.db", "gw-1")
    fill_store(store)
    store.ensure_device("ox-old", "viatom-oxy", "ble", NOW_S - 900)
    store.bind("ox-old", "p-green", NOW_S - 900)
    rows = [
        ReadingRow(NOW_S - 100, "p-red", "ox-red", "battery_percent", 80.0, 0),
        ReadingRow(NOW_S - 20, "p-red", "ox-red", "battery_percent", 35.0, 0),  # the newest
        ReadingRow(NOW_S - 600, "p-green", "ox-old", "spo2_percent", 96.0, 0),
    ]
    store.write_batch(rows, [], {}, message, NOW_S)
    page = gather_page(store, SeriesCache(), NOW_S)
    devices = {d.device_id: d for p in page.patients for d in p.devices}
    store.close()
    assert devices["ox-red"].battery_percent == 35.0
    assert devices["ox-red"].state == "receiving"
    assert devices["ox-green"].no_finger
    assert devices["ox-old"].state == "silent"  # ten minutes without data
    assert devices["ox-old"].battery_percent is None
    assert page.backlog == 1  # the S1 alert's event, not yet sent


async def test_the_daemons_report_renderer_draws_a_png_from_its_own_database(
    tmp_path: Any,
) -> None:
    config = parse_config({"gateway": {"data_dir": str(tmp_path)}})
    store = Store.open(config.database_path, config.gateway.id)
    store.add_patient(Patient("p-1", Tier.RED, Profile.DEFAULT), NOW_S)
    store.close()
    render = report_renderer(SimpleNamespace(config=config))  # type: ignore[arg-type]
    page = await render("p-1", dt.date(2026, 11, 20), "png", "en")
    assert page.startswith(b"\x89PNG\r\n\x1a\n")
