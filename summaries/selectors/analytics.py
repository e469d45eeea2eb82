"""Analytics: what /api/analytics reports, each figure defined once here
(the counters it reads are defined in observability/counters.py).

Request figures are counters in Valkey (``metrics:*``), so every API process
adds to the same numbers. Job figures are read from the job table, the
source of truth, so they describe the jobs' current states: a failed job
retried from the dead-letter queue that then completes counts as completed,
not as failed too.

- ``total_requests``: accepted submits (valid input; rejected ones are not
  counted) = ``cache_hits`` + ``cache_misses`` + ``known_failures`` +
  ``near_duplicates``.
- ``cache_hits``: submits answered at once with a summary (cache, or the
  completed job row when the cache had lost it).
- ``cache_misses``: submits that started a job or joined one in flight.
- ``joined``: of those, the ones that joined a job already in flight (dedup).
- ``known_failures``: submits of a URL that failed to fetch moments ago,
  answered with that failure (no summary; not a hit).
- ``near_duplicates``: submits of a text answered at once with a
  near-duplicate's summary (X-Cache NEAR; services/near_duplicates.py).
- ``near_duplicate_jobs``: jobs completed with a near-duplicate's summary
  (those submits' own jobs, and URL jobs whose article was one).
- ``completed_jobs`` / ``failed_jobs``: jobs whose current state is that.
- ``failure_rate``: failed / (completed + failed).
- ``avg_processing_time_ms``: mean duration of the completed jobs' last attempt.
- ``queue_size``: jobs waiting for a worker (pending).
- ``hit_ratio``: cache_hits / (cache_hits + cache_misses).
- ``p50/p95_processing_time_ms``: over the last RECENT_JOBS completed jobs.
- ``ai_calls_saved`` / ``ai_tokens_saved`` / ``ai_cost_saved``: AI calls a
  hit (cache), a join (dedup) or a near-duplicate (near) made unnecessary, their estimated tokens
  (``core.tokens.estimate_tokens`` of the input, OUTPUT_TOKENS_PER_CALL out)
  and those tokens at AI_PRICE_PER_1K_INPUT / AI_PRICE_PER_1K_OUTPUT.
- ``capacity``: Little's law, L = λW: λ = jobs created per second over the
  last WINDOW_MINUTES, W = mean processing time of the recent completed
  jobs; L is the mean number of jobs in service, so the recommended worker
  threads are L / TARGET_UTILIZATION (rounded up), in processes of
  WORKER_CONCURRENCY threads (selectors/capacity.py).
"""

from __future__ import annotations

from typing import TypedDict

from django.db.models import Avg, Count, Q

from summaries.infra import cache
from summaries.models import Job
from summaries.observability import counters
from summaries.selectors.capacity import Capacity, capacity, percentile

# The recent jobs p50/p95 and capacity's W are taken over.
RECENT_JOBS = 1000


class Snapshot(TypedDict):
    total_requests: int
    cache_hits: int
    cache_misses: int
    joined: int
    known_failures: int
    near_duplicates: int
    near_duplicate_jobs: int
    failed_jobs: int
    completed_jobs: int
    queue_size: int
    avg_processing_time_ms: float
    failure_rate: float
    hit_ratio: float
    p50_processing_time_ms: float
    p95_processing_time_ms: float
    ai_calls_saved: int
    ai_tokens_saved: int
    ai_cost_saved: float
    capacity: Capacity


def snapshot() -> Snapshot:
    """The figures now (this process's pending counts included; other API
    processes' counts are at most METRICS_FLUSH_SECONDS behind)."""
    counters.flush()
    pipe = cache.client().pipeline(transaction=False)
    pipe.mget([counters.REQUESTS, counters.HITS, counters.MISSES, counters.JOINS,
               counters.KNOWN_FAILURES, counters.NEAR_DUPLICATES])
    pipe.hgetall(f"metrics:c:{counters.CALLS_SAVED}")
    pipe.hgetall(f"metrics:c:{counters.TOKENS_SAVED}")
    plain, calls_saved, tokens_saved = pipe.execute()
    requests, hits, misses, joined, known, near = (int(value or 0) for value in plain)
    jobs = Job.objects.aggregate(
        completed=Count("id", filter=Q(status=Job.Status.COMPLETED)),
        failed=Count("id", filter=Q(status=Job.Status.FAILED)),
        pending=Count("id", filter=Q(status=Job.Status.PENDING)),
        near=Count("id", filter=Q(status=Job.Status.COMPLETED,
                                  near_duplicate_of__isnull=False)),
        avg_ms=Avg("duration_ms", filter=Q(status=Job.Status.COMPLETED)),
    )
    completed, failed = int(jobs["completed"]), int(jobs["failed"])
    finished = completed + failed
    durations = sorted(
        int(ms or 0) for ms in
        Job.objects.filter(status=Job.Status.COMPLETED, duration_ms__isnull=False)
        .order_by("-completed_at").values_list("duration_ms", flat=True)[:RECENT_JOBS])
    return Snapshot(
        total_requests=requests,
        cache_hits=hits,
        cache_misses=misses,
        joined=joined,
        known_failures=known,
        near_duplicates=near,
        near_duplicate_jobs=int(jobs["near"]),
        failed_jobs=failed,
        completed_jobs=completed,
        queue_size=int(jobs["pending"]),
        avg_processing_time_ms=round(float(jobs["avg_ms"] or 0.0), 1),
        failure_rate=round(failed / finished, 4) if finished else 0.0,
        hit_ratio=round(hits / (hits + misses), 4) if hits + misses else 0.0,
        p50_processing_time_ms=float(percentile(durations, 50)),
        p95_processing_time_ms=float(percentile(durations, 95)),
        ai_calls_saved=sum(int(float(v)) for v in calls_saved.values()),
        ai_tokens_saved=sum(int(float(v)) for v in tokens_saved.values()),
        ai_cost_saved=round(sum(counters.costs(tokens_saved).values()), 6),
        capacity=capacity(durations),
    )
