"""The output contract every provider meets, and the sentence splitter it counts with.

A summary in the default form (prose, short) is 2-3 sentences and at most
``MAX_SUMMARY_CHARS`` characters; it comes with 2-4 distinct short lower-case
tags. Other forms (summaries/core/forms.py) have their own bounds: prose
``medium`` 2-6 sentences, prose ``long`` 2-24 sentences in paragraphs
separated by a blank line; ``bullets`` 3-6 key points, rendered in
``summary`` as one ``"- "`` line each (``check_points``). ``check_output``
enforces this before anything is cached, so a provider (or a model) that
drifts fails loudly with ``ai_bad_output`` instead of poisoning the cache.

Output is also made storable: control characters and lone surrogates are
cleaned out (``clean_text``) before anything is counted. PostgreSQL refuses NUL
in text and psycopg cannot encode a lone surrogate, so such a summary could be
cached but never written to its job row. They are cleaned rather than rejected:
they carry no meaning (a model's glitch, or bytes of the page the local
provider summarises), while a rejection would cost a second AI call and then
fail the job for good.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

from summaries.core.errors import ErrorCode, JobError
from summaries.core.forms import DEFAULT_FORM, LONG, MEDIUM, SHORT, Form
from summaries.core.tokens import Usage

MIN_SENTENCES, MAX_SENTENCES = 2, 3
MAX_SUMMARY_CHARS = 1000
# Prose of each length: (fewest sentences, most sentences, most characters).
# Short is the contract every summary had before forms (the two lines above).
PROSE_BOUNDS = {
    SHORT: (MIN_SENTENCES, MAX_SENTENCES, MAX_SUMMARY_CHARS),
    MEDIUM: (MIN_SENTENCES, 6, 2000),
    LONG: (MIN_SENTENCES, 24, 6000),
}
# Bullets: 3-6 key points, each at most this long for the length asked.
MIN_POINTS, MAX_POINTS = 3, 6
POINT_CHARS = {SHORT: 400, MEDIUM: 600, LONG: 1000}
BULLET = "- "
MIN_TAGS, MAX_TAGS = 2, 4
MAX_TAG_CHARS = 30
MAX_TAG_WORDS = 3


@dataclass(frozen=True)
class SummaryResult:
    """A contract-checked summary (2-3 sentences in the default form; see
    ``check_output``, ``check_points``) and 2-4 normalised tags, and the AI
    tokens it took (``usage``: the provider's report or, when it reported
    none, an estimate; None from the offline summariser)."""

    summary: str
    tags: list[str]
    usage: Usage | None = None

    def plus(self, usage: Usage | None) -> SummaryResult:
        """The same result, having taken ``usage`` more (an earlier call)."""
        if usage is None:
            return self
        return replace(self, usage=usage if self.usage is None else self.usage + usage)


@dataclass(frozen=True)
class BatchItem:
    """One input of a batched call (``summarize_batch``); ``id`` is unique
    within its batch (any short string)."""

    id: str
    text: str
    language: str | None = None  # to write in, as requested; None: the text's own
    form: Form = DEFAULT_FORM  # every item of one batch has the same (services/batching.py)


class ContractError(JobError):
    """Output that breaks the contract. Permanent: the same input would likely
    produce the same kind of output again (callers may re-ask once themselves)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=ErrorCode.AI_BAD_OUTPUT, transient=False)


