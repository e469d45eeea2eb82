"""Celery tasks: thin wrappers around the job services.

The retry story, end to end:

- An attempt is one run of ``process_job``. ``jobs.job_process`` claims the
  job row with a conditional UPDATE that adds one to ``Job.attempts``; the
  row, not Celery, counts attempts, so a redelivered message (acks_late, a
  SIGKILLed worker, the reconciler) counts too and a poison message cannot
  loop forever: past JOB_MAX_ATTEMPTS the job fails as ``too_many_attempts``.
- A transient failure (JobError with ``transient=True``: AI timeouts, 429 and
  5xx, fetch timeouts, Valkey or database outages) raises RetryLater with an
  exponential, jittered delay (``jobs.retry_delay``: RETRY_BACKOFF_BASE x
  2^(attempt-1), capped at RETRY_BACKOFF_MAX, far below the broker's
  visibility timeout); the task schedules the next try with ``self.retry``.
  Fetch timeouts get fewer attempts (FETCH_TIMEOUT_MAX_ATTEMPTS): a dead site
  should not cost its submitter minutes. Permanent failures fail at once.
- A job that fails for good (permanent error, or out of attempts) raises
  JobFailed after its row is marked failed, so Celery records FAILURE and
  Flower shows a failed task. It is in the task's ``throws``: an expected
  outcome, acked like any raised exception (never redelivered), logged as
  the one "job ... failed" line without a traceback.
- ``autoretry_for`` is not used: it counts retries in the message, which a
  redelivery resets, and it cannot put the job row in its "retrying" state
  with the reason before the next try. Hence ``max_retries=None`` here: the
  row decides when to stop.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from celery import Task, shared_task
from celery.signals import task_postrun, task_prerun, worker_init, worker_ready, worker_shutdown
from django.db import close_old_connections

from summaries.core.errors import JobFailed, RetryLater
from summaries.infra import dispatch
from summaries.infra.dispatch import enqueue
from summaries.logcontext import job_context
from summaries.observability import heartbeats
from summaries.services import batch_lane, jobs, retention, scheduling, watches, webhooks
from summaries.services.config import summarizer

logger = logging.getLogger(__name__)


# ignore_result: the job row is the result. It also keeps apply_async from
# subscribing to the result backend's pub/sub, which is not thread-safe under
# a threaded web server.
@shared_task(bind=True, name=dispatch.PROCESS_JOB, max_retries=None, ignore_result=True,
             throws=(JobFailed,))
def process_job(self: Task[Any, Any], job_id: str) -> None:
    """Process one job. Attempts are counted on the job row, which decides
    when to give up; the task only schedules the next try."""
    with job_context(job_id):  # every line of this attempt carries job_id
        try:
            jobs.job_process(job_id=job_id)
        except RetryLater as retry:
            raise self.retry(countdown=retry.delay, exc=retry.error) from None


@shared_task(name=dispatch.RECONCILE_JOBS)
def reconcile_jobs() -> int:
    """Periodic (Celery beat): re-enqueue jobs stranded by crashes or lost messages."""
    stranded = jobs.jobs_reconcile()
    for job_id, queue in stranded:
        enqueue(job_id, queue=queue)
    return len(stranded)


@shared_task(name=dispatch.PURGE_OLD_JOBS, ignore_result=True)
def purge_old_jobs() -> None:
    """Periodic (beat, hourly): delete old finished jobs and clear old page
    text (JOB_RETENTION_DAYS, EXTRACTED_TEXT_DAYS; summaries/services/retention.py)."""
    purged = retention.purge_old_jobs()
    if purged.deleted or purged.cleared or purged.uploads or purged.batches:
        logger.info("retention: deleted %d old jobs, cleared the page text of %d, deleted %d "
                    "uploads no job needs and %d old provider batches", purged.deleted,
                    purged.cleared, purged.uploads, purged.batches)


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(**kwargs: Any) -> None:
    """Django's rule for a request's database connections, for a task's: kept
    up to CONN_MAX_AGE, closed when broken. Celery's own Django fixup would
    close them before and after every task (CELERY_DB_REUSE_MAX in settings
    makes it rare), which with SQLite reopened the database twice per job."""
    close_old_connections()


@worker_init.connect
def _build_summariser(**kwargs: Any) -> None:
    """Build the summariser (and import its SDK) as the worker starts, not in
    its first job: importing google-genai takes about a second of CPU."""
    summarizer()


# Workers online (observability/heartbeats.py): each worker process's key
# lives from ready to shutdown.
@worker_ready.connect
def _on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
    heartbeats.start_heartbeat(getattr(sender, "hostname", None) or socket.gethostname())


@worker_shutdown.connect
def _on_worker_shutdown(sender: Any = None, **kwargs: Any) -> None:
    heartbeats.stop_heartbeat(getattr(sender, "hostname", None) or socket.gethostname())


@shared_task(bind=True, name=dispatch.DELIVER_WEBHOOK, max_retries=None, ignore_result=True)
def deliver_webhook(self: Task[Any, Any], delivery_id: str, due: str = "") -> None:
    """One attempt of a webhook delivery, by its message for ``due``; the
    delivery row counts attempts and decides when to give up
    (WEBHOOK_MAX_ATTEMPTS) and which message is current."""
    try:
        webhooks.attempt(delivery_id=delivery_id, due=due)
    except webhooks.SendLater as later:
        raise self.retry(args=(delivery_id, later.due), countdown=later.delay,
                         exc=later.error) from None


@shared_task(name=dispatch.RELEASE_CALLBACKS, ignore_result=True)
def release_callbacks(job_id: str) -> None:
    """A job with callbacks finished: send its waiting deliveries."""
    webhooks.release(job_id=job_id)


@shared_task(name=dispatch.AWAIT_JOB_CALLBACKS, ignore_result=True)
def await_job_callbacks(job_id: str, polls: str, poller: str = "") -> None:
    """A job with callbacks is processing: its one poller's look."""
    webhooks.await_release(job_id=job_id, polls=int(polls), poller=poller)


@shared_task(name=dispatch.CHECK_WATCH, ignore_result=True)
def check_watch(watch_id: str) -> None:
    watches.watch_check(watch_id=watch_id)


@shared_task(name=dispatch.START_SCHEDULED_JOB, ignore_result=True)
def start_scheduled_job(job_id: str) -> None:
    """A scheduled job's countdown is over: make it pending and enqueue it."""
    if (queue := scheduling.job_start(job_id=job_id)) is not None:
        enqueue(job_id, queue=queue)


@shared_task(name=dispatch.INTEGRATIONS_TICK, ignore_result=True)
def integrations_tick() -> None:
    """Periodic (beat, SCHEDULE_TICK_SECONDS): due watches, due scheduled
    jobs, and deliveries to (re)send. Each claims its rows with a conditional
    UPDATE, so ticks racing in several processes do each thing once."""
    for watch_id in watches.watches_due():
        watches.send_check(watch_id)
    for job_id, queue in scheduling.jobs_due():
        enqueue(job_id, queue=queue)
    webhooks.sweep()


@shared_task(name=dispatch.BATCH_LANE_TICK, ignore_result=True)
def batch_lane_tick() -> None:
    """Periodic (beat, BATCH_LANE_TICK_SECONDS): send due groups of batch-lane
    jobs to the provider's batch API and poll its open batch jobs, one poller
    at a time (summaries/services/batch_lane.py)."""
    report = batch_lane.tick()
    if report.sent or report.completed or report.live:
        logger.info("batch lane: %d sent, %d completed from batch results, %d sent live",
                    report.sent, report.completed, report.live)
