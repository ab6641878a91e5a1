"""Time as the daemon sees it: the wall clock, or a scaled clock for simulations that run a
scenario's minutes in seconds. Both give UTC epoch seconds and sleep in their own seconds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now_s(self) -> float:
        """UTC epoch seconds."""
        ...

    async def sleep_s(self, seconds: float) -> None:
        """Sleep `seconds` of this clock's time."""
        ...


class WallClock:
    """The system clock."""

    def now_s(self) -> float:
        return time.time()

    async def sleep_s(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ScaledClock:
    """A clock that runs `speed` times faster than real time, from `start_s` (default: now)."""

    def __init__(self, speed: float, start_s: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._start_s = time.time() if start_s is None else start_s
        self._start_monotonic_s = time.monotonic()

    def now_s(self) -> float:
        return self._start_s + (time.monotonic() - self._start_monotonic_s) * self.speed

    async def sleep_s(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.speed)