class RequestRejected(JobError):
    """The server refused this request for what it holds (HTTP 400, 413, 422:
    too long for the model's context, too large, an argument it cannot
    take). Permanent for this request; another one (a part of a batch, one
    item alone) may well pass."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=ErrorCode.AI_REJECTED, transient=False)


# --- sentence splitting ------------------------------------------------------
#
# Linear in the length of the text: the candidate pattern never backtracks over
# a run of punctuation, and each candidate is judged by looking at a bounded
# window before it and at the few characters after it, never by copying the
# rest of the text.

# A candidate boundary: terminal punctuation (with any closing quotes/brackets)
# followed by whitespace, or a blank line (a paragraph break ends a sentence
# even without punctuation, e.g. after a heading). Punctuation not followed by
# whitespace ("3.5", "example.com", "v1.2") is never a candidate. A match only
# starts at the beginning of a punctuation run, and the runs are consumed
# possessively: "....x" is one failed attempt, not one per dot.
_CANDIDATE = re.compile(
    r"(?<![.!?\u2026])(?P<punct>[.!?\u2026]++)[\"'\u201d\u2019\u00bb)\]]*+(?=\s)"
    r"|(?P<para>\n[ \t]*+\n)"
)


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


_OPENERS = "\"'\u201c\u2018\u00ab([\u2014-"
# Whitespace, then opening quotes/brackets: what stands between a candidate and
# the next sentence's first character. (The scans of successive candidates never
# overlap: each stops at the first other character, and the next candidate
# starts with punctuation. So they are linear in all.)
_LEAD = re.compile(r"\s*[" + re.escape(_OPENERS) + r"]*")
_ASCII_WORD = re.compile(r"[A-Za-z]+")
_ALNUM = re.compile(r"[^\W_]")  # what str.isalnum() accepts
# How far back the word before a period is looked for. Every abbreviation,
# title and initialism the rules know is far shorter; a longer word (or one
# separated from its period by this much whitespace) is an ordinary word.
_LOOKBACK = 64
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
    sentence. Pieces without a letter or digit are dropped. Heuristic, not
    linguistic: good enough to count and rank. Time linear in ``len(text)``.
    """
    sentences: list[str] = []
    for start, end in _spans(text):
        piece = _SPACES.sub(" ", text[start:end]).strip()
        if piece:
            sentences.append(piece)
    return sentences


def count_sentences(text: str, *, limit: int | None = None) -> int:
    """``len(split_sentences(text))``, but at most ``limit``: stops reading the
    text as soon as ``limit`` sentences are found, and builds no strings."""
    if limit is not None and limit < 0:
        raise ValueError("limit must not be negative")
    count = 0
    if limit == 0:
        return count
    for _ in _spans(text):
        count += 1
        if count == limit:
            break
    return count


def has_sentences(text: str, at_least: int = 2) -> bool:
    """Whether ``text`` has at least ``at_least`` sentences (by ``split_sentences``);
    cheap on any length: it reads only as far as the ``at_least``-th sentence."""
    return count_sentences(text, limit=at_least) >= at_least


