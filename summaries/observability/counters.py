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
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from redis.exceptions import RedisError

from summaries.core.outcomes import HIT, JOINED, KNOWN_FAILURE, MISS, NEAR, REJECTED
from summaries.core.tokens import Usage, estimate_tokens
from summaries.infra import cache, runtime
from summaries.observability import timeline

REQUESTS = "metrics:total_requests"
HITS, MISSES, JOINS = "metrics:cache_hits", "metrics:cache_misses", "metrics:joined"
KNOWN_FAILURES = "metrics:known_failures"
NEAR_DUPLICATES = "metrics:near_duplicates"
# The counters a submit's outcome adds one to (besides REQUESTS).
_COUNTERS: dict[str, tuple[str, ...]] = {HIT: (HITS,), MISS: (MISSES,), JOINED: (MISSES, JOINS),
             KNOWN_FAILURE: (KNOWN_FAILURES,), NEAR: (NEAR_DUPLICATES,)}

# Labelled counters: name -> (help, label names). Exposed as smartcache_<name>_total.
HTTP_REQUESTS = "http_requests"
SUBMISSIONS = "submissions"
JOBS_FINISHED = "jobs_finished"
AI_CALLS = "gen_ai_client_calls"
AI_TOKENS = "gen_ai_client_token_usage"
CALLS_SAVED = "ai_calls_saved"
TOKENS_SAVED = "ai_tokens_saved"
# Money, in micro-dollars (whole numbers: HINCRBY), rendered in USD by
# prometheus.py and analytics: not in LABELLED.
COST_SPENT = "ai_cost_spent"
COST_SAVED = "ai_cost_saved"
# What saved an AI call, or part of its price (the "by" label; a fixed set):
# a cache hit (at submit, or found by the worker), a join of the job in
# flight, a near-duplicate's shared summary, the provider batch API's discount.
CACHE, DEDUP, NEAR_SAVER, BATCH = "cache", "dedup", "near", "batch"
SAVERS = (CACHE, DEDUP, NEAR_SAVER, BATCH)
# Submit outcomes answered with a summary made before, which save at once
# what it cost (a near-duplicate's answer, once wired, is one more).
SAVED_AT_ONCE: dict[str, str] = {HIT: CACHE, NEAR: NEAR_SAVER}
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
    AI_TOKENS: ("AI tokens by type (input, output) and source: reported by the provider "
                "(usage_metadata, usage), or estimated from the text lengths when it "
                "reported none. Re-asks and failed answers included.",
                ("provider", "model", "token_type", "source")),
    CALLS_SAVED: ("AI calls made unnecessary: by the cache (a hit), by dedup (a submit "
                  "that joined the job already running for its input), by a "
                  "near-duplicate's shared summary.", ("by",)),
    TOKENS_SAVED: ("AI tokens saved: what the summary served took when it was made "
                   "(estimated from the input's length for entries that do not say; a "
                   "join's when its job completes).", ("by", "token_type")),
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


