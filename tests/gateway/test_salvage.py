"""A corrupt database found at start-up (or by the background check, which makes the next
start look at all of it) is moved aside and replaced; what must not be lost (patients,
bindings, unsent alerts and outbox rows, live alerts) is copied into the new one."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from alerts.engine import RuleEvent, Transition
from alerts.lifecycle import Alert, AlertEventKind
from alerts.rules import Priority, Profile, RuleId, Tier
from devices.clock import ScaledClock
from devices.simulator import DEMO_PATIENTS
from gateway import db_check
from gateway import salvage as salvage_module
from gateway.config import parse_config
from gateway.daemon import Daemon, StoreWorker
from gateway.db_check import BackgroundCheck
from gateway.ingest import Ingest
from gateway.notify import Notifier
from gateway.salvage import check_failed_marker, find_corruption, mark_corrupt, open_checked
from gateway.store import Patient, ReadingRow, Store, StoreError
from sync.payload import OutboxMessage, alert_event_message
from tests.gateway.test_daemon import start_one_patient

OLD_READINGS_S = 3 * salvage_module.BULK_TAIL_S  # readings older than the start-up check's tail
PATIENTS = [Patient(f"p-{i}", Tier.RED, Profile.DEFAULT) for i in range(3)]
NOW_S = 1_800_000_000.0


def message(alert: Alert, kind: AlertEventKind, ts_s: float) -> OutboxMessage:
    return alert_event_message("pg", "site", alert, kind, ts_s)


def onset(rule: RuleId, ts_s: float, transition: Transition = Transition.ONSET) -> RuleEvent:
    latching = rule is RuleId.S1
    return RuleEvent(rule, transition, int(ts_s), Priority.HIGH, latching, {"m": 86.0})


def build(path: Path, readings_s: int = 3000) -> Store:
    """Patients and bindings, then alerts in every state, then many readings (last pages)."""
    store = Store.open(path, "gw")
    for patient in PATIENTS:
        store.add_patient(patient, NOW_S)
        store.ensure_device(f"ox-{patient.id}", "berrymed-bci", "ble", NOW_S)
        store.bind(f"ox-{patient.id}", patient.id, NOW_S)
    p0, p1, p2 = PATIENTS
    # p0: S2 raised and closed, all sent. p1: S1 raised, resolved (latched), unsent.
    # p2: S1 open, unsent.
    store.write_batch([], [(p0, onset(RuleId.S2, NOW_S))], {}, message, NOW_S)
    store.write_batch(
        [], [(p0, onset(RuleId.S2, NOW_S + 60, Transition.RESOLVED))], {}, message, NOW_S
    )
    store.mark_sent([row.id for row in store.pending_messages(10)], NOW_S + 61)
    store.write_batch([], [(p1, onset(RuleId.S1, NOW_S + 70))], {}, message, NOW_S)
    store.write_batch(
        [], [(p1, onset(RuleId.S1, NOW_S + 90, Transition.RESOLVED))], {}, message, NOW_S
    )
    store.write_batch([], [(p2, onset(RuleId.S1, NOW_S + 80))], {"p-2": {"k": 1}}, message, NOW_S)
    rng = random.Random(1)
    for start in range(0, readings_s, 100):
        rows = [
            ReadingRow(NOW_S + second, p.id, f"ox-{p.id}", "spo2_percent", rng.randint(85, 99), 0)
            for second in range(start, start + 100)
            for p in PATIENTS
        ]
        store.write_batch(rows, [], {}, message, NOW_S)
    return store


def snapshot(store: Store) -> dict[str, set[str]]:
    return {
        "patients": {p.id for p in store.list_patients()},
        "bindings": {f"{d}>{p}" for d, p in store.current_bindings().items()},
        "unsent": {row.message_id for row in store.pending_messages(1000)},
        "live_alerts": {a["id"] for a in store.list_alerts(open_only=True)},
        "all_alerts": {a["id"] for a in store.list_alerts()},
    }


def pages_of(path: Path, table: str) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [
            row[0]
            for row in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf'", [table]
            )
        ]


def damage_old_readings(path: Path) -> None:
    """Scribble over readings pages the start-up check does not read: older than its tail
    (salvage.BULK_TAIL_S) and newer than the oldest rows. `build` them with OLD_READINGS_S."""
    with sqlite3.connect(path) as conn:
        leaves = [
            row[0]
            for row in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = 'reading_samples' AND pagetype = 'leaf'"
                " ORDER BY path"
            )
        ]
    scribble(path, leaves[len(leaves) // 8 : len(leaves) * 3 // 8 : 3])


def scribble(path: Path, pages: list[int]) -> None:
    """Overwrite the middle of each page with garbage, as a failing SD card might."""
    with sqlite3.connect(path) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    rng = random.Random(7)
    with path.open("r+b") as file:
        for page in pages:
            file.seek((page - 1) * page_size + 100)
            file.write(rng.randbytes(page_size - 200))


def test_a_healthy_database_passes_the_check(tmp_path: Path) -> None:
    path = tmp_path / "pulsegate.db"
    build(path, readings_s=200).close()
    assert find_corruption(path) is None
    assert find_corruption(tmp_path / "missing.db") is None


def test_corrupt_readings_pages_move_the_database_aside_and_keep_what_matters(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "pulsegate.db"
    store = build(path, readings_s=OLD_READINGS_S)
    before = snapshot(store)
    store.close()
    assert (
        before["unsent"] and before["live_alerts"] and before["all_alerts"] > before["live_alerts"]
    )
    damage_old_readings(path)
    assert find_corruption(path) is not None
    # The start-up check leaves the raw readings to the background check, which finds it.
    assert find_corruption(path, full=False) is None
    found: list[str] = []
    asyncio.run(BackgroundCheck(path, 0.0, 3600.0).run(asyncio.Event(), found.append))
    assert len(found) == 1 and check_failed_marker(path).read_text() == found[0] + "\n"

    salvaged = open_checked(path, "gw", now_s=NOW_S)
    try:
        after = snapshot(salvaged)
        assert salvaged.db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert salvaged.count("readings") == 0  # raw readings stay in the moved file
        [(kind, details)] = salvaged.db.execute("SELECT kind, details FROM maintenance_log")
    finally:
        salvaged.close()
    assert after["patients"] == before["patients"]
    assert after["bindings"] == before["bindings"]
    assert after["unsent"] == before["unsent"]
    assert after["live_alerts"] == before["live_alerts"]
    assert after["all_alerts"] == before["live_alerts"]  # the closed, sent alert is not copied
    moved = tmp_path / "pulsegate.db.corrupt-20270115T080000Z"
    assert moved.exists()
    assert kind == "salvage"
    assert json.loads(details)["moved_to"] == str(moved)
    [line] = [r.getMessage() for r in caplog.records if "is corrupt" in r.getMessage()]
    assert str(moved) in line
    assert not check_failed_marker(path).exists()


def test_without_the_marker_a_start_opens_damaged_readings_as_they_are(tmp_path: Path) -> None:
    path = tmp_path / "pulsegate.db"
    build(path, readings_s=OLD_READINGS_S).close()
    damage_old_readings(path)
    store = open_checked(path, "gw", now_s=NOW_S)
    try:
        assert store.list_patients() and store.pending_messages(10)
    finally:
        store.close()
    assert list(tmp_path.glob("*.corrupt-*")) == []


def test_a_marker_on_a_sound_database_is_removed_after_the_full_check(tmp_path: Path) -> None:
    path = tmp_path / "pulsegate.db"
    build(path, readings_s=200).close()
    mark_corrupt(path, "a read error that was not damage")
    open_checked(path, "gw", now_s=NOW_S).close()
    assert not check_failed_marker(path).exists()
    assert list(tmp_path.glob("*.corrupt-*")) == []


async def test_the_background_check_of_a_sound_database_repeats(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "pulsegate.db"
    build(path, readings_s=200).close()
    caplog.set_level(logging.INFO, logger="gateway.db_check")
    stop = asyncio.Event()
    found: list[str] = []
    running = asyncio.create_task(BackgroundCheck(path, 0.0, 0.2).run(stop, found.append))
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.wait_for(running, 5)
    checks = [r for r in caplog.records if r.getMessage().startswith("database check: ok")]
    assert len(checks) >= 3 and found == []
    assert not check_failed_marker(path).exists()


async def test_stopping_interrupts_a_check_in_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "pulsegate.db"
    build(path, readings_s=0).close()
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c"
    monkeypatch.setattr(
        db_check, "quick_check", lambda conn, full: conn.execute(endless).fetchone()
    )
    check = BackgroundCheck(path, 0.0, 3600.0)
    running = asyncio.create_task(check.run(asyncio.Event(), pytest.fail))
    await asyncio.sleep(0.5)
    assert check._conn is not None  # the query runs
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    deadline = time.monotonic() + 5
    while check._conn is not None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert check._conn is None  # the thread's query ended: it does not hold up the exit
    assert not check_failed_marker(path).exists()


async def test_the_daemon_stops_when_its_background_check_finds_damage(tmp_path: Path) -> None:
    config = parse_config(
        {"gateway": {"data_dir": str(tmp_path)}, "store": {"batch_interval_s": 0.2}}
    )
    path = config.database_path
    build(path, readings_s=OLD_READINGS_S).close()
    damage_old_readings(path)
    store = open_checked(path, "gw", now_s=NOW_S)  # starts: the damage is in old readings
    worker = StoreWorker(store)
    daemon = Daemon(config, worker, ScaledClock(1.0), Ingest(), [])
    daemon.db_check_timing_s = (0.5, 3600.0)
    await asyncio.wait_for(daemon.run(asyncio.Event()), 30)  # stops by itself
    worker.shutdown()
    store.close()
    assert daemon.damaged is not None
    assert check_failed_marker(path).read_text() == daemon.damaged + "\n"
    open_checked(path, "gw", now_s=NOW_S).close()  # the next start salvages it
    assert len(list(tmp_path.glob("pulsegate.db.corrupt-*"))) == 1


def test_unreadable_outbox_pages_are_skipped_and_the_rest_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "pulsegate.db"
    store = build(path, readings_s=0)
    patient = PATIENTS[0]
    for i in range(300):  # 300 alerts raised and closed, none sent: many outbox pages
        ts_s = NOW_S + 1000 + 10 * i
        store.write_batch([], [(patient, onset(RuleId.S2, ts_s))], {}, message, ts_s)
        store.write_batch(
            [], [(patient, onset(RuleId.S2, ts_s + 5, Transition.RESOLVED))], {}, message, ts_s
        )
    unsent = {row.message_id: row.payload for row in store.pending_messages(10_000)}
    store.close()
    outbox_pages = pages_of(path, "outbox")
    scribble(path, outbox_pages[len(outbox_pages) // 2 : len(outbox_pages) // 2 + 1])

    salvaged = open_checked(path, "gw", now_s=NOW_S)
    try:
        kept = {row.message_id: row.payload for row in salvaged.pending_messages(10_000)}
    finally:
        salvaged.close()
    assert 0 < len(kept) < len(unsent)
    assert all(unsent[mid] == payload for mid, payload in kept.items())  # nothing garbled


def test_a_file_that_is_not_a_database_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "pulsegate.db"
    path.write_bytes(b"not sqlite at all " * 500)
    store = open_checked(path, "gw", now_s=NOW_S)
    store.close()
    assert (tmp_path / "pulsegate.db.corrupt-20270115T080000Z").read_bytes().startswith(b"not")
    assert find_corruption(path) is None


def test_a_database_that_cannot_be_opened_is_an_error_not_corruption(tmp_path: Path) -> None:
    path = tmp_path / "pulsegate.db"
    path.mkdir()
    with pytest.raises(StoreError, match="cannot"):
        open_checked(path, "gw")
    assert path.is_dir() and list(tmp_path.iterdir()) == [path]  # nothing was moved


def test_the_daemon_starts_on_a_corrupt_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "pulsegate.db").write_bytes(b"\0garbage" * 1000)
    config = tmp_path / "pulsegate.toml"
    config.write_text(f'[gateway]\ndata_dir = "{data}"\n')
    command = [sys.executable, "-m", "gateway", "--config", str(config), "run", "--simulate"]
    result = subprocess.run(
        [*command, "--duration", "3", "--speed", "20", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if "is corrupt" in line]) == 1
    assert len(list(data.glob("pulsegate.db.corrupt-*"))) == 1
    with sqlite3.connect(data / "pulsegate.db") as conn:
        assert conn.execute("SELECT count(*) FROM readings").fetchone()[0] > 0


def test_a_long_check_extends_the_systemd_start_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "pulsegate.db"
    build(path, readings_s=1000).close()
    real_check = salvage_module._quick_check

    def slow_check(checked_path: Path, full: bool) -> str | None:  # as long as on an SD card
        time.sleep(0.5)
        return real_check(checked_path, full)

    monkeypatch.setattr(salvage_module, "_quick_check", slow_check)
    monkeypatch.setattr(salvage_module, "PROGRESS_EVERY_S", 0.05)
    name = f"pulsegate-salvage-{os.getpid()}"
    received: list[bytes] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        server.settimeout(0.1)
        checked = threading.Event()

        def read() -> None:  # as systemd does, so the sender never waits on a full queue
            while True:
                try:
                    received.append(server.recv(4096))
                except TimeoutError:
                    if checked.is_set():
                        return

        reader = threading.Thread(target=read)
        reader.start()
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        try:
            open_checked(path, "gw", notifier=notifier).close()
        finally:
            notifier.close()
            checked.set()
            reader.join()
    assert received
    assert all(m.startswith(b"EXTEND_TIMEOUT_USEC=30000000\n") for m in received)


def rightmost_pages(path: Path, table: str) -> list[int]:
    """The pages on the path to `table`'s last row: where the next rows are appended."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT pageno, path FROM dbstat WHERE name = ? ORDER BY path", [table]
        ).fetchall()
    last_path = rows[-1][1]
    return [page for page, tree_path in rows if last_path.startswith(tree_path)]


