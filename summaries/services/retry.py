"""The dead-letter action: re-queue a failed job (operators: the API, the admin)."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from summaries.core.errors import Busy, NotRetryable
from summaries.infra import cache
from summaries.infra.dispatch import enqueue
from summaries.models import Job
from summaries.services import inflight


def job_retry(*, job: Job) -> Job:
    """Re-queue a failed job (the dead-letter action) and return it.

    Only failed jobs can be retried: raises NotRetryable otherwise. If another
    job for the same input is already active, that job is returned and this
    one stays failed: the input is being summarised already.
    """
    job_id = str(job.id)
    if not job.store:  # its input was blanked when it finished
        raise NotRetryable(job.status, "a store:false job cannot be retried: its input "
                                       "was not kept")
    try:
        with transaction.atomic():
            updated = Job.objects.filter(id=job_id, status=Job.Status.FAILED).update(
                status=Job.Status.PENDING, stage=Job.Stage.QUEUED, attempts=0, error="",
                error_code="", completed_at=None, duration_ms=None, updated_at=timezone.now(),
            )
    except IntegrityError:
        active = Job.objects.filter(input_hash=job.input_hash, status__in=Job.ACTIVE).first()
        if active is not None:
            return active
        raise Busy("another job for this input just ended; try again") from None
    if not updated:
        raise NotRetryable(Job.objects.get(id=job_id).status)
    job.refresh_from_db()
    cache.forget_failure(job.input_hash)
    inflight.adopt(job.input_hash, job_id)
    transaction.on_commit(lambda: enqueue(job_id, queue=job.queue))
    return job