def record_request(outcome: str, *, text: str = "", made: Made | None = None,
                   job_id: str = "", near: bool = False) -> None:
    """Count one accepted submit answered as ``outcome`` (HIT, MISS, JOINED,
    NEAR, KNOWN_FAILURE). A hit (or a near-duplicate's answer) saved what
    its summary cost when it was made (``made``, from the cache entry or the
    row; when unknown, its tokens are estimated from ``text``, the input,
    empty for a URL, at no price). A join (of job ``job_id``) saves what that
    job will cost: counted when it completes (``joined`` here,
    ``job_settled`` there), under near when ``near`` (a near-duplicate's
    join), else dedup.

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
    if (by := SAVED_AT_ONCE.get(outcome)) is not None:
        saved(by, made if made is not None else estimated_made(text))
    elif outcome == JOINED:
        _add(CALLS_SAVED, NEAR_SAVER if near else DEDUP)
        if job_id:
            joined(job_id, near=near)


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


def record_ai_call(provider: str, model: str, usage: Usage, *, answered: bool = True) -> None:
    """One AI call (of one input or a batch) and its tokens; ``answered=False``:
    tokens only (a failed call's: a blocked or broken answer is paid for too)."""
    if answered:
        _add(AI_CALLS, provider, model)
    source = "estimated" if usage.estimated else "reported"
    _add(AI_TOKENS, provider, model, "input", source, amount=usage.input_tokens)
    _add(AI_TOKENS, provider, model, "output", source, amount=usage.output_tokens)


@dataclass(frozen=True)
class Made:
    """What a summary cost when it was made: micro-dollars and tokens."""

    micros: int
    input_tokens: int
    output_tokens: int

    def as_payload(self) -> dict[str, int]:
        """Its fields in a cache entry (``made_from``'s inverse)."""
        return {"cost_micros": self.micros, "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens}


def made_from(payload: dict[str, Any]) -> Made | None:
    """The cost a cache entry records (None for an entry written before
    entries did)."""
    values = [payload.get(name) for name in ("cost_micros", "input_tokens", "output_tokens")]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        return None
    return Made(*(int(cast(int, v)) for v in values))


def estimated_made(text: str) -> Made:
    """A summary of unknown cost: its tokens estimated from the input's
    length (a URL's page unknown at submit counts the prompt only), unpriced."""
    return Made(0, estimate_tokens(text), OUTPUT_TOKENS_PER_CALL)


def spent(provider: str, model: str, micros: int) -> None:
    """Micro-dollars a job's AI calls cost (counted as the job's row takes them)."""
    if micros:
        _add(COST_SPENT, provider, model, amount=micros)


def saved(by: str, made: Made, *, calls: int = 1) -> None:
    """``calls`` AI calls that cost ``made`` each, made unnecessary by ``by``
    (SAVERS). BATCH saves money only (``calls=0``: the call was made, at a
    discount: ``made.micros`` is the discount)."""
    if calls:
        _add(CALLS_SAVED, by, amount=calls)
        _add(TOKENS_SAVED, by, "input", amount=made.input_tokens * calls)
        _add(TOKENS_SAVED, by, "output", amount=made.output_tokens * calls)
    _add(COST_SAVED, by, amount=made.micros * max(calls, 1))


# A join is saved when its job completes, at the job's cost: the joins of a
# job in flight are counted in Valkey (the web joins, a worker completes),
# a near-duplicate's join (a nearly identical text that joined it) apart.
JOINS_PREFIX = "metrics:joins:"
NEAR_JOINS_PREFIX = "metrics:joins:near:"


def joined(job_id: str, *, near: bool = False) -> None:
    """One more submit joined job ``job_id`` (``near``: a near-duplicate of
    its input did; best effort: a metric never fails a submit)."""
    key = (NEAR_JOINS_PREFIX if near else JOINS_PREFIX) + job_id
    with contextlib.suppress(RedisError):
        pipe = cache.client().pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, max(3600, 2 * int(settings.INFLIGHT_TTL)))
        pipe.execute()


def joins_of(job_id: str, pipe: Any) -> None:
    """Queue, on ``pipe`` (the main server's), the read and deletion of the
    joins job ``job_id`` had (two replies, the last: exact, then near); they
    go to ``job_settled``."""
    pipe.getdel(JOINS_PREFIX + job_id)
    pipe.getdel(NEAR_JOINS_PREFIX + job_id)


def _count(value: object) -> int:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return int(value) if isinstance(value, (int, str)) and str(value).isdigit() else 0


def job_settled(joins: object, near_joins: object, made: Made) -> None:
    """A job completed, having been joined ``joins`` times by its own input
    and ``near_joins`` times by near-duplicates (``joins_of``'s replies):
    each join saved what the job cost, under dedup or near."""
    for by, count in ((DEDUP, _count(joins)), (NEAR_SAVER, _count(near_joins))):
        if count:
            # The calls were counted at join time; tokens and money now.
            _add(TOKENS_SAVED, by, "input", amount=made.input_tokens * count)
            _add(TOKENS_SAVED, by, "output", amount=made.output_tokens * count)
            _add(COST_SAVED, by, amount=made.micros * count)


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


def job_completed(job_id: str, attempt: int, *, duration_ms: int | None,
                  found_cached: Made | None = None, saved_by: str = CACHE) -> None:
    """Attempt ``attempt`` of the job completed. ``found_cached``: what the
    summary cost, when the worker found it without an AI call (an AI call
    saved, by ``saved_by``: the cache, or a near-duplicate's). ``duration_ms``
    None: no worker processed it (a provider batch did)."""
    _add(JOBS_FINISHED, "completed", "")
    _per_minute("completed", ms=duration_ms or 0)
    _end_stage(job_id, attempt)
    if duration_ms is not None:
        observe("total", duration_ms / 1000)
    if found_cached is not None:
        saved(saved_by, found_cached)


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


def usd(fields: dict[str, str]) -> dict[tuple[str, ...], float]:
    """A money hash (COST_SPENT, COST_SAVED) in USD, by its labels."""
    return {tuple(json.loads(field)): round(int(value) / 1_000_000, 6)
            for field, value in fields.items()}
