"""Analytics counters, kept in Valkey (``metrics:*``) so that every API and
worker process adds to the same numbers."""

from __future__ import annotations

from typing import TypedDict

from summaries import cache

REQUESTS = "metrics:total_requests"
HITS = "metrics:cache_hits"
MISSES = "metrics:cache_misses"
COMPLETED = "metrics:completed_jobs"
FAILED = "metrics:failed_jobs"
PROCESSING_MS = "metrics:processing_ms_total"


class Snapshot(TypedDict):
    total_requests: int
    cache_hits: int
    cache_misses: int
    failed_jobs: int
    completed_jobs: int
    avg_processing_time_ms: float
    failure_rate: float


def record_request(*, hit: bool) -> None:
    pipe = cache.client().pipeline(transaction=False)
    pipe.incr(REQUESTS)
    pipe.incr(HITS if hit else MISSES)
    pipe.execute()


def record_completed(*, duration_ms: int) -> None:
    pipe = cache.client().pipeline(transaction=False)
    pipe.incr(COMPLETED)
    pipe.incrby(PROCESSING_MS, duration_ms)
    pipe.execute()


def record_failed() -> None:
    cache.client().incr(FAILED)


def snapshot() -> Snapshot:
    keys = [REQUESTS, HITS, MISSES, COMPLETED, FAILED, PROCESSING_MS]
    requests, hits, misses, completed, failed, processing_ms = (
        int(value or 0) for value in cache.client().mget(keys)
    )
    finished = completed + failed
    return Snapshot(
        total_requests=requests,
        cache_hits=hits,
        cache_misses=misses,
        failed_jobs=failed,
        completed_jobs=completed,
        avg_processing_time_ms=round(processing_ms / completed, 1) if completed else 0.0,
        failure_rate=round(failed / finished, 4) if finished else 0.0,
    )
