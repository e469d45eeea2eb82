"""The worker side: claim a job, run the pipeline, record the outcome.

Every state change is a conditional UPDATE on the job row (the source of
truth), so a task delivered twice, or a worker that lost its lease, can never
complete a job twice or call the AI for a job that is already completed.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DataError, InterfaceError, OperationalError
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import RedisError

from summaries.bypasses import broker, job_rows
from summaries.core.canonical_urls import MAX_URL_CHARS
from summaries.core.errors import ErrorCode, JobError, JobFailed, QuotaWait, RetryLater, backoff
from summaries.core.inputs import NormalizedInput
from summaries.core.lanes import JOB_LANES
from summaries.core.tokens import NO_USAGE, Usage, estimated, reported
from summaries.infra import cache
from summaries.infra.database import release_connection
from summaries.models import Job
from summaries.observability import counters
from summaries.providers import SummaryResult
from summaries.services import (
    ai_quota,
    costs,
    events,
    inflight,
    near_duplicates,
    pipeline,
    uploads,
    webhooks,
)
from summaries.services.config import summarizer

logger = logging.getLogger(__name__)

# Error codes remembered for a short while so a dead URL is not hammered.
FETCH_FAILURE_CODES = frozenset({
    ErrorCode.BLOCKED_DESTINATION, ErrorCode.FETCH_TIMEOUT, ErrorCode.FETCH_FAILED,
    ErrorCode.HTTP_ERROR, ErrorCode.TOO_LARGE, ErrorCode.UNSUPPORTED_CONTENT,
    ErrorCode.CONTENT_UNAVAILABLE, ErrorCode.TOO_MANY_REDIRECTS,
})


def retry_delay(attempt: int) -> float:
    """Exponential backoff with jitter, capped well below the visibility timeout."""
    return backoff(attempt, base=float(settings.RETRY_BACKOFF_BASE),
                   cap=float(settings.RETRY_BACKOFF_MAX))


def job_claim(*, job_id: str) -> Job | None:
    """Take the job for this worker: pending, or processing with a lapsed lease.

    Returns None (and changes nothing) if another worker holds it or it is done.
    The row is read, then taken with an UPDATE conditional on what was read
    (status and attempts, and for a lapsed job that its lease is still over):
    if another worker took it in between, that UPDATE changes nothing and
    this one backs off. Plain SQL (summaries/bypasses/job_rows.py): this runs once per
    attempt.
    """
    job = job_rows.load(job_id)
    now = timezone.now()
    if job is None or not (job.status == Job.Status.PENDING or (
            job.status == Job.Status.PROCESSING and job.lease_expires_at is not None
            and job.lease_expires_at < now)):
        return None
    taken = {
        "status": Job.Status.PROCESSING,
        # The first stage at once: one write fewer per job (see _set_stage).
        "stage": {Job.Kind.TEXT: Job.Stage.SUMMARIZING, Job.Kind.DOCUMENT: Job.Stage.EXTRACTING
                  }.get(Job.Kind(job.kind), Job.Stage.FETCHING),
        "attempts": job.attempts + 1,
        "started_at": now,
        "updated_at": now,
        "lease_expires_at": now + timedelta(seconds=settings.JOB_LEASE_SECONDS),
    }
    claimed = job_rows.update(
        job_id, where={"status": job.status, "attempts": job.attempts}, values=taken,
        lease_lapsed_before=now if job.status == Job.Status.PROCESSING else None)
    if not claimed:
        return None  # another worker got there first
    _apply(job, taken)
    return job


def job_process(*, job_id: str) -> None:
    """Run one attempt of a job. Raises RetryLater for transient failures,
    JobFailed once the job has failed for good (its row says failed)."""
    job = job_claim(job_id=job_id)
    if job is None:
        logger.info("job %s is not claimable (done, or owned by another worker)", job_id)
        return
    if job.attempts > settings.JOB_MAX_ATTEMPTS:
        _fail(job, JobError(f"gave up after {job.attempts - 1} attempts",
                            code=ErrorCode.TOO_MANY_ATTEMPTS))
        return
    started = time.monotonic()
    try:
        # Renewing the marker also reads the cache: one round trip.
        hit = inflight.renew(job.input_hash, str(job.id), read_summary=not job.refresh)
        outcome = pipeline.from_cache(hit) if hit else pipeline.run(
            NormalizedInput(job.kind, job.input_text, job.language or None, job.form),
            key=job.input_hash,
            holder=str(job.id),
            refresh=job.refresh,
            cache_checked=True,
            on_stage=lambda stage: _set_stage(job, stage, started=started),
            near=_near_request(job),
            keep=job.store,
            on_parts=lambda done, total: _set_parts(job, done, total),
        )
    except SoftTimeLimitExceeded:
        _retry_or_fail(job, JobError("the job took too long", code=ErrorCode.JOB_TIMEOUT,
                                     transient=True))
    except QuotaWait as wait:
        _step_aside(job, wait.delay, "waiting for the AI provider's quota")
    except JobError as exc:
        if exc.retry_after is None:
            _retry_or_fail(job, exc)
        else:  # the provider said when to come back: every worker waits that long
            ai_quota.pause(summarizer().cache_namespace, exc.retry_after)
            _step_aside(job, exc.retry_after, exc.message, usage=exc.usage)
    except RedisError as exc:
        # An outage or a stall of Valkey is the outside world, not a bug.
        _retry_or_fail(job, JobError(f"Valkey unavailable ({type(exc).__name__})",
                                     code=ErrorCode.VALKEY_UNAVAILABLE, transient=True))
    except (OperationalError, InterfaceError) as exc:
        _retry_or_fail(job, JobError(f"database unavailable ({type(exc).__name__})",
                                     code=ErrorCode.DATABASE_UNAVAILABLE, transient=True))
    except Exception as exc:
        # A bug, not the outside world: fail visibly instead of looping.
        logger.exception("job %s crashed", job.id)
        _fail(job, JobError(f"internal error ({type(exc).__name__})",
                            code=ErrorCode.INTERNAL_ERROR))
    else:
        _complete(job, outcome, duration_ms=round((time.monotonic() - started) * 1000))


def _near_request(job: Job) -> near_duplicates.Request | None:
    """What the pipeline may do with near-duplicates for ``job`` (None: nothing)."""
    if not near_duplicates.enabled() or not job.near_duplicates or job.refresh:
        return None
    return near_duplicates.Request(max_age=job.max_age, source=job.source_text,
                                   look=job.kind == Job.Kind.TEXT and job.run_at is not None)


def job_record_completed(*, item: NormalizedInput, key: str, outcome: pipeline.Outcome) -> Job:
    """A completed job row for a result computed outside a worker (``manage.py
    summarize``), so the job id cached with it resolves at /api/status."""
    now = timezone.now()
    usage = outcome.usage or NO_USAGE
    cost = costs.priced(usage)
    costs.record(cost)
    return Job.objects.create(
        input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
        tokens_estimated=usage.estimated, cost=cost.usd,
        kind=item.kind, status=Job.Status.COMPLETED, stage=Job.Stage.DONE, input_hash=key,
        input_text=item.value, url=item.value if item.kind == Job.Kind.URL else "",
        summary=outcome.summary, tags=outcome.tags, final_url=outcome.final_url[:MAX_URL_CHARS],
        title=outcome.title[:512], extracted_text=outcome.extracted_text,
        extracted_chars=len(outcome.extracted_text) if item.kind == Job.Kind.URL else None,
        language=item.language or "", style=item.form.style, length=item.form.length,
        attempts=1, started_at=now, completed_at=now, duration_ms=0,
    )


def _update_mine(job: Job, values: dict[str, Any], where: dict[str, Any] | None = None) -> bool:
    """Write ``values`` to the job's row if this attempt still owns it (no
    newer attempt has taken over; or the row still matches ``where``), and
    to ``job`` too; whether it did."""
    mine = where or {"status": Job.Status.PROCESSING, "attempts": job.attempts}
    if not job_rows.update(str(job.id), where=mine, values=values):
        return False
    _apply(job, values)
    return True


def _apply(job: Job, values: dict[str, Any]) -> None:
    for name, value in values.items():
        setattr(job, name, value)


def _set_stage(job: Job, stage: str, *, started: float) -> None:
    """Record progress, renew the lease, and end an attempt over its budget.

    Every stage is bounded by its own deadline (fetch, AI call) well below
    the lease, and the lease is renewed here, so it never lapses under a live
    worker; the budget bounds the attempt as a whole, also under pools where
    Celery enforces no time limit (threads).
    """
    counters.stage_started(str(job.id), job.attempts, stage)
    if time.monotonic() - started > settings.TASK_TIME_LIMIT:
        raise JobError("the attempt took too long", code=ErrorCode.JOB_TIMEOUT, transient=True)
    events.job_stage(job, stage)
    if stage != job.stage:  # else set by the claim, with a fresh lease
        now = timezone.now()
        _update_mine(job, {"stage": stage, "updated_at": now,
                           "lease_expires_at": now + timedelta(seconds=settings.JOB_LEASE_SECONDS)})
    # A stage's work is mostly a wait on the network (the page, the AI):
    # not with a pooled connection held.
    release_connection()


def job_complete_from_batch(*, job: Job, result: SummaryResult, provider_batch_id: str,
                            input_tokens: int | None, output_tokens: int | None) -> bool:
    """Complete a batch-lane job from its provider batch's result, exactly as
    a live attempt completes one (row, cache, marker, near-duplicate index,
    events, webhooks), if the job still waits on that batch: a conditional
    UPDATE on its state (processing, stage batched, this provider batch), so a
    poll run twice (a worker killed mid-poll) or a job sent live meanwhile is
    never completed twice. Its tokens are the provider's reported counts
    (estimated when it reported none), priced at the batch discount (the
    discount counted as saved, cause ``batch``). ``duration_ms`` stays empty:
    it waited at the provider, no worker processed it (the processing-time
    figures skip it). Whether it did."""
    usage = reported(input_tokens, output_tokens) or estimated(
        job.input_text, result.summary, result.tags)
    outcome = pipeline.Outcome(result.summary, result.tags, cached=False, usage=usage,
                               indexable=_indexable(job))
    mine = {"status": Job.Status.PROCESSING, "stage": Job.Stage.BATCHED,
            "provider_batch": provider_batch_id}
    completed = _complete(job, outcome, duration_ms=None, mine=mine, via_batch_api=True,
                          extra={"via_batch": True})
    if completed:  # one request of the provider batch, its tokens counted as a live call's
        provider = summarizer()
        counters.record_ai_call(provider.name, provider.model, usage)
    return completed


def _indexable(job: Job) -> near_duplicates.Indexable | None:
    """A batch-lane job's text, to index once its summary is stored, as the
    pipeline indexes a live text's (None: near-duplicates are off for it)."""
    if _near_request(job) is None:
        return None
    return near_duplicates.Indexable(
        near_duplicates.variant(summarizer().cache_namespace, job.language or None, job.form),
        job.source_text or job.input_text)


