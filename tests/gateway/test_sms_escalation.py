"""SMS escalation end to end inside one process: alerts in a real store, the ladder, the
modem driver and a simulated modem on a pty; the clock of the alerts is set by the test."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alerts.engine import RuleEvent, Transition
from alerts.escalation import Language, Role, due_notifications
from alerts.lifecycle import Alert, AlertEventKind
from alerts.rules import Priority, Profile, RuleId, Tier
from gateway.config import Config, parse_config
from gateway.contacts import (
    INTERRUPTED,
    add_contact,
    attempt_rows,
    escalation_work,
    list_contacts,
)
from gateway.daemon import StoreWorker
from gateway.display_names import set_display_name
from gateway.salvage import salvage
from gateway.sms_escalation import SmsEscalation
from gateway.store import Patient, Store
from sync.payload import OutboxMessage, alert_event_message
from tests.gateway.modem_sim import PtyModem

ONSET_S = 1_700_000_000  # 2023-11-14 22:13:20 UTC, 06:13 in China
PATIENT = Patient("p-0042", Tier.RED, Profile.DEFAULT)
FAMILY_PHONE, DOCTOR_PHONE, TOWNSHIP_PHONE = "13800000001", "13900000002", "13700000003"


def message(alert: Alert, kind: AlertEventKind, ts_s: float) -> OutboxMessage:
    return alert_event_message("pg", "site", alert, kind, ts_s)


@dataclass
class Rig:
    store: Store
    worker: StoreWorker
    escalation: SmsEscalation
    clock: list[float]
    stop: asyncio.Event

    async def tick_at(self, offset_s: float) -> int:
        self.clock[0] = ONSET_S + offset_s
        return await self.escalation.tick(self.stop)

    def attempts(self, alert_id: str) -> list[tuple[Any, ...]]:
        return [
            (r["role"], r["step"], r["attempt"], r["outcome"], r["message_ref"], r["reason"])
            for r in attempt_rows(self.store, alert_id)
        ]


def sms_config(tmp_path: Path, link: Path, **sms: Any) -> Config:
    settings = {"enabled": True, "port": str(link), "min_interval_s": 0.0, **sms}
    return parse_config({"gateway": {"id": "gw1", "data_dir": str(tmp_path)}, "sms": settings})


@pytest.fixture
def link(tmp_path: Path) -> Path:
    return tmp_path / "ttyUSB2"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "pulsegate.db", "gw1")
    opened.add_patient(PATIENT, 0.0)
    set_display_name(opened, PATIENT.id, "王奶奶", 0.0)
    add_contact(opened, PATIENT.id, Role.FAMILY, "Li Na", FAMILY_PHONE, Language.ZH, 0.0)
    add_contact(opened, PATIENT.id, Role.DOCTOR, "Dr Wang", DOCTOR_PHONE, Language.ZH, 0.0)
    add_contact(opened, PATIENT.id, Role.TOWNSHIP, "Dr Zhao", TOWNSHIP_PHONE, Language.EN, 0.0)
    yield opened
    opened.close()


@pytest.fixture
async def rig(tmp_path: Path, link: Path, store: Store) -> AsyncIterator[Rig]:
    worker = StoreWorker(store)
    clock = [float(ONSET_S)]
    escalation = SmsEscalation(worker, sms_config(tmp_path, link), lambda: clock[0])
    yield Rig(store, worker, escalation, clock, asyncio.Event())
    escalation.modem.close()
    worker.shutdown()


def raise_alert(
    store: Store, rule: RuleId = RuleId.S1, priority: Priority = Priority.HIGH
) -> Alert:
    stats: dict[str, float | str] = {"window_median": 86.0, "channel": "spo2"}
    event = RuleEvent(rule, Transition.ONSET, ONSET_S, priority, True, stats)
    [(alert, kind)] = store.write_batch([], [(PATIENT, event)], {}, message, ONSET_S)
    assert kind is AlertEventKind.RAISED
    return alert


async def test_an_ack_during_a_slow_send_stops_the_messages_still_due_in_that_tick(
    rig: Rig, link: Path
) -> None:
    alert = raise_alert(rig.store)
    with PtyModem(link, cmgs_delay_s=1.5) as sim:  # the network takes 1.5 s to answer
        tick = asyncio.create_task(rig.tick_at(2))  # due: the family, then the doctor
        for _ in range(200):
            if sim.submitted:
                break
            await asyncio.sleep(0.01)
        assert sim.submitted, "the first message never reached the modem"
        await rig.worker.call(rig.store.ack, alert.id, "li-na", ONSET_S + 3, message)
        assert await tick == 1
    assert [m.number for m in sim.messages] == [FAMILY_PHONE]
    assert [a[0] for a in rig.attempts(alert.id)] == ["family"]


async def test_a_high_alert_climbs_the_ladder_in_order_until_acknowledged(
    rig: Rig, link: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    alert = raise_alert(rig.store)
    with PtyModem(link) as sim:
        assert await rig.tick_at(2) == 2
        assert await rig.tick_at(60) == 0
        assert await rig.tick_at(299) == 0
        assert await rig.tick_at(300) == 2
        rig.store.ack(alert.id, "dr-wang", ONSET_S + 400, message)
        assert await rig.tick_at(3600) == 0
    assert [(m.number, m.charset) for m in sim.messages] == [
        (FAMILY_PHONE, "UCS2"),
        (DOCTOR_PHONE, "UCS2"),
        (DOCTOR_PHONE, "UCS2"),
        (TOWNSHIP_PHONE, "GSM"),
    ]
    texts = [m.text for m in sim.messages]
    assert texts[0] == "【pulsegate】紧急：王奶奶 血氧危急 SpO2 86%，06:13起。请尽快查看并确认。"  # noqa: RUF001
    assert texts[2] == (
        "【pulsegate】紧急：王奶奶 血氧危急 SpO2 86%，06:13起。已5分钟无人确认，请立即处理。"  # noqa: RUF001
    )
    assert texts[3] == (
        "pulsegate URGENT: p-0042 - SpO2 critical, SpO2 86% since 06:13. "
        "Not acknowledged for 5 min: please act now."
    )
    assert rig.attempts(alert.id) == [
        ("family", 0, 1, "sent", 12, None),
        ("doctor", 0, 1, "sent", 13, None),
        ("doctor", 1, 1, "sent", 14, None),
        ("township", 1, 1, "sent", 15, None),
    ]
    # Phone numbers stay on the box and out of the logs.
    payloads = " ".join(row["payload"] for row in rig.store.db.query("SELECT payload FROM outbox"))
    logged = caplog.text
    for phone in (FAMILY_PHONE, DOCTOR_PHONE, TOWNSHIP_PHONE):
        assert phone not in payloads
        assert phone not in logged
        assert phone[-4:] in logged
    masked = [r["phone_masked"] for r in attempt_rows(rig.store, alert.id)]
    assert masked == ["138****0001", "139****0002", "139****0002", "137****0003"]


async def test_a_modem_error_is_recorded_and_retried_after_the_backoff(
    rig: Rig, link: Path
) -> None:
    alert = raise_alert(rig.store, RuleId.S3, Priority.MEDIUM)  # MEDIUM: the family first
    with PtyModem(link, outcomes=["+CMS ERROR: 331"]) as sim:
        assert await rig.tick_at(0) == 1
        assert await rig.tick_at(5) == 0  # the first retry waits 10 s
        assert await rig.tick_at(10) == 1
        assert await rig.tick_at(20) == 0
    assert sim.answers == ["+CMS ERROR: 331", "success"]
    assert [m.number for m in sim.messages] == [FAMILY_PHONE]
    assert rig.attempts(alert.id) == [
        (
            "family",
            0,
            1,
            "failed",
            None,
            "+CMS ERROR 331: no network service (no signal, or not registered)",
        ),
        ("family", 0, 2, "sent", 12, None),
    ]


async def test_a_refused_number_is_recorded_and_never_tried_again(rig: Rig, link: Path) -> None:
    alert = raise_alert(rig.store, RuleId.S3, Priority.MEDIUM)
    with PtyModem(link, outcomes=["+CMS ERROR: 1"]) as sim:
        assert await rig.tick_at(0) == 1
        assert await rig.tick_at(600) == 0
    assert len(sim.submitted) == 1
    [row] = rig.attempts(alert.id)
    assert row[3] == "rejected"
    assert "unassigned number" in row[5]


async def test_the_rate_limit_spaces_messages_and_caps_the_hour(
    tmp_path: Path, link: Path, store: Store
) -> None:
    add_contact(store, PATIENT.id, Role.FAMILY, "Li Wei", "13800000009", Language.EN, 0.0)
    alert = raise_alert(store)  # family x2 + doctor due at once
    worker = StoreWorker(store)
    config = sms_config(tmp_path, link, min_interval_s=1.0, max_per_hour=2)
    clock = [float(ONSET_S)]
    escalation = SmsEscalation(worker, config, lambda: clock[0])
    try:
        with PtyModem(link) as sim:
            assert await escalation.tick(asyncio.Event()) == 2
            clock[0] += 30
            assert await escalation.tick(asyncio.Event()) == 0  # the hour's two are used
    finally:
        escalation.modem.close()
        worker.shutdown()
    assert len(sim.messages) == 2
    assert sim.messages[1].at_s - sim.messages[0].at_s >= 0.9
    assert len(attempt_rows(store, alert.id)) == 2  # the third is not an attempt yet


async def test_an_attempt_cut_short_by_a_stop_is_marked_and_retried_on_start(
    rig: Rig, link: Path
) -> None:
    alert = raise_alert(rig.store, RuleId.S3, Priority.MEDIUM)
    rig.store.db.execute(
        "INSERT INTO notification_attempts (alert_id, contact_id, role, phone_masked, priority,"
        " step, attempt, ts_s, outcome) SELECT ?, id, role, '138****0001', 'MEDIUM', 0, 1, ?,"
        " 'sending' FROM contacts WHERE role = 'family'",
        [alert.id, ONSET_S],
    )
    rig.clock[0] = ONSET_S + 60
    rig.escalation.tick_s = 0.1
    with PtyModem(link) as sim:
        task = asyncio.create_task(rig.escalation.run(rig.stop))
        for _ in range(200):
            if sim.messages:
                break
            await asyncio.sleep(0.05)
        rig.stop.set()
        await asyncio.wait_for(task, 30)
    assert [m.number for m in sim.messages] == [FAMILY_PHONE]
    assert rig.attempts(alert.id) == [
        ("family", 0, 1, "failed", None, INTERRUPTED),
        ("family", 0, 2, "sent", 12, None),
    ]


async def test_with_sms_off_the_task_ends_at_once(tmp_path: Path, store: Store) -> None:
    worker = StoreWorker(store)
    config = parse_config({"gateway": {"data_dir": str(tmp_path)}})
    assert config.sms.enabled is False
    try:
        escalation = SmsEscalation(worker, config, lambda: float(ONSET_S))
        raise_alert(store)
        await asyncio.wait_for(escalation.run(asyncio.Event()), 10)
    finally:
        worker.shutdown()
    assert store.count("notification_attempts") == 0


async def test_a_salvaged_database_keeps_the_contacts_and_what_was_sent(
    tmp_path: Path, rig: Rig, link: Path
) -> None:
    alert = raise_alert(rig.store)
    with PtyModem(link):
        assert await rig.tick_at(0) == 2
    rig.worker.shutdown()
    rig.store.close()
    report = salvage(tmp_path / "pulsegate.db", "gw1", "test", ONSET_S + 10.0)
    assert report.copied["contacts"] == 3
    assert report.copied["notification_attempts"] == 2
    reopened = Store.open(tmp_path / "pulsegate.db", "gw1")
    try:
        contacts = [(c.role, c.phone) for c in list_contacts(reopened, PATIENT.id)]
        assert contacts == [
            (Role.FAMILY, FAMILY_PHONE),
            (Role.DOCTOR, DOCTOR_PHONE),
            (Role.TOWNSHIP, TOWNSHIP_PHONE),
        ]
        # The ladder sees what was sent: nothing again for the first level.
        [work] = escalation_work(reopened)
        assert (
            due_notifications(work.alert, work.events, work.contacts, work.attempts, ONSET_S + 60)
            == []
        )
        assert work.alert.id == alert.id
    finally:
        reopened.close()
