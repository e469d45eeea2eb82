"""Failure insights: recent failed jobs grouped by error code, with what to do.

Read from the job table (the source of truth): a job counts under the code of
its current failure, so a failed job retried since is no longer counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Max
from django.utils import timezone

from summaries.core.errors import ErrorCode
from summaries.models import Job

DEFAULT_HOURS = 24
MAX_HOURS = 24 * 30

RETRY_LATER = "Retry later: the failure was temporary (the retries ran out while it lasted)."
PROVIDER_QUOTA = ("Raise the AI provider's quota or lower AI_MAX_RPM / AI_MAX_TPM so the "
                  "workers stay under it; then retry the jobs.")
FIX_INPUT = "Fix the input: this input cannot be summarised as given; retrying will not help."
SITE_BLOCKS = ("The site blocks or does not serve fetching: submit the article's text "
               "instead of its URL.")
CHECK_CONFIG = "Check the configuration (API key, model name, provider settings), then retry."
FORBIDDEN_ADDRESS = " The URL points at a private or forbidden address."
INVESTIGATE = "A bug or an unknown failure: read the worker's log for this job id."

# Error codes of failed jobs and the action that helps.
ACTIONS: dict[str, str] = {
    ErrorCode.AI_RATE_LIMITED: PROVIDER_QUOTA,
    ErrorCode.AI_QUOTA: PROVIDER_QUOTA,
    ErrorCode.AI_TIMEOUT: RETRY_LATER,
    ErrorCode.AI_UNAVAILABLE: RETRY_LATER,
    ErrorCode.JOB_TIMEOUT: RETRY_LATER,
    ErrorCode.TOO_MANY_ATTEMPTS: RETRY_LATER,
    ErrorCode.VALKEY_UNAVAILABLE: RETRY_LATER,
    ErrorCode.DATABASE_UNAVAILABLE: RETRY_LATER,
    ErrorCode.FETCH_TIMEOUT: RETRY_LATER + " If it persists, the site is down or too slow.",
    ErrorCode.AI_REJECTED: CHECK_CONFIG,
    ErrorCode.AI_BLOCKED: FIX_INPUT + " The provider's safety filters blocked it.",
    ErrorCode.AI_BAD_OUTPUT: FIX_INPUT + " The model could not summarise it within the contract.",
    ErrorCode.INPUT_TOO_SHORT: FIX_INPUT,
    ErrorCode.UNSTORABLE_RESULT: FIX_INPUT,
    ErrorCode.BLOCKED_DESTINATION: FIX_INPUT + FORBIDDEN_ADDRESS,
    ErrorCode.BLOCKED_URL: FIX_INPUT + FORBIDDEN_ADDRESS,
    ErrorCode.INVALID_INPUT: FIX_INPUT,
    ErrorCode.EMPTY_INPUT: FIX_INPUT,
    ErrorCode.SUPERSEDED: "Nothing: a newer job for the same input replaced this one.",
    ErrorCode.TOO_LARGE: FIX_INPUT + " The page is over FETCH_MAX_BYTES.",
    ErrorCode.UNSUPPORTED_CONTENT: FIX_INPUT + " The URL is not an HTML page.",
    ErrorCode.TOO_MANY_REDIRECTS: FIX_INPUT + " The URL redirects in a loop or too often.",
    ErrorCode.HTTP_ERROR: SITE_BLOCKS,
    ErrorCode.FETCH_FAILED: SITE_BLOCKS,
    ErrorCode.CONTENT_UNAVAILABLE: SITE_BLOCKS,
    ErrorCode.INTERNAL_ERROR: INVESTIGATE,
}


@dataclass(frozen=True)
class FailureGroup:
    """The failures of one code: how many, the newest one, and what to do."""

    code: str
    count: int
    last_failed_at: str
    action: str
    example_job_id: str
    example_error: str
    example_url: str


def suggested_action(code: str) -> str:
    return ACTIONS.get(code, INVESTIGATE)


def failure_insights(*, hours: int = DEFAULT_HOURS) -> list[FailureGroup]:
    """Jobs that failed in the last ``hours`` hours, grouped by error code,
    the most frequent first (one query for the counts, one per group for its
    newest example)."""
    since = timezone.now() - timedelta(hours=hours)
    recent = Job.objects.filter(status=Job.Status.FAILED, completed_at__gte=since)
    counts = (recent.values("error_code").annotate(count=Count("id"), last=Max("completed_at"))
              .order_by("-count", "error_code"))
    groups = []
    for row in counts:
        code = row["error_code"] or "unknown"
        example = recent.filter(error_code=row["error_code"]).order_by("-completed_at").first()
        if example is None:  # retried between the two queries
            continue
        groups.append(FailureGroup(
            code=code, count=int(row["count"]), last_failed_at=row["last"].isoformat(),
            action=suggested_action(code), example_job_id=str(example.id),
            example_error=example.error, example_url=example.url,
        ))
    return groups
