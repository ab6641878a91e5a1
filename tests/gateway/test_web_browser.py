"""The status page and the hub dashboard in a real browser: headless Debian Chromium driven
by Playwright, a real daemon process (simulated patients, the desaturation scenario at 60x),
a real mosquitto and a real `pulsegate hub run --http`.

The local page shows the patient and the S1/S2 alert; a wrong PIN is refused; the right PIN
acknowledges, and the acknowledgement reaches the hub; the hub page lists the gateway and the
alert; a staff member's acknowledgement on the hub page reaches the gateway; the patient's
hub page charts the summaries the gateway sent. Screenshots go to
tests/artifacts/ (with PULSEGATE_SCREENSHOTS=1 also to docs/screenshots/ for the README).
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.web.secret_hash import hash_secret
from sync.hub_store import HubStore
from tests.conftest import Broker, free_port
from tests.sync.conftest import HubProcess, cli, start_hub_process, wait_until
from tests.sync.daemon_process import gateway_config, start_simulated

pytest.importorskip("playwright")
from playwright.sync_api import Error as BrowserError
from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
GATEWAY, SITE = "gw-web", "village-web"
PIN = "246810"
STAFF, STAFF_PASSWORD = "dr-li", "township-pw"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
PATIENT = "demo-desaturation"


@pytest.fixture
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed: run tests/run.sh, which installs it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _start_hub(tmp_path: Path, broker_port: int, http_port: int) -> HubProcess:
    config = tmp_path / "empty.toml"
    config.write_text("")
    db = str(tmp_path / "hub.db")
    added = subprocess.run(
        cli(config, "hub", "user", "add", STAFF, "--db", db, "--password", STAFF_PASSWORD),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    hub = start_hub_process(
        config, tmp_path / "hub.log", broker_port, db, "hub-web", "--http", f"127.0.0.1:{http_port}"
    )
    hub.wait_subscribed()
    return hub


def _start_daemon(tmp_path: Path, broker_port: int, web_port: int) -> subprocess.Popen[bytes]:
    web = f'[web]\nlisten = "127.0.0.1:{web_port}"\npin_hash = "{hash_secret(PIN)}"\n'
    # Short batches: at 60x a 3 s batch is 3 simulated minutes, and every device would read
    # "silent" on the page between two of them.
    web += "[store]\nbatch_interval_s = 0.2\n"
    config = gateway_config(tmp_path, broker_port, gateway_id=GATEWAY, site=SITE, tables=web)
    with (tmp_path / "daemon.log").open("wb") as log:
        return start_simulated(config, "--speed", "60", stderr=log)


def _wait_for_text(page: Page, url: str, selector: str, pattern: str, timeout_s: float) -> str:
    """Reload `url` until the element's text matches `pattern`; that text."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        try:
            page.goto(url)
        except BrowserError:  # not listening yet
            time.sleep(0.5)
            continue
        if page.locator(selector).count():
            text = page.locator(selector).first.inner_text()
            if re.search(pattern, text):
                return text
        time.sleep(0.5)
    raise AssertionError(f"{selector} never matched {pattern!r}; last text: {text!r}")


def _screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    if os.environ.get("PULSEGATE_SCREENSHOTS") == "1":
        (ROOT / "docs" / "screenshots").mkdir(parents=True, exist_ok=True)
        shutil.copy(ARTIFACTS / name, ROOT / "docs" / "screenshots" / name)


def _gateway_alert(tmp_path: Path, alert_id: str) -> tuple[str, str | None]:
    with sqlite3.connect(tmp_path / "data" / "pulsegate.db") as conn:
        row = conn.execute("SELECT status, acked_by FROM alerts WHERE id = ?", [alert_id])
        status, acked_by = row.fetchone()
    conn.close()
    return status, acked_by


def _hub_alert(tmp_path: Path, alert_id: str) -> dict[str, Any]:
    store = HubStore.open(str(tmp_path / "hub.db"))
    try:
        found = store.find_alerts(alert_id)
    finally:
        store.close()
    return found[0] if found else {}


