"""Retention (summaries/services/retention.py): old finished jobs are deleted
in bounded batches, old page text is cleared, nothing active or recent is
touched; and beat runs it. Real rows in the test database."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from summaries import tasks
from summaries.models import Job, ProviderBatch
from summaries.services import retention

pytestmark = pytest.mark.django_db
NOW = timezone.now()


def job(status: str, *, days_old: float, text: str = "") -> Job:
    """A job row last changed `days_old` days before NOW."""
    row = Job.objects.create(kind=Job.Kind.URL, status=status, input_hash=uuid.uuid4().hex,
                             input_text="https://example.com/", extracted_text=text)
    # update(): save() would set updated_at to now (auto_now).
    Job.objects.filter(id=row.id).update(updated_at=NOW - timedelta(days=days_old))
    return row


def ids() -> set[uuid.UUID]:
    return set(Job.objects.values_list("id", flat=True))


def test_old_finished_jobs_go_recent_and_active_ones_stay() -> None:
    old_done = job("completed", days_old=31)
    old_failed = job("failed", days_old=45)
    recent = job("completed", days_old=29)
    old_pending = job("pending", days_old=60)
    old_processing = job("processing", days_old=60)
    purged = retention.purge_old_jobs(now=NOW, retention_days=30, text_days=0)
    assert purged == retention.Purged(deleted=2, cleared=0)
    assert ids() == {recent.id, old_pending.id, old_processing.id}
    assert old_done.id not in ids() and old_failed.id not in ids()


def test_page_text_is_cleared_after_its_days_and_the_row_keeps_its_age() -> None:
    stale = job("completed", days_old=8, text="the whole page " * 100)
    fresh = job("completed", days_old=6, text="a recent page")
    failed = job("failed", days_old=8, text="")
    purged = retention.purge_old_jobs(now=NOW, retention_days=30, text_days=7)
    assert purged == retention.Purged(deleted=0, cleared=1)
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.extracted_text == "" and stale.summary == ""
    assert fresh.extracted_text == "a recent page"
    # Clearing did not make the row look recent: it is still deleted on time.
    assert abs((stale.updated_at - (NOW - timedelta(days=8))).total_seconds()) < 1
    assert retention.purge_old_jobs(now=NOW + timedelta(days=23), retention_days=30,
                                    text_days=7).deleted == 2
    assert ids() == {fresh.id}
    assert failed.id not in ids()


def test_zero_keeps_everything() -> None:
    job("completed", days_old=400, text="kept")
    assert retention.purge_old_jobs(now=NOW, retention_days=0, text_days=0) == retention.Purged()
    assert Job.objects.get().extracted_text == "kept"


def test_one_run_is_bounded_and_the_backlog_drains_over_runs() -> None:
    for _ in range(7):
        job("completed", days_old=40)
    first = retention.purge_old_jobs(now=NOW, retention_days=30, text_days=0,
                                     batch_size=2, max_batches=2)
    assert first.deleted == 4 and Job.objects.count() == 3
    second = retention.purge_old_jobs(now=NOW, retention_days=30, text_days=0,
                                      batch_size=2, max_batches=2)
    assert second.deleted == 3 and Job.objects.count() == 0


def test_the_settings_drive_the_defaults(settings: object) -> None:
    settings.JOB_RETENTION_DAYS = 10  # type: ignore[attr-defined]
    settings.EXTRACTED_TEXT_DAYS = 0  # type: ignore[attr-defined]
    gone = job("failed", days_old=11)
    kept = job("completed", days_old=9, text="still here")
    assert retention.purge_old_jobs(now=NOW) == retention.Purged(deleted=1, cleared=0)
    assert ids() == {kept.id} and gone.id not in ids()


def test_beat_runs_the_purge_task() -> None:
    entries = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert tasks.purge_old_jobs.name in entries
    old = job("completed", days_old=settings.JOB_RETENTION_DAYS + 1)
    tasks.purge_old_jobs.run()
    assert old.id not in ids()


def test_an_old_provider_batch_goes_once_no_job_names_it() -> None:
    def batch(state: str, days_old: float) -> ProviderBatch:
        row = ProviderBatch.objects.create(api="gemini", provider="gemini:m:1", state=state,
                                           display_name=f"smartcache-{uuid.uuid4()}",
                                           finished_at=NOW - timedelta(days=days_old))
        return row

    old_empty = batch("succeeded", 40)
    old_named = batch("failed", 40)
    still_named = job("completed", days_old=5)  # recent: kept, and so its batch
    Job.objects.filter(id=still_named.id).update(provider_batch=old_named)
    recent = batch("succeeded", 3)
    running = batch("running", 40)  # open: never deleted

    purged = retention.purge_old_jobs(now=NOW, retention_days=30, text_days=0)

    assert purged.batches == 1
    assert set(ProviderBatch.objects.values_list("id", flat=True)) == {
        old_named.id, recent.id, running.id}
    assert old_empty.id not in set(ProviderBatch.objects.values_list("id", flat=True))
