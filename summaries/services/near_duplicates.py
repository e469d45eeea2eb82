"""Near-duplicates share one summary: a text (or a page's article) nearly the
same as one already summarised for the same request is answered with that
summary, without an AI call.

The whole story, in order:

1. Only a real AI summary is indexed (``index``, queued in the batch that
   caches it: services/pipeline.py's ``store``): its text's LSH bands
   (summaries.similarity) within its *variant* (the summariser's namespace,
   the requested language and form; ``variant``) point at its job id
   (infra/near_index.py). A near-duplicate's own answer, a cache hit, a
   store:false job and a summary made before NEAR_DUPLICATES was on are not.
2. A miss looks up candidates (``find``): a text at submit
   (services/submit.py, so a syndicated text answers 200 ``X-Cache: NEAR``
   at once), a URL in the worker once its article is extracted (a page's
   text is known only there). A candidate is its completed job row: not
   purged, not store:false, made by this summariser, within CACHE_TTL and the
   submit's max_age. Its text is the row's (the extracted article, or the
   submitted text with its line breaks: ``source_lines``).
3. ``similarity.confirm`` decides on the two texts (same language, shingle
   Jaccard ≥ 0.50, no fact differs): the row's summary and tags are shared,
   and the job that shares them names it in ``near_duplicate_of``.
4. A text job is indexed as it is created (``index_now``, services/submit.py),
   under the bands and variant its completion indexes again (idempotent;
   the submit's lookup already made its signature: ``_bands`` keeps the
   last few). A text submit's lookup (``find(in_flight=True)``) may then
   confirm a candidate still in flight (pending or processing: running, or
   waiting in the batch lane; a text, store true, this summariser, not
   purged): an ``in_flight`` match, which the submit joins as it joins the
   same input in flight (services/submit.py). A copy that comes while its
   original is being made is never paid for twice.

Off for everyone with NEAR_DUPLICATES=off, per request with
``"near_duplicates": false``; a refresh never shares. A failed lookup
(Valkey) is no answer: the input is summarised as before.
"""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

import redis
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from summaries.core.forms import DEFAULT_FORM, Form
from summaries.core.inputs import normalize_text
from summaries.core.language import detect_language
from summaries.infra import near_index
from summaries.models import Job
from summaries.similarity import confirm, fingerprint, lsh_bands

logger = logging.getLogger(__name__)

# Candidates confirmed per lookup, best first: a copy shares most of its
# bands with its original, so it ranks first; the bound caps the CPU a miss
# may spend confirming (each check aligns two texts).
CANDIDATES = 3
# A candidate whose signature agrees with the text's on fewer of its values
# (the MinHash estimate of their Jaccard) is not read nor checked: the check
# needs 0.50, and 128 values estimate a Jaccard of 0.50 below 0.35 about
# once in 3,000 (3.4 standard deviations). Texts written from one template
# (bench/throughput.py's: at most 0.32) share bands by chance and stop here.
PREFILTER = 0.35


def enabled() -> bool:
    return bool(settings.NEAR_DUPLICATES)


@dataclass(frozen=True)
class Request:
    """What a job asks of the lookup: ``max_age`` (seconds) bounds the age
    of a summary it may share; ``source``: a text job's input with its line
    breaks ("" for the normalised input); ``look``: a text job looks too."""

    max_age: int | None = None
    source: str = ""
    # A text job looks in the worker too: a scheduled one (run_at), which
    # was not looked up at submit (its copy may have been made meanwhile).
    look: bool = False


@dataclass(frozen=True)
class Indexable:
    """A text whose summary is being made, to index once it is stored."""

    variant: str
    text: str


@dataclass(frozen=True)
class Match:
    """A confirmed near-duplicate: the job whose summary is shared, that
    summary, and when it was made (epoch seconds)."""

    job_id: str
    summary: str
    tags: list[str]
    made_at: float
    jaccard: float
    # The job is still in flight (no summary yet): join it.
    in_flight: bool = False


def variant(namespace: str, language: str | None, form: Form = DEFAULT_FORM) -> str:
    """The request variant a summary was made for: two texts share a summary
    only within one (the language is the one the key holds: None for the
    text's own; the form, style and length, unless the default)."""
    asked = f"{namespace}|{language or '-'}"
    return asked if form.is_default else f"{asked}|{form.style}/{form.length}"


def source_lines(raw: str) -> str:
    """``raw`` with each line normalised as a text input is and its line
    breaks kept ("" when it has one line: the normalised input says it all).
    The check needs them: a headline or byline without a full stop is told
    from the story only by its line end (bench/neardup.py: recall 0.995 with
    them, 0.731 with whitespace collapsed)."""
    lines = [line for line in (normalize_text(part) for part in raw.splitlines()) if line]
    return "\n".join(lines) if len(lines) > 1 else ""