@pytest.mark.broker
def test_status_page_and_hub_dashboard_in_a_browser(
    tmp_path: Path, broker: Broker, chromium: Any
) -> None:
    web_port, hub_port = free_port(), free_port()
    hub = _start_hub(tmp_path, broker.port, hub_port)
    daemon = _start_daemon(tmp_path, broker.port, web_port)
    local, dashboard = f"http://127.0.0.1:{web_port}/", f"http://127.0.0.1:{hub_port}/"
    try:
        phone = chromium.new_context(
            locale="zh-CN", viewport={"width": 412, "height": 915}, device_scale_factor=1
        )
        page = phone.new_page()
        card = f"#patient-{PATIENT}"
        # The local page: the patient and its desaturation alert (S2, then S1).
        alerts_text = _wait_for_text(page, local, f"{card} .alert", r"\bS[12]\b", timeout_s=120)
        assert "高" in alerts_text  # HIGH, in Chinese
        assert "tier-red" in (page.locator(card).get_attribute("class") or "")
        # The SpO2 sparkline's range reaches down to the desaturation.
        spo2_range = page.locator(f"{card} .vital").first.locator(".range").inner_text()
        assert float(re.split("[\u2013-]", spo2_range)[0]) <= 93, spo2_range
        form = page.locator(f"{card} form.ack").first
        alert_id = form.locator("input[name=alert]").get_attribute("value")
        assert alert_id
        # A wrong PIN is refused, and says so.
        form.locator("input[name=by]").fill("dr-wang")
        form.locator("input[name=pin]").fill("000000")
        form.locator("button[type=submit]").click()
        refused = page.locator(".notice.error").inner_text()
        assert "PIN 码错误，警报未确认。" in refused  # noqa: RUF001 (Chinese punctuation)
        assert _gateway_alert(tmp_path, alert_id)[1] is None
        # The right PIN acknowledges it.
        page.goto(local)
        form = page.locator(f"{card} form.ack:has(input[value='{alert_id}'])")
        form.locator("input[name=by]").fill("dr-wang")
        form.locator("input[name=pin]").fill(PIN)
        form.locator("button[type=submit]").click()
        assert f"警报 {alert_id[:8]} 已确认。" in page.locator(".notice.ok").inner_text()
        assert _gateway_alert(tmp_path, alert_id)[1] == "dr-wang"
        _screenshot(page, "local.png")
        # The acknowledgement reaches the hub.
        acked = wait_until(
            lambda: _hub_alert(tmp_path, alert_id).get("acked_by") == "dr-wang", timeout_s=60
        )
        assert acked, hub.log()
        # The hub page lists the gateway and this patient's alerts.
        desk = chromium.new_context(locale="en-US", viewport={"width": 1100, "height": 900})
        hub_page = desk.new_page()
        _wait_for_text(
            hub_page,
            dashboard,
            f".alert:has(a:text('{PATIENT}')):has(form)",
            r"critical SpO2|severe low SpO2|probe|fever",
            timeout_s=90,
        )
        assert f"{SITE}/{GATEWAY}" in hub_page.locator("table.gateways").inner_text()
        assert "online" in hub_page.locator("table.gateways").inner_text()
        _screenshot(hub_page, "hub.png")
        # A staff member acknowledges another alert on the hub page; it reaches the gateway.
        hub_form = hub_page.locator(f".alert:has(a:text('{PATIENT}')) form.ack").first
        hub_alert_id = hub_form.locator("input[name=alert]").get_attribute("value")
        assert hub_alert_id and hub_alert_id != alert_id
        hub_form.locator("input[name=name]").fill(STAFF)
        hub_form.locator("input[name=password]").fill(STAFF_PASSWORD)
        hub_form.locator("button[type=submit]").click()
        assert "recorded" in hub_page.locator(".notice.ok").inner_text()
        reached = wait_until(
            lambda: _gateway_alert(tmp_path, hub_alert_id)[1] == STAFF, timeout_s=60
        )
        assert reached, hub.log()
        # The patient's page charts the summaries the gateway sent.
        patient_url = f"{dashboard}patient/{SITE}/{GATEWAY}/{PATIENT}"
        chart = _wait_for_text(hub_page, patient_url, ".chart", r"SpO2", timeout_s=120)
        assert hub_page.locator(".chart path.median").count() >= 1, chart
        # Both acknowledgements show on the patient's page: from the box and from the hub.
        acks = hub_page.locator("table").last.inner_text()
        assert "dr-wang" in acks and STAFF in acks, acks
        _screenshot(hub_page, "hub_patient.png")
        desk.close()
        phone.close()
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        assert hub.stop() == 0
