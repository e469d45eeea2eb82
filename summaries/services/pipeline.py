"""Fetch → extract → summarise one input, using the cache where it can.

Used by the Celery worker (through services.jobs) and by
``manage.py summarize``. Knows nothing of jobs or their states: ``holder`` is
an opaque id under which it may hold the in-flight marker of an article's
content (services/inflight.py), released by ``store`` or on failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from summaries.core.errors import ErrorCode, JobError
from summaries.core.forms import DEFAULT_FORM, Form
from summaries.core.inputs import DOCUMENT, TEXT, NormalizedInput, normalize_text
from summaries.core.tokens import Usage, add_usage, estimate_tokens, estimated
from summaries.extraction import Article, extract_article, unavailable_reason
from summaries.fetching import FetchedPage, fetch_page
from summaries.infra import cache
from summaries.models import Job
from summaries.observability import counters
from summaries.providers import clean_text
from summaries.services import (
    ai_quota,
    batching,
    costs,
    document_text,
    inflight,
    long_texts,
    near_duplicates,
)
from summaries.services.config import fetch_policy, summarizer


@dataclass
class Outcome:
    summary: str
    tags: list[str]
    cached: bool
    content_key: str = ""
    final_url: str = ""
    title: str = ""
    extracted_text: str = ""
    # When a summary taken from the cache was made (epoch seconds), so storing
    # it again does not make it look new to a submit's max_age.
    cached_at: float | None = None
    # The AI tokens this attempt's calls took (None: no call answered).
    usage: Usage | None = None
    # A summary taken from the cache: what it cost when it was made (None
    # when its entry does not say).
    made: counters.Made | None = None
    # A near-duplicate's summary: the job that made it (services/near_duplicates.py).
    near_duplicate_of: str = ""
    # A summary made now by the AI: its text, to index once stored.
    indexable: near_duplicates.Indexable | None = None


def from_cache(hit: dict[str, Any]) -> Outcome:
    """The outcome of a summary found in the cache."""
    made = hit.get("cached_at")
    return Outcome(hit["summary"], hit["tags"], cached=True,
                   cached_at=made if isinstance(made, (int, float)) else None,
                   made=counters.made_from(hit))


def _no_stage(stage: str) -> None:
    return None


def _no_parts(done: int, total: int) -> None:
    return None


def run(
    item: NormalizedInput,
    *,
    key: str,
    holder: str,
    refresh: bool = False,
    use_cache: bool = True,
    cache_checked: bool = False,
    on_stage: Callable[[str], None] = _no_stage,
    near: near_duplicates.Request | None = None,
    keep: bool = True,
    on_parts: Callable[[int, int], None] = _no_parts,
) -> Outcome:
    """Summarise ``item``; raises JobError (transient or permanent).
    ``cache_checked``: the caller has just looked ``key`` up in the cache and
    found nothing (services.jobs does, in the round trip renewing its marker).
    ``near``: a page's article may share a near-duplicate's summary, and a
    summary made here is indexed (None: neither; a text was looked up at
    submit, services/submit.py, and looks here only when ``near.look``: a
    scheduled one). ``keep``: False for a store:false job (a long document's
    parts are not cached either); ``on_parts(done, total)``: a long
    document's progress."""
    if use_cache and not refresh and not cache_checked and (hit := cache.get_summary(key)):
        return from_cache(hit)
    namespace = summarizer().cache_namespace
    if item.kind == TEXT:
        if near is not None and near.look and use_cache and not refresh and (
                match := near_duplicates.find(
                    near.source or item.value, variant=near_duplicates.variant(
                        namespace, item.language, item.form),
                    namespace=namespace, max_age=near.max_age)):
            return _shared(match)
        outcome = _summarize(item.value, on_stage, item.language, item.form)
        if near is not None:
            outcome.indexable = near_duplicates.Indexable(
                near_duplicates.variant(namespace, item.language, item.form),
                near.source or item.value)
        return outcome

    if item.kind == DOCUMENT:  # an upload: its bytes' row, read here in the worker
        on_stage(Job.Stage.EXTRACTING)
        final_url = ""
        article = document_text.uploaded(item.value, deadline=document_text.attempt_deadline())
    else:
        page, article = fetch_article(item.value, on_stage)
        final_url = page.final_url
    # Different URLs with the same article text share one summary: the
    # secondary key is the one a text submission of that article would get.
    language = near_duplicates.content_language(article.text, item.language)
    content_key = NormalizedInput(TEXT, normalize_text(article.text), language,
                                  item.form).cache_key(namespace)
    looking = use_cache and not refresh
    hit = inflight.await_content(content_key, holder) if looking else None
    match = None
    if not hit and looking and near is not None:
        try:
            match = near_duplicates.find(article.text, variant=near_duplicates.variant(
                namespace, language, item.form), namespace=namespace, max_age=near.max_age)
        except BaseException:
            inflight.release(content_key, holder)
            raise
    if hit:
        outcome = from_cache(hit)
    elif match:
        outcome = _shared(match)
    else:
        try:
            outcome = _summarize_long(article.text, on_stage, item.language, item.form,
                                      holder=holder, use_cache=looking, keep=keep,
                                      on_parts=on_parts)
        except BaseException:
            if use_cache:
                inflight.release(content_key, holder)
            raise
        if near is not None:
            outcome.indexable = near_duplicates.Indexable(
                near_duplicates.variant(namespace, language, item.form), clean_text(article.text))
    outcome.content_key = content_key
    outcome.final_url = final_url
    # Page text may hold what the database cannot store (NUL, lone surrogates).
    outcome.title = clean_text(article.title or "")
    outcome.extracted_text = clean_text(article.text)
    return outcome


