"""Job rows: made by hand, and watched as a worker moves them along."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from summaries.models import Job


def make_job(**fields: Any) -> Job:
    """A job row as a test describes it (a text job unless ``fields`` say
    otherwise); nothing is enqueued."""
    defaults: dict[str, Any] = {"kind": Job.Kind.TEXT, "input_hash": "a" * 64,
                                "input_text": "Some text. More."}
    return Job.objects.create(**{**defaults, **fields})


@dataclass(frozen=True)
class JobState:
    """What the row said at one moment (the fields a retry story touches)."""

    status: str
    stage: str
    attempts: int
    error_code: str
    started_at: datetime | None
    updated_at: datetime


def job_history(job_id: str, timeout: float = 30, interval: float = 0.01) -> list[JobState]:
    """Watch the job's row until it is completed or failed; return each
    distinct state seen, oldest first.

    States that last less than ``interval`` may be missed; the ones tests look
    for ("retrying", waiting out a backoff of 0.1 s or more) last longer.
    """
    history: list[JobState] = []
    deadline = time.monotonic() + timeout
    while True:
        state = JobState(**Job.objects.values(*JobState.__dataclass_fields__).get(id=job_id))
        if not history or history[-1] != state:
            history.append(state)
        if state.status in (Job.Status.COMPLETED, Job.Status.FAILED):
            return history
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {state.status}: {history}")
        time.sleep(interval)


def retries(history: list[JobState]) -> list[JobState]:
    """The states in which the job waited to be tried again, one per retry."""
    return [state for state in history if state.stage == "retrying"]
