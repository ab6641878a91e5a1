"""Time the daemon can stand on: the box has no real-time clock, may boot in 1970 or at the
time fake-hwclock saved before the last power cut, and NTP may only step it right later.

The daemon's time line is the monotonic clock plus an offset; the wall clock only sets the
offset. While the system clock is not trusted the offset is provisional: readings are stamped
on it (never before the newest stored reading) and flagged `Quality.CLOCK_UNTRUSTED`. When the
clock becomes trusted (systemd-timesyncd's /run/systemd/timesync/synchronized, or the kernel's
adjtimex status once an NTP client disciplines the clock), the offset is corrected once and
`observe()` returns the whole-second shift for what was stamped before: the daemon moves the
readings still in memory and in the database, and its detectors, by that shift. A later jump
of the wall clock without NTP (someone set the date) is logged and ignored: the time line stays
monotonic, so a jump never opens a gap or replays seconds for the detector, and so never raises
or clears an alert by itself. An NTP step while synchronised is followed.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import dataclasses
import functools
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devices.protocols.reading import Quality
from gateway.migrations import reading_id_floor
from gateway.store import ReadingRow, Store

log = logging.getLogger(__name__)

TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")
EARLIEST_TRUSTED_S = 1_735_689_600.0  # 2025-01-01: no clock before this release is right
JUMP_TOLERANCE_S = 2.0
_TIME_ERROR = 5  # adjtimex(2) return value: the clock is not synchronised
_STA_UNSYNC = 0x0040


@dataclass(frozen=True, slots=True)
class Correction:
    """Readings stamped in [start_s, end_s) on the provisional time line belong `shift_s`
    later (negative: earlier)."""

    start_s: float
    end_s: float
    shift_s: int


class _Timex(ctypes.Structure):
    """struct timex of <sys/timex.h> (Linux, 64-bit longs); only `status` is read."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("rest", ctypes.c_long * 40),  # the remaining fields and padding
    ]


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")  # runs ldconfig: once
    return None if name is None else ctypes.CDLL(name, use_errno=True)


def kernel_clock_synchronized() -> bool:
    """adjtimex(2): an NTP client has disciplined the clock (no STA_UNSYNC, no TIME_ERROR)."""
    libc = _libc()
    if libc is None:
        return False
    timex = _Timex()
    state = libc.adjtimex(ctypes.byref(timex))
    return bool(state not in (-1, _TIME_ERROR) and not timex.status & _STA_UNSYNC)


def system_clock_synchronized() -> bool:
    """systemd-timesyncd says so, or the kernel does."""
    return TIMESYNCD_FLAG.exists() or kernel_clock_synchronized()


class Timekeeper:
    """A Clock (UTC epoch seconds) on the monotonic time line; see the module docstring.
    `speed` > 1 runs it faster than real time, for simulations and tests."""

    def __init__(
        self,
        is_synchronized: Callable[[], bool] = system_clock_synchronized,
        wall_s: Callable[[], float] = time.time,
        monotonic_s: Callable[[], float] = time.monotonic,
        not_before_s: float | None = None,
        speed: float = 1.0,
    ) -> None:
        self._is_synchronized = is_synchronized
        self._wall_s = wall_s
        self._monotonic_s = monotonic_s
        self.speed = speed
        wall = wall_s()
        self.trusted = self._trusted_now(wall)
        start_s = wall if self.trusted else max(wall, (not_before_s or 0.0) + 1.0)
        self._offset_s = start_s - monotonic_s()
        self.untrusted_since_s: float | None = None if self.trusted else start_s
        self.last_correction: Correction | None = None
        if not self.trusted:
            log.warning(
                "the system clock is not synchronised (it says %s); readings are flagged"
                " until it is, then their times are corrected",
                time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(wall)),
            )

    def now_s(self) -> float:
        return self._monotonic_s() + self._offset_s

    async def sleep_s(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.speed)

    def _trusted_now(self, wall_s: float) -> bool:
        return wall_s >= EARLIEST_TRUSTED_S and self._is_synchronized()

    def observe(self) -> Correction | None:
        """Look at the wall clock (the daemon does, once a batch); returns the correction for
        the provisional stamps when the clock has just become trusted."""
        wall = self._wall_s()
        jump_s = wall - self.now_s()
        if not self.trusted:
            if not self._trusted_now(wall):
                return None
            return self._become_trusted(jump_s)
        if abs(jump_s) > JUMP_TOLERANCE_S:
            if self._is_synchronized():
                log.info("NTP stepped the clock by %+.1f s; the time line follows", jump_s)
                self._offset_s += jump_s
            else:
                log.warning(
                    "the system clock jumped by %+.1f s without NTP; ignored, readings keep"
                    " the monotonic time line",
                    jump_s,
                )
        return None

    def _become_trusted(self, jump_s: float) -> Correction:
        shift_s = round(jump_s)
        start_s = self.untrusted_since_s if self.untrusted_since_s is not None else self.now_s()
        correction = Correction(start_s, self.now_s(), shift_s)
        self._offset_s += shift_s
        self.trusted = True
        self.untrusted_since_s = None
        self.last_correction = correction
        log.warning(
            "the system clock is now synchronised: readings since %s move by %+d s",
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start_s)),
            shift_s,
        )
        return correction


def shift_rows(rows: list[ReadingRow], correction: Correction) -> list[ReadingRow]:
    """Rows stamped on the provisional time line, moved onto the corrected one."""
    flag = int(Quality.CLOCK_UNTRUSTED)
    return [
        dataclasses.replace(row, ts_s=row.ts_s + correction.shift_s, quality=row.quality & ~flag)
        if row.quality & flag and correction.start_s <= row.ts_s < correction.end_s + 1
        else row
        for row in rows
    ]


def shift_stored_readings(store: Store, correction: Correction, now_s: float) -> int:
    """Move the flagged readings stored during the untrusted period by the correction, clear
    their flag, and log it; returns how many moved. One transaction."""
    flag = int(Quality.CLOCK_UNTRUSTED)
    low_id = reading_id_floor(math.floor(correction.start_s))
    high_id = reading_id_floor(math.floor(correction.end_s) + 2)
    with store.transaction():
        rows = store.db.execute(
            "SELECT s.ts_s, nullif(r.patient_id, ''), r.device_id, r.metric, s.value, s.quality,"
            " nullif(r.site, '') FROM reading_samples s JOIN reading_series r"
            " ON r.id = s.series_id WHERE s.id >= ? AND s.id < ? AND s.quality & ?"
            " ORDER BY s.id",
            [low_id, high_id, flag],
        ).fetchall()
        store.db.execute(
            "DELETE FROM reading_samples WHERE id >= ? AND id < ? AND quality & ?",
            [low_id, high_id, flag],
        )
        store.db.conn.executemany(
            "INSERT INTO readings (ts_s, patient_id, device_id, metric, value, quality, site)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (ts_s + correction.shift_s, patient, device, metric, value, quality & ~flag, site)
                for ts_s, patient, device, metric, value, quality, site in rows
            ],
        )
        details = {**dataclasses.asdict(correction), "readings": len(rows)}
        store.db.execute(
            "INSERT INTO maintenance_log (ts_s, kind, details) VALUES (?, 'clock', ?)",
            [now_s, json.dumps(details, sort_keys=True)],
        )
    return len(rows)
