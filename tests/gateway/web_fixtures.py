"""A real store with two patients, readings and an open S1 alert, served by the status page
application in-process (aiohttp's test server and client)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from alerts.engine import RuleEvent, Transition
from alerts.lifecycle import Alert, AlertEventKind
from alerts.rules import Priority, Profile, RuleId, Tier
from devices.protocols.reading import Quality
from gateway.daemon import StoreWorker
from gateway.display_names import set_display_name
from gateway.store import Patient, ReadingRow, Store
from gateway.web.guard import FailureLimiter
from gateway.web.local_app import LocalSite, make_local_app
from gateway.web.local_data import PageData, SeriesCache, gather_page
from gateway.web.secret_hash import hash_secret
from sync.payload import OutboxMessage, alert_event_message

NOW_S = 1_800_000_000.0
PIN = "4711"
PIN_HASH = hash_secret(PIN, n=2**10)  # cheap parameters: these tests check logic, not cost
CSRF_INPUT = re.compile(r'name="csrf" value="([^"]+)"')


def message(alert: Alert, kind: AlertEventKind, ts_s: float) -> OutboxMessage:
    return alert_event_message("pulsegate", "site-1", alert, kind, ts_s)


def fill_store(store: Store) -> str:
    """Two patients, 10 minutes of readings, an S1 alert for the first; its id."""
    red = Patient("p-red", Tier.RED, Profile.DEFAULT)
    green = Patient("p-green", Tier.GREEN, Profile.DEFAULT)
    store.add_patient(red, NOW_S - 900)
    store.add_patient(green, NOW_S - 900)
    for device, patient in (("ox-red", red), ("ox-green", green)):
        store.ensure_device(device, "berrymed-bci", "simulated", NOW_S - 900)
        store.bind(device, patient.id, NOW_S - 900)
    rows = []
    for second in range(600, 0, -1):
        ts_s = NOW_S - second
        rows.append(ReadingRow(ts_s, "p-red", "ox-red", "spo2_percent", 87.0, 0))
        rows.append(ReadingRow(ts_s, "p-red", "ox-red", "pulse_bpm", 101.0, 0))
        rows.append(
            ReadingRow(ts_s, "p-green", "ox-green", "spo2_percent", None, int(Quality.FINGER_OUT))
        )
    rows.append(ReadingRow(NOW_S - 30, "p-red", "th-red", "temp_c", 38.4, 0, "axillary"))
    event = RuleEvent(RuleId.S1, Transition.ONSET, int(NOW_S - 300), Priority.HIGH, True, {})
    produced = store.write_batch(rows, [(red, event)], {}, message, NOW_S)
    return produced[0][0].id


@dataclass
class PageEnv:
    client: TestClient  # type: ignore[type-arg]
    store: Store
    alert_id: str
    site: LocalSite
    clock: list[float]  # the limiter's monotonic time, settable

    async def csrf(self, path: str = "/") -> str:
        """The token the page puts in its forms (the same as its cookie)."""
        response = await self.client.get(path)
        match = CSRF_INPUT.search(await response.text())
        cookies = {c.key: c.value for c in self.client.session.cookie_jar}
        if match is not None:
            assert cookies["csrf"] == match.group(1)
        return cookies["csrf"]


@pytest.fixture
async def page_env(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[PageEnv]]]:
    made: list[tuple[TestClient, StoreWorker, Store]] = []  # type: ignore[type-arg]

    async def make(
        *, pin_hash: str = PIN_HASH, language: str | None = None, names: bool = True
    ) -> PageEnv:
        store = Store.open(tmp_path / f"db{len(made)}" / "pulsegate.db", "gw-1")
        alert_id = fill_store(store)
        if names:
            set_display_name(store, "p-red", "王<b>阿姨</b>", NOW_S)
        worker = StoreWorker(store)
        cache = SeriesCache()
        clock = [1000.0]

        async def read_page() -> PageData:
            return await worker.call(gather_page, store, cache, NOW_S)

        async def acknowledge(ref: str, by: str) -> Alert:
            return await worker.call(store.ack, ref, by, NOW_S + 1, message)

        site = LocalSite(
            gateway_id="gw-1",
            configured_language=language,
            pin_hash=pin_hash,
            read_page=read_page,
            acknowledge=acknowledge,
            link_state=lambda: "down",
            today=lambda: dt.date(2027, 1, 15),
            limiter=FailureLimiter(),
            monotonic=lambda: clock[0],
        )
        client = TestClient(TestServer(make_local_app(site)))
        await client.start_server()
        made.append((client, worker, store))
        return PageEnv(client, store, alert_id, site, clock)

    yield make
    for client, worker, store in made:
        await client.close()
        worker.shutdown()
        store.close()
