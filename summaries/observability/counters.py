"""Counters: what every process counts, batched here and added to Valkey.

Request figures are counters in Valkey (``metrics:*``), so every API process
adds to the same numbers: labelled counters are hashes ``metrics:c:<name>``
(field = the JSON list of label values), the processing-time histogram is
``metrics:h:<name>`` (one field per label set and bucket, plus ``sum`` and
``count``), the per-minute timeline is observability/timeline.py's hashes.
Each process adds its counts to Valkey every METRICS_FLUSH_SECONDS (one round
trip per interval, not per request). Callers pass plain values (ids, codes,
token counts), never a Job or a pipeline outcome: this module sits below the
models.

What each figure means, as /api/analytics reports it: selectors/analytics.py.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import threading
import time
from collections import Counter, OrderedDict, defaultdict

from django.conf import settings
from redis.exceptions import RedisError

from summaries.core.outcomes import HIT, JOINED, KNOWN_FAILURE, MISS, NEAR, REJECTED
from summaries.core.tokens import estimate_tokens
from summaries.infra import cache, runtime
from summaries.observability import timeline

REQUESTS = "metrics:total_requests"
HITS, MISSES, JOINS = "metrics:cache_hits", "metrics:cache_misses", "metrics:joined"
KNOWN_FAILURES = "metrics:known_failures"
NEAR_DUPLICATES = "metrics:near_duplicates"
# The counters a submit's outcome adds one to (besides REQUESTS).
_COUNTERS: dict[str, tuple[str, ...]] = {HIT: (HITS,), MISS: (MISSES,), JOINED: (MISSES, JOINS),
             KNOWN_FAILURE: (KNOWN_FAILURES,), NEAR: (NEAR_DUPLICATES,)}
# What saved an AI call: the label ``by`` of CALLS_SAVED and TOKENS_SAVED.
SAVED_BY_OUTCOME: dict[str, str] = {HIT: "cache", JOINED: "dedup", NEAR: "near"}

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
                  "near (a text answered with a near-duplicate's summary), "
                  "known_failure (a URL that failed moments ago), rejected (400/413).",
                  ("outcome",)),
    JOBS_FINISHED: ("Jobs that ended, by status (completed, failed) and error code.",
                    ("status", "error_code")),
    AI_CALLS: ("Answered AI calls (a batch of inputs is one call; a re-ask after a broken "
               "answer is not counted).", ("provider", "model")),
    AI_TOKENS: ("AI tokens by type (input, output), ESTIMATED from the text lengths "
                "(ai_quota.estimate_tokens; the provider's usage report is not read).",
                ("provider", "model", "token_type")),
    CALLS_SAVED: ("AI calls made unnecessary: by the cache (a hit), by dedup (a submit "
                  "that joined the job already running for its input), or by near (a text "
                  "or page answered with a near-duplicate's summary).", ("by",)),
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

_MAX_STAGES = 10_000


class _Pending:
    """This process's counts not yet in Valkey (a slot of infra/runtime.py:
    a parent's counts are the parent's to flush, a new process starts at zero)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        # (Valkey hash, field) -> amount, for labelled counters and the histogram
        # (whole numbers; the histogram's sums apart: HINCRBY refuses a float field).
        self.fields: Counter[tuple[str, str]] = Counter()
        self.sums: defaultdict[tuple[str, str], float] = defaultdict(float)
        # (job id, attempt) -> (stage, monotonic start); bounded (a retried job's
        # attempt may end in another process and never be closed here).
        self.stages: OrderedDict[tuple[str, int], tuple[str, float]] = OrderedDict()


_PENDING = runtime.slot("counters", _Pending)


def record_request(outcome: str, *, text: str = "") -> None:
    """Count one accepted submit answered as ``outcome`` (HIT, MISS, JOINED,
    NEAR, KNOWN_FAILURE); ``text``, the input (empty for a URL), sizes the
    tokens a hit, a join or a near-duplicate saved.

    Counted in this process and added to Valkey every METRICS_FLUSH_SECONDS
    by a background thread (one round trip per interval, not per request).
    """
    _ensure_flusher()
    pending = _PENDING.get()
    with pending.lock:
        pending.counts[REQUESTS] += 1
        for counter in _COUNTERS[outcome]:
            pending.counts[counter] += 1
    _add(SUBMISSIONS, outcome)
    _per_minute(outcome)
    if (by := SAVED_BY_OUTCOME.get(outcome)) is not None:
        _saved(by, text)


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


def record_ai_call(provider: str, model: str, *, input_tokens: int, output_tokens: int) -> None:
    """One answered AI call (of one input or a batch) and its estimated tokens."""
    _add(AI_CALLS, provider, model)
    _add(AI_TOKENS, provider, model, "input", amount=input_tokens)
    _add(AI_TOKENS, provider, model, "output", amount=output_tokens)


def stage_started(job_id: str, attempt: int, stage: str) -> None:
    """Attempt ``attempt`` of the job entered ``stage``: the previous stage ends now."""
    key, now = (job_id, attempt), time.monotonic()
    pending = _PENDING.get()
    with pending.lock:
        previous = pending.stages.pop(key, None)
        pending.stages[key] = previous if previous and previous[0] == stage else (stage, now)
        while len(pending.stages) > _MAX_STAGES:
            pending.stages.popitem(last=False)
    if previous and previous[0] != stage:
        observe(previous[0], now - previous[1])


