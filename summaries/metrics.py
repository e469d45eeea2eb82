"""Analytics: what /api/analytics reports, each figure defined once here.

Request figures are counters in Valkey (``metrics:*``), so every API process
adds to the same numbers. Job figures are read from the job table, the
source of truth, so they describe the jobs' current states: a failed job
retried from the dead-letter queue that then completes counts as completed,
not as failed too.

- ``total_requests``: accepted submits (valid input; rejected ones are not
  counted) = ``cache_hits`` + ``cache_misses`` + ``known_failures``.
- ``cache_hits``: submits answered at once with a summary (cache, or the
  completed job row when the cache had lost it).
- ``cache_misses``: submits that started a job or joined one in flight.
- ``joined``: of those, the ones that joined a job already in flight (dedup).
- ``known_failures``: submits of a URL that failed to fetch moments ago,
  answered with that failure (no summary; not a hit).
- ``completed_jobs`` / ``failed_jobs``: jobs whose current state is that.
- ``failure_rate``: failed / (completed + failed).
- ``avg_processing_time_ms``: mean duration of the completed jobs' last attempt.
- ``queue_size``: jobs waiting for a worker (pending).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from typing import TypedDict

from django.conf import settings
from django.db.models import Avg, Count, Q
from redis.exceptions import RedisError

from summaries import background, cache
from summaries.models import Job

REQUESTS = "metrics:total_requests"
HITS, MISSES, JOINS = "metrics:cache_hits", "metrics:cache_misses", "metrics:joined"
KNOWN_FAILURES = "metrics:known_failures"
# A submit's outcome, and the counters it adds one to (besides REQUESTS).
HIT, MISS, JOINED, KNOWN_FAILURE = "hit", "miss", "joined", "known_failure"
_COUNTERS = {HIT: (HITS,), MISS: (MISSES,), JOINED: (MISSES, JOINS),
             KNOWN_FAILURE: (KNOWN_FAILURES,)}


_lock = threading.Lock()
_pending: Counter[str] = Counter()


class Snapshot(TypedDict):
    total_requests: int
    cache_hits: int
    cache_misses: int
    joined: int
    known_failures: int
    failed_jobs: int
    completed_jobs: int
    queue_size: int
    avg_processing_time_ms: float
    failure_rate: float


def record_request(outcome: str) -> None:
    """Count one accepted submit answered as ``outcome`` (HIT, MISS, JOINED, KNOWN_FAILURE).

    Counted in this process and added to Valkey every METRICS_FLUSH_SECONDS
    by a background thread (one round trip per interval, not per request).
    """
    _ensure_flusher()
    with _lock:
        _pending[REQUESTS] += 1
        for counter in _COUNTERS[outcome]:
            _pending[counter] += 1


def flush() -> None:
    """Add this process's pending counts to Valkey; kept for the next try if
    Valkey is down (raises redis.RedisError then)."""
    with _lock:
        counts = dict(_pending)
        _pending.clear()
    if not counts:
        return
    try:
        pipe = cache.client().pipeline(transaction=False)
        for name, count in counts.items():
            pipe.incrby(name, count)
        pipe.execute()
    except RedisError:
        with _lock:
            _pending.update(counts)
        raise


def discard_local() -> None:
    """Forget this process's unflushed counts (tests start from zero)."""
    with _lock:
        _pending.clear()


def _ensure_flusher() -> None:
    # A parent's counts are the parent's to flush: a new process starts at zero.
    background.start_once("metrics-flush", _flush_forever, on_start=discard_local)


def _flush_forever() -> None:
    while True:
        time.sleep(settings.METRICS_FLUSH_SECONDS)
        with contextlib.suppress(RedisError):
            flush()


def snapshot() -> Snapshot:
    """The figures now (this process's pending counts included; other API
    processes' counts are at most METRICS_FLUSH_SECONDS behind)."""
    flush()
    requests, hits, misses, joined, known = (
        int(value or 0)
        for value in cache.client().mget([REQUESTS, HITS, MISSES, JOINS, KNOWN_FAILURES])
    )
    jobs = Job.objects.aggregate(
        completed=Count("id", filter=Q(status=Job.Status.COMPLETED)),
        failed=Count("id", filter=Q(status=Job.Status.FAILED)),
        pending=Count("id", filter=Q(status=Job.Status.PENDING)),
        avg_ms=Avg("duration_ms", filter=Q(status=Job.Status.COMPLETED)),
    )
    completed, failed = int(jobs["completed"]), int(jobs["failed"])
    finished = completed + failed
    return Snapshot(
        total_requests=requests,
        cache_hits=hits,
        cache_misses=misses,
        joined=joined,
        known_failures=known,
        failed_jobs=failed,
        completed_jobs=completed,
        queue_size=int(jobs["pending"]),
        avg_processing_time_ms=round(float(jobs["avg_ms"] or 0.0), 1),
        failure_rate=round(failed / finished, 4) if finished else 0.0,
    )
