"""The API side: turn a submission into a cache hit or a (shared) job."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from summaries import cache, metrics
from summaries.errors import JobError
from summaries.fetching import check_submit_url
from summaries.inputs import URL, InvalidInput, NormalizedInput, normalize_input
from summaries.models import Job
from summaries.providers import split_sentences
from summaries.services.config import fetch_policy, summarizer
from summaries.tasks import enqueue

# A competing submit that lost the SET NX race waits this long for the
# winner's job row to appear before treating the marker as stale.
OWNER_WAIT_SECONDS = 5.0


class InputTooLarge(Exception):
    pass


class Busy(Exception):
    """Could not settle on a job for this input (marker churn); try again."""


@dataclass(frozen=True)
class Submission:
    job_id: str
    status: str
    cached: bool
    summary: str = ""
    tags: list[str] = field(default_factory=list)
    error: str = ""
    code: str = ""


def summary_request(*, raw: str, refresh: bool = False) -> Submission:
    """Answer from the cache, join the in-flight job, or start a new one.

    Raises InvalidInput (400), InputTooLarge (413), Busy (503) and
    redis.RedisError when Valkey is down (503).
    """
    if len(raw) > settings.MAX_INPUT_CHARS:
        raise InputTooLarge(f"input is {len(raw)} characters; the limit is "
                            f"{settings.MAX_INPUT_CHARS}")
    item = _validated(raw)
    key = item.cache_key(summarizer().cache_namespace)
    answer = (None if refresh else _remembered(item, key)) or _job_answer(item, key, refresh)
    metrics.record_request(hit=answer.cached)
    return answer


def _remembered(item: NormalizedInput, key: str) -> Submission | None:
    """A cached summary or, for a URL, a fetch that failed moments ago."""
    if hit := cache.get_summary(key):
        return Submission(hit["job_id"], Job.Status.COMPLETED, cached=True,
                          summary=hit["summary"], tags=hit["tags"])
    return _recent_failure(key) if item.kind == URL else None


def _job_answer(item: NormalizedInput, key: str, refresh: bool) -> Submission:
    job = _join_or_create(item, key, refresh=refresh)
    if isinstance(job, Submission):
        return job
    if job.status == Job.Status.COMPLETED:
        return Submission(str(job.id), job.status, cached=True,
                          summary=job.summary, tags=job.tags)
    return Submission(str(job.id), job.status, cached=False)


def _validated(raw: str) -> NormalizedInput:
    item = normalize_input(raw)
    if item.kind == URL:
        try:
            check_submit_url(item.value, fetch_policy())
        except JobError as exc:
            raise InvalidInput(exc.message, code="blocked_url") from None
    elif len(split_sentences(item.value)) < 2:
        raise InvalidInput("input is too short to summarise: give at least two sentences",
                           code="input_too_short")
    return item


def _recent_failure(key: str) -> Submission | None:
    job_id = cache.recent_failure(key)
    job = Job.objects.filter(id=job_id, status=Job.Status.FAILED).first() if job_id else None
    if job is None:
        return None
    return Submission(str(job.id), job.status, cached=True, error=job.error, code=job.error_code)


def _join_or_create(item: NormalizedInput, key: str, *, refresh: bool) -> Job | Submission:
    """The in-flight job for ``key``, or a new one. If the marker was free
    because a job just finished, its cached answer is returned instead."""
    for _ in range(3):
        job_id = str(uuid.uuid4())
        if cache.claim_inflight(key, job_id, ttl=settings.INFLIGHT_TTL):
            # A job releases the marker only after caching its result, so the
            # cache tells whether one finished between our first look and now.
            if not refresh and (done := _remembered(item, key)):
                cache.release_inflight(key, job_id)
                return done
            return _create_job(job_id, item, key, refresh=refresh)
        owner = cache.inflight_owner(key)
        if owner is None:
            continue  # released between our SET NX and GET: try again
        job = _wait_for_job(owner)
        if job is not None and job.status != Job.Status.FAILED:
            return job
        # The owner failed, or died before writing its row: the marker is stale.
        cache.release_inflight(key, owner)
    raise Busy("could not start a job for this input; try again")


def _create_job(job_id: str, item: NormalizedInput, key: str, *, refresh: bool) -> Job:
    job = Job.objects.create(
        id=job_id,
        kind=item.kind,
        input_hash=key,
        input_text=item.value,
        url=item.value if item.kind == URL else "",
        refresh=refresh,
        provider=summarizer().cache_namespace,
        stage="queued",
    )
    transaction.on_commit(lambda: enqueue(job_id))
    return job


def _wait_for_job(job_id: str) -> Job | None:
    deadline = time.monotonic() + OWNER_WAIT_SECONDS
    while True:
        job = Job.objects.filter(id=job_id).first()
        if job is not None or time.monotonic() > deadline:
            return job
        time.sleep(0.02)


def job_retry(*, job_id: str) -> Job | None:
    """Re-queue a failed job (the dead-letter action). Returns the job, or
    None if no failed job has that id."""
    updated = Job.objects.filter(id=job_id, status=Job.Status.FAILED).update(
        status=Job.Status.PENDING, stage="queued", attempts=0, error="", error_code="",
        completed_at=None, duration_ms=None, updated_at=timezone.now(),
    )
    if not updated:
        return None
    job = Job.objects.get(id=job_id)
    cache.forget_failure(job.input_hash)
    # If another job already computes this input, both finish with the same
    # cached summary; the second then completes from the cache.
    cache.claim_inflight(job.input_hash, job_id, ttl=settings.INFLIGHT_TTL)
    transaction.on_commit(lambda: enqueue(job_id))
    return job


def job_list(*, status: str | None = None, kind: str | None = None) -> QuerySet[Job]:
    """Jobs, newest first; ``status=failed`` is the dead-letter queue."""
    jobs = Job.objects.order_by("-created_at", "-id")
    if status:
        jobs = jobs.filter(status=status)
    if kind:
        jobs = jobs.filter(kind=kind)
    return jobs