@functools.lru_cache(maxsize=16)
def _bands(text: str) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """The text's MinHash signature and its band keys without the version
    prefix near_index adds (none for a text too short to match). The last
    few are kept: a submit's lookup and the index of the job it creates
    read the same text, and its MinHash is the costly part (1-2 ms)."""
    signature = fingerprint(text).signature
    return signature, tuple(key.split(":", 1)[1] for key in lsh_bands(signature))


def _hex(signature: tuple[int, ...]) -> str:
    return b"".join(value.to_bytes(4, "big") for value in signature).hex()


def _agreement(signature: tuple[int, ...], stored: str) -> float:
    """The share of equal values: the MinHash estimate of the two texts' Jaccard
    (1.0 when the signature is unknown: the check decides)."""
    try:
        other = bytes.fromhex(stored)
    except ValueError:
        return 1.0
    if len(other) != 4 * len(signature):
        return 1.0
    equal = sum(value == int.from_bytes(other[4 * i:4 * i + 4], "big")
                for i, value in enumerate(signature))
    return equal / len(signature)


def find(text: str, *, variant: str, namespace: str, max_age: int | None = None,
         in_flight: bool = False) -> Match | None:
    """The earlier summary ``text`` may share, if a candidate is confirmed;
    ``in_flight``: a text job still in flight (pending or processing) is a
    candidate too (an ``in_flight`` match: its summary is not made yet)."""
    signature, bands = _bands(text)
    if not bands:
        return None  # too short to match (and cheap to summarise)
    try:
        found = near_index.candidates(variant, bands, limit=CANDIDATES)
    except redis.RedisError as exc:
        logger.warning("near-duplicate lookup skipped (Valkey: %s)", exc)
        return None
    ids = [member for member, stored in found
           if _is_uuid(member) and _agreement(signature, stored) >= PREFILTER]
    if not ids:
        return None
    window = settings.CACHE_TTL if max_age is None else min(settings.CACHE_TTL, max_age)
    usable = Q(status=Job.Status.COMPLETED,
               completed_at__gte=timezone.now() - timedelta(seconds=window))
    if in_flight:
        usable |= Q(status__in=Job.ACTIVE, kind=Job.Kind.TEXT)
    rows = {str(row.id): row for row in Job.objects.filter(
        usable, id__in=ids, purged_at__isnull=True, store=True,
        near_duplicate_of__isnull=True, provider=namespace,
    ).only("id", "kind", "status", "summary", "tags", "completed_at", "input_text",
           "source_text", "extracted_text")}
    language = detect_language(text)
    for job_id in ids:
        row = rows.get(job_id)
        done = row is not None and row.status == Job.Status.COMPLETED
        if row is None or (done and row.completed_at is None) or not (earlier := _text_of(row)):
            continue
        verdict = confirm(earlier, text, language_a=detect_language(earlier),
                          language_b=language)
        if verdict.same and done and row.completed_at is not None:
            return Match(job_id, row.summary, list(row.tags), row.completed_at.timestamp(),
                         verdict.jaccard)
        if verdict.same:
            return Match(job_id, "", [], 0.0, verdict.jaccard, in_flight=True)
    return None


def _is_uuid(member: str) -> bool:
    try:
        uuid.UUID(member)
    except ValueError:
        return False
    return True


def _text_of(row: Job) -> str:
    if row.kind == Job.Kind.URL:
        return row.extracted_text
    return row.source_text or row.input_text


def index(job_id: str, indexable: Indexable, *, pipe: redis.client.Pipeline) -> None:
    """Queue ``job_id`` into the index under its text's bands (``pipe``: the
    cache server's part of the batch that caches its summary)."""
    signature, bands = _bands(indexable.text)
    near_index.add(indexable.variant, bands, job_id, _hex(signature), ttl=settings.CACHE_TTL,
                   pipe=pipe)


def index_now(job_id: str, indexable: Indexable) -> None:
    """Index ``job_id`` now (a text job just created: a copy submitted while
    it is made joins it); its completion indexes it again, the same way.
    Best effort: without Valkey, copies are summarised on their own."""
    pipe = near_index.pipeline()
    index(job_id, indexable, pipe=pipe)
    try:
        pipe.execute()
    except redis.RedisError as exc:
        logger.warning("near-duplicate index of new job %s skipped (Valkey: %s)",
                       job_id, exc)


def forget(rows: list[Job]) -> None:
    """Take purged jobs out of the index, so their summaries are no longer
    shared (the reader skips purged rows too: this keeps the sets clean).
    ``rows``: completed jobs with kind, provider, language and their text."""
    entries = []
    for row in rows:
        text = _text_of(row)
        if text:
            language = row.language or None
            if row.kind == Job.Kind.URL:
                language = content_language(text, language)
            entries.append((variant(row.provider, language, Form(row.style, row.length)),
                            _bands(text)[1], str(row.id)))
    if entries:
        near_index.remove(entries)


def content_language(text: str, language: str | None) -> str | None:
    """The language a page's article text is keyed with when asked in
    ``language``: none when it is the text's own (a plain request)."""
    if language is not None and detect_language(text) == language:
        return None
    return language
