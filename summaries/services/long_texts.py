"""Documents longer than one AI call takes: summarised in parts, then the
parts' summaries summarised (map-reduce).

The text is split on paragraph boundaries (then sentences, then, for a
sentence longer than a part, characters) into parts of at most
AI_MAX_INPUT_CHARS. Each part is summarised through the pipeline's normal
path and cached under its own key (the key a text submit of the part would
get), as soon as it is made: a retry after a killed worker, a re-upload or
the same document under another URL asks the AI only for the parts not yet
cached. The reduce call's input is the parts' summaries joined, one
paragraph each; its result is the document's summary, which the pipeline
caches under the document's content key like any article's.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings

from summaries.infra import cache

_PARAGRAPHS = re.compile(r"\n\s*\n|\n")
_SENTENCES = re.compile(r"(?<=[.!?])\s+")

Summarize = Callable[[str], tuple[str, list[str]]]
OnParts = Callable[[int, int], None]


def _no_parts(done: int, total: int) -> None:
    return None


def needs_parts(text: str) -> bool:
    return len(text) > settings.AI_MAX_INPUT_CHARS


def _pieces(text: str, limit: int) -> list[str]:
    pieces: list[str] = []
    for paragraph in _PARAGRAPHS.split(text):
        paragraph = paragraph.strip()
        if len(paragraph) <= limit:
            pieces += [paragraph] if paragraph else []
            continue
        for sentence in _SENTENCES.split(paragraph):
            while len(sentence) > limit:
                pieces.append(sentence[:limit])
                sentence = sentence[limit:]
            pieces += [sentence] if sentence.strip() else []
    return pieces


def split_parts(text: str, limit: int) -> list[str]:
    """``text`` in parts of at most ``limit`` characters, cut between
    paragraphs where possible, else between sentences; in order, nothing lost
    but the whitespace at the cuts."""
    parts: list[str] = []
    current = ""
    for piece in _pieces(text, limit):
        if current and len(current) + 1 + len(piece) > limit:
            parts.append(current)
            current = piece
        else:
            current = f"{current}\n{piece}" if current else piece
    if current:
        parts.append(current)
    return parts


def summarize_in_parts(text: str, *, summarize: Summarize, reduce: Summarize,
                       key_of: Callable[[str], str], job_id: str, use_cache: bool, keep: bool,
                       on_parts: OnParts = _no_parts) -> tuple[str, list[str]]:
    """(summary, tags) of a text over AI_MAX_INPUT_CHARS: each part from the
    cache (``use_cache``) or ``summarize`` (then cached under ``key_of(part)``
    with ``job_id``, unless not ``keep``: a store:false job caches nothing),
    then one ``reduce`` over the parts' summaries (the form asked). ``on_parts(done,
    total)`` reports progress. Raises what ``summarize`` raises: the parts
    made before stay cached for the next attempt."""
    limit = int(settings.AI_MAX_INPUT_CHARS)
    parts = split_parts(text, limit)
    on_parts(0, len(parts))
    summaries: list[str] = []
    for index, part in enumerate(parts):
        key = key_of(part)
        hit = cache.get_summary(key) if use_cache else None
        if hit is not None:
            summaries.append(str(hit["summary"]))
        else:
            summary, tags = summarize(part)
            if keep:
                cache.set_summary(key, {"job_id": job_id, "summary": summary, "tags": tags},
                                  ttl=settings.CACHE_TTL)
            summaries.append(summary)
        on_parts(index + 1, len(parts))
    joined = "\n\n".join(summaries)
    if len(joined) > limit:  # thousands of parts: their summaries in parts again
        return summarize_in_parts(joined, summarize=summarize, reduce=reduce, key_of=key_of,
                                  job_id=job_id, use_cache=use_cache, keep=keep)
    return reduce(joined)
