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
- ``hit_ratio``: cache_hits / (cache_hits + cache_misses).
- ``p50/p95_processing_time_ms``: over the last RECENT_JOBS completed jobs.
- ``ai_calls_saved`` / ``ai_tokens_saved`` / ``ai_cost_saved``: AI calls a
  hit (cache) or a join (dedup) made unnecessary, their estimated tokens
  (``ai_quota.estimate_tokens`` of the input, OUTPUT_TOKENS_PER_CALL out) and
  those tokens at AI_PRICE_PER_1K_INPUT / AI_PRICE_PER_1K_OUTPUT.
- ``capacity``: Little's law, L = λW: λ = jobs created per second over the
  last WINDOW_MINUTES, W = mean processing time of the recent completed
  jobs; L is the mean number of jobs in service, so the recommended worker
  threads are L / TARGET_UTILIZATION (rounded up), in processes of
  WORKER_CONCURRENCY threads.

Prometheus (``/metrics``, rendered by ``collector``) reads the same shared
state at scrape time, so one scrape sees every API and worker process:
labelled counters are Valkey hashes ``metrics:c:<name>`` (field = the JSON
list of label values), the processing-time histogram is ``metrics:h:<name>``
(one field per label set and bucket, plus ``sum`` and ``count``), and each
worker process keeps a ``heartbeat:worker:<host>:<pid>`` key alive while it
runs. Each process adds its counts to Valkey every METRICS_FLUSH_SECONDS.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import socket
import threading
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db.models import Avg, Count, Q
from django.utils import timezone
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from redis.exceptions import RedisError

from summaries.core.outcomes import HIT, JOINED, KNOWN_FAILURE, MISS, REJECTED
from summaries.infra import background, cache, queues
from summaries.models import Job
from summaries.services.ai_quota import estimate_tokens

if TYPE_CHECKING:
    from summaries.providers import Provider, SummaryResult
    from summaries.services.pipeline import Outcome

REQUESTS = "metrics:total_requests"
HITS, MISSES, JOINS = "metrics:cache_hits", "metrics:cache_misses", "metrics:joined"
KNOWN_FAILURES = "metrics:known_failures"
# The counters a submit's outcome adds one to (besides REQUESTS).
_COUNTERS: dict[str, tuple[str, ...]] = {HIT: (HITS,), MISS: (MISSES,), JOINED: (MISSES, JOINS),
             KNOWN_FAILURE: (KNOWN_FAILURES,)}

# Labelled counters: name -> (help, label names). Exposed as smartcache_<name>_total.
HTTP_REQUESTS = "http_requests"
SUBMISSIONS = "submissions"
JOBS_FINISHED = "jobs_finished"
AI_CALLS = "gen_ai_client_calls"
AI_TOKENS = "gen_ai_client_token_usage"
CALLS_SAVED = "ai_calls_saved"
TOKENS_SAVED = "ai_tokens_saved"
LABELLED: dict[str, tuple[str, tuple[str, ...]]] = {
    HTTP_REQUESTS: ("HTTP requests answered, by view (URL name), method and status "
                    "(/metrics itself not counted).", ("view", "method", "status")),
    SUBMISSIONS: ("Submitted inputs by outcome: hit, miss, joined (an in-flight job), "
                  "known_failure (a URL that failed moments ago), rejected (400/413).",
                  ("outcome",)),
    JOBS_FINISHED: ("Jobs that ended, by status (completed, failed) and error code.",
                    ("status", "error_code")),
    AI_CALLS: ("Answered AI calls (a batch of inputs is one call; a re-ask after a broken "
               "answer is not counted).", ("provider", "model")),
    AI_TOKENS: ("AI tokens by type (input, output), ESTIMATED from the text lengths "
                "(ai_quota.estimate_tokens; the provider's usage report is not read).",
                ("provider", "model", "token_type")),
    CALLS_SAVED: ("AI calls made unnecessary: by the cache (a hit) or by dedup (a submit "
                  "that joined the job already running for its input).", ("by",)),
    TOKENS_SAVED: ("AI tokens saved (ESTIMATED: input from the input's length, "
                   "a URL's page unknown at submit counts the prompt only; output "
                   "OUTPUT_TOKENS_PER_CALL a call).", ("by", "token_type")),
}
PROCESSING = "processing_seconds"
PROCESSING_HELP = ("Time per job stage (fetching, extracting, summarizing ...) and per "
                   "job (stage=total: the completed attempt).")
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, math.inf)
# A summary's JSON answer: 2-3 sentences and a few tags.
OUTPUT_TOKENS_PER_CALL = 120