def _shared(match: near_duplicates.Match) -> Outcome:
    """The outcome of a job answered with a near-duplicate's summary: no AI
    call, saving what that summary cost when its job made it."""
    return Outcome(match.summary, match.tags, cached=True, cached_at=match.made_at,
                   near_duplicate_of=match.job_id, made=costs.made_by(match.job_id))


def fetch_article(url: str, on_stage: Callable[[str], None] = _no_stage,
                  ) -> tuple[FetchedPage, Article]:
    """Fetch ``url`` (under the fetch policy) and extract its article, or a
    document's text (services/document_text.py); raises JobError,
    ``content_unavailable`` when the page holds none to summarise."""
    on_stage(Job.Stage.FETCHING)
    page = fetch_page(url, fetch_policy())
    on_stage(Job.Stage.EXTRACTING)
    page, document = document_text.fetched(page, deadline=document_text.attempt_deadline())
    if document is not None:
        return page, document
    article = extract_article(page.html, url=page.final_url)
    if reason := unavailable_reason(page.html, article):
        raise JobError(f"no article to summarise: {reason}", code=ErrorCode.CONTENT_UNAVAILABLE)
    return page, article


def article_key(text: str, namespace: str, language: str | None = None,
                form: Form = DEFAULT_FORM) -> str:
    """The key of a page's article text: the one a text submit of it (asked
    in ``language``, if given, and in ``form``) would get."""
    return NormalizedInput(TEXT, normalize_text(text), near_duplicates.content_language(
        text, language), form).cache_key(namespace)


def _summarize_long(text: str, on_stage: Callable[[str], None], language: str | None,
                    form: Form, *, holder: str, use_cache: bool, keep: bool,
                    on_parts: Callable[[int, int], None]) -> Outcome:
    """A page's or document's text: in parts (services/long_texts.py) when
    one AI call cannot take it all; the offline summariser reads it whole.
    The parts are summarised in the default form (their summaries are the
    reduce's input, not an answer); the reduce in the form asked."""
    if summarizer().name == "local" or not long_texts.needs_parts(text):
        return _summarize(text, on_stage, language, form)
    namespace = summarizer().cache_namespace
    paid: list[Usage | None] = [None]  # every part's and the reduce's calls: the job pays all

    def one(part: str) -> tuple[str, list[str]]:
        made = _summarize(part, on_stage, language)
        paid[0] = add_usage(paid[0], made.usage)
        return made.summary, made.tags

    def reduce(joined: str) -> tuple[str, list[str]]:
        made = _summarize(joined, on_stage, language, form)
        paid[0] = add_usage(paid[0], made.usage)
        return made.summary, made.tags

    try:
        summary, tags = long_texts.summarize_in_parts(
            text, summarize=one, reduce=reduce,
            key_of=lambda part: article_key(part, namespace, language),
            job_id=holder, use_cache=use_cache, keep=keep, on_parts=on_parts)
    except JobError as exc:  # the parts summarised before were paid too
        exc.usage = add_usage(exc.usage, paid[0])
        raise
    return Outcome(summary, tags, cached=False, usage=paid[0])