async def test_a_store_call_that_meets_damage_stops_the_daemon_for_salvage(
    tmp_path: Path,
) -> None:
    config = parse_config(
        {"gateway": {"data_dir": str(tmp_path)}, "store": {"batch_interval_s": 0.2}}
    )
    path = config.database_path
    build(path, readings_s=OLD_READINGS_S).close()
    damage_old_readings(path)
    store = open_checked(path, "gw", now_s=NOW_S)  # the start-up check reads no old readings
    daemon, worker, _, running = start_one_patient(config, store, DEMO_PATIENTS[0], 20)
    await asyncio.sleep(1.0)
    # Any call through the daemon's store worker that reads the damaged pages (here: all).
    with pytest.raises(sqlite3.DatabaseError, match="malformed"):
        await worker.call(store.count, "readings")
    await asyncio.wait_for(running, 30)  # and the daemon stops for it
    worker.shutdown()
    store.close()
    assert daemon.damaged is not None and "malformed" in daemon.damaged
    assert check_failed_marker(path).read_text() == daemon.damaged + "\n"
    open_checked(path, "gw", now_s=NOW_S).close()
    assert len(list(tmp_path.glob("pulsegate.db.corrupt-*"))) == 1


def _damaged_box(tmp_path: Path, damage: Callable[[Path], None]) -> tuple[Path, list[str]]:
    data = tmp_path / "data"
    build(data / "pulsegate.db", readings_s=OLD_READINGS_S).close()
    damage(data / "pulsegate.db")
    config = tmp_path / "pulsegate.toml"
    config.write_text(f'[gateway]\ndata_dir = "{data}"\n')
    return data, [sys.executable, "-m", "gateway", "--config", str(config)]


def test_damage_where_a_start_reads_is_salvaged_by_that_start(tmp_path: Path) -> None:
    # The newest readings page, which the start reads (the detectors' recent samples).
    data, pulsegate = _damaged_box(
        tmp_path, lambda db: scribble(db, rightmost_pages(db, "reading_samples")[-1:])
    )
    result = subprocess.run(
        [*pulsegate, "run", "--quiet", "--duration", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "is corrupt" in result.stderr
    assert len(list(data.glob("pulsegate.db.corrupt-*"))) == 1


def test_a_command_that_meets_damage_says_so_and_leaves_the_marker(tmp_path: Path) -> None:
    data, pulsegate = _damaged_box(tmp_path, damage_old_readings)
    result = subprocess.run(
        [*pulsegate, "status"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "is damaged (database disk image is malformed)" in result.stderr
    assert check_failed_marker(data / "pulsegate.db").exists()
    assert list(data.glob("pulsegate.db.corrupt-*")) == []  # only the daemon's start moves it
