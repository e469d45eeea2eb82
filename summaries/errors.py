"""Errors that end or delay a job, each with a machine-readable code."""

from __future__ import annotations


class JobError(Exception):
    """A failure while processing a job.

    ``code`` is the machine code shown to clients (``fetch_timeout``,
    ``ai_unavailable`` ...). ``transient`` says whether trying again later may
    succeed (timeouts, 429, 5xx); permanent errors fail the job at once.
    """

    def __init__(self, message: str, *, code: str = "job_error", transient: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.transient = transient

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}({self.message!r}, code={self.code!r}, transient={self.transient})"
