"""Job lists for operators (the API's /api/jobs)."""

from __future__ import annotations

from django.db.models import QuerySet

from summaries.models import Job


def job_list(*, status: str | None = None, kind: str | None = None) -> QuerySet[Job]:
    """Jobs, newest first; ``status=failed`` is the dead-letter queue."""
    jobs = Job.objects.order_by("-created_at", "-id")
    if status:
        jobs = jobs.filter(status=status)
    if kind:
        jobs = jobs.filter(kind=kind)
    return jobs