HEARTBEAT_PREFIX = "heartbeat:worker:"
HEARTBEAT_SECONDS = 5.0
HEARTBEAT_TTL = 15  # three missed beats: the worker is gone

# Analytics: the recent jobs p50/p95 and W are taken over, and λ's window.
RECENT_JOBS = 1000
WINDOW_MINUTES = 15
TARGET_UTILIZATION = 0.7  # headroom for bursts: threads busy 70% of the time

_lock = threading.Lock()
_pending: Counter[str] = Counter()
# (Valkey hash, field) -> amount, for labelled counters and the histogram
# (whole numbers; the histogram's sums apart: HINCRBY refuses a float field).
_pending_fields: Counter[tuple[str, str]] = Counter()
_pending_sums: defaultdict[tuple[str, str], float] = defaultdict(float)
# (job id, attempt) -> (stage, monotonic start); bounded (a retried job's
# attempt may end in another process and never be closed here).
_stages: OrderedDict[tuple[str, int], tuple[str, float]] = OrderedDict()
_MAX_STAGES = 10_000


class Capacity(TypedDict):
    window_minutes: int
    arrival_rate_per_s: float
    mean_processing_time_s: float
    jobs_in_service: float
    target_utilization: float
    threads_per_process: int
    recommended_threads: int
    recommended_processes: int


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
    hit_ratio: float
    p50_processing_time_ms: float
    p95_processing_time_ms: float
    ai_calls_saved: int
    ai_tokens_saved: int
    ai_cost_saved: float
    capacity: Capacity


# --- recording (any process) ---------------------------------------------------

def record_request(outcome: str, *, text: str = "") -> None:
    """Count one accepted submit answered as ``outcome`` (HIT, MISS, JOINED,
    KNOWN_FAILURE); ``text``, the input (empty for a URL), sizes the tokens a
    hit or a join saved.

    Counted in this process and added to Valkey every METRICS_FLUSH_SECONDS
    by a background thread (one round trip per interval, not per request).
    """
    _ensure_flusher()
    with _lock:
        _pending[REQUESTS] += 1
        for counter in _COUNTERS[outcome]:
            _pending[counter] += 1
    _add(SUBMISSIONS, outcome)
    _per_minute(outcome)
    if outcome in (HIT, JOINED):
        _saved("cache" if outcome == HIT else "dedup", text)


def record_rejected() -> None:
    """Count one submitted input refused as invalid or too large."""
    _add(SUBMISSIONS, REJECTED)


# The label values a client can choose: a method outside this set (gunicorn
# takes any token) and a status outside HTTP's range count as "other", so no
# request adds a series of its own to a hash that never expires.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
                          "TRACE", "CONNECT"})
OTHER = "other"


def record_http(view: str, method: str, status: int) -> None:
    """One answer by ``view`` (a URL name or route: the URLconf bounds them)."""
    _add(HTTP_REQUESTS, view, method if method in HTTP_METHODS else OTHER,
         str(status) if 100 <= status <= 599 else OTHER)


def record_ai_call(provider: Provider, inputs: Sequence[str],
                   outputs: Sequence[SummaryResult]) -> None:
    """One answered AI call for ``inputs`` (several: a batch) that gave ``outputs``."""
    labels = (provider.name, provider.model)
    _add(AI_CALLS, *labels)
    _add(AI_TOKENS, *labels, "input", amount=sum(estimate_tokens(text) for text in inputs))
    _add(AI_TOKENS, *labels, "output", amount=sum(_output_tokens(out) for out in outputs))


def stage_started(job: Job, stage: str) -> None:
    """The job's current attempt entered ``stage``: the previous stage ends now."""
    key, now = (str(job.id), job.attempts), time.monotonic()
    with _lock:
        previous = _stages.pop(key, None)
        _stages[key] = previous if previous and previous[0] == stage else (stage, now)
        while len(_stages) > _MAX_STAGES:
            _stages.popitem(last=False)
    if previous and previous[0] != stage:
        observe(previous[0], now - previous[1])