def _set_parts(job: Job, done: int, total: int) -> None:
    """A long document's progress (services/long_texts.py): on the row, for
    /api/status, and announced to its event streams."""
    now = timezone.now()
    if _update_mine(job, {"parts_done": done, "parts_total": total, "updated_at": now,
                          "lease_expires_at": now + timedelta(
                              seconds=settings.JOB_LEASE_SECONDS)}):
        events.job_parts(job, done, total)
    release_connection()


def _uploaded(job: Job) -> str:
    """The SHA-256 of a document job's upload (read before a store:false
    job's input is blanked), else ""."""
    return job.input_text if job.kind == Job.Kind.DOCUMENT else ""


def _complete(job: Job, outcome: pipeline.Outcome, *, duration_ms: int | None,
              mine: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
              via_batch_api: bool = False) -> bool:
    """Row first, then cache: the row is the source of truth, and a job whose
    row could not be completed must not be served from the cache. If caching
    fails, submits find the completed row instead (services.submit).
    ``mine``: the row's state this completion is conditional on (default:
    this attempt's); ``extra``: more fields to write; ``via_batch_api``: the
    outcome's calls went through the provider's batch API, priced at its
    discount (the batch lane's completion). Whether it completed."""
    now = timezone.now()
    charge, cost = costs.charged(job, outcome.usage, via_batch_api=via_batch_api)
    upload = _uploaded(job)
    try:
        updated = _update_mine(job, {
            **charge,
            "status": Job.Status.COMPLETED,
            "stage": Job.Stage.DONE,
            "summary": outcome.summary,
            "tags": outcome.tags,
            "cached": outcome.cached,
            "near_duplicate_of": outcome.near_duplicate_of or None,
            # A store:false job keeps none of its input once finished.
            **job.input_when_finished(final_url=outcome.final_url[:MAX_URL_CHARS],
                                      extracted_text=outcome.extracted_text),
            "title": outcome.title[:512],
            "extracted_chars": (len(outcome.extracted_text) if job.kind != Job.Kind.TEXT
                                else None),
            "error": "",
            "error_code": "",
            "duration_ms": duration_ms,
            "completed_at": now,
            "updated_at": now,
            "lease_expires_at": None,
            **(extra or {}),
        }, where=mine)
    except DataError as exc:  # the database refused the values: retrying cannot help
        logger.warning("job %s: result not storable: %s", job.id, exc)
        _fail(job, JobError("the result could not be stored", code=ErrorCode.UNSTORABLE_RESULT))
        return False
    if not updated:
        return False  # a newer attempt owns the job now; it will store its own result
    if upload:
        uploads.upload_release(sha256=upload, started=job.started_at)
    costs.record(cost)
    # What the summary cost when it was made: this job's calls, or, found in
    # the cache (or shared from a near-duplicate), the entry's (a hit on it,
    # or a join of this job, saves that).
    made = outcome.made if outcome.cached else costs.made(job)
    counters.job_completed(
        str(job.id), job.attempts, duration_ms=duration_ms,
        found_cached=(made or counters.estimated_made(outcome.extracted_text or job.input_text))
        if outcome.cached else None,
        saved_by=counters.NEAR_SAVER if outcome.near_duplicate_of else counters.CACHE)
    # Cache, announce, release the marker, tell the job's event streams, read
    # its joins: one round trip (one a server).
    try:
        both = cache.batch()
        pipeline.store(job.input_hash, outcome, job_id=str(job.id), holder=str(job.id),
                       keep=job.store, batch=both, made=made)
        inflight.release(job.input_hash, str(job.id), pipe=both.main)
        events.job_completed(job, outcome, duration_ms=duration_ms, pipe=both.main)
        counters.joins_of(str(job.id), both.main)  # the last two commands on main
        replies = both.execute()
        if made is not None and len(replies) >= 2:
            counters.job_settled(replies[-2], replies[-1], made)
    except RedisError as exc:
        logger.warning("job %s completed but not cached (Valkey: %s)", job.id, exc)
    if job.has_callbacks:  # callback_url on a submit: one publish (services/webhooks.py)
        webhooks.job_finished(job_id=str(job.id))
    return True