def _summarize(text: str, on_stage: Callable[[str], None],
               language: str | None = None, form: Form = DEFAULT_FORM) -> Outcome:
    """One AI call, within the provider's shared quota (raises QuotaWait when
    it is used up for longer than a moment). A short text may share its call
    with others waiting in this process (services/batching.py); one that was
    alone in its batch, or whose part of the batch answer was unusable, is
    then asked alone. Only ``text``, ``language`` and ``form`` reach the
    model (no page title): the result is cached under their key, for everyone."""
    provider = summarizer()
    shared: Usage | None = None  # batched calls that left this text to be asked alone
    if (batcher := batching.batcher_for(provider, text)) is not None:
        on_stage(Job.Stage.SUMMARIZING)
        batched, shared = batcher.summarize(text, language, form)  # the batch takes the quota
        if batched is not None:
            return Outcome(batched.summary, batched.tags, cached=False, usage=batched.usage)
    if provider.name != "local":  # the offline summariser costs nothing
        ai_quota.acquire(provider.cache_namespace, tokens=estimate_tokens(text))
    on_stage(Job.Stage.SUMMARIZING)
    try:
        result = provider.summarize(text, language=language, form=form)
    except JobError as exc:  # a blocked or broken answer was paid for too
        if exc.usage is not None:
            counters.record_ai_call(provider.name, provider.model, exc.usage, answered=False)
        exc.usage = add_usage(exc.usage, shared)
        raise
    # The provider's reported tokens; estimated when it reported none (the
    # offline summariser: estimated, at its price of 0).
    usage = result.usage or estimated(text, result.summary, result.tags)
    counters.record_ai_call(provider.name, provider.model, usage)
    return Outcome(result.summary, result.tags, cached=False, usage=add_usage(usage, shared))


def store(key: str, outcome: Outcome, *, job_id: str, holder: str, keep: bool = True,
          batch: cache.Batch | None = None, made: counters.Made | None = None) -> None:
    """Cache the result under the input's key and, for URLs, the content key;
    ``job_id`` is the job whose row holds it (every cached job_id resolves);
    ``made``: what the summary cost (a hit on it saves that much).
    ``keep=False`` (a store:false job) caches nothing, but still frees the
    content marker so jobs waiting on that article go on. ``batch``: queue
    the commands there (the caller executes it), else send them now."""
    own = batch is None
    batch = cache.batch() if batch is None else batch
    if keep:
        payload: dict[str, Any] = {"job_id": job_id, "summary": outcome.summary,
                                   "tags": outcome.tags}
        if made is not None:
            payload.update(made.as_payload())
        if outcome.near_duplicate_of:
            payload["near_duplicate_of"] = outcome.near_duplicate_of
        cache.set_summary(key, payload, ttl=settings.CACHE_TTL, cached_at=outcome.cached_at,
                          pipe=batch.cache)
        if outcome.content_key:
            cache.set_summary(outcome.content_key, payload, ttl=settings.CACHE_TTL,
                              cached_at=outcome.cached_at, pipe=batch.cache)
        if outcome.indexable is not None and not outcome.cached:
            near_duplicates.index(job_id, outcome.indexable, pipe=batch.cache)
    if outcome.content_key:
        inflight.release(outcome.content_key, holder, pipe=batch.main)
    if own:
        batch.execute()