def job_completed(job: Job, outcome: Outcome, *, duration_ms: int) -> None:
    """The job completed; a result found in the cache by the worker saved a call."""
    _add(JOBS_FINISHED, "completed", "")
    _per_minute("completed", ms=duration_ms)
    _end_stage(job)
    observe("total", duration_ms / 1000)
    if outcome.cached:
        _saved("cache", outcome.extracted_text or job.input_text)


def job_failed(job: Job, code: str) -> None:
    _add(JOBS_FINISHED, "failed", code)
    _per_minute("failed")
    _end_stage(job)


def observe(stage: str, seconds: float) -> None:
    """One observation of the processing-time histogram."""
    bucket = next(b for b in BUCKETS if seconds <= b)
    key = f"metrics:h:{PROCESSING}"
    _ensure_flusher()
    with _lock:
        _pending_fields[(key, _field(stage, _le(bucket)))] += 1
        _pending_sums[(key, _field(stage, "sum"))] += seconds
        _pending_fields[(key, _field(stage, "count"))] += 1


def _end_stage(job: Job) -> None:
    with _lock:
        current = _stages.pop((str(job.id), job.attempts), None)
    if current:
        observe(current[0], time.monotonic() - current[1])


def _saved(by: str, text: str) -> None:
    _add(CALLS_SAVED, by)
    _add(TOKENS_SAVED, by, "input", amount=estimate_tokens(text))
    _add(TOKENS_SAVED, by, "output", amount=OUTPUT_TOKENS_PER_CALL)


def _output_tokens(result: SummaryResult) -> int:
    return estimate_tokens(result.summary + " ".join(result.tags)) - estimate_tokens("")


def _le(bound: float) -> str:
    """A bucket's upper bound as Prometheus writes it ("0.5", "1.0", "+Inf")."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


# Label sets are few (views, statuses, outcomes, stages, codes): each is
# encoded once, not on every count.
@functools.lru_cache(maxsize=4096)
def _field(*labels: str) -> str:
    return json.dumps(labels)


def _add(name: str, *labels: str, amount: int = 1) -> None:
    _ensure_flusher()
    with _lock:
        _pending_fields[(f"metrics:c:{name}", _field(*labels))] += amount


def flush() -> None:
    """Add this process's pending counts to Valkey; kept for the next try if
    Valkey is down (raises redis.RedisError then)."""
    with _lock:
        counts, fields, sums = dict(_pending), dict(_pending_fields), dict(_pending_sums)
        _pending.clear()
        _pending_fields.clear()
        _pending_sums.clear()
    if not counts and not fields and not sums:
        return
    try:
        pipe = cache.client().pipeline(transaction=False)
        for name, count in counts.items():
            pipe.incrby(name, count)
        for (key, field), amount in fields.items():
            pipe.hincrby(key, field, amount)
        for (key, field), total in sums.items():
            pipe.hincrbyfloat(key, field, total)
        for key in {key for key, _ in fields if key.startswith(TIMELINE_PREFIX)}:
            pipe.expire(key, TIMELINE_TTL)  # bounded: a minute's hash lives a day
        pipe.execute()
    except RedisError:
        with _lock:
            _pending.update(counts)
            _pending_fields.update(fields)
            for place, total in sums.items():
                _pending_sums[place] += total
        raise


def discard_local() -> None:
    """Forget this process's unflushed counts (tests start from zero)."""
    with _lock:
        _pending.clear()
        _pending_fields.clear()
        _pending_sums.clear()
        _stages.clear()


def _ensure_flusher() -> None:
    # A parent's counts are the parent's to flush: a new process starts at zero.
    background.start_once("metrics-flush", _flush_forever, on_start=discard_local)


def _flush_forever() -> None:
    while True:
        time.sleep(settings.METRICS_FLUSH_SECONDS)
        with contextlib.suppress(RedisError):
            flush()


