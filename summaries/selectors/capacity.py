"""Capacity planning by Little's law, L = λW: λ = jobs created per second over
the last WINDOW_MINUTES, W = mean processing time of the recent completed
jobs; L is the mean number of jobs in service, so the recommended worker
threads are L / TARGET_UTILIZATION (rounded up), in processes of
WORKER_CONCURRENCY threads. Part of /api/analytics (selectors/analytics.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from typing import TypedDict

from django.conf import settings
from django.utils import timezone

from summaries.models import Job

WINDOW_MINUTES = 15  # λ's window
TARGET_UTILIZATION = 0.7  # headroom for bursts: threads busy 70% of the time


class Capacity(TypedDict):
    window_minutes: int
    arrival_rate_per_s: float
    mean_processing_time_s: float
    jobs_in_service: float
    target_utilization: float
    threads_per_process: int
    recommended_threads: int
    recommended_processes: int


def percentile(ordered: Sequence[int], p: float) -> int:
    """The nearest-rank ``p``th percentile of ascending ``ordered`` (0 if empty)."""
    if not ordered:
        return 0
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def capacity(durations_ms: Sequence[int]) -> Capacity:
    """Worker threads the recent load needs, by Little's law (L = λW)."""
    since = timezone.now() - timedelta(minutes=WINDOW_MINUTES)
    arrivals = Job.objects.filter(created_at__gte=since).count()
    rate = arrivals / (WINDOW_MINUTES * 60)
    service_s = sum(durations_ms) / len(durations_ms) / 1000 if durations_ms else 0.0
    in_service = rate * service_s
    per_process = int(settings.CELERY_WORKER_CONCURRENCY)
    threads = max(1, math.ceil(in_service / TARGET_UTILIZATION))
    return Capacity(
        window_minutes=WINDOW_MINUTES,
        arrival_rate_per_s=round(rate, 4),
        mean_processing_time_s=round(service_s, 3),
        jobs_in_service=round(in_service, 3),
        target_utilization=TARGET_UTILIZATION,
        threads_per_process=per_process,
        recommended_threads=threads,
        recommended_processes=max(1, math.ceil(threads / per_process)),
    )
