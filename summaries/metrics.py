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
- ``known_failures``: submits of a URL that failed to fetch moments ago,
  answered with that failure (no summary; not a hit).
- ``completed_jobs`` / ``failed_jobs``: jobs whose current state is that.
- ``failure_rate``: failed / (completed + failed).
- ``avg_processing_time_ms``: mean duration of the completed jobs' last attempt.
- ``queue_size``: jobs waiting for a worker (pending).
"""

from __future__ import annotations

from typing import TypedDict

from django.db.models import Avg, Count, Q

from summaries import cache
from summaries.models import Job

REQUESTS = "metrics:total_requests"
HIT, MISS, KNOWN_FAILURE = "hit", "miss", "known_failure"
_COUNTERS = {HIT: "metrics:cache_hits", MISS: "metrics:cache_misses",
             KNOWN_FAILURE: "metrics:known_failures"}


class Snapshot(TypedDict):
    total_requests: int
    cache_hits: int
    cache_misses: int
    known_failures: int
    failed_jobs: int
    completed_jobs: int
    queue_size: int
    avg_processing_time_ms: float
    failure_rate: float


def record_request(outcome: str) -> None:
    """Count one accepted submit answered as ``outcome`` (HIT, MISS, KNOWN_FAILURE)."""
    pipe = cache.client().pipeline(transaction=False)
    pipe.incr(REQUESTS)
    pipe.incr(_COUNTERS[outcome])
    pipe.execute()


def snapshot() -> Snapshot:
    requests, hits, misses, known = (
        int(value or 0)
        for value in cache.client().mget([REQUESTS, *_COUNTERS.values()])
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
        known_failures=known,
        failed_jobs=failed,
        completed_jobs=completed,
        queue_size=int(jobs["pending"]),
        avg_processing_time_ms=round(float(jobs["avg_ms"] or 0.0), 1),
        failure_rate=round(failed / finished, 4) if finished else 0.0,
    )
