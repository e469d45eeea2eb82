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
started by the tick (:func:`jobs_due`, every SCHEDULE_TICK_SECONDS). If
another job for the input is active at that moment, the scheduled one waits
for the next tick: at most one job per input runs at a time.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from datetime import datetime, timedelta
from typing import Final

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from redis.exceptions import RedisError

from summaries import metrics
from summaries.errors import InvalidInput
from summaries.inputs import URL, NormalizedInput
from summaries.models import Job
from summaries.services import inflight, webhooks
from summaries.services.config import cache_namespace

logger = logging.getLogger(__name__)

# A run_at this far in the past is taken as "now" (clients' clocks drift).
CLOCK_SKEW: Final = timedelta(seconds=60)
DUE_SLACK: Final = timedelta(seconds=2)


def check_run_at(run_at: datetime) -> None:
    """Raise InvalidInput (``invalid_run_at``) for a time in the past (beyond
    CLOCK_SKEW) or more than RUN_AT_MAX_DAYS ahead."""
    now = timezone.now()
    if run_at < now - CLOCK_SKEW:
        raise InvalidInput(f"run_at is in the past ({run_at.isoformat()})", code="invalid_run_at")
    if run_at > now + timedelta(days=settings.RUN_AT_MAX_DAYS):
        raise InvalidInput(f"run_at is more than {settings.RUN_AT_MAX_DAYS} days ahead",
                           code="invalid_run_at")


def job_schedule(*, item: NormalizedInput, key: str, run_at: datetime,
                 queue: str, refresh: bool, store: bool,
                 callback: webhooks.Callback | None = None) -> Job:
    """Create the scheduled job (checked by check_run_at), with its webhook
    delivery if ``callback``, and, if it is due soon, send its start
    with a countdown."""
    with transaction.atomic():
        job = Job.objects.create(
            id=uuid.uuid4(), kind=item.kind, status=Job.Status.SCHEDULED, stage="scheduled",
            input_hash=key, input_text=item.value, url=item.value if item.kind == URL else "",
            refresh=refresh, store=store, queue=queue, provider=cache_namespace(),
            language=item.language or "", run_at=run_at,
            has_callbacks=callback is not None)
        if callback is not None:
            webhooks.subscribe_new(job=job, callback=callback)
    delay = max(0.0, (run_at - timezone.now()).total_seconds())
    metrics.record_request(metrics.MISS, text="" if item.kind == URL else item.value)
    if delay <= settings.RUN_AT_COUNTDOWN_MAX:
        job_id = str(job.id)
        transaction.on_commit(lambda: _send_start(job_id, queue, delay))
    return job


def _send_start(job_id: str, queue: str, delay: float) -> None:
    from summaries import tasks  # tasks imports this module

    try:
        tasks.dispatch(tasks.start_scheduled_job, job_id, queue=queue, countdown=delay)
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
            ).update(status=Job.Status.PENDING, stage="queued", updated_at=now)
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
    """Start every due scheduled job (the tick's part); (id, queue) of each started."""
    due = Job.objects.filter(status=Job.Status.SCHEDULED, run_at__lte=timezone.now())
    started = []
    for job_id in due.values_list("id", flat=True)[:limit]:
        if (queue := job_start(job_id=str(job_id))) is not None:
            started.append((str(job_id), queue))
    return started
