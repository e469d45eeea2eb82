"""The output contract every provider meets, and the sentence splitter it counts with.

A summary is 2-3 sentences and at most ``MAX_SUMMARY_CHARS`` characters; it comes
with 2-4 distinct short lower-case tags. ``check_output`` enforces this before
anything is cached, so a provider (or a model) that drifts fails loudly with
``ai_bad_output`` instead of poisoning the cache.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from summaries.errors import JobError

MIN_SENTENCES, MAX_SENTENCES = 2, 3
MAX_SUMMARY_CHARS = 1000
MIN_TAGS, MAX_TAGS = 2, 4
MAX_TAG_CHARS = 30
MAX_TAG_WORDS = 3


@dataclass(frozen=True)
class SummaryResult:
    """A contract-checked summary: 2-3 sentences and 2-4 normalised tags."""

    summary: str
    tags: list[str]


class ContractError(JobError):
    """Output that breaks the contract. Permanent: the same input would likely
    produce the same kind of output again (callers may re-ask once themselves)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="ai_bad_output", transient=False)


# --- sentence splitting ------------------------------------------------------

# A candidate boundary: terminal punctuation (with any closing quotes/brackets)
# followed by whitespace, or a blank line (a paragraph break ends a sentence
# even without punctuation, e.g. after a heading). Punctuation not followed by
# whitespace ("3.5", "example.com", "v1.2") is never a candidate.
_CANDIDATE = re.compile(
    r"(?P<punct>[.!?\u2026]+)[\"'\u201d\u2019\u00bb)\]]*(?=\s)"
    r"|(?P<para>\n[ \t]*\n)"
)


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


_OPENERS = "\"'\u201c\u2018\u00ab([\u2014-"
# Never the end of a sentence: a name or a number is bound to follow.
_TITLES = _wordset(
    "mr mrs ms mx dr prof sr jr st mt rev fr gen col capt cpt lt sgt maj gov sen rep hon pres"
    " supt insp"
)
_BOUND = _wordset("e.g i.e eg ie vs cf viz al approx fig figs no nos vol vols pp ca incl")
# Usually inside a sentence, but may end one ("... in the U.S. The next day").
_SOFT = _wordset(
    "etc inc ltd co corp bros llc plc dept est jan feb mar apr jun jul aug sep sept oct nov dec"
    " mon tue wed thu fri sat sun"
)
# After a soft abbreviation, these capitalised words almost always open a new sentence.
_STARTERS = _wordset(
    "the this that these those it its he she they we i you there here our his her their my"
    " a an but and so yet however meanwhile then in on at after before when while as if for"
    " many some most all one two by since although though still also"
)
_INITIALISM = re.compile(r"^(?:[A-Za-z]\.)+[A-Za-z]$")  # U.S / a.m / e.g (final dot removed)
_SPACES = re.compile(r"\s+")


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences, each stripped with its whitespace collapsed.

    Handles the common traps: abbreviations and titles ("e.g.", "Dr. Smith"),
    initialisms ("U.S.", "a.m."), initials ("J. R. Tolkien"), decimals ("3.5"),
    closing quotes ('"Stop." Then'), runs of "?!" and ellipses (which end a
    sentence only when a capitalised word follows). A blank line also ends a
    sentence. Heuristic, not linguistic: good enough to count and rank.
    """
    sentences: list[str] = []
    start = 0
    for match in _CANDIDATE.finditer(text):
        if match.group("para") or _ends_sentence(text, match):
            _append(sentences, text[start : match.end()])
            start = match.end()
    _append(sentences, text[start:])
    return sentences


def _append(sentences: list[str], piece: str) -> None:
    piece = _SPACES.sub(" ", piece).strip()
    if any(ch.isalnum() for ch in piece):  # skip stray punctuation between paragraphs
        sentences.append(piece)


def _ends_sentence(text: str, match: re.Match[str]) -> bool:
    following = text[match.end() :].lstrip().lstrip(_OPENERS)
    if not following:
        return True
    first = following[0]
    punct = match.group("punct")
    if punct != ".":
        # ?, !, ?!, "..." or "…" end a sentence before a capital only:
        # "Wait... what", '"Why?" she asked'.
        return not first.islower()
    word = text[: match.start()].rsplit(None, 1)[-1] if text[: match.start()].strip() else ""
    word = word.lstrip(_OPENERS)
    lower = word.lower()
    if lower in _TITLES or lower in _BOUND:
        return False
    if len(word) == 1 and word.isalpha():
        return False  # an initial: "J. R. Tolkien"
    if lower in _SOFT or _INITIALISM.match(word):
        if first.islower():
            return False  # "etc. and", "a.m. tomorrow"
        next_word = re.match(r"[A-Za-z]+", following)
        return next_word is not None and next_word.group(0).lower() in _STARTERS
    return True


# --- the contract ------------------------------------------------------------


def check_output(summary: str, tags: list[str]) -> SummaryResult:
    """Validate and normalise a provider's output, or raise ``ContractError``.

    Summary: whitespace collapsed; 2-3 sentences by ``split_sentences``; at most
    ``MAX_SUMMARY_CHARS`` characters. Tags: stripped, lower-cased, inner spaces
    collapsed, duplicates dropped case-insensitively (first wins, order kept)
    *before* counting; then 2-4 of them, each non-empty, one line, at most
    ``MAX_TAG_CHARS`` characters and ``MAX_TAG_WORDS`` words.
    """
    text = _SPACES.sub(" ", summary).strip()
    if not text:
        raise ContractError("summary is empty")
    if len(text) > MAX_SUMMARY_CHARS:
        raise ContractError(
            f"summary has {len(text)} characters; expected at most {MAX_SUMMARY_CHARS}"
        )
    count = len(split_sentences(text))
    if not MIN_SENTENCES <= count <= MAX_SENTENCES:
        raise ContractError(
            f"summary has {count} sentence{'s' if count != 1 else ''};"
            f" expected {MIN_SENTENCES}-{MAX_SENTENCES}"
        )
    return SummaryResult(summary=text, tags=_check_tags(tags))


def _check_tags(tags: list[str]) -> list[str]:
    seen: list[str] = []
    for position, raw in enumerate(tags, start=1):
        if not isinstance(raw, str):  # model JSON is untyped at runtime
            raise ContractError(f"tag {position} is not a string")
        tag = raw.strip()
        if "\n" in tag or "\r" in tag:
            raise ContractError(f"tag {position} spans several lines")
        tag = " ".join(tag.lower().split())
        if not tag:
            raise ContractError(f"tag {position} is empty")
        if len(tag) > MAX_TAG_CHARS:
            raise ContractError(
                f"tag {tag[:40]!r} has {len(tag)} characters; expected at most {MAX_TAG_CHARS}"
            )
        words = len(tag.split())
        if words > MAX_TAG_WORDS:
            raise ContractError(f"tag {tag!r} has {words} words; expected at most {MAX_TAG_WORDS}")
        if tag not in seen:
            seen.append(tag)
    if not MIN_TAGS <= len(seen) <= MAX_TAGS:
        plural = "s" if len(seen) != 1 else ""
        raise ContractError(f"{len(seen)} distinct tag{plural}; expected {MIN_TAGS}-{MAX_TAGS}")
    return seen
