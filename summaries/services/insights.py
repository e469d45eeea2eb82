"""Failure insights: recent failed jobs grouped by error code, with what to do.

Read from the job table (the source of truth): a job counts under the code of
its current failure, so a failed job retried since is no longer counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Max
from django.utils import timezone

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
INVESTIGATE = "A bug or an unknown failure: read the worker's log for this job id."

# Error codes (summaries/core/errors.py, providers/gemini.py, fetching, services/jobs.py)
# and the action that helps.
ACTIONS: dict[str, str] = {
    "ai_rate_limited": PROVIDER_QUOTA,
    "ai_quota": PROVIDER_QUOTA,
    "ai_timeout": RETRY_LATER,
    "ai_unavailable": RETRY_LATER,
    "job_timeout": RETRY_LATER,
    "too_many_attempts": RETRY_LATER,
    "valkey_unavailable": RETRY_LATER,
    "database_unavailable": RETRY_LATER,
    "fetch_timeout": RETRY_LATER + " If it persists, the site is down or too slow.",
    "ai_rejected": CHECK_CONFIG,
    "ai_blocked": FIX_INPUT + " The provider's safety filters blocked it.",
    "ai_bad_output": FIX_INPUT + " The model could not summarise it within the contract.",
    "input_too_short": FIX_INPUT,
    "unstorable_result": FIX_INPUT,
    "blocked_destination": FIX_INPUT + " The URL points at a private or forbidden address.",
    "blocked_url": FIX_INPUT + " The URL points at a private or forbidden address.",
    "invalid_input": FIX_INPUT,
    "empty_input": FIX_INPUT,
    "superseded": "Nothing: a newer job for the same input replaced this one.",
    "too_large": FIX_INPUT + " The page is over FETCH_MAX_BYTES.",
    "unsupported_content": FIX_INPUT + " The URL is not an HTML page.",
    "too_many_redirects": FIX_INPUT + " The URL redirects in a loop or too often.",
    "http_error": SITE_BLOCKS,
    "fetch_failed": SITE_BLOCKS,
    "content_unavailable": SITE_BLOCKS,
    "internal_error": INVESTIGATE,
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