# --- per-minute timeline (the web page's charts) ---------------------------------
# A hash per minute, ``metrics:m:<epoch minute>``: fields hit, miss, joined,
# known_failure (submits by outcome), completed, failed (jobs), ms (the
# completed jobs' processing milliseconds, summed). Counted with the other
# batched counters (one flush per interval), each hash expiring after
# TIMELINE_TTL: at most a day of minutes is ever kept.
TIMELINE_PREFIX = "metrics:m:"
TIMELINE_TTL = 24 * 3600
TIMELINE_MAX_MINUTES = TIMELINE_TTL // 60
TIMELINE_FIELDS = (HIT, MISS, JOINED, KNOWN_FAILURE, "completed", "failed", "ms")


def _per_minute(field: str, *, ms: int = 0) -> None:
    key = f"{TIMELINE_PREFIX}{int(time.time() // 60)}"
    _ensure_flusher()
    with _lock:
        _pending_fields[(key, field)] += 1
        if ms:
            _pending_fields[(key, "ms")] += ms


def timeline(minutes: int) -> list[dict[str, int]]:
    """The last ``minutes`` minutes, oldest first, each ``{"minute": epoch
    seconds, <field>: count ...}`` (zeros where nothing happened).
    Raises redis.RedisError when Valkey is down."""
    flush()
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


# --- workers online ------------------------------------------------------------

def start_heartbeat(hostname: str) -> None:
    """Keep ``heartbeat:worker:<hostname>:<pid>`` alive while this process runs
    (written now, then every HEARTBEAT_SECONDS; it expires HEARTBEAT_TTL after
    the last beat). Cheaper and faster than asking workers over the broker."""
    key = f"{HEARTBEAT_PREFIX}{hostname}:{os.getpid()}"
    _beat(key)
    background.start_once("worker-heartbeat", lambda: _beat_forever(key))


def stop_heartbeat(hostname: str) -> None:
    with contextlib.suppress(RedisError):
        cache.client().delete(f"{HEARTBEAT_PREFIX}{hostname}:{os.getpid()}")


def workers_online() -> int:
    return sum(1 for _ in cache.client().scan_iter(match=f"{HEARTBEAT_PREFIX}*", count=1000))


def _beat(key: str) -> None:
    with contextlib.suppress(RedisError):
        cache.client().set(key, "1", ex=HEARTBEAT_TTL)


def _beat_forever(key: str) -> None:
    while True:
        time.sleep(HEARTBEAT_SECONDS)
        _beat(key)


@worker_ready.connect
def _on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
    start_heartbeat(getattr(sender, "hostname", None) or socket.gethostname())


@worker_shutdown.connect
def _on_worker_shutdown(sender: Any = None, **kwargs: Any) -> None:
    stop_heartbeat(getattr(sender, "hostname", None) or socket.gethostname())


# --- Prometheus ----------------------------------------------------------------

class ValkeyCollector:
    """Renders the shared counters, queue depths and heartbeats at scrape time."""

    def collect(self) -> Iterator[Metric]:
        flush()
        client = cache.client()
        pipe = client.pipeline(transaction=False)
        for name in LABELLED:
            pipe.hgetall(f"metrics:c:{name}")
        pipe.hgetall(f"metrics:h:{PROCESSING}")
        *counters, histogram = pipe.execute()
        values = dict(zip(LABELLED, counters, strict=True))
        for name, (doc, labels) in LABELLED.items():
            family = CounterMetricFamily(f"smartcache_{name}", doc, labels=labels)
            for field, value in sorted(values[name].items()):
                family.add_metric(json.loads(field), float(value))
            yield family
        yield _cost_saved(values[TOKENS_SAVED])
        yield _histogram(histogram)
        depth = GaugeMetricFamily("smartcache_queue_depth",
                                  "Messages waiting in each queue (lane), not yet taken.",
                                  labels=("queue",))
        for lane in queues.LANES:
            depth.add_metric([lane], queues.depth(lane))
        yield depth
        yield GaugeMetricFamily("smartcache_workers_online",
                                "Worker processes whose heartbeat is fresh.",
                                value=workers_online())


def _cost_saved(tokens: dict[str, str]) -> Metric:
    family = CounterMetricFamily(
        "smartcache_ai_cost_saved", "Estimated cost of the AI tokens saved, at "
        "AI_PRICE_PER_1K_INPUT / AI_PRICE_PER_1K_OUTPUT.", labels=("by",))
    for by, cost in sorted(_costs(tokens).items()):
        family.add_metric([by], cost)
    return family


