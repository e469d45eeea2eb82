"""Per-client submission rate limit, counted in Valkey so that it holds across
every API process (DRF's own throttles keep state per cache, non-atomically)."""

from __future__ import annotations

import time

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from summaries.infra import cache


class SubmitRateThrottle(BaseThrottle):
    """Fixed one-window counter: INCRBY ratelimit:<client>:<window> <cost>;
    over the limit → 429 with Retry-After set to the end of the window.

    A submit costs one; a view with a ``throttle_cost(request)`` method says
    what a request costs (a batch: one per item, so batching does not raise a
    client's allowance)."""

    def __init__(self) -> None:
        self.retry_after: float | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        limit = settings.RATE_LIMIT
        if limit is None or getattr(getattr(request, "_request", request),
                                    "rate_limit_charged", False):
            return True  # no limit, or the hit fast path charged this request already
        count, period = limit
        now = time.time()
        window = int(now // period)
        # The client: REMOTE_ADDR, or behind NUM_PROXIES=n proxies the n-th
        # X-Forwarded-For entry from the right; never what the client wrote.
        key = f"ratelimit:{self.get_ident(request)}:{window}"
        pipe = cache.client().pipeline(transaction=False)
        pipe.incrby(key, _cost(request, view))
        pipe.expire(key, period + 1)
        used = int(pipe.execute()[0])
        if used <= count:
            return True
        self.retry_after = (window + 1) * period - now
        return False

    def wait(self) -> float | None:
        return self.retry_after


def _cost(request: Request, view: APIView) -> int:
    cost = getattr(view, "throttle_cost", None)
    return int(cost(request)) if callable(cost) else 1
