"""Clock trust: readings stamped before the clock is trusted are flagged, then moved by the
monotonic offset once it is; injected wall-clock jumps never raise or clear alerts."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from alerts.lifecycle import Alert, AlertEventKind
from alerts.rules import Profile, Tier
from devices.protocols.reading import Quality
from devices.simulator import DEMO_PATIENTS, SimulatedPatient, run_patient
from gateway.config import parse_config
from gateway.daemon import Daemon, StoreWorker
from gateway.ingest import Ingest
from gateway.store import Patient, ReadingRow, Store
from gateway.timekeeper import (
    EARLIEST_TRUSTED_S,
    JUMP_TOLERANCE_S,
    Correction,
    Timekeeper,
    kernel_clock_synchronized,
)

NOW_S = 1_800_000_000.0
BOOT_1970_S = 5_000.0
UNTRUSTED = int(Quality.CLOCK_UNTRUSTED)


@dataclass
class Clocks:
    """A wall clock and a monotonic clock the test moves by hand, and NTP's verdict."""

    wall_s: float = NOW_S
    monotonic_s: float = 100.0
    synchronized: bool = True

    def advance(self, seconds: float) -> None:
        self.wall_s += seconds
        self.monotonic_s += seconds

    def keeper(self, not_before_s: float | None = None) -> Timekeeper:
        return Timekeeper(
            lambda: self.synchronized, lambda: self.wall_s, lambda: self.monotonic_s, not_before_s
        )


def test_a_synchronised_clock_is_trusted_and_followed() -> None:
    clocks = Clocks()
    keeper = clocks.keeper()
    assert keeper.trusted and keeper.now_s() == NOW_S
    clocks.advance(10)
    assert keeper.observe() is None and keeper.now_s() == NOW_S + 10


def test_booting_in_1970_flags_then_corrects_by_the_monotonic_offset() -> None:
    clocks = Clocks(wall_s=BOOT_1970_S, synchronized=False)
    keeper = clocks.keeper()
    assert not keeper.trusted and keeper.now_s() == BOOT_1970_S
    clocks.advance(600)
    assert keeper.observe() is None and not keeper.trusted
    # NTP sets the true time: 10 minutes after boot it is NOW_S.
    clocks.wall_s, clocks.synchronized = NOW_S, True
    correction = keeper.observe()
    assert correction == Correction(BOOT_1970_S, BOOT_1970_S + 600, round(NOW_S - 5_600))
    assert keeper.trusted and keeper.now_s() == NOW_S
    # A reading stamped at boot really happened 10 minutes before NOW_S.
    assert BOOT_1970_S + correction.shift_s == NOW_S - 600


def test_the_kernel_saying_synchronised_is_not_enough_for_a_1970_clock() -> None:
    keeper = Clocks(wall_s=BOOT_1970_S, synchronized=True).keeper()
    assert not keeper.trusted


def test_an_untrusted_clock_never_stamps_before_the_stored_data() -> None:
    clocks = Clocks(wall_s=NOW_S - 86_400, synchronized=False)  # fake-hwclock: yesterday
    keeper = clocks.keeper(not_before_s=NOW_S - 60)
    assert keeper.now_s() == NOW_S - 59


@pytest.mark.parametrize("jump_s", [3600.0, -3600.0, -86_400.0 * 365])
def test_a_jump_without_ntp_is_ignored(jump_s: float, caplog: pytest.LogCaptureFixture) -> None:
    clocks = Clocks()
    keeper = clocks.keeper()
    clocks.synchronized = False
    clocks.advance(5)
    clocks.wall_s += jump_s
    assert keeper.observe() is None
    assert keeper.now_s() == NOW_S + 5 and keeper.trusted
    assert any("jumped" in r.getMessage() for r in caplog.records)


def test_an_ntp_step_is_followed_and_small_jitter_is_not() -> None:
    clocks = Clocks()
    keeper = clocks.keeper()
    clocks.wall_s += JUMP_TOLERANCE_S / 2
    keeper.observe()
    assert keeper.now_s() == NOW_S
    clocks.wall_s += 30
    keeper.observe()
    assert keeper.now_s() == clocks.wall_s


def test_the_kernel_clock_status_can_be_read() -> None:
    assert kernel_clock_synchronized() in (True, False)  # adjtimex(2) on this machine


# -- the daemon --------------------------------------------------------------------------


class ScaledClocks(Clocks):
    """Monotonic time running `speed` times faster than real time, from the real clock."""

    def __init__(self, wall_s: float, synchronized: bool, speed: float) -> None:
        super().__init__(wall_s, 0.0, synchronized)
        self.speed = speed
        self._real0 = time.monotonic()
        self._wall_offset_s = wall_s

    def mono(self) -> float:
        return (time.monotonic() - self._real0) * self.speed

    def wall(self) -> float:
        return self._wall_offset_s + self.mono()

    def set_wall(self, wall_s: float) -> None:
        self._wall_offset_s += wall_s - self.wall()

    def scaled_keeper(self) -> Timekeeper:
        return Timekeeper(lambda: self.synchronized, self.wall, self.mono, speed=self.speed)


class Events:
    def __init__(self) -> None:
        self.kinds: list[tuple[str, str, str]] = []

    def on_rows(self, rows: list[ReadingRow]) -> None:
        pass

    def on_alert(self, alert: Alert, kind: AlertEventKind, ts_s: float) -> None:
        self.kinds.append((alert.patient_id, alert.rule.value, kind.value))

    def on_listening(self, url: str) -> None:
        pass


