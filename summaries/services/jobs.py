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

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from summaries import cache, metrics
from summaries.errors import JobError
from summaries.inputs import NormalizedInput
from summaries.models import Job
from summaries.services import pipeline

logger = logging.getLogger(__name__)

# Error codes remembered for a short while so a dead URL is not hammered.
FETCH_FAILURE_CODES = frozenset({
    "blocked_destination", "fetch_timeout", "fetch_failed", "http_error", "too_large",
    "unsupported_content", "content_unavailable", "too_many_redirects",
})


class RetryLater(Exception):
    """A transient failure: the task should run again after ``delay`` seconds."""

    def __init__(self, error: JobError, *, delay: float) -> None:
        super().__init__(error.message)
        self.error = error
        self.delay = delay


def retry_delay(attempt: int) -> float:
    """Exponential backoff with jitter, capped well below the visibility timeout."""
    base, cap = float(settings.RETRY_BACKOFF_BASE), float(settings.RETRY_BACKOFF_MAX)
    return min(cap, base * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0)


def job_claim(*, job_id: str) -> Job | None:
    """Take the job for this worker: pending, or processing with a lapsed lease.

    Returns None (and changes nothing) if another worker holds it or it is done.
    """
    now = timezone.now()
    claimable = Q(status=Job.Status.PENDING) | Q(
        status=Job.Status.PROCESSING, lease_expires_at__lt=now
    )
    claimed = Job.objects.filter(claimable, id=job_id).update(
        status=Job.Status.PROCESSING,
        stage="starting",
        attempts=F("attempts") + 1,
        started_at=now,
        updated_at=now,
        lease_expires_at=now + timedelta(seconds=settings.JOB_LEASE_SECONDS),
    )
    return Job.objects.get(id=job_id) if claimed else None


def job_process(*, job_id: str) -> None:
    """Run one attempt of a job. Raises RetryLater for transient failures."""
    job = job_claim(job_id=job_id)
    if job is None:
        logger.info("job %s is not claimable (done, or owned by another worker)", job_id)
        return
    if job.attempts > settings.JOB_MAX_ATTEMPTS:
        _fail(job, JobError(f"gave up after {job.attempts - 1} attempts",
                            code="too_many_attempts"))
        return
    cache.renew_inflight(job.input_hash, str(job.id), ttl=settings.INFLIGHT_TTL)
    started = time.monotonic()
    try:
        outcome = pipeline.run(
            NormalizedInput(job.kind, job.input_text),
            key=job.input_hash,
            job_id=str(job.id),
            refresh=job.refresh,
            on_stage=lambda stage: _set_stage(job, stage),
        )
    except SoftTimeLimitExceeded:
        _retry_or_fail(job, JobError("the job took too long", code="job_timeout", transient=True))
    except JobError as exc:
        _retry_or_fail(job, exc)
    except Exception as exc:
        # A bug, not the outside world: fail visibly instead of looping.
        logger.exception("job %s crashed", job.id)
        _fail(job, JobError(f"internal error ({type(exc).__name__})", code="internal_error"))
    else:
        _complete(job, outcome, duration_ms=round((time.monotonic() - started) * 1000))


def _mine(job: Job) -> Q:
    """The job as this attempt claimed it (no newer attempt has taken over)."""
    return Q(id=job.id, status=Job.Status.PROCESSING, attempts=job.attempts)


def _set_stage(job: Job, stage: str) -> None:
    Job.objects.filter(_mine(job)).update(stage=stage, updated_at=timezone.now())


def _complete(job: Job, outcome: pipeline.Outcome, *, duration_ms: int) -> None:
    # Cache first: once the row says completed, a hit is guaranteed too.
    pipeline.store(job.input_hash, outcome, job_id=str(job.id))
    now = timezone.now()
    updated = Job.objects.filter(_mine(job)).update(
        status=Job.Status.COMPLETED,
        stage="done",
        summary=outcome.summary,
        tags=outcome.tags,
        cached=outcome.cached,
        final_url=outcome.final_url[:2048],
        title=outcome.title[:512],
        extracted_text=outcome.extracted_text,
        extracted_chars=len(outcome.extracted_text) if job.kind == Job.Kind.URL else None,
        error="",
        error_code="",
        duration_ms=duration_ms,
        completed_at=now,
        updated_at=now,
        lease_expires_at=None,
    )
    cache.release_inflight(job.input_hash, str(job.id))
    if updated:
        metrics.record_completed(duration_ms=duration_ms)


def _retry_or_fail(job: Job, error: JobError) -> None:
    if not error.transient or job.attempts >= settings.JOB_MAX_ATTEMPTS:
        _fail(job, error)
        return
    delay = retry_delay(job.attempts)
    Job.objects.filter(_mine(job)).update(
        status=Job.Status.PENDING,
        stage="retrying",
        error=f"{error.message} (attempt {job.attempts}; retrying in {delay:.0f}s)",
        error_code=error.code,
        updated_at=timezone.now(),
        lease_expires_at=None,
    )
    raise RetryLater(error, delay=delay)


def _fail(job: Job, error: JobError) -> None:
    now = timezone.now()
    updated = Job.objects.filter(_mine(job)).update(
        status=Job.Status.FAILED,
        stage="failed",
        error=error.message,
        error_code=error.code,
        completed_at=now,
        updated_at=now,
        lease_expires_at=None,
    )
    if job.kind == Job.Kind.URL and error.code in FETCH_FAILURE_CODES:
        cache.remember_failure(job.input_hash, str(job.id), ttl=settings.FETCH_FAILURE_TTL)
    cache.release_inflight(job.input_hash, str(job.id))
    if updated:
        metrics.record_failed()
    logger.warning("job %s failed: %s (%s)", job.id, error.message, error.code)


def jobs_reconcile() -> list[str]:
    """Return stranded jobs to pending and list them for re-enqueueing.

    Stranded: processing with a lapsed lease (its worker died), or pending
    untouched for RECONCILE_PENDING_AFTER seconds (its message was lost, e.g.
    a broker restart without AOF). Re-enqueueing is harmless: a duplicate
    message finds the job claimed or done.
    """
    now = timezone.now()
    lapsed = Q(status=Job.Status.PROCESSING, lease_expires_at__lt=now)
    forgotten = Q(
        status=Job.Status.PENDING,
        updated_at__lt=now - timedelta(seconds=settings.RECONCILE_PENDING_AFTER),
    )
    stranded = list(Job.objects.filter(lapsed | forgotten).values_list("id", flat=True)[:500])
    if stranded:
        Job.objects.filter(id__in=stranded).filter(lapsed | forgotten).update(
            status=Job.Status.PENDING, stage="requeued", updated_at=now, lease_expires_at=None
        )
        logger.warning("re-enqueueing %d stranded job(s)", len(stranded))
    return [str(job_id) for job_id in stranded]
