"""How big the database is after a simulated year, and how long the daemon takes to open it.

    .venv/bin/python bench/bench_year.py [--patients 20] [--days 365] [--retention-days 7]
                                         [--steady-days 3] [--summary-days 365]
                                         [--keep DIR] [--open-only]

`bench/bench_store.py` measures bytes per row on a sample and extrapolates; this builds the
year's database itself, for `--patients` patients each wearing an oximeter (SpO2, pulse, PI at
1 Hz) and a thermometer (one reading a minute):

1. One day of readings written through `Store.write_batch` (the daemon's path, a batch a
   minute) and rolled up by `retention.roll_up_chunk` (the daemon's roll-up): one real day of
   per-minute summaries, and the raw rows they came from.
2. The rest of the year: that day again, shifted by whole days, in time order, one
   transaction a day (plain SQL copies of the real rows): summaries for the days older than
   `--retention-days`, raw readings for the last `--retention-days` days.
3. `--steady-days` days of the daemon's steady state, an hour at a time: an hour of raw
   readings arrives, everything older than `--retention-days` is rolled up and summaries
   older than `--summary-days` are deleted, as the daemon's maintenance task does every 10
   minutes. The file should stop growing once the pages freed are reused.
4. On the finished file: the daemon's start-up open (`salvage.open_checked`: the start-up
   check, migrations), the whole file's `quick_check` (the background check, and a start
   after it found damage), each with the file in the page cache and, when this process may
   drop the page cache, without; and `pulsegate run` from its start to READY=1 on a real
   NOTIFY_SOCKET, with the year's 20 patients.

Prints figures only; asserts nothing. Needs about 3 GB of free disk for 20 patients.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_store import T0_S, _no_message, open_lean, second_of_readings  # noqa: E402

from gateway.config import parse_config  # noqa: E402
from gateway.migrations import reading_id_floor  # noqa: E402
from gateway.retention import expire_summaries_chunk, roll_up_chunk, used_bytes  # noqa: E402
from gateway.salvage import find_corruption, open_checked  # noqa: E402
from gateway.store import Store  # noqa: E402

DAY_S = 86_400
HOUR_S = 3_600


def _copy_raw(store: Store, shift_s: int, start_s: int = 0, end_s: int = DAY_S) -> None:
    """The base day's raw rows in [start_s, end_s) of its day, `shift_s` later."""
    store.db.execute(
        "INSERT INTO reading_samples (id, ts_s, series_id, value, quality)"
        " SELECT id + ?, ts_s + ?, series_id, value, quality FROM base.samples"
        " WHERE id >= ? AND id < ? ORDER BY id",
        [
            reading_id_floor(shift_s),
            shift_s,
            reading_id_floor(T0_S + start_s),
            reading_id_floor(T0_S + end_s),
        ],
    )


def _copy_minutes(store: Store, shift_s: int) -> None:
    store.db.execute(
        "INSERT INTO reading_minutes (minute_s, series_id, n, missing, value_min,"
        " value_median, value_max, quality) SELECT minute_s + ?, series_id, n, missing,"
        " value_min, value_median, value_max, quality FROM base.minutes ORDER BY minute_s",
        [shift_s],
    )


def _roll_up(store: Store, before_s: float) -> int:
    removed = 0
    while chunk := roll_up_chunk(store, before_s):
        removed += chunk
    return removed


def _sizes(store: Store, path: Path) -> str:
    page_size, free = (
        store.db.execute(f"PRAGMA {name}").fetchone()[0] for name in ("page_size", "freelist_count")
    )
    wal = path.with_name(path.name + "-wal")
    wal_mb = wal.stat().st_size / 1e6 if wal.exists() else 0.0
    return (
        f"file {path.stat().st_size / 1e9:.3f} GB, in use {used_bytes(store) / 1e9:.3f} GB,"
        f" free pages {free * page_size / 1e6:.1f} MB, WAL {wal_mb:.1f} MB"
    )


def _rows(store: Store) -> str:
    raw = store.db.execute("SELECT count(*) FROM reading_samples").fetchone()[0]
    minutes = store.db.execute("SELECT count(*) FROM reading_minutes").fetchone()[0]
    return f"{raw:,} raw rows, {minutes:,} minute rows"