async def run_daemon(
    tmp_path: Path,
    sim: SimulatedPatient,
    clocks: ScaledClocks,
    script: list[tuple[float, dict[str, object]]],
    elapsed_s: int = 0,
) -> tuple[Store, Daemon, Events]:
    """The daemon with one simulated patient on a Timekeeper over `clocks`; `script` says
    when (real seconds) to change the clocks and the time to stop (the last entry)."""
    config = parse_config(
        # Every batch committed (one patient would otherwise gather 90 readings a commit): the
        # tests look into the database while the daemon runs.
        {
            "gateway": {"data_dir": str(tmp_path)},
            "store": {"batch_interval_s": 0.2, "min_commit_readings": 1},
        }
    )
    keeper = clocks.scaled_keeper()
    store = Store.open(config.database_path, "gw")
    start_s = keeper.now_s()
    store.add_patient(Patient(sim.patient_id, Tier(sim.tier), Profile(sim.profile)), start_s)
    ingest = Ingest()
    for device_id, protocol in ((sim.oximeter_id, "berrymed-bci"), (sim.thermometer_id, "hts")):
        store.ensure_device(device_id, protocol, "simulated", start_s)
        store.bind(device_id, sim.patient_id, start_s)
        ingest.add_device(device_id, protocol)

    async def source(sink):  # type: ignore[no-untyped-def]
        await run_patient(sim, keeper, sink, origin_s=start_s - elapsed_s)

    events = Events()
    worker = StoreWorker(store)
    daemon = Daemon(config, worker, keeper, ingest, [source], events)
    stop = asyncio.Event()
    running = asyncio.create_task(daemon.run(stop))
    for at_s, change in script:
        await asyncio.sleep(at_s)
        if "wall_s" in change:
            clocks.set_wall(float(change["wall_s"]))  # type: ignore[arg-type]
        if "jump_s" in change:
            clocks.set_wall(clocks.wall() + float(change["jump_s"]))  # type: ignore[arg-type]
        if "synchronized" in change:
            clocks.synchronized = bool(change["synchronized"])
    stop.set()
    await running
    worker.shutdown()
    return store, daemon, events


def assert_continuous(store: Store) -> None:
    """SpO2 seconds strictly increasing, without a gap: no second stored twice and no hole
    a jump could have made (the simulator at 20-40x may miss a single second)."""
    rows = store.db.execute(
        "SELECT ts_s FROM readings WHERE metric = 'spo2_percent' ORDER BY ts_s"
    ).fetchall()
    seconds = [row[0] for row in rows]
    assert len(seconds) > 50
    gaps = [later - earlier for earlier, later in itertools.pairwise(seconds)]
    assert min(gaps) > 0 and max(gaps) <= 3, sorted(set(gaps))


async def test_wall_clock_jumps_neither_raise_nor_clear_alerts(tmp_path: Path) -> None:
    """The desaturating patient, from 3 minutes into the scenario (SpO2 near 87 %): the same
    alert events with and without a +1 h and a -2 h jump of the wall clock."""
    sim = DEMO_PATIENTS[1]
    plain, _, expected = await run_daemon(
        tmp_path / "plain", sim, ScaledClocks(NOW_S, True, 40), [(6.0, {})], elapsed_s=180
    )
    plain.close()
    jumps = [
        (1.0, {"synchronized": False}),
        (1.5, {"jump_s": 3600}),
        (2.0, {"jump_s": -7200}),
        (1.5, {}),
    ]
    store, daemon, got = await run_daemon(
        tmp_path / "jumps", sim, ScaledClocks(NOW_S, True, 40), jumps, elapsed_s=180
    )
    try:
        assert_continuous(store)
        assert daemon.is_healthy()
        [(flagged,)] = store.db.execute("SELECT count(*) FROM readings WHERE quality & ?", [64])
    finally:
        store.close()
    assert flagged == 0  # the clock stayed trusted: a jump is not a reason to distrust data
    assert any(kind == "raised" for *_, kind in expected.kinds)
    assert sorted(set(got.kinds)) == sorted(set(expected.kinds))
    assert len(got.kinds) == len(set(got.kinds))  # nothing raised twice


async def test_readings_from_a_1970_boot_are_flagged_then_moved_to_the_true_time(
    tmp_path: Path,
) -> None:
    clocks = ScaledClocks(BOOT_1970_S, False, 20)
    seen_flagged: list[int] = []

    async def peek() -> None:
        await asyncio.sleep(1.8)
        conn = Store.open(tmp_path / "pulsegate.db", "gw")
        seen_flagged.append(
            conn.db.execute(
                "SELECT count(*) FROM readings WHERE quality & 64 AND ts_s < 1e6"
            ).fetchone()[0]
        )
        conn.close()

    peeking = asyncio.create_task(peek())
    script = [(2.0, {"wall_s": NOW_S, "synchronized": True}), (2.0, {})]
    store, daemon, events = await run_daemon(tmp_path, DEMO_PATIENTS[0], clocks, script)
    await peeking
    try:
        assert seen_flagged[0] > 20  # stored, flagged, before NTP came
        [(old, flagged)] = store.db.execute(
            "SELECT sum(ts_s < ?), sum(quality & 64 != 0) FROM readings", [EARLIEST_TRUSTED_S]
        )
        assert (old, flagged) == (0, 0)
        assert_continuous(store)  # the boot-time seconds join the true ones exactly
        [(details,)] = store.db.execute("SELECT details FROM maintenance_log WHERE kind = 'clock'")
        assert daemon.is_healthy()
    finally:
        store.close()
    correction = json.loads(details)
    assert correction["readings"] >= seen_flagged[0]
    assert abs(correction["shift_s"] - (NOW_S - BOOT_1970_S - 40)) < 5  # 2 s at 20x after boot
    assert events.kinds == []  # a healthy patient: the shift raised nothing
