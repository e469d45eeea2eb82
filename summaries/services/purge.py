"""Purging cached summaries (operators: the API's cache endpoints, the admin):
every variant of an input, or the one under a cache key, so no process
serves it again."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from summaries.core.errors import ErrorCode, InputTooLarge, InvalidInput
from summaries.core.forms import Form
from summaries.core.inputs import URL, NormalizedInput, normalize_input
from summaries.infra import cache, local_cache
from summaries.infra.database import lock_input
from summaries.models import Job
from summaries.services import near_duplicates
from summaries.services.config import cache_namespace
from summaries.services.pipeline import article_key

CACHE_KEY = re.compile(r"[0-9a-f]{64}")
# PostgreSQL's lock table holds max_locks_per_transaction (64) per connection
# on average: a purge's advisory locks stay well within it.
PURGE_LOCKS_PER_TRANSACTION = 32


@dataclass(frozen=True)
class Purge:
    cache_key: str
    deleted: bool  # a cached summary was removed (of any variant purged)
    jobs: int  # completed job rows that will no longer re-cache a purged variant


def purge_input(*, raw: str) -> Purge:
    """Purge every cached variant of ``raw``, normalised and keyed exactly as
    a submit of it is (submit.summary_request): its plain summary and each one its
    job rows say was made for it (asked in another language or form, made
    by another summariser), each as ``purge_key`` does. Nothing is fetched or
    summarised, so neither the URL policy nor the two-sentence rule applies.
    Raises InvalidInput (400) and InputTooLarge (413)."""
    if len(raw) > settings.MAX_INPUT_CHARS:
        raise InputTooLarge(f"input is {len(raw)} characters; the limit is "
                            f"{settings.MAX_INPUT_CHARS}")
    item = normalize_input(raw)
    key = item.cache_key(cache_namespace())
    return _purge(key, {key} | _variant_keys(item))


def _variant_keys(item: NormalizedInput) -> set[str]:
    """The keys the job rows of ``item`` were made under, whatever language,
    form and summariser: a language variant's key cannot be derived from the
    input alone (any region or script tag may be asked). A URL's rows are
    found through the indexed url column; a text's by its input (a scan, for
    an operator's rare action)."""
    rows = Job.objects.filter(kind=item.kind)
    rows = rows.filter(url=item.value) if item.kind == URL else rows.filter(input_text=item.value)
    return set(rows.values_list("input_hash", flat=True).distinct())


def purge_key(*, key: str) -> Purge:
    """Purge the one cached variant under ``key`` (a key names one input in
    one language, as a submit's X-Cache-Key does; ``purge_input`` purges them
    all). Raises InvalidInput for a key that is not 64 lowercase hex digits."""
    if not CACHE_KEY.fullmatch(key):
        raise InvalidInput("a cache key is 64 lowercase hex digits",
                           code=ErrorCode.INVALID_CACHE_KEY)
    return _purge(key, {key})


def _purge(key: str, keys: set[str]) -> Purge:
    """Make sure no process serves the summaries under ``keys`` again: the
    entries go, with a URL's article-text entries and its remembered fetch
    failure (so its next job fetches and summarises anew), and every
    process's in-memory copy through the invalidation channel; the completed
    rows are marked purged so a submit does not re-cache them
    (submit._active_or_completed). A purged summary is no longer shared as a
    near-duplicate's (its jobs leave the index, services/near_duplicates.py),
    and the answers that shared it are purged with it (the rows naming it in
    near_duplicate_of, under their own keys). A job still running is left
    alone: what it stores is new. Idempotent."""
    requested = keys
    keys = keys | _shared_from(keys)
    # Under each input's lock, as a submit's look-and-recache is: a submit
    # either re-cached before the rows were marked (the delete below removes
    # it) or looks after, and finds them purged. Locks are taken in one order
    # (no deadlock between purges), a bounded number per transaction (an
    # input asked in many languages has as many keys).
    ordered = sorted(keys)
    content_keys: set[str] = set()
    indexed: list[Job] = []
    jobs = 0
    for start in range(0, len(ordered), PURGE_LOCKS_PER_TRANSACTION):
        chunk = ordered[start:start + PURGE_LOCKS_PER_TRANSACTION]
        with transaction.atomic():
            for each in chunk:
                lock_input(each)
            rows = Job.objects.filter(input_hash__in=chunk, status=Job.Status.COMPLETED,
                                      purged_at__isnull=True)
            content_keys.update(article_key(text, provider, language or None, Form(style, length))
                                for text, provider, language, style, length in
                                rows.filter(kind=URL).exclude(extracted_text="")
                                .values_list("extracted_text", "provider", "language",
                                             "style", "length"))
            indexed.extend(rows.filter(near_duplicate_of__isnull=True).only(
                "id", "kind", "provider", "language", "style", "length", "input_text",
                "source_text", "extracted_text"))
            jobs += rows.update(purged_at=timezone.now())
    near_duplicates.forget(indexed)
    removed = cache.purge(keys | content_keys)
    for each in keys | content_keys:  # this process at once; the others hear the announcements
        local_cache.forget(each)
    return Purge(key, bool(removed & requested), jobs)


def _shared_from(keys: set[str]) -> set[str]:
    """The keys of the answers that shared a summary made under ``keys``
    (near-duplicates: their rows name its job in near_duplicate_of)."""
    made = Job.objects.filter(input_hash__in=keys, status=Job.Status.COMPLETED,
                              purged_at__isnull=True).values("id")
    return set(Job.objects.filter(near_duplicate_of__in=made, purged_at__isnull=True)
               .values_list("input_hash", flat=True).distinct())
