"""The daily report at the township hub, from the per-minute summaries and alerts it received
(real messages as the gateway makes them, into a real SQLite hub database), and its route on
the dashboard."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import math
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from alerts.lifecycle import Alert, AlertEventKind, AlertStatus
from alerts.rules import Priority, Profile, RuleId, Tier
from gateway.hub_report import hub_report_data
from gateway.report_data import ReportError
from gateway.report_render import draw_report
from gateway.web.hub_app import HubSite, make_hub_app
from gateway.web.hub_users import HubUsers
from sync.hub_data_messages import parse_summary
from sync.hub_messages import parse_alert_event
from sync.hub_store import HubStore
from sync.payload import alert_event_message
from tests.sync.hub_data_samples import GATEWAY, PATIENT, SITE, T0_S, summary

CHINA_S = 8 * 3600
DAY = dt.datetime.fromtimestamp(T0_S + CHINA_S, dt.UTC).date()  # T0's local day


def alert(onset_s: float) -> Alert:
    return Alert(
        id="6f1c2b3a-0000-5000-8000-000000000001",
        gateway_id=GATEWAY,
        patient_id=PATIENT,
        rule=RuleId.S2,
        priority=Priority.HIGH,
        tier=Tier.YELLOW,
        profile=Profile.COPD,
        status=AlertStatus.OPEN,
        onset_s=onset_s,
        details={"window_median": 84.0, "limit": 85.0},
    )


@pytest.fixture
def hub(tmp_path: Path) -> HubStore:
    store = HubStore.open(str(tmp_path / "hub.db"))
    for offset_s in (0, 900):  # two summary messages: 30 minutes
        record = parse_summary(SITE, GATEWAY, summary(offset_s).payload.encode())
        store.record_data(record, T0_S + 1800)
    raised = alert(T0_S + 600)
    for kind, at_s in ((AlertEventKind.RAISED, T0_S + 600), (AlertEventKind.ACKED, T0_S + 700)):
        acked = raised if kind is AlertEventKind.RAISED else _acked(raised)
        message = alert_event_message("pulsegate", SITE, acked, kind, at_s)
        store.record_alert_event(
            parse_alert_event(SITE, GATEWAY, message.payload.encode()), at_s, "t"
        )
    return store


def _acked(raised: Alert) -> Alert:
    return dataclasses.replace(raised, status=AlertStatus.ACKED, acked_by="dr-zhao")


def test_the_report_is_made_from_the_minutes_and_the_alerts(hub: HubStore) -> None:
    data = hub_report_data(hub, SITE, GATEWAY, PATIENT, DAY, CHINA_S)
    minute = (T0_S - data.start_s) // 60
    # The chart points are the summaries' own: minute 0 has low 93.5, median 95, high 96.
    assert (data.spo2.low[minute], data.spo2.median[minute], data.spo2.high[minute]) == (
        93.5,
        95.0,
        96.0,
    )
    assert math.isnan(data.spo2.median[minute + 3])  # the minute without a value
    # 28 minutes with 58 valid seconds each (two of the 30 had none).
    assert data.figures.coverage_percent == pytest.approx(100 * 28 * 58 / 86_400)
    assert data.figures.nadir_percent == 93.5  # the lowest minute minimum
    assert math.isnan(data.figures.odi3_per_hour)  # minutes cannot give it
    assert data.from_summaries and data.display_name is None
    # Tier and profile from the alert the gateway sent (no settings echo heard).
    assert (data.tier, data.profile) == (Tier.YELLOW, Profile.COPD)
    (line,) = data.alerts
    assert (line.rule, line.acked_by, line.acked_s) == ("S2", "dr-zhao", T0_S + 700)
    assert data.pulse_high is not None and data.pulse_high.value == 80.0
    longest = data.gaps[0]  # from local midnight to the first summary: nothing received
    assert (longest.start_s, longest.length_s, longest.received) == (
        data.start_s,
        T0_S - data.start_s,
        False,
    )
    assert any(gap.length_s == 60 and gap.received for gap in data.gaps)  # the empty minute


def test_a_patient_the_hub_never_heard_of_is_a_clear_error(hub: HubStore) -> None:
    with pytest.raises(ReportError, match="no summaries and no alerts of p-nobody"):
        hub_report_data(hub, SITE, GATEWAY, "p-nobody", DAY, CHINA_S)


def test_without_a_known_tier_the_page_says_so_and_draws(tmp_path: Path) -> None:
    store = HubStore.open(str(tmp_path / "hub.db"))
    store.record_data(parse_summary(SITE, GATEWAY, summary(0).payload.encode()), T0_S)
    data = hub_report_data(store, SITE, GATEWAY, PATIENT, DAY, CHINA_S)
    assert data.tier is None
    image = Image.open(io.BytesIO(draw_report(data, "png", "en")))
    width, height = image.size
    assert image.format == "PNG" and height / width == pytest.approx(297 / 210, rel=0.01)


@pytest.fixture
async def client(hub: HubStore, tmp_path: Path) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    users = HubUsers.open(str(tmp_path / "hub.db"))
    site = HubSite(hub, users, utc_offset_s=CHINA_S, wall_clock=lambda: T0_S + 3600)
    test_client = TestClient(TestServer(make_hub_app(site)))
    await test_client.start_server()
    yield test_client
    await test_client.close()
    site.close()


async def test_the_dashboard_serves_the_report_and_links_it(client: TestClient) -> None:  # type: ignore[type-arg]
    base = f"/patient/{SITE}/{GATEWAY}/{PATIENT}"
    page = await (await client.get(base + "?lang=en")).text()
    assert f'href="{base}/report.pdf"' in page
    assert f"{base}/report.png?day={DAY - dt.timedelta(days=1)}" in page
    png = await client.get(base + "/report.png")  # today at the hub is T0's day
    assert png.status == 200 and png.content_type == "image/png"
    assert Image.open(io.BytesIO(await png.read())).format == "PNG"
    pdf = await client.get(base + f"/report.pdf?day={DAY}")
    assert pdf.status == 200 and (await pdf.read()).startswith(b"%PDF")
    bad_day = await client.get(base + "/report.pdf?day=yesterday&lang=en")
    assert bad_day.status == 400 and "YYYY-MM-DD" in await bad_day.text()
    nobody = await client.get(f"/patient/{SITE}/{GATEWAY}/p-nobody/report.png?lang=en")
    assert nobody.status == 404