def max_attempts(code: str) -> int:
    """Attempts a job gets when its attempts keep failing with ``code``: fewer
    for a page that does not answer than for an overloaded AI."""
    if code == ErrorCode.FETCH_TIMEOUT:
        return min(settings.FETCH_TIMEOUT_MAX_ATTEMPTS, settings.JOB_MAX_ATTEMPTS)
    return int(settings.JOB_MAX_ATTEMPTS)


def _step_aside(job: Job, delay: float, reason: str, *, usage: Usage | None = None) -> None:
    """Reschedule the job after ``delay`` seconds without counting the attempt:
    waiting for the provider's quota is nobody's failure. ``usage``: calls
    this attempt paid before the provider said to wait (a broken answer
    whose re-ask was a 429), added to the job's cost."""
    delay += random.uniform(0, min(1.0, delay))  # don't all come back at once
    charge, cost = costs.charged(job, usage)
    if _update_mine(job, {
        **charge,
        "status": Job.Status.PENDING,
        "stage": Job.Stage.WAITING,
        "attempts": job.attempts - 1,
        "error": f"{reason} (trying again in {delay:.0f}s)",
        "updated_at": timezone.now(),
        "lease_expires_at": None,
    }):
        costs.record(cost)
    events.job_pending(job, Job.Stage.WAITING, reason)
    raise RetryLater(JobError(reason, code=ErrorCode.AI_QUOTA, transient=True), delay=delay)


