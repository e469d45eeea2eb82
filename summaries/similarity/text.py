"""Words, segments and shingles of a text, the same for every copy of a story.

Copies of one story differ in whitespace (reflowed lines, non-breaking
spaces), quote marks (curly or straight) and case of nothing: so a token is
NFKC-normalised, its quotes made straight, and compared casefolded (``fold``)
while its ``raw`` form keeps the capital that marks a name. Punctuation is
not a token, but where a sentence or line ends after a token, the token
``ends_segment``: :mod:`.confirm` uses segments to tell a whole added or
removed sentence (boilerplate) from an edit inside one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["SHINGLE_WORDS", "Token", "shingle_runs", "shingles", "text_shingles", "tokenize"]

# Five words, the usual choice for word shingles: two unrelated texts share
# almost no five-word runs. bench/neardup.py with 4 found as many copies but
# left a thinner margin above the threshold (0.006 against 0.075, held-out half).
SHINGLE_WORDS = 5

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
                         "\u2032": "'", "\u00b4": "'", "`": "'",
                         "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"',
                         "\u00ab": '"', "\u00bb": '"', "\u2039": "'", "\u203a": "'"})
_CURRENCY = "$€£¥₹₽"
# A number keeps its separators ("1,000", "3.5", "1 000" with a narrow space)
# and a leading currency sign or trailing percent; a word keeps its apostrophes
# ("don't", "n'est"); a lone currency or percent sign is a token of its own.
_TOKEN = re.compile(
    rf"[{_CURRENCY}]?\d+(?:[.,'\u00a0\u202f\u2009]\d+)*%?"
    r"|[^\W\d_]+(?:'[^\W\d_]+)*"
    rf"|[{_CURRENCY}%]"
)
_SEGMENT_END = re.compile(r"[.!?;:…\n]")
_SENTENCE_END = re.compile(r"[.!?…]")


@dataclass(frozen=True, slots=True)
class Token:
    raw: str  # as written (after NFKC and straight quotes), capitals kept
    fold: str  # casefolded: what shingles and alignment compare
    ends_segment: bool  # a sentence or line ends right after it
    ends_sentence: bool = False  # a sentence ends right after it (line breaks aside)


def _clean(text: str) -> str:
    return unicodedata.normalize("NFKC", text).translate(_QUOTES)


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text`` in order; the last token always ends a segment."""
    text = _clean(text)
    matches = list(_TOKEN.finditer(text))
    tokens = []
    for i, match in enumerate(matches):
        gap_end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        raw = match.group()
        gap = text[match.end():gap_end]
        last = i + 1 == len(matches)
        initial = _initial(raw, gap)
        ends = last or (bool(_SEGMENT_END.search(gap)) and not initial)
        sentence = last or (bool(_SENTENCE_END.search(gap)) and not initial)
        tokens.append(Token(raw, raw.casefold(), ends, sentence))
    return tokens


def _initial(raw: str, gap: str) -> bool:
    """Whether ``raw`` + ``gap`` is a person's initial ("John M. Ford",
    "J. K. Rowling"): one capital letter and a period on the same line.
    It ends no sentence (summaries/providers/contract.py reads it so too);
    taken as one, it cut the sentence around a name into fragments that
    the edited-sentence rule then compared as if they were sentences."""
    return len(raw) == 1 and raw.isupper() and gap.strip() == "."


def shingles(tokens: list[Token]) -> set[str]:
    """The distinct runs of SHINGLE_WORDS folded words (none for a shorter text)."""
    return set(shingle_runs(tokens))


def shingle_runs(tokens: list[Token]) -> list[str]:
    """The text's runs of SHINGLE_WORDS folded words in order (the i-th
    starts at word i), repeats kept: what the exact check aligns."""
    return list(_each_run([t.fold for t in tokens]))


def text_shingles(text: str) -> set[str]:
    """``shingles(tokenize(text))`` without building the tokens: half the
    CPU, for the fingerprint every miss computes (tests/test_similarity.py
    checks they agree)."""
    return _runs([word.casefold() for word in _TOKEN.findall(_clean(text))])


def _runs(words: list[str]) -> set[str]:
    return set(_each_run(words))


def _each_run(words: list[str]) -> Iterator[str]:
    return (" ".join(words[i:i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1))
