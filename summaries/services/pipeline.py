"""Fetch → extract → summarise one input, using the cache where it can.

Used by the Celery worker (through services.jobs) and by
``manage.py summarize``. Knows nothing of jobs or their states.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from summaries import cache
from summaries.errors import JobError
from summaries.extraction import extract_article, unavailable_reason
from summaries.fetching import fetch_page
from summaries.inputs import TEXT, NormalizedInput, normalize_text
from summaries.services.config import fetch_policy, summarizer

# How long a job waits for another job that is summarising the same article
# text (two URLs, one article) before it calls the AI itself.
CONTENT_WAIT_SECONDS = 20.0


@dataclass
class Outcome:
    summary: str
    tags: list[str]
    cached: bool
    content_key: str = ""
    final_url: str = ""
    title: str = ""
    extracted_text: str = ""


def _no_stage(stage: str) -> None:
    return None


def run(
    item: NormalizedInput,
    *,
    key: str,
    job_id: str,
    refresh: bool = False,
    use_cache: bool = True,
    on_stage: Callable[[str], None] = _no_stage,
) -> Outcome:
    """Summarise ``item``; raises JobError (transient or permanent)."""
    if use_cache and not refresh and (hit := cache.get_summary(key)):
        return Outcome(hit["summary"], hit["tags"], cached=True)
    if item.kind == TEXT:
        on_stage("summarizing")
        result = summarizer().summarize(item.value)
        return Outcome(result.summary, result.tags, cached=False)

    on_stage("fetching")
    page = fetch_page(item.value, fetch_policy())
    on_stage("extracting")
    article = extract_article(page.html, url=page.final_url)
    if reason := unavailable_reason(page.html, article):
        raise JobError(f"no article to summarise: {reason}", code="content_unavailable")
    # Different URLs with the same article text share one summary: the
    # secondary key is the one a text submission of that article would get.
    content_key = NormalizedInput(TEXT, normalize_text(article.text)).cache_key(
        summarizer().cache_namespace
    )
    outcome = _content_summary(content_key, job_id, wait=use_cache and not refresh)
    if outcome is None:
        try:
            outcome = _summarize_article(article.text, article.title, on_stage)
        except JobError:
            if use_cache:
                cache.release_inflight(content_key, job_id)
            raise
    outcome.content_key = content_key
    outcome.final_url = page.final_url
    outcome.title = article.title or ""
    outcome.extracted_text = article.text
    return outcome


def _summarize_article(text: str, title: str | None, on_stage: Callable[[str], None]) -> Outcome:
    on_stage("summarizing")
    result = summarizer().summarize(text, title=title)
    return Outcome(result.summary, result.tags, cached=False)


def _content_summary(content_key: str, job_id: str, *, wait: bool) -> Outcome | None:
    """A cached summary of the same article text, if there is or soon will be one."""
    if not wait:
        return None
    deadline = time.monotonic() + CONTENT_WAIT_SECONDS
    while True:
        if hit := cache.get_summary(content_key):
            return Outcome(hit["summary"], hit["tags"], cached=True)
        if cache.claim_inflight(content_key, job_id, ttl=settings.INFLIGHT_TTL):
            return None  # ours to compute
        owner = cache.inflight_owner(content_key)
        if owner in (None, job_id) or time.monotonic() > deadline:
            return None
        time.sleep(0.2)


def store(key: str, outcome: Outcome, *, job_id: str) -> None:
    """Cache the result under the input's key and, for URLs, the content key."""
    payload = {"job_id": job_id, "summary": outcome.summary, "tags": outcome.tags}
    cache.set_summary(key, payload, ttl=settings.CACHE_TTL)
    if outcome.content_key:
        cache.set_summary(outcome.content_key, payload, ttl=settings.CACHE_TTL)
        cache.release_inflight(outcome.content_key, job_id)