def _retry_or_fail(job: Job, error: JobError) -> None:
    if not error.transient or job.attempts >= max_attempts(error.code):
        _fail(job, error)
        return
    delay = retry_delay(job.attempts)
    charge, cost = costs.charged(job, error.usage)
    if _update_mine(job, {
        **charge,
        "status": Job.Status.PENDING,
        "stage": Job.Stage.RETRYING,
        "error": f"{error.message} (attempt {job.attempts}; retrying in {delay:.0f}s)",
        "error_code": error.code,
        "updated_at": timezone.now(),
        "lease_expires_at": None,
    }):
        costs.record(cost)
    events.job_pending(job, Job.Stage.RETRYING, error.message)
    raise RetryLater(error, delay=delay)


def _fail(job: Job, error: JobError) -> None:
    now = timezone.now()
    charge, cost = costs.charged(job, error.usage)
    upload = _uploaded(job)
    updated = _update_mine(job, {
        **charge,
        "status": Job.Status.FAILED,
        "stage": Job.Stage.FAILED,
        "error": error.message,
        "error_code": error.code,
        "completed_at": now,
        "updated_at": now,
        "lease_expires_at": None,
        **job.input_when_finished(),
    })
    if updated:
        costs.record(cost)
        counters.job_failed(str(job.id), job.attempts, error.code)
        if upload:
            uploads.upload_release(sha256=upload, started=job.started_at)
        try:
            if job.kind == Job.Kind.URL and error.code in FETCH_FAILURE_CODES:
                cache.remember_failure(job.input_hash, str(job.id), ttl=settings.FETCH_FAILURE_TTL)
            inflight.release(job.input_hash, str(job.id))
        except RedisError as exc:  # the marker expires; the row already says failed
            logger.warning("job %s: could not update Valkey (%s)", job.id, exc)
        if job.has_callbacks:
            webhooks.job_finished(job_id=str(job.id))
        events.job_failed(job, error)
    logger.warning("job %s failed: %s (%s)", job.id, error.message, error.code)
    if updated:  # this attempt failed it (no newer attempt owns the job)
        raise JobFailed(f"{error.code}: {error.message}")


