"""The app's exceptions, in one place. Each carries what its handler needs:
the API turns the input and capacity errors into JSON errors
(summaries/api/errors.py); the worker turns JobError into a failed or
retried job (summaries/services/jobs.py, summaries/tasks.py)."""

from __future__ import annotations

import random


class JobError(Exception):
    """A failure while processing a job.

    ``code`` is the machine code shown to clients (``fetch_timeout``,
    ``ai_unavailable`` ...). ``transient`` says whether trying again later may
    succeed (timeouts, 429, 5xx); permanent errors fail the job at once.
    """

    def __init__(self, message: str, *, code: str = "job_error", transient: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.transient = transient
        # The provider said when to come back (a 429's Retry-After/RetryInfo).
        self.retry_after = retry_after

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}({self.message!r}, code={self.code!r}, transient={self.transient})"


def backoff(attempt: int, *, base: float, cap: float) -> float:
    """Seconds before try ``attempt + 1``: exponential (``base`` x 2^(attempt-1)),
    capped at ``cap``, jittered down to half so retries do not come back at once."""
    return float(min(cap, base * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0))


class RetryLater(Exception):
    """A transient failure of one attempt: the task runs again after ``delay`` seconds."""

    def __init__(self, error: JobError, *, delay: float) -> None:
        super().__init__(error.message)
        self.error = error
        self.delay = delay


class JobFailed(Exception):
    """The job failed for good and its row says so: raised out of the task so
    Celery records FAILURE (Flower counts it, and sends task-failed). An
    expected outcome (the task's ``throws``): acked, logged in one line."""


class QuotaWait(Exception):
    """The shared AI quota is used up for ``delay`` seconds: the job steps
    aside (rescheduled, its attempt not counted) instead of waiting."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"AI quota used up for {delay:.1f}s")
        self.delay = delay


class InvalidInput(ValueError):
    """The input cannot be summarised (400); ``code`` is the API error code."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class InputTooLarge(Exception):
    """The input is over MAX_INPUT_CHARS (413)."""


class Busy(Exception):
    """Could not settle on a job for this input right now; try again (503)."""


class NotRetryable(Exception):
    """Only failed jobs can be retried (409); ``status`` is the job's."""

    def __init__(self, status: str, reason: str = "") -> None:
        super().__init__(reason or f"job is {status}; only failed jobs can be retried")
        self.status = status