def job_completed(job_id: str, attempt: int, *, duration_ms: int,
                  found_cached: str | None = None, saved_by: str = "cache") -> None:
    """Attempt ``attempt`` of the job completed. ``found_cached``: the input
    text, when the worker found its result without an AI call: in the cache
    (``saved_by`` "cache") or a near-duplicate's ("near")."""
    _add(JOBS_FINISHED, "completed", "")
    _per_minute("completed", ms=duration_ms)
    _end_stage(job_id, attempt)
    observe("total", duration_ms / 1000)
    if found_cached is not None:
        _saved(saved_by, found_cached)


def job_failed(job_id: str, attempt: int, code: str) -> None:
    _add(JOBS_FINISHED, "failed", code)
    _per_minute("failed")
    _end_stage(job_id, attempt)


def observe(stage: str, seconds: float) -> None:
    """One observation of the processing-time histogram."""
    bucket = next(b for b in BUCKETS if seconds <= b)
    key = f"metrics:h:{PROCESSING}"
    _ensure_flusher()
    pending = _PENDING.get()
    with pending.lock:
        pending.fields[(key, _field(stage, le(bucket)))] += 1
        pending.sums[(key, _field(stage, "sum"))] += seconds
        pending.fields[(key, _field(stage, "count"))] += 1


def _end_stage(job_id: str, attempt: int) -> None:
    pending = _PENDING.get()
    with pending.lock:
        current = pending.stages.pop((job_id, attempt), None)
    if current:
        observe(current[0], time.monotonic() - current[1])


def _saved(by: str, text: str) -> None:
    _add(CALLS_SAVED, by)
    _add(TOKENS_SAVED, by, "input", amount=estimate_tokens(text))
    _add(TOKENS_SAVED, by, "output", amount=OUTPUT_TOKENS_PER_CALL)


def le(bound: float) -> str:
    """A bucket's upper bound as Prometheus writes it ("0.5", "1.0", "+Inf")."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


# Label sets are few (views, statuses, outcomes, stages, codes): each is
# encoded once, not on every count.
@functools.lru_cache(maxsize=4096)
def _field(*labels: str) -> str:
    return json.dumps(labels)


def _add(name: str, *labels: str, amount: int = 1) -> None:
    _ensure_flusher()
    pending = _PENDING.get()
    with pending.lock:
        pending.fields[(f"metrics:c:{name}", _field(*labels))] += amount


def flush() -> None:
    """Add this process's pending counts to Valkey; kept for the next try if
    Valkey is down (raises redis.RedisError then)."""
    pending = _PENDING.get()
    with pending.lock:
        counts, fields, sums = dict(pending.counts), dict(pending.fields), dict(pending.sums)
        pending.counts.clear()
        pending.fields.clear()
        pending.sums.clear()
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
        for key in {key for key, _ in fields if key.startswith(timeline.TIMELINE_PREFIX)}:
            pipe.expire(key, timeline.TIMELINE_TTL)  # bounded: a minute's hash lives a day
        pipe.execute()
    except RedisError:
        with pending.lock:
            pending.counts.update(counts)
            pending.fields.update(fields)
            for place, total in sums.items():
                pending.sums[place] += total
        raise


def discard_local() -> None:
    """Forget this process's unflushed counts (tests start from zero)."""
    pending = _PENDING.get()
    with pending.lock:
        pending.counts.clear()
        pending.fields.clear()
        pending.sums.clear()
        pending.stages.clear()


def _ensure_flusher() -> None:
    # A parent's counts are the parent's to flush: a new process starts at zero.
    runtime.start_once("metrics-flush", _flush_forever, on_start=discard_local)


def _flush_forever() -> None:
    while True:
        time.sleep(settings.METRICS_FLUSH_SECONDS)
        with contextlib.suppress(RedisError):
            flush()

def _per_minute(field: str, *, ms: int = 0) -> None:
    key = timeline.minute_key(time.time())
    _ensure_flusher()
    pending = _PENDING.get()
    with pending.lock:
        pending.fields[(key, field)] += 1
        if ms:
            pending.fields[(key, "ms")] += ms


def recent_minutes(minutes: int) -> list[dict[str, int]]:
    """The timeline's last ``minutes`` minutes (timeline.read), this process's
    pending counts included. Raises redis.RedisError when Valkey is down."""
    flush()
    return timeline.read(minutes)


def costs(tokens: dict[str, str]) -> dict[str, float]:
    """Cost saved per saver ("cache", "dedup") from the TOKENS_SAVED hash."""
    price = {"input": float(settings.AI_PRICE_PER_1K_INPUT) / 1000,
             "output": float(settings.AI_PRICE_PER_1K_OUTPUT) / 1000}
    costs: defaultdict[str, float] = defaultdict(float)
    for field, value in tokens.items():
        by, token_type = json.loads(field)
        costs[by] += float(value) * price.get(token_type, 0.0)
    return dict(costs)
