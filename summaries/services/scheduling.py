"""Scheduled jobs: ``run_at`` on a submit delays its job to that time.

A scheduled job is a row in status ``scheduled``: not active, so the
one-active-job-per-input rule does not see it, and submits of the same
input neither join it nor wait for it. When it is due it becomes pending
(:func:`job_start`, a conditional UPDATE, so it starts once) and is enqueued
like any job; from then on it is an ordinary job (it may find its input
cached by then and cost no AI call, unless the submit asked for refresh).

Who starts it: a job due within RUN_AT_COUNTDOWN_MAX seconds (half the
broker's visibility timeout: a countdown waits unacknowledged in a worker,
and past the visibility timeout the broker would hand it out again) is sent
with that countdown; every later one, and any whose message was lost, is
started by the tick (:func:`jobs_due`, every SCHEDULE_TICK_SECONDS), oldest
due first and one per input per tick. If another job for the input is
active at that moment, the scheduled one waits for a later tick: at most
one job per input runs at a time.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from datetime import datetime, timedelta
from typing import Final

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, Min, OuterRef
from django.utils import timezone
from redis.exceptions import RedisError

from summaries.core import outcomes
from summaries.core.errors import ErrorCode, InvalidInput
from summaries.core.inputs import TEXT, URL, NormalizedInput
from summaries.infra import dispatch
from summaries.models import Job
from summaries.observability import counters
from summaries.services import inflight, near_duplicates, webhooks
from summaries.services.callbacks import Callback
from summaries.services.config import cache_namespace
from summaries.services.submit_options import SubmitOptions

logger = logging.getLogger(__name__)

# A run_at this far in the past is taken as "now" (clients' clocks drift).
CLOCK_SKEW: Final = timedelta(seconds=60)
DUE_SLACK: Final = timedelta(seconds=2)


def check_run_at(run_at: datetime, *, max_age: int | None = None) -> None:
    """Raise InvalidInput (``invalid_run_at``) for a time in the past (beyond
    CLOCK_SKEW), more than RUN_AT_MAX_DAYS ahead, or beside a ``max_age``: a
    scheduled job is never answered from the cache at submit, so an age
    limit there would be silently dropped (``refresh`` is the option that
    says what the job does with a cached summary when it runs)."""
    if max_age is not None:
        raise InvalidInput("max_age does not apply to a scheduled job: send refresh: true to "
                           "summarise anew when it runs", code=ErrorCode.INVALID_RUN_AT)
    now = timezone.now()
    if run_at < now - CLOCK_SKEW:
        raise InvalidInput(f"run_at is in the past ({run_at.isoformat()})",
                           code=ErrorCode.INVALID_RUN_AT)
    if run_at > now + timedelta(days=settings.RUN_AT_MAX_DAYS):
        raise InvalidInput(f"run_at is more than {settings.RUN_AT_MAX_DAYS} days ahead",
                           code=ErrorCode.INVALID_RUN_AT)


def job_schedule(*, item: NormalizedInput, key: str, run_at: datetime,
                 options: SubmitOptions, callback: Callback | None = None) -> Job:
    """Create the scheduled job (checked by check_run_at), with its webhook
    delivery if ``callback``, and, if it is due soon, send its start
    with a countdown."""
    with transaction.atomic():
        job = Job.objects.create(
            id=uuid.uuid4(), kind=item.kind, status=Job.Status.SCHEDULED, stage=Job.Stage.SCHEDULED,
            input_hash=key, input_text=item.value, url=item.value if item.kind == URL else "",
            refresh=options.refresh, store=options.store, queue=options.queue,
            near_duplicates=options.near_duplicates, source_text=near_duplicates.source_lines(
                item.raw) if item.raw and near_duplicates.enabled() else "",
            provider=cache_namespace(),
            language=item.language or "", style=item.form.style, length=item.form.length,
            run_at=run_at,
            has_callbacks=callback is not None)
        if callback is not None:
            webhooks.subscribe_new(job=job, callback=callback)
    delay = max(0.0, (run_at - timezone.now()).total_seconds())
    counters.record_request(outcomes.MISS, text=item.value if item.kind == TEXT else "")
    if delay <= settings.RUN_AT_COUNTDOWN_MAX:
        job_id = str(job.id)
        transaction.on_commit(lambda: _send_start(job_id, options.queue, delay))
    return job


def _send_start(job_id: str, queue: str, delay: float) -> None:
    try:
        dispatch.send(dispatch.START_SCHEDULED_JOB, job_id, queue=queue, countdown=delay)
    except Exception:
        logger.warning("scheduled job %s: start not sent; the tick will start it", job_id,
                       exc_info=True)


def job_start(*, job_id: str) -> str | None:
    """Make a due scheduled job pending; its queue, or None if it is not
    scheduled, not due yet, or must wait (another job for its input is active)."""
    now = timezone.now()
    try:
        with transaction.atomic():
            started = Job.objects.filter(
                id=job_id, status=Job.Status.SCHEDULED, run_at__lte=now + DUE_SLACK,
            ).update(status=Job.Status.PENDING, stage=Job.Stage.QUEUED, updated_at=now)
    except IntegrityError:
        logger.info("scheduled job %s waits: another job for its input is active", job_id)
        return None
    if not started:
        return None
    job = Job.objects.only("input_hash", "queue").get(id=job_id)
    # Submits of the input join it at once; without Valkey, the database's
    # constraint still makes them join.
    with contextlib.suppress(RedisError):
        inflight.adopt(job.input_hash, job_id)
    return job.queue


def jobs_due(*, limit: int = 500) -> list[tuple[str, str]]:
    """Start due scheduled jobs (the tick's part), fairly; (id, queue) of each started.

    One job per input per tick, and its earliest: an input can have only
    one active job, so its other copies could not start anyway. Inputs
    whose job is active are skipped (they cannot start now), and inputs are
    taken by their earliest due time, oldest first: however many copies of
    one input a client schedules, they take one place in the tick, and a
    job due earlier starts before one due later."""
    now = timezone.now()
    active = Job.objects.filter(input_hash=OuterRef("input_hash"), status__in=Job.ACTIVE)
    due = Job.objects.filter(status=Job.Status.SCHEDULED, run_at__lte=now).filter(~Exists(active))
    inputs = (due.values("input_hash").annotate(first=Min("run_at"))
              .order_by("first", "input_hash").values_list("input_hash", flat=True)[:limit])
    started = []
    for input_hash in inputs:
        job_id = (due.filter(input_hash=input_hash).order_by("run_at", "created_at", "id")
                  .values_list("id", flat=True).first())
        if job_id is not None and (queue := job_start(job_id=str(job_id))) is not None:
            started.append((str(job_id), queue))
    return started