def _costs(tokens: dict[str, str]) -> dict[str, float]:
    """Cost saved per saver ("cache", "dedup") from the TOKENS_SAVED hash."""
    price = {"input": float(settings.AI_PRICE_PER_1K_INPUT) / 1000,
             "output": float(settings.AI_PRICE_PER_1K_OUTPUT) / 1000}
    costs: defaultdict[str, float] = defaultdict(float)
    for field, value in tokens.items():
        by, token_type = json.loads(field)
        costs[by] += float(value) * price.get(token_type, 0.0)
    return dict(costs)


def _histogram(fields: dict[str, str]) -> Metric:
    family = HistogramMetricFamily(f"smartcache_{PROCESSING}", PROCESSING_HELP,
                                   labels=("stage",))
    per_stage: dict[str, dict[str, float]] = {}
    for field, value in fields.items():
        stage, part = json.loads(field)
        per_stage.setdefault(stage, {})[part] = float(value)
    for stage, parts in sorted(per_stage.items()):
        running, buckets = 0.0, []
        for bound in BUCKETS:  # stored per bucket; Prometheus wants them cumulative
            le = _le(bound)
            running += parts.get(le, 0.0)
            buckets.append((le, running))
        family.add_metric([stage], buckets, sum_value=parts.get("sum", 0.0))
    return family


_registry: CollectorRegistry | None = None


def exposition(accept: str | None) -> tuple[bytes, str]:
    """The metrics in the format ``accept`` asks for (text or OpenMetrics),
    and its content type. Raises redis.RedisError when Valkey is down."""
    global _registry
    if _registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ValkeyCollector())
        _registry = registry
    encoder, content_type = choose_encoder(accept or "")
    return encoder(_registry), content_type


# --- analytics -----------------------------------------------------------------

def snapshot() -> Snapshot:
    """The figures now (this process's pending counts included; other API
    processes' counts are at most METRICS_FLUSH_SECONDS behind)."""
    flush()
    pipe = cache.client().pipeline(transaction=False)
    pipe.mget([REQUESTS, HITS, MISSES, JOINS, KNOWN_FAILURES])
    pipe.hgetall(f"metrics:c:{CALLS_SAVED}")
    pipe.hgetall(f"metrics:c:{TOKENS_SAVED}")
    plain, calls_saved, tokens_saved = pipe.execute()
    requests, hits, misses, joined, known = (int(value or 0) for value in plain)
    jobs = Job.objects.aggregate(
        completed=Count("id", filter=Q(status=Job.Status.COMPLETED)),
        failed=Count("id", filter=Q(status=Job.Status.FAILED)),
        pending=Count("id", filter=Q(status=Job.Status.PENDING)),
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
        ai_cost_saved=round(sum(_costs(tokens_saved).values()), 6),
        capacity=capacity(durations),
    )


def percentile(ordered: Sequence[int], p: float) -> int:
    """The nearest-rank ``p``th percentile of ascending ``ordered`` (0 if empty)."""
    if not ordered:
        return 0
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def capacity(durations_ms: Sequence[int]) -> Capacity:
    """Worker threads the recent load needs, by Little's law (L = λW)."""
    since = timezone.now() - timedelta(minutes=WINDOW_MINUTES)
    arrivals = Job.objects.filter(created_at__gte=since).count()
    rate = arrivals / (WINDOW_MINUTES * 60)
    service_s = sum(durations_ms) / len(durations_ms) / 1000 if durations_ms else 0.0
    in_service = rate * service_s
    per_process = int(settings.CELERY_WORKER_CONCURRENCY)
    threads = max(1, math.ceil(in_service / TARGET_UTILIZATION))
    return Capacity(
        window_minutes=WINDOW_MINUTES,
        arrival_rate_per_s=round(rate, 4),
        mean_processing_time_s=round(service_s, 3),
        jobs_in_service=round(in_service, 3),
        target_utilization=TARGET_UTILIZATION,
        threads_per_process=per_process,
        recommended_threads=threads,
        recommended_processes=max(1, math.ceil(threads / per_process)),
    )
