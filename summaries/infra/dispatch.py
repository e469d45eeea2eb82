"""Sending tasks by name: how services start background work without
importing the tasks (summaries/tasks.py, an interface, imports the services).

The names are the ones in messages already queued and in beat's schedule:
renaming one strands those messages. ``tasks.py`` registers each task under
the constant here.
"""

from __future__ import annotations

import logging

from celery import current_app

from summaries.bypasses import broker
from summaries.core.lanes import Lane

PROCESS_JOB = "summaries.process_job"
RECONCILE_JOBS = "summaries.reconcile_jobs"
PURGE_OLD_JOBS = "summaries.purge_old_jobs"
DELIVER_WEBHOOK = "summaries.deliver_webhook"
RELEASE_CALLBACKS = "summaries.release_callbacks"
AWAIT_JOB_CALLBACKS = "summaries.await_job_callbacks"
CHECK_WATCH = "summaries.check_watch"
START_SCHEDULED_JOB = "summaries.start_scheduled_job"
INTEGRATIONS_TICK = "summaries.integrations_tick"
BATCH_LANE_TICK = "summaries.batch_lane_tick"

logger = logging.getLogger(__name__)

# A bulk submit's jobs leave together at the end of its block (broker.held).
held = broker.held


def enqueue(job_id: str, *, queue: str = Lane.INTERACTIVE) -> None:
    """Hand a job to Celery on its lane. A broker failure leaves it pending
    for the reconciler rather than failing the request that created it."""
    try:
        # The task id is the job id: the reconciler finds a job's message by
        # it. broker.publish writes what apply_async would, at a tenth of its CPU.
        broker.publish(PROCESS_JOB, job_id, (job_id,), queue=queue)
    except Exception:
        logger.exception("could not enqueue job %s; the reconciler will retry", job_id,
                         extra={"job_id": job_id})


def send(task_name: str, *args: str, queue: str, countdown: float = 0) -> None:
    """Send the task named ``task_name`` with ``args`` on ``queue``; every
    enqueue of the webhook, watch and scheduling services goes through here
    (tests that must not run them patch it). ignore_result: the rows are the
    results, and it keeps the send from subscribing to the result backend's
    pub/sub, which is not thread-safe under a threaded web server."""
    if countdown > 0:
        current_app.send_task(task_name, args=args, queue=queue, countdown=countdown,
                              retry=True, ignore_result=True)
    else:
        current_app.send_task(task_name, args=args, queue=queue, retry=True,
                              ignore_result=True)
