"""Does a summary read like one? The checks of bench/summaries_quality.py and
of the offline summariser's tests, written apart from the summariser (they
share only the word lists of summaries/core/lexicon.py).

- A chosen sentence must not open with a connective ("And", "But",
  "However", "Also" ...): it leans on a sentence the reader does not have.
- Nor with a pronoun that refers back ("He", "It", "This", "These" ...),
  unless the sentence before it in the text is the one before it in the
  summary (then the referent is there).
- A tag must be a name or a noun phrase of the text: each of its words in the
  text, not a stopword (alone, or at either end of a phrase), no possessive
  ("president's"), not a bare verb (a verb-list word, or a word the text
  uses mostly after "to", a modal or a subject pronoun: "to open", "they say").
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from summaries.core.language import WORD
from summaries.core.lexicon import ALL_STOPWORDS, LEXICONS, lexicon
from summaries.providers.contract import split_sentences

_OPENING = re.compile(r"^[\s\"'\u201c\u2018\u00ab(\[\u2014\-\u2013]+")
# Words after which a word is a verb: infinitive marker, modals, auxiliaries, subjects.
_VERB_CONTEXT_WORDS = (
    "to will would can could should may might must shall not n't did does do don't doesn't"
    " didn't i we you they he she it who")
_VERB_CONTEXT = frozenset(_VERB_CONTEXT_WORDS.split())
_POSSESSIVE = re.compile(r"(?:['\u2019]s|s['\u2019])$")


def _first_words(sentence: str, n: int = 3) -> list[str]:
    return [w.lower().replace("\u2019", "'") for w in WORD.findall(_OPENING.sub("", sentence))[:n]]


def connective_start(sentence: str, language: str | None) -> bool:
    """Whether ``sentence`` opens with a connective (of its language, or English)."""
    words = _first_words(sentence)
    if not words:
        return False
    phrases = lexicon(language).connectives | LEXICONS["en"].connectives
    return any(" ".join(words[:n]) in phrases for n in range(1, len(words) + 1))


def pronoun_start(sentence: str, language: str | None) -> bool:
    """Whether ``sentence`` opens with a pronoun (or demonstrative) that refers back."""
    words = _first_words(sentence, 1)
    return bool(words) and words[0] in (lexicon(language).pronouns | LEXICONS["en"].pronouns)


def tag_problem(tag: str, text: str, language: str | None) -> str | None:
    """Why ``tag`` is no name or noun phrase of ``text`` (None: it is fine)."""
    words = tag.lower().replace("\u2019", "'").split()
    lowered = text.lower().replace("\u2019", "'")
    if not words:
        return "empty"
    if any(_POSSESSIVE.search(word) for word in words):
        return "possessive"
    stopwords = (lexicon(language).stopwords | LEXICONS["en"].stopwords) if language \
        else ALL_STOPWORDS
    if len(words) == 1 and words[0] in stopwords:
        return "stopword"
    if len(words) > 1 and (words[0] in stopwords or words[-1] in stopwords) \
            and not _written_as_name(tag, text):  # "New York" is a name
        return "stopword"
    if any(not re.search(r"(?<!\w)" + re.escape(word) + r"(?!\w)", lowered) for word in words):
        return "not in the text"
    if len(words) == 1:
        word = words[0]
        if word in lexicon(language).verbs or word in LEXICONS["en"].verbs:
            return "bare verb"
        if language in (None, "en") and _mostly_verb(word, text):
            return "bare verb"
    return None


def _written_as_name(tag: str, text: str) -> bool:
    """Whether the text writes ``tag`` with every word capitalised."""
    name = r"\s+".join(re.escape(w[:1].upper() + w[1:]) for w in tag.split())
    return re.search(r"(?<!\w)" + name + r"(?!\w)", text) is not None


def _mostly_verb(word: str, text: str) -> bool:
    """Whether the text mostly uses ``word`` after a verb context. A use
    written capitalised there is a name, not a verb ("a mission to Mars")."""
    tokens = [t.replace("\u2019", "'") for t in WORD.findall(text)]
    uses = [(tokens[i - 1].lower(), tokens[i]) for i in range(1, len(tokens))
            if tokens[i].lower() == word]
    verbal = sum(1 for before, used in uses if before in _VERB_CONTEXT and used.islower())
    return bool(uses) and verbal * 2 >= len(uses)


@dataclass
class Judgement:
    """What is wrong with one summary of one text."""

    connective_starts: list[str] = field(default_factory=list)
    pronoun_starts: list[str] = field(default_factory=list)
    bad_tags: list[tuple[str, str]] = field(default_factory=list)
    lead_eligible: bool = False  # the text's first sentence could open a summary
    lead_included: bool = False

    @property
    def clean(self) -> bool:
        return not (self.connective_starts or self.pronoun_starts or self.bad_tags)


LEAD_MIN_WORDS = 8


def judge(text: str, summary: str, tags: list[str], language: str | None) -> Judgement:
    """The checks above, for a summary (its sentences quoted from ``text``)."""
    judgement = Judgement()
    document = split_sentences(text)
    chosen = split_sentences(summary)
    positions = {_key(s): i for i, s in reversed(list(enumerate(document)))}
    previous_position: int | None = None
    for sentence in chosen:
        position = positions.get(_key(sentence))
        if connective_start(sentence, language):
            judgement.connective_starts.append(sentence)
        if pronoun_start(sentence, language) and (
                position is None or previous_position is None
                or position != previous_position + 1):
            judgement.pronoun_starts.append(sentence)
        previous_position = position
    for tag in tags:
        if (problem := tag_problem(tag, text, language)) is not None:
            judgement.bad_tags.append((tag, problem))
    if document:
        lead = document[0]
        judgement.lead_eligible = (len(lead.split()) >= LEAD_MIN_WORDS
                                   and not connective_start(lead, language)
                                   and not pronoun_start(lead, language)
                                   and lead[-1:] in ".!?\"'\u201d")
        judgement.lead_included = bool(chosen) and _key(chosen[0]) == _key(lead)
    return judgement


def _key(sentence: str) -> str:
    """A sentence compared loosely (the summariser may tidy its end or cut it)."""
    words = WORD.findall(sentence.lower())
    return " ".join(words[:12])


def tally(judgements: list[Judgement]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for j in judgements:
        counts["connective_starts"] += len(j.connective_starts)
        counts["pronoun_starts"] += len(j.pronoun_starts)
        counts["bad_tags"] += len(j.bad_tags)
        counts["lead_eligible"] += j.lead_eligible
        counts["lead_included"] += j.lead_eligible and j.lead_included
    return counts