def _spans(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each sentence, in order: the raw pieces between
    boundaries that hold at least one letter or digit (stray punctuation
    between paragraphs is no sentence)."""
    start = 0
    for match in _CANDIDATE.finditer(text):
        if match.group("para") or _ends_sentence(text, match):
            if _ALNUM.search(text, start, match.end()):
                yield start, match.end()
            start = match.end()
    if _ALNUM.search(text, start):
        yield start, len(text)


def _ends_sentence(text: str, match: re.Match[str]) -> bool:
    lead = _LEAD.match(text, match.end())  # always matches (possibly nothing)
    after = lead.end() if lead else match.end()  # the next sentence's first character
    if after == len(text):
        return True
    first = text[after]
    punct = match.group("punct")
    if punct != ".":
        # ?, !, ?!, "..." or "…" end a sentence before a capital only:
        # "Wait... what", '"Why?" she asked'.
        return not first.islower()
    word = _word_before(text, match.start())
    if word is None:
        return True  # too long to be an abbreviation
    word = word.lstrip(_OPENERS)
    lower = word.lower()
    if lower in _TITLES or lower in _BOUND:
        return False
    if len(word) == 1 and word.isalpha():
        return False  # an initial: "J. R. Tolkien"
    if lower in _SOFT or _INITIALISM.match(word):
        if first.islower():
            return False  # "etc. and", "a.m. tomorrow"
        next_word = _ASCII_WORD.match(text, after)
        return next_word is not None and next_word.group(0).lower() in _STARTERS
    return True


def _word_before(text: str, end: int) -> str | None:
    """The whitespace-delimited word ending before ``text[end]`` ("" at the start
    of the text), looked for only in the ``_LOOKBACK`` characters before it;
    None when it may be longer than that."""
    low = max(0, end - _LOOKBACK)
    parts = text[low:end].rsplit(None, 1)
    if not parts:
        return "" if low == 0 else None
    if len(parts) == 1 and low > 0 and not text[low].isspace() and not text[low - 1].isspace():
        return None  # the word began before the window
    return parts[-1]


# --- storable text -----------------------------------------------------------

# C0 and C1 control characters that are not whitespace (str.isspace: \t \n \v
# \f \r, \x1c-\x1f and \x85 are, and are collapsed to spaces by the callers).
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]+")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` without control characters other than whitespace (deleted:
    they are not text, and a space could split a word), and with every lone
    surrogate replaced by U+FFFD (it stands for a character that was lost, as
    in bytes decoded with ``errors="replace"``). The result encodes as UTF-8
    and is accepted by every database. Whitespace is left as it is."""
    return _SURROGATE.sub("\ufffd", _CONTROLS.sub("", text))


# --- the contract ------------------------------------------------------------

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
# What a model may put before a point although asked not to: "- ", "* ",
# "• ", "1. ", "2) ".
_MARKER = re.compile(r"^(?:[-*\u2022\u2023\u25e6\u2013\u2014]|\d{1,2}[.)])\s+")


def check_output(summary: str, tags: list[str], form: Form = DEFAULT_FORM) -> SummaryResult:
    """Validate and normalise a provider's prose output, or raise ``ContractError``.

    Both are first cleaned by ``clean_text`` (so nothing returned holds a
    control character or a lone surrogate). Summary: whitespace collapsed
    (a ``long`` one keeps its paragraphs, separated by one blank line); the
    sentences (by ``split_sentences``) and characters of ``PROSE_BOUNDS``
    for the form's length (short: 2-3 sentences, at most
    ``MAX_SUMMARY_CHARS`` characters). Tags: stripped, lower-cased, inner
    spaces collapsed, duplicates dropped case-insensitively (first wins,
    order kept) *before* counting; then 2-4 of them, each non-empty, one
    line, at most ``MAX_TAG_CHARS`` characters and ``MAX_TAG_WORDS`` words.
    Bullet points are checked by ``check_points``.
    """
    if form.bullets:
        raise ValueError("bullet points are checked by check_points")
    fewest, most, max_chars = PROSE_BOUNDS[form.length]
    cleaned = clean_text(summary)
    paragraphs = _PARAGRAPH_BREAK.split(cleaned) if form.length == LONG else [cleaned]
    text = "\n\n".join(p for p in (_SPACES.sub(" ", p).strip() for p in paragraphs) if p)
    if not text:
        raise ContractError("summary is empty")
    if len(text) > max_chars:
        raise ContractError(
            f"summary has {len(text)} characters; expected at most {max_chars}"
        )
    count = len(split_sentences(text))  # at most max_chars long: cheap
    if not fewest <= count <= most:
        raise ContractError(
            f"summary has {count} sentence{'s' if count != 1 else ''};"
            f" expected {fewest}-{most}"
        )
    return SummaryResult(summary=text, tags=_check_tags(tags))


def check_points(points: list[str], tags: list[str], form: Form) -> SummaryResult:
    """Validate and normalise bullet points, or raise ``ContractError``:
    each cleaned as a summary is, stripped of a leading bullet or number,
    non-empty and at most ``POINT_CHARS`` characters for the form's length;
    duplicates dropped (case-insensitively) before counting; then
    ``MIN_POINTS``-``MAX_POINTS`` of them. The result's ``summary`` holds
    one ``"- "`` line per point, in order. Tags as ``check_output``."""
    limit = POINT_CHARS[form.length]
    kept: list[str] = []
    seen: set[str] = set()
    for position, raw in enumerate(points, start=1):
        if not isinstance(raw, str):  # model JSON is untyped at runtime
            raise ContractError(f"point {position} is not a string")
        point = _MARKER.sub("", _SPACES.sub(" ", clean_text(raw)).strip()).strip()
        if not point:
            raise ContractError(f"point {position} is empty")
        if len(point) > limit:
            raise ContractError(f"point {position} has {len(point)} characters; expected at "
                                f"most {limit}")
        if point.lower() not in seen:
            seen.add(point.lower())
            kept.append(point)
    if not MIN_POINTS <= len(kept) <= MAX_POINTS:
        raise ContractError(f"{len(kept)} distinct point{'s' if len(kept) != 1 else ''};"
                            f" expected {MIN_POINTS}-{MAX_POINTS}")
    return SummaryResult(summary="\n".join(BULLET + point for point in kept),
                         tags=_check_tags(tags))


def _check_tags(tags: list[str]) -> list[str]:
    seen: list[str] = []
    for position, raw in enumerate(tags, start=1):
        if not isinstance(raw, str):  # model JSON is untyped at runtime
            raise ContractError(f"tag {position} is not a string")
        tag = clean_text(raw).strip()
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
