"""The summariser and fetch policy this process uses, built once from settings."""

from __future__ import annotations

from functools import cache

from django.conf import settings

from summaries.fetching import FetchPolicy
from summaries.providers import Provider, build_provider


@cache
def summarizer() -> Provider:
    return build_provider(
        settings.SUMMARIZER,
        gemini_api_key=settings.GEMINI_API_KEY,
        gemini_model=settings.GEMINI_MODEL,
        gemini_base_url=settings.GEMINI_BASE_URL,
        gemini_timeout_s=settings.GEMINI_TIMEOUT,
    )


@cache
def fetch_policy() -> FetchPolicy:
    return FetchPolicy(
        allowed_networks=FetchPolicy.parse_networks(settings.FETCH_ALLOWED_NETWORKS),
        total_timeout=settings.FETCH_TIMEOUT,
        max_bytes=settings.FETCH_MAX_BYTES,
        max_redirects=settings.FETCH_MAX_REDIRECTS,
    )
