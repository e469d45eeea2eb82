"""The offline summariser's tags (providers/local.py): names and noun phrases
of the text, scored by frequency and spread."""

from __future__ import annotations

from collections import Counter, defaultdict

from summaries.core.language import detect_language
from summaries.providers.contract import (
    MAX_TAG_CHARS,
)
from summaries.providers.local_words import Words

MAX_TAGS = 4
# English words after which a word is used as a verb ("to open", "they say").
_VERB_CONTEXT_WORDS = (
    "to will would can could should may might must shall not did does do don't doesn't didn't"
    " we you they who")
_VERB_CONTEXT = frozenset(_VERB_CONTEXT_WORDS.split())
# Verb forms ("confirmed", "announcing") make poor tags; nouns with these
# endings are let through by a name's capital letter or a phrase.
_VERB_ENDINGS = ("ed", "ing")


def extract_tags(sentences: list[str], *, words: Words | None = None) -> list[str]:
    """2-4 lower-case tags: names and noun phrases of the text.

    Candidates are content words (no stopwords, no common verbs, no word the
    text mostly uses as a verb), runs of two or three adjacent content words
    seen at least twice, and names (capitalised words inside a sentence,
    e.g. "Google Stadia"). Each is scored by frequency x spread (the share of
    the text's sections it occurs in), with a bonus for phrases and for names
    (none for a page's title words: the tags are cached under the text's
    key). Ties go to the term seen first. Each tag shows the surface form
    the text uses most (possessives dropped)."""
    words = words or Words(detect_language(" ".join(sentences[:40])))
    n = len(sentences)
    sections = max(1, min(5, n))
    counts: Counter[str] = Counter()
    spread: dict[str, set[int]] = defaultdict(set)
    surface: dict[str, Counter[str]] = defaultdict(Counter)
    first_seen: dict[str, int] = {}
    capitalised: Counter[str] = Counter()  # inside a sentence, written with a capital
    inside: Counter[str] = Counter()  # inside a sentence at all
    verbal: Counter[str] = Counter()  # after "to", a modal or a subject
    for i, sentence in enumerate(sentences):
        section = i * sections // n
        run: list[tuple[str, str]] = []  # (stem, surface) of adjacent content words
        previous = ""
        for position, token in enumerate(words.tokens(sentence)):
            word = token.lower()
            if words.english and previous in _VERB_CONTEXT:
                verbal[words.stem(word)] += 1
            previous = word
            if not words.is_content(word):
                run = []
                continue
            stem = words.stem(word)
            if position > 0:
                inside[stem] += 1
                if token[0].isupper():
                    capitalised[stem] += 1
            run.append((stem, word))
            for size in (1, 2, 3):
                if len(run) < size:
                    break
                part = run[-size:]
                if len({stem for stem, _ in part}) < size:
                    continue  # "cats cats" is no phrase
                term = " ".join(stem for stem, _ in part)
                first_seen.setdefault(term, len(first_seen))
                counts[term] += 1
                spread[term].add(section)
                surface[term][" ".join(w for _, w in part)] += 1
    names = {stem for stem, c in capitalised.items() if c * 2 > inside[stem]}
    scores: dict[str, float] = {}
    for term, count in counts.items():
        parts = term.split()
        if len(parts) > 1 and (count < 2 or parts[0] in words.verbs
                               or parts[-1] in words.verbs):
            continue  # seen once: a coincidence; "smith met": a clause, not a noun phrase
        if len(parts) == 1 and (term in words.verbs or (
                term not in names and not _noun_like(term, words, verbal, counts))):
            continue  # a verb, even capitalised ("Plan & Grow"), is no topic
        score = count * len(spread[term]) / sections
        if len(parts) > 1:
            score *= 1.5
        if names.intersection(parts):
            score *= 1.5
        scores[term] = score
    return _pick_tags(scores, surface, first_seen)


def _noun_like(stem: str, words: Words, verbal: Counter[str], counts: Counter[str]) -> bool:
    """Whether a single word may stand as a tag: not a common verb form, not
    used as a verb in this text, not an "-ed"/"-ing" form (English)."""
    if stem in words.verbs:
        return False
    return not (words.english and (stem.endswith(_VERB_ENDINGS)
                                   or verbal[stem] * 3 >= max(1, counts[stem])))


def _pick_tags(scores: dict[str, float], surface: dict[str, Counter[str]],
               order: dict[str, int]) -> list[str]:
    tags = _pick(scores, surface, order)
    if len(tags) < 2:
        # A phrase that spans all the content words ("cats purr") leaves no room
        # for a second tag: single words say as much.
        singles = {term: score for term, score in scores.items() if " " not in term}
        tags = _pick(singles, surface, order)
    return tags


def _pick(scores: dict[str, float], surface: dict[str, Counter[str]],
          order: dict[str, int]) -> list[str]:
    tags: list[str] = []
    covered: set[str] = set()
    best = 0.0
    for term in sorted(scores, key=lambda t: (-scores[t], order[t], t)):
        parts = term.split()
        if covered.intersection(parts):
            continue  # overlaps a chosen tag: "windmill" then "windmill project" says little
        if len(tags) >= 2 and scores[term] < best / 4:
            break  # weak extras add noise, not information
        tag = surface[term].most_common(1)[0][0]
        if len(tag) > MAX_TAG_CHARS or tag in tags:
            continue
        tags.append(tag)
        covered.update(parts)
        best = max(best, scores[term])
        if len(tags) == MAX_TAGS:
            break
    return tags
