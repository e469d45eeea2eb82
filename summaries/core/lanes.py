"""The broker's lanes: the Celery queues every worker consumes (the
settings' CELERY_TASK_QUEUES are built from this enum), one name each."""

from __future__ import annotations

from enum import StrEnum


class Lane(StrEnum):
    INTERACTIVE = "celery"  # single submits (Celery's default queue)
    BULK = "bulk"  # batch items and watches: never ahead of a single submit
    WEBHOOKS = "webhooks"  # webhook deliveries, apart from the summarising


# The lanes a job's message is sent on (its row's ``queue``).
JOB_LANES = (Lane.INTERACTIVE, Lane.BULK)
