"""The summariser and fetch policy this process uses, built once from settings.

What keys the cache (``cache_namespace``, ``translates``) comes from the
settings alone: the web computes keys for every submit but never summarises,
so it never builds the provider nor imports its SDK (tens of MiB per process,
bench/idle_memory.py). tests/test_config.py checks both agree with the
provider the workers build."""

from __future__ import annotations

from functools import cache

from django.conf import settings

from summaries.fetching import FetchPolicy
from summaries.infra import runtime
from summaries.providers import LocalProvider, Provider, build_provider
from summaries.providers.common import ai_cache_namespace


def _build_summarizer() -> Provider:
    return build_provider(
        settings.SUMMARIZER,
        gemini_api_key=settings.GEMINI_API_KEY,
        gemini_model=settings.GEMINI_MODEL,
        gemini_base_url=settings.GEMINI_BASE_URL,
        gemini_timeout_s=settings.GEMINI_TIMEOUT,
        openai_api_key=settings.OPENAI_API_KEY,
        openai_model=settings.OPENAI_MODEL,
        openai_base_url=settings.OPENAI_BASE_URL,
        openai_timeout_s=settings.OPENAI_TIMEOUT,
        max_response_bytes=settings.AI_MAX_RESPONSE_BYTES,
    )


# Built exactly once per process (a runtime slot): ``functools.cache`` may run
# a function twice when threads race on the first call, and each extra
# provider would make its own client.
_SUMMARIZER = runtime.slot("provider", _build_summarizer)


def summarizer() -> Provider:
    """This process's summary provider: one instance, built on first use and
    shared by every thread (providers are thread-safe; the Gemini one keeps a
    single long-lived SDK client per process)."""
    return _SUMMARIZER.get()


def cache_namespace() -> str:
    """``summarizer().cache_namespace``, without building the provider."""
    if settings.SUMMARIZER == "gemini":
        return ai_cache_namespace("gemini", settings.GEMINI_MODEL)
    if settings.SUMMARIZER == "openai":
        return ai_cache_namespace("openai", settings.OPENAI_MODEL)
    return LocalProvider().cache_namespace


def provider_model() -> tuple[str, str]:
    """(``summarizer().name``, ``summarizer().model``), without building the provider."""
    if settings.SUMMARIZER == "gemini":
        return "gemini", settings.GEMINI_MODEL
    if settings.SUMMARIZER == "openai":
        return "openai", settings.OPENAI_MODEL
    return "local", LocalProvider().model


def translates() -> bool:
    """``summarizer().translates``, without building the provider: the AI
    providers write in the language asked for, the offline one cannot."""
    return settings.SUMMARIZER != "local"


@cache
def fetch_policy() -> FetchPolicy:
    return FetchPolicy(
        allowed_networks=FetchPolicy.parse_networks(settings.FETCH_ALLOWED_NETWORKS),
        total_timeout=settings.FETCH_TIMEOUT,
        max_bytes=settings.FETCH_MAX_BYTES,
        max_document_bytes=settings.DOCUMENT_MAX_BYTES,
        max_redirects=settings.FETCH_MAX_REDIRECTS,
    )
