"""How fast the box may send SMS: at least `min_interval_s` apart and at most `max_per_hour` in
any hour (operators block SIMs that send in bursts, and a faulty loop must not empty the SIM's
credit). Pure: the caller gives the times."""

from __future__ import annotations

from collections import deque

HOUR_S = 3600.0


class RateLimit:
    """Sliding-window limit over the times of the SMS sent so far."""

    def __init__(self, min_interval_s: float, max_per_hour: int) -> None:
        if min_interval_s < 0 or max_per_hour < 1:
            raise ValueError("min_interval_s >= 0 and max_per_hour >= 1")
        self.min_interval_s = min_interval_s
        self.max_per_hour = max_per_hour
        self._sent_s: deque[float] = deque()

    def wait_s(self, now_s: float) -> float:
        """Seconds until the next SMS may go (0: now)."""
        while self._sent_s and now_s - self._sent_s[0] >= HOUR_S:
            self._sent_s.popleft()
        if not self._sent_s:
            return 0.0
        wait_s = self._sent_s[-1] + self.min_interval_s - now_s
        if len(self._sent_s) >= self.max_per_hour:
            wait_s = max(wait_s, self._sent_s[0] + HOUR_S - now_s)
        return max(0.0, wait_s)

    def record(self, now_s: float) -> None:
        """An SMS went (or was handed to the modem) at `now_s`."""
        self._sent_s.append(now_s)
