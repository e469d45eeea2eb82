"""Data retention: job rows do not grow forever.

- A finished job (completed or failed) is deleted once it has not changed for
  JOB_RETENTION_DAYS (0 keeps every job). Its summary lives on in the cache
  for CACHE_TTL; the row is only history.
- A completed job's extracted page text, the bulk of a URL job's row, is
  cleared after EXTRACTED_TEXT_DAYS (0 keeps it): it is kept only to show in
  the admin what a recent summary was made from. ``extracted_chars`` stays.
- An uploaded document's bytes no job needs (pending, processing or
  scheduled), last uploaded over an hour ago, are deleted
  (services/uploads.py; a job's end deletes its own at once).
- A provider batch's row (the batch lane's) is deleted once it finished
  JOB_RETENTION_DAYS ago and no job row names it any more (its jobs were
  deleted first): a batch is history its jobs' rows point to.

Both work in batches of ``batch_size`` rows per statement, at most
``max_batches`` per run: the first run over a year of rows drains over several
beat runs instead of holding locks and writing one huge transaction. Both
select on (status, updated_at), which the job_status_updated index serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from summaries.models import Job, ProviderBatch
from summaries.services.uploads import sweep_uploads

FINISHED = (Job.Status.COMPLETED, Job.Status.FAILED)
BATCH_SIZE = 1000
MAX_BATCHES = 20


@dataclass(frozen=True)
class Purged:
    """What one run did: job rows deleted, page texts cleared, uploads and
    provider batch rows deleted."""

    deleted: int = 0
    cleared: int = 0
    uploads: int = 0
    batches: int = 0


def purge_old_jobs(*, now: datetime | None = None, retention_days: int | None = None,
                   text_days: int | None = None, batch_size: int = BATCH_SIZE,
                   max_batches: int = MAX_BATCHES) -> Purged:
    """Delete finished jobs older than ``retention_days`` and clear the page
    text of completed jobs older than ``text_days`` (both default to the
    settings; 0 turns that part off). At most ``batch_size * max_batches``
    rows of each kind per call."""
    now = now or timezone.now()
    retention_days = settings.JOB_RETENTION_DAYS if retention_days is None else retention_days
    text_days = settings.EXTRACTED_TEXT_DAYS if text_days is None else text_days
    deleted = cleared = batches = 0
    if retention_days > 0:
        deleted = _delete_finished(now - timedelta(days=retention_days), batch_size, max_batches)
        batches = _delete_batches(now - timedelta(days=retention_days), batch_size)
    if text_days > 0:
        cleared = _clear_texts(now - timedelta(days=text_days), batch_size, max_batches)
    return Purged(deleted=deleted, cleared=cleared, uploads=sweep_uploads(now=now),
                  batches=batches)


def _delete_batches(cutoff: datetime, batch_size: int) -> int:
    """Finished provider batches older than ``cutoff`` that no job names."""
    old = ProviderBatch.objects.filter(finished_at__lt=cutoff, jobs__isnull=True).exclude(
        state__in=ProviderBatch.OPEN).order_by()
    ids = list(old.values_list("id", flat=True)[:batch_size])
    if not ids:
        return 0
    return old.filter(id__in=ids).delete()[1].get("summaries.ProviderBatch", 0)


def _delete_finished(cutoff: datetime, batch_size: int, max_batches: int) -> int:
    old = Job.objects.filter(status__in=FINISHED, updated_at__lt=cutoff).order_by()
    total = 0
    for _ in range(max_batches):
        ids = list(old.values_list("id", flat=True)[:batch_size])
        if not ids:
            break
        # The same conditions again: a job retried since it was selected is
        # active (or newer) now and must stay.
        total += old.filter(id__in=ids).delete()[1].get("summaries.Job", 0)  # not deliveries
        if len(ids) < batch_size:
            break
    return total


def _clear_texts(cutoff: datetime, batch_size: int, max_batches: int) -> int:
    old = (Job.objects.filter(status=Job.Status.COMPLETED, updated_at__lt=cutoff)
           .exclude(extracted_text="").order_by())
    total = 0
    for _ in range(max_batches):
        ids = list(old.values_list("id", flat=True)[:batch_size])
        if not ids:
            break
        # update() leaves updated_at alone (auto_now applies to save() only),
        # so clearing the text does not postpone the row's own deletion.
        total += old.filter(id__in=ids).update(extracted_text="")
        if len(ids) < batch_size:
            break
    return total
