"""A job the batch loop starts now and then in a task of its own, so that the loop is never
held up by it: the day- and night-level rules (gateway/daily_job.py), Q3 and Q5
(gateway/technical_rules.py)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from alerts.lifecycle import Alert, AlertEventKind

AlertEvents = list[tuple[Alert, AlertEventKind]]


@dataclass(slots=True)
class Periodic:
    """At most one run at a time, started at most every `every_s` seconds of wall time."""

    every_s: float
    task: asyncio.Task[AlertEvents] | None = None
    _next_start_monotonic_s: float = field(default=-math.inf)

    def tick(self, start: Callable[[], Coroutine[Any, Any, AlertEvents]]) -> AlertEvents:
        """Called often: the alert events of a run that has finished; starts `start()` when
        no run is going and `every_s` passed since the last start."""
        produced: AlertEvents = []
        if self.task is not None and self.task.done():
            produced = self.task.result()
            self.task = None
        monotonic_s = time.monotonic()
        if self.task is None and monotonic_s >= self._next_start_monotonic_s:
            self._next_start_monotonic_s = monotonic_s + self.every_s
            self.task = asyncio.create_task(start())
        return produced

    async def stop(self) -> None:
        """Cancel a run in progress (what it committed stays; the rest is done next time)."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
