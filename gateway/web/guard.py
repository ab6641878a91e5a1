"""What stands between a browser and an acknowledgement: a CSRF token, and a limit on wrong
PINs or passwords.

CSRF: the double-submit pattern. A page sets a random token in a cookie (HttpOnly,
SameSite=Strict) and repeats it in each form; a POST is accepted only when the form's token
equals the cookie's (another site can make a browser send the cookie, but cannot read it to
put it in the form), and, when the browser names an Origin, only from the page's own host.

Wrong secrets: at most MAX_FAILURES_PER_CLIENT wrong PINs per client address in
FAILURE_WINDOW_S, and MAX_FAILURES_TOTAL from everyone (a PIN has few digits: guessing from
many addresses must stop too). While limited, even the right PIN is refused, so the limit
cannot be probed. Pure: the caller passes the time.
"""

from __future__ import annotations

import hmac
import secrets
import urllib.parse
from collections import deque
from dataclasses import dataclass, field

CSRF_COOKIE = "csrf"
CSRF_FIELD = "csrf"
CSRF_TOKEN_BYTES = 24
MAX_FAILURES_PER_CLIENT = 5
MAX_FAILURES_TOTAL = 20
FAILURE_WINDOW_S = 600.0


def new_csrf_token() -> str:
    return secrets.token_urlsafe(CSRF_TOKEN_BYTES)


def is_csrf_token(value: str | None) -> bool:
    """A token this module could have made (the cookie is untrusted input)."""
    return bool(value) and 20 <= len(value or "") <= 64 and (value or "").isascii()


def csrf_ok(cookie_token: str | None, form_token: str | None) -> bool:
    """The form repeats the cookie's token (constant-time comparison)."""
    if not is_csrf_token(cookie_token) or not form_token:
        return False
    return hmac.compare_digest(str(cookie_token).encode(), form_token.encode())


def same_origin(origin: str | None, host: str | None) -> bool:
    """No Origin header (an older browser), or one whose host:port is the request's Host."""
    if origin is None:
        return True
    if not host or origin == "null":
        return False
    return urllib.parse.urlsplit(origin).netloc.lower() == host.lower()


@dataclass(slots=True)
class FailureLimiter:
    """Counts wrong secrets per client and in all; `retry_after_s` says when to try again."""

    per_client: int = MAX_FAILURES_PER_CLIENT
    total: int = MAX_FAILURES_TOTAL
    window_s: float = FAILURE_WINDOW_S
    _by_client: dict[str, deque[float]] = field(default_factory=dict)
    _all: deque[float] = field(default_factory=deque)

    def _expire(self, now_s: float) -> None:
        horizon = now_s - self.window_s
        while self._all and self._all[0] <= horizon:
            self._all.popleft()
        for client in list(self._by_client):
            times = self._by_client[client]
            while times and times[0] <= horizon:
                times.popleft()
            if not times:
                del self._by_client[client]

    def retry_after_s(self, client: str, now_s: float) -> float | None:
        """None when `client` may try a secret now; else the seconds to wait."""
        self._expire(now_s)
        waits = []
        times = self._by_client.get(client)
        if times is not None and len(times) >= self.per_client:
            waits.append(times[-self.per_client] + self.window_s - now_s)
        if len(self._all) >= self.total:
            waits.append(self._all[-self.total] + self.window_s - now_s)
        return max(waits) if waits else None

    def failed(self, client: str, now_s: float) -> None:
        self._by_client.setdefault(client, deque()).append(now_s)
        self._all.append(now_s)
