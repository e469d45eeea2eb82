"""The per-minute timeline (the web page's charts).

A hash per minute, ``metrics:m:<epoch minute>``: fields hit, miss, joined,
near, known_failure (submits by outcome), completed, failed (jobs), ms (the
completed jobs' processing milliseconds, summed). Counted with the other
batched counters (observability/counters.py: one flush per interval), each
hash expiring after TIMELINE_TTL: at most a day of minutes is ever kept.
"""

from __future__ import annotations

import time

from summaries.core.outcomes import HIT, JOINED, KNOWN_FAILURE, MISS, NEAR
from summaries.infra import cache

TIMELINE_PREFIX = "metrics:m:"
TIMELINE_TTL = 24 * 3600
TIMELINE_MAX_MINUTES = TIMELINE_TTL // 60
TIMELINE_FIELDS = (HIT, MISS, JOINED, NEAR, KNOWN_FAILURE, "completed", "failed", "ms")


def minute_key(now: float) -> str:
    """The hash of the minute holding epoch second ``now``."""
    return f"{TIMELINE_PREFIX}{int(now // 60)}"


def read(minutes: int) -> list[dict[str, int]]:
    """The last ``minutes`` minutes as Valkey has them, oldest first, each
    ``{"minute": epoch seconds, <field>: count ...}`` (zeros where nothing
    happened). Raises redis.RedisError when Valkey is down."""
    minutes = max(1, min(minutes, TIMELINE_MAX_MINUTES))
    now = int(time.time() // 60)
    span = range(now - minutes + 1, now + 1)
    pipe = cache.client().pipeline(transaction=False)
    for minute in span:
        pipe.hgetall(f"{TIMELINE_PREFIX}{minute}")
    rows = []
    for minute, counts in zip(span, pipe.execute(), strict=True):
        row = {"minute": minute * 60}
        row.update({name: int(counts.get(name, 0)) for name in TIMELINE_FIELDS})
        rows.append(row)
    return rows
