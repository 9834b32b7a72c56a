"""GitHub REST rate limits as hosted-registries.md 1.8 describes them.

Primary: a quota per token per hour, shown in x-ratelimit-* headers on every answer. Secondary:
points per endpoint per window (GET 1, writes 5), refused with retry-after; plus a test trigger
that trips it after N requests so a test can make a client wait without sending 900 points.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from tests.support.ghcr.httpbase import Response, json_response

DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"


@dataclass
class _Bucket:
    reset: float
    used: int = 0


class RateLimits:
    def __init__(
        self,
        clock: Callable[[], float],
        *,
        primary_status: int,
        secondary_status: int,
        secondary_points: int,
        secondary_window: float,
        secondary_after: int | None,
        secondary_retry_after: int,
    ):
        self.clock = clock
        self.primary_status = primary_status
        self.secondary_status = secondary_status
        self.secondary_points = secondary_points
        self.secondary_window = secondary_window
        self.secondary_after = secondary_after
        self.secondary_retry_after = secondary_retry_after
        self.lock = threading.Lock()
        self.buckets: dict[str, _Bucket] = {}
        self.windows: dict[tuple[str, str], tuple[float, int]] = {}  # (key, endpoint) -> (start, points)
        self.requests = 0
        self.tripped_until: float | None = None
        self.refusals = {"primary": 0, "secondary": 0}

    def headers(self, key: str, limit: int) -> dict[str, str]:
        with self.lock:
            b = self._bucket(key)
            return self._headers(b, limit)

    def _bucket(self, key: str) -> _Bucket:
        now = self.clock()
        b = self.buckets.get(key)
        if b is None or now >= b.reset:
            b = self.buckets[key] = _Bucket(reset=math.floor(now) + 3600)
        return b

    @staticmethod
    def _headers(b: _Bucket, limit: int) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(max(0, limit - b.used)),
            "x-ratelimit-used": str(b.used),
            "x-ratelimit-reset": str(int(b.reset)),
            "x-ratelimit-resource": "core",
        }

    def trip_after(self, n: int, retry_after: int | None = None) -> None:
        """Refuse the (n+1)-th request from now with retry-after, once."""
        with self.lock:
            self.secondary_after = self.requests + n
            if retry_after is not None:
                self.secondary_retry_after = retry_after

    def exhaust(self, key: str, limit: int, leave: int = 0) -> None:
        """Use up a token's quota (tests of the pause-until-reset path)."""
        with self.lock:
            self._bucket(key).used = limit - leave

    def check(
        self, key: str, limit: int, method: str, endpoint: str
    ) -> tuple[Response | None, dict[str, str]]:
        """Count one request; return (refusal or None, the rate-limit headers to send)."""
        with self.lock:
            now = self.clock()
            b = self._bucket(key)
            if b.used >= limit:
                self.refusals["primary"] += 1
                body = {"message": f"API rate limit exceeded for {key}.", "documentation_url": DOCS}
                return json_response(self.primary_status, body), self._headers(b, limit)
            b.used += 1
            headers = self._headers(b, limit)
            self.requests += 1
            wait = self._secondary(now, key, method, endpoint)
            if wait is None:
                return None, headers
            self.refusals["secondary"] += 1
            body = {
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes before "
                "you try again.",
                "documentation_url": DOCS + "#about-secondary-rate-limits",
            }
            return json_response(self.secondary_status, body, {"retry-after": str(wait)}), headers

    def _secondary(self, now: float, key: str, method: str, endpoint: str) -> int | None:
        """Seconds to wait, or None when the request may go through (and its points are counted)."""
        if self.tripped_until is not None:
            if now < self.tripped_until:
                return max(1, math.ceil(self.tripped_until - now))
            self.tripped_until = None
        if self.secondary_after is not None and self.requests > self.secondary_after:
            self.secondary_after = None  # one trip per arming
            self.tripped_until = now + self.secondary_retry_after
            return self.secondary_retry_after
        cost = 1 if method in ("GET", "HEAD", "OPTIONS") else 5
        start, points = self.windows.get((key, endpoint), (now, 0))
        if now >= start + self.secondary_window:
            start, points = now, 0
        if points + cost > self.secondary_points:
            return max(1, math.ceil(start + self.secondary_window - now))
        self.windows[(key, endpoint)] = (start, points + cost)
        return None
