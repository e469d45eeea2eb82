"""A submit's callback: its URL, checked at submit as a page URL is, and the
watch whose change made the job (services/webhooks.py delivers to it)."""

from __future__ import annotations

from dataclasses import dataclass

from summaries.core import canonical_urls
from summaries.core.errors import ErrorCode, InvalidInput, JobError
from summaries.fetching import check_submit_url
from summaries.services.config import fetch_policy


@dataclass(frozen=True)
class Callback:
    """Where to deliver a job's status: a URL checked by check_callback_url,
    and the watch whose change made the job, if any."""

    url: str
    watch_id: str | None = None


def check_callback_url(url: str) -> str:
    """A callback URL as we will call it, checked as a page URL is at
    submit: http(s), no credentials, not an IP literal (in any form) or a
    ``localhost`` name the address policy refuses. Its query is kept whole
    (no tracking parameter is the receiver's business to lose). Names are
    resolved and checked at every delivery, not here (no DNS in the
    request). Raises InvalidInput: ``invalid_callback_url`` or
    ``blocked_callback_url``."""
    try:
        parsed = canonical_urls.parse_url(url.strip())
    except canonical_urls.InvalidURL as exc:
        raise InvalidInput(f"callback_url: {exc.message}", code=_callback_code(exc.code)) from None
    canonical, host = parsed.url, parsed.host
    if len(canonical) > canonical_urls.MAX_URL_CHARS:
        raise InvalidInput(f"callback_url: longer than {canonical_urls.MAX_URL_CHARS} characters",
                           code=ErrorCode.INVALID_CALLBACK_URL)
    if host == "localhost" or host.endswith(".localhost"):  # loopback by definition (RFC 6761)
        raise InvalidInput("callback_url: localhost is not a destination we call",
                           code=ErrorCode.BLOCKED_CALLBACK_URL)
    try:
        check_submit_url(canonical, fetch_policy())
    except JobError as exc:
        raise InvalidInput(f"callback_url: {exc.message}", code=_callback_code(exc.code)) from None
    return canonical


def _callback_code(code: ErrorCode) -> ErrorCode:
    return (ErrorCode.INVALID_CALLBACK_URL if code == ErrorCode.INVALID_URL
            else ErrorCode.BLOCKED_CALLBACK_URL)
