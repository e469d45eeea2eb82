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
- ``ai_spent``: the AI calls answered, their tokens (input, output, and how
  many of them estimated because the provider reported none) and what they
  cost in USD (every job's cost, services/costs.py: the reported tokens at
  AI_PRICE_INPUT_PER_MTOK / AI_PRICE_OUTPUT_PER_MTOK, less the batch
  discount through the provider's batch API).
- ``ai_saved``: by cause (``cache``: hits, which save what their summary
  cost when it was made; ``dedup``: joins of a job in flight, which save
  what that job cost, counted when it completes; ``near``: near-duplicates
  answered with an earlier summary; ``batch``: the batch API's discount,
  money only), the AI calls, tokens and USD saved.
- ``ai_calls_saved`` / ``ai_tokens_saved`` / ``ai_cost_saved``: their
  totals over every cause; ``ai_saved_share``: saved / (spent + saved), the
  share of what the same work would have cost without SmartCache.
- ``capacity``: Little's law, L = λW: λ = jobs created per second over the
  last WINDOW_MINUTES, W = mean processing time of the recent completed
  jobs; L is the mean number of jobs in service, so the recommended worker
  threads are L / TARGET_UTILIZATION (rounded up), in processes of
  WORKER_CONCURRENCY threads (selectors/capacity.py).
"""

from __future__ import annotations

import json
from typing import TypedDict

from django.db.models import Avg, Count, Q

from summaries.infra import cache
from summaries.models import Job
from summaries.observability import counters
from summaries.selectors.capacity import Capacity, capacity, percentile

# The recent jobs p50/p95 and capacity's W are taken over.
RECENT_JOBS = 1000


class Spent(TypedDict):
    calls: int
    input_tokens: int
    output_tokens: int
    estimated_tokens: int
    usd: float


class Saved(TypedDict):
    calls: int
    tokens: int
    usd: float


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
    ai_spent: Spent
    ai_saved: dict[str, Saved]
    ai_calls_saved: int
    ai_tokens_saved: int
    ai_cost_saved: float
    ai_saved_share: float
    capacity: Capacity


def snapshot() -> Snapshot:
    """The figures now (this process's pending counts included; other API
    processes' counts are at most METRICS_FLUSH_SECONDS behind)."""
    counters.flush()
    pipe = cache.client().pipeline(transaction=False)
    pipe.mget([counters.REQUESTS, counters.HITS, counters.MISSES, counters.JOINS,
               counters.KNOWN_FAILURES, counters.NEAR_DUPLICATES])
    for name in (counters.CALLS_SAVED, counters.TOKENS_SAVED, counters.COST_SAVED,
                 counters.AI_CALLS, counters.AI_TOKENS, counters.COST_SPENT):
        pipe.hgetall(f"metrics:c:{name}")
    plain, calls_saved, tokens_saved, cost_saved, calls, tokens, cost_spent = pipe.execute()
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
    saved = _saved(calls_saved, tokens_saved, cost_saved)
    spent = _spent(calls, tokens, cost_spent)
    saved_usd = round(sum(cause["usd"] for cause in saved.values()), 6)
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
        ai_spent=spent,
        ai_saved=saved,
        ai_calls_saved=sum(cause["calls"] for cause in saved.values()),
        ai_tokens_saved=sum(cause["tokens"] for cause in saved.values()),
        ai_cost_saved=saved_usd,
        ai_saved_share=round(saved_usd / (saved_usd + spent["usd"]), 4)
        if saved_usd + spent["usd"] > 0 else 0.0,
        capacity=capacity(durations),
    )


def _by(fields: dict[str, str], position: int = 0) -> dict[str, int]:
    """A counter hash summed by the label at ``position``."""
    totals: dict[str, int] = {}
    for field, value in fields.items():
        label = json.loads(field)[position]
        totals[label] = totals.get(label, 0) + int(float(value))
    return totals


def _saved(calls: dict[str, str], tokens: dict[str, str],
           money: dict[str, str]) -> dict[str, Saved]:
    """Per cause (every one of counters.SAVERS, 0 when nothing yet)."""
    call_counts, token_counts, micros = _by(calls), _by(tokens), _by(money)
    return {by: Saved(calls=call_counts.get(by, 0), tokens=token_counts.get(by, 0),
                      usd=round(micros.get(by, 0) / 1_000_000, 6))
            for by in counters.SAVERS}


def _spent(calls: dict[str, str], tokens: dict[str, str], money: dict[str, str]) -> Spent:
    by_type, by_source = _by(tokens, 2), _by(tokens, 3)
    return Spent(calls=sum(int(float(v)) for v in calls.values()),
                 input_tokens=by_type.get("input", 0), output_tokens=by_type.get("output", 0),
                 estimated_tokens=by_source.get("estimated", 0),
                 usd=round(sum(int(v) for v in money.values()) / 1_000_000, 6))