def jobs_reconcile() -> list[tuple[str, str]]:
    """Return stranded jobs to pending; list them (id, queue) for re-enqueueing.

    Stranded: processing with a lapsed lease (its worker died: its message,
    if any, only comes back after the broker's visibility timeout), or pending
    untouched for RECONCILE_PENDING_AFTER seconds *and* with no message in the
    broker (it was lost, e.g. a broker restart without AOF, or never sent).
    A job that is merely waiting in a long queue is left alone, so a backlog
    never gains duplicate messages.
    """
    now = timezone.now()
    lapsed = Q(status=Job.Status.PROCESSING, lease_expires_at__lt=now)
    forgotten = Q(
        status=Job.Status.PENDING,
        updated_at__lt=now - timedelta(seconds=settings.RECONCILE_PENDING_AFTER),
    )
    candidates = list(
        Job.objects.filter(lapsed | forgotten).values_list("id", "status", "queue")[:500]
    )
    waiting = [str(i) for i, status, _ in candidates if status == Job.Status.PENDING]
    queued = broker.task_ids(JOB_LANES) if waiting else set()
    if queued is None:
        logger.warning("broker too full to check for lost messages; skipping pending jobs")
        queued = set(waiting)
    stranded = [(str(i), queue) for i, status, queue in candidates
                if status == Job.Status.PROCESSING or str(i) not in queued]
    if stranded:
        Job.objects.filter(id__in=[i for i, _ in stranded]).filter(lapsed | forgotten).update(
            status=Job.Status.PENDING, stage=Job.Stage.REQUEUED, updated_at=now,
            lease_expires_at=None)
        logger.warning("re-enqueueing %d stranded job(s)", len(stranded))
    return stranded
