"""Where a job stands: its place in the queue and an estimate of when it ends.

- ``queue_position`` (pending jobs only): 1 + the pending jobs of the same
  lane created before it, one COUNT on the job table. Workers take both
  lanes in turn, so it is the job's place in its own lane.
- ``eta_seconds``: seconds until the job is expected to finish.
  W = the mean processing time of the last RECENT completed jobs; C = the
  worker threads online (fresh worker heartbeats x WORKER_CONCURRENCY).
  A pending job at position p waits for ceil(p / C) rounds of W (the jobs
  ahead run C at a time, then its own): ``W * ceil(p / C)``. A processing
  job: ``W`` minus the time since its attempt started (0 once overdue).
  Unknown (absent) with no completed job to learn W from, or no worker
  online. It assumes the worker threads are the bottleneck; under a
  provider rate limit (AI_MAX_RPM) the real wait is longer.

W and C are read at most every FIGURES_SECONDS per process (one indexed
query and one SCAN of the heartbeat keys), so a status poll or an event
stream costs the COUNT only.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from redis.exceptions import RedisError

from summaries.infra import runtime
from summaries.models import Job
from summaries.observability import heartbeats

RECENT = 50
FIGURES_SECONDS = 5.0

class _Figures:
    """(read at, W seconds, threads online), read again every FIGURES_SECONDS
    (a runtime slot)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.read: tuple[float, float | None, int] | None = None


_FIGURES = runtime.slot("progress-figures", _Figures)


@dataclass(frozen=True)
class Progress:
    queue_position: int | None
    eta_seconds: int | None


def job_progress(job: Job) -> Progress:
    if job.status == Job.Status.PENDING:
        ahead = Job.objects.filter(status=Job.Status.PENDING, queue=job.queue,
                                   created_at__lt=job.created_at).count()
        position = ahead + 1
        service_s, threads = _service_figures()
        if service_s is None or threads <= 0:
            return Progress(position, None)
        return Progress(position, math.ceil(service_s * math.ceil(position / threads)))
    if job.status == Job.Status.PROCESSING and job.stage == Job.Stage.BATCHED:
        return Progress(None, None)  # at the provider's pace: its deadline says by when
    if job.status == Job.Status.PROCESSING:
        service_s, _ = _service_figures()
        if service_s is None:
            return Progress(None, None)
        started = job.started_at or job.updated_at
        elapsed = (timezone.now() - started).total_seconds()
        return Progress(None, max(0, math.ceil(service_s - elapsed)))
    return Progress(None, None)


def _service_figures() -> tuple[float | None, int]:
    """(W in seconds or None, worker threads online), cached per process."""
    figures = _FIGURES.get()
    now = time.monotonic()
    with figures.lock:
        if (read := figures.read) is not None and now - read[0] < FIGURES_SECONDS:
            return read[1], read[2]
    # Completed rows are written once, so updated_at is their completion time
    # (and the (status, updated_at) index serves the query).
    durations = list(Job.objects.filter(status=Job.Status.COMPLETED, duration_ms__isnull=False)
                     .order_by("-updated_at").values_list("duration_ms", flat=True)[:RECENT])
    service = sum(int(ms or 0) for ms in durations) / len(durations) / 1000 if durations else None
    try:
        threads = heartbeats.workers_online() * int(settings.CELERY_WORKER_CONCURRENCY)
    except RedisError:
        threads = 0
    with figures.lock:
        figures.read = (now, service, threads)
    return service, threads


def forget_figures() -> None:
    """Read W and C afresh next time (tests)."""
    figures = _FIGURES.get()
    with figures.lock:
        figures.read = None


class JobWithProgress:
    """A job as the status serializer reads it, with its progress: every
    attribute of the job, plus ``queue_position`` and ``eta_seconds`` (the
    serializer leaves out the ones that are None)."""

    def __init__(self, job: Job, progress: Progress) -> None:
        self._job = job
        self.queue_position = progress.queue_position
        self.eta_seconds = progress.eta_seconds

    def __getattr__(self, name: str) -> object:
        return getattr(self._job, name)


def with_progress(job: Job) -> JobWithProgress:
    return JobWithProgress(job, job_progress(job))