def build_base_day(store: Store, workdir: Path, patients: int) -> None:
    """Day 0 through the daemon's write and roll-up paths, kept in `base` for copying."""
    rng = random.Random(3)
    started = time.perf_counter()
    for minute in range(DAY_S // 60):
        start = minute * 60
        batch = [r for s in range(start, start + 60) for r in second_of_readings(patients, s, rng)]
        store.write_batch(batch, [], {}, _no_message, 0)
    written_s = time.perf_counter() - started
    store.db.execute(f"ATTACH DATABASE '{workdir / 'base.db'}' AS base")
    store.db.execute("CREATE TABLE base.samples AS SELECT * FROM reading_samples")
    started = time.perf_counter()
    _roll_up(store, T0_S + DAY_S)
    rolled_s = time.perf_counter() - started
    store.db.execute("CREATE TABLE base.minutes AS SELECT * FROM reading_minutes")
    raw = store.db.execute("SELECT count(*) FROM base.samples").fetchone()[0]
    print(
        f"day 0: {raw:,} readings written in {written_s:.0f} s ({raw / written_s:,.0f}/s),"
        f" rolled up in {rolled_s:.0f} s"
    )


def build_year(store: Store, path: Path, days: int, retention_days: int) -> None:
    started = time.perf_counter()
    for day in range(1, days):
        with store.transaction():
            if day < days - retention_days:
                _copy_minutes(store, day * DAY_S)
            else:
                _copy_raw(store, day * DAY_S)
        if day % 60 == 0:
            print(f"  day {day}: {_sizes(store, path)}", flush=True)
    print(f"{days} days built in {time.perf_counter() - started:.0f} s: {_rows(store)}")


def steady_state(
    store: Store, path: Path, days: int, retention_days: int, steady_days: int, summary_days: int
) -> None:
    started = time.perf_counter()
    for hour in range(steady_days * 24):
        now_s = T0_S + days * DAY_S + (hour + 1) * HOUR_S
        start_s = (hour % 24) * HOUR_S
        with store.transaction():
            _copy_raw(store, (days + hour // 24) * DAY_S, start_s, start_s + HOUR_S)
        _roll_up(store, now_s - retention_days * DAY_S)
        while expire_summaries_chunk(store, now_s - summary_days * DAY_S):
            pass
        if hour % 24 == 23:
            print(f"  +{hour // 24 + 1} d: {_sizes(store, path)}", flush=True)
    print(f"steady state, {steady_days} days in {time.perf_counter() - started:.0f} s")


def _drop_page_cache() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError as exc:
        print(f"  (page cache not dropped: {exc.strerror}; no cold figure)")
        return False
    return True


def time_open(path: Path) -> None:
    """The start-up open and the full check, warm and, when allowed, cold."""
    size_mb = path.stat().st_size / 1e6
    steps: list[tuple[str, bool, Callable[[], object]]] = [
        ("start-up open (open_checked)", False, lambda: open_checked(path, "bench").close()),
        ("full quick_check", True, lambda: find_corruption(path, full=True)),
    ]
    for name, reads_all, step in steps:
        for cold in (False, True):
            if cold and not _drop_page_cache():
                break
            started = time.perf_counter()
            step()
            took_s = time.perf_counter() - started
            rate = f" ({size_mb / took_s:,.0f} MB/s)" if reads_all else ""
            print(f"{name}, {'cold' if cold else 'file cached'}: {took_s:.2f} s{rate}")


def time_ready(path: Path) -> None:
    """`pulsegate run` on the database at `path` (its folder is the data folder), from spawning
    it to READY=1, with the page cache dropped first when allowed."""
    workdir = path.parent
    config = workdir / "pulsegate.toml"
    config.write_text(f'[gateway]\nid = "bench"\ndata_dir = "{workdir}"\n')
    notify_path = Path(tempfile.mkdtemp(prefix="ny")) / "notify"  # short: AF_UNIX path limit
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(600)
        cold = _drop_page_cache()
        command = [sys.executable, "-m", "gateway", "--config", str(config), "run", "--quiet"]
        env = {**os.environ, "NOTIFY_SOCKET": str(notify_path)}
        spawned = time.monotonic()
        process = subprocess.Popen([*command, "--duration", "5"], env=env, cwd=ROOT)
        while b"READY=1" not in notify.recv(4096):
            pass
        ready_s = time.monotonic() - spawned
        process.wait(timeout=120)
    notify_path.unlink()
    notify_path.parent.rmdir()
    print(
        f"pulsegate run, spawn to READY=1{' (page cache dropped)' if cold else ''}: {ready_s:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--retention-days", type=int, default=7)
    parser.add_argument("--steady-days", type=int, default=3)
    parser.add_argument(
        "--summary-days",
        type=int,
        default=int(parse_config({}).store.summary_retention_days),
        help="summaries kept in the steady state (store.summary_retention_days)",
    )
    parser.add_argument("--keep", type=Path, help="build the database here and keep it")
    parser.add_argument("--open-only", action="store_true", help="time the open of --keep's")
    args = parser.parse_args()
    if args.open_only:
        if args.keep is None:
            parser.error("--open-only needs --keep DIR")
        time_open(args.keep / "pulsegate.db")
        time_ready(args.keep / "pulsegate.db")
        return
    if args.days <= args.retention_days:
        parser.error("--days must be more than --retention-days")
    with tempfile.TemporaryDirectory(prefix="bench-year") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / "pulsegate.db"
        if path.exists():
            parser.error(f"{path} exists: give --keep an empty folder")
        store = open_lean(path, args.patients)
        print(
            f"{args.patients} patients, {args.days} days, {args.retention_days} days raw ({path})"
        )
        build_base_day(store, workdir, args.patients)
        build_year(store, path, args.days, args.retention_days)
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        print(f"after {args.days} days: {_sizes(store, path)}")
        steady_state(
            store, path, args.days, args.retention_days, args.steady_days, args.summary_days
        )
        store.db.execute("DETACH DATABASE base")
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        print(f"after {args.days + args.steady_days} days: {_sizes(store, path)}; {_rows(store)}")
        store.close()
        time_open(path)
        time_ready(path)


if __name__ == "__main__":
    main()
