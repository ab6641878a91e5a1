"""The hub dashboard in-process (aiohttp's test client over a real SQLite hub database): the
gateways and open alerts it lists, acknowledgement by staff accounts (wrong password refused,
the right one queued exactly like `pulsegate hub ack`), the patient page, and `hub user`."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from alerts.lifecycle import Alert, AlertEventKind, AlertStatus
from alerts.rules import Priority, Profile, RuleId, Tier
from gateway.cli import main
from gateway.web.hub_app import HubSite, make_hub_app
from gateway.web.hub_users import HubUsers
from sync.hub_messages import parse_alert_event, parse_status
from sync.hub_store import HubStore
from sync.payload import GatewayState, alert_event_message, status_message

SITE, GATEWAY = "village-1", "gw-a"
NOW_S = time.time()
CSRF_INPUT = re.compile(r'name="csrf" value="([^"]+)"')


def _alert(rule: RuleId, priority: Priority, patient: str, onset_s: float) -> Alert:
    return Alert(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{rule}/{patient}")),
        gateway_id=GATEWAY,
        patient_id=patient,
        rule=rule,
        priority=priority,
        tier=Tier.RED,
        profile=Profile.DEFAULT,
        status=AlertStatus.OPEN,
        onset_s=onset_s,
        details={},
    )


def fill_hub(store: HubStore) -> list[Alert]:
    alerts = [
        _alert(RuleId.T1, Priority.LOW, "p-fever", NOW_S - 3600),
        _alert(RuleId.S1, Priority.HIGH, "p-desat", NOW_S - 120),
    ]
    for alert in alerts:
        message = alert_event_message(
            "pulsegate", SITE, alert, AlertEventKind.RAISED, alert.onset_s
        )
        event = parse_alert_event(SITE, GATEWAY, message.payload.encode())
        store.record_alert_event(event, NOW_S, "test")
    will = status_message(
        "pulsegate",
        SITE,
        GATEWAY,
        GatewayState.OFFLINE,
        NOW_S - 60,
        synced_through_s=None,
        backlog=None,
        will=True,
    )
    store.record_status(parse_status(SITE, GATEWAY, will.payload.encode()), NOW_S - 30, False)
    return alerts


class SummariesHubStore(HubStore):
    """A hub store with a few minutes of summaries for p-desat (the end-to-end browser test
    charts real ones)."""

    def patient_summaries(
        self, site: str, gateway: str, patient: str, since_s: float, until_s: float | None = None
    ) -> list[dict[str, Any]]:
        return [
            {
                "minute_s": NOW_S - 600 + 60 * i,
                "metric": "spo2_percent",
                "min": 90.0 - i,
                "median": 93.0 - i,
                "max": 96.0 - i,
            }
            for i in range(5)
            if patient == "p-desat"
        ]


@pytest.fixture
async def hub_env(tmp_path: Path) -> AsyncIterator[tuple[TestClient, HubStore, list[Alert]]]:  # type: ignore[type-arg]
    url = str(tmp_path / "hub.db")
    store = SummariesHubStore.open(url)
    alerts = fill_hub(store)
    users = HubUsers.open(url)
    users.add("dr-li", "correct horse", NOW_S)
    site = HubSite(store, users)
    client = TestClient(TestServer(make_hub_app(site)))
    await client.start_server()
    yield client, store, alerts
    await client.close()
    site.close()
    users.close()
    store.close()


async def _ack(client: TestClient, alert_id: str, name: str, password: str) -> Any:  # type: ignore[type-arg]
    page = await (await client.get("/")).text()
    match = CSRF_INPUT.search(page)
    assert match is not None
    form = {"csrf": match.group(1), "alert": alert_id, "name": name, "password": password}
    return await client.post("/ack", data=form, allow_redirects=False)


async def test_dashboard_lists_gateways_and_open_alerts_most_urgent_first(hub_env: Any) -> None:
    client, _store, _alerts = hub_env
    html = await (await client.get("/?lang=en")).text()
    assert f"{SITE}/{GATEWAY}" in html
    assert "LAST WILL FIRED" in html
    assert html.index("p-desat") < html.index("p-fever")  # HIGH before LOW
    assert html.count('name="password"') == 2
    zh = await (await client.get("/?lang=zh")).text()
    assert "乡镇卫生院" in zh and "遗嘱消息已触发" in zh


async def test_wrong_password_is_refused_and_nothing_is_queued(hub_env: Any) -> None:
    client, store, alerts = hub_env
    response = await _ack(client, alerts[1].id, "dr-li", "wrong horse")
    assert response.status == 403
    text = await response.text()
    assert "姓名或密码错误，警报未确认。" in text  # noqa: RUF001 (Chinese by default)
    unknown = await _ack(client, alerts[1].id, "nobody", "correct horse")
    assert unknown.status == 403
    assert store.pending_acks() == []


async def test_staff_ack_is_queued_like_hub_ack_for_the_gateway(hub_env: Any) -> None:
    client, store, alerts = hub_env
    response = await _ack(client, alerts[1].id, "dr-li", "correct horse")
    assert response.status == 303
    [pending] = store.pending_acks()
    assert pending.alert_id == alerts[1].id
    assert pending.topic == f"pulsegate/{SITE}/{GATEWAY}/ack"
    assert '"acked_by": "dr-li"' in pending.payload or '"acked_by":"dr-li"' in pending.payload
    [row] = store.find_alerts(alerts[1].id[:8])
    assert row["hub_acked_by"] == "dr-li"
    html = await (await client.get("/?lang=en")).text()
    assert "acknowledgement by dr-li sent, not yet applied" in html


async def test_a_forged_form_is_refused(hub_env: Any) -> None:
    client, store, alerts = hub_env
    await client.get("/")
    form = {"csrf": "f" * 32, "alert": alerts[1].id, "name": "dr-li", "password": "correct horse"}
    response = await client.post("/ack", data=form, allow_redirects=False)
    assert response.status == 403
    assert store.pending_acks() == []


async def test_patient_page_charts_summaries_and_lists_alerts(hub_env: Any) -> None:
    client, _store, _alerts = hub_env
    response = await client.get(f"/patient/{SITE}/{GATEWAY}/p-desat?lang=en")
    assert response.status == 200
    html = await response.text()
    assert 'class="band"' in html and 'class="median"' in html
    assert "critical SpO2" in html
    assert (await client.get(f"/patient/{SITE}/{GATEWAY}/nobody")).status == 404


def test_hub_user_commands_add_list_remove(tmp_path: Path) -> None:
    db = str(tmp_path / "hub.db")
    runner = CliRunner()
    added = runner.invoke(
        main, ["hub", "user", "add", "dr-zhao", "--db", db], input="s3cret-pw\ns3cret-pw\n"
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(main, ["hub", "user", "list", "--db", db])
    assert "dr-zhao" in listed.output
    users = HubUsers.open(db)
    assert users.verify("dr-zhao", "s3cret-pw") and not users.verify("dr-zhao", "other")
    users.close()
    short = runner.invoke(main, ["hub", "user", "add", "x", "--db", db, "--password", "short"])
    assert short.exit_code == 2 and "at least 8 characters" in short.output
    removed = runner.invoke(main, ["hub", "user", "remove", "dr-zhao", "--db", db])
    assert removed.exit_code == 0
    again = runner.invoke(main, ["hub", "user", "remove", "dr-zhao", "--db", db])
    assert again.exit_code == 1 and "no staff account" in again.output
