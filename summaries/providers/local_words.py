"""The offline summariser's view of a text's words (providers/local.py): tokens,
stems, stopwords and verbs in the text's language (core/lexicon.py's lists)."""

from __future__ import annotations

import re

from summaries.core.language import WORD
from summaries.core.lexicon import ALL_STOPWORDS, LEXICONS, lexicon

# "l'état", "dell'anno", "d'Italia": the elided article or preposition is a
# word of its own (a stopword), the rest is the word.
_ELIDED_MAX = 5
# A sentence shorter than this is a heading or a caption (local.py's bounds).
MIN_WORDS = 5
_OPENING = re.compile(r"^[\s\"'\u201c\u2018\u00ab(\[\u2014\u2013-]+")
# Addresses, handles and hashtags' marks are no words of the text.
_NOT_WORDS = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+\.\S+|@\w+")
# A run of letters and digits: a word glued to a number ("£38million",
# "60fps") is no word of the text, and is dropped.
_TOKEN = re.compile(r"[^\W_]+(?:['\u2019\-][^\W_]+)*")
_DIGIT = re.compile(r"\d")


class Words:
    """Tokenising and word classes for one text, in its language."""

    def __init__(self, language: str | None) -> None:
        self.language = language
        lex = lexicon(language)
        english = LEXICONS["en"]
        # A text's own function words, and English ones (quoted names, mixed
        # text); every language's when the language is unknown or has no lists.
        self.stopwords = ((lex.stopwords | english.stopwords) if language in LEXICONS
                          else ALL_STOPWORDS)
        self.connectives = lex.connectives | english.connectives
        self.pronouns = lex.pronouns | english.pronouns
        self.verbs = lex.verbs | english.verbs
        self.english = language in (None, "en")
        self._tokens: dict[str, list[str]] = {}

    def tokens(self, sentence: str) -> list[str]:
        """The words of ``sentence`` in their case, apostrophes as ``'``,
        elisions split off ("l'état" → "état"), possessives dropped
        ("president's" → "president")."""
        known = self._tokens.get(sentence)
        if known is not None:  # the same sentences are read to rank and to tag
            return known
        out = []
        for raw in _TOKEN.findall(_NOT_WORDS.sub(" ", sentence)):
            if not raw.isalpha() and _DIGIT.search(raw):
                continue
            token = raw.replace("\u2019", "'")
            if "'" in token:
                head, _, tail = token.partition("'")
                if len(head) <= _ELIDED_MAX and (head.lower() + "'") in self.stopwords and tail:
                    token = tail
                lowered = token.lower()
                if lowered.endswith("'s"):
                    token = token[:-2]
                elif lowered.endswith("s'"):
                    token = token[:-1]
            if token:
                out.append(token)
        self._tokens[sentence] = out
        return out

    def is_content(self, word: str) -> bool:
        """``word`` (lower case) names something: not a function word, not too short."""
        return len(word) > 2 and word not in self.stopwords and "'" not in word

    def stem(self, word: str) -> str:
        # Just enough folding for overlap ("volunteers" ~ "volunteer"); a real
        # stemmer would mangle the surface forms we show as tags. Plural -s
        # only where it is the plural (not German or Dutch).
        if self.language not in (None, "en", "fr", "es", "pt"):
            return word
        if self.english and word.endswith("ies") and len(word) > 4:
            return word[:-3] + "y"
        if word.endswith("s") and len(word) > 3 and not word.endswith(("ss", "us", "is")):
            return word[:-1]
        return word

    def terms(self, sentence: str) -> list[str]:
        return [self.stem(w) for w in (t.lower() for t in self.tokens(sentence))
                if self.is_content(w)]

    def opening(self, sentence: str) -> list[str]:
        """The first three words of ``sentence``, lower case."""
        return [w.lower().replace("\u2019", "'")
                for w in WORD.findall(_OPENING.sub("", sentence))[:3]]

    def connective(self, sentence: str) -> int:
        """How many words of the connective ``sentence`` opens with (0: none)."""
        first = self.opening(sentence)
        for n in range(len(first), 0, -1):
            if " ".join(first[:n]) in self.connectives:
                return n
        return 0

    def refers_back(self, sentence: str) -> bool:
        """Whether ``sentence`` opens with a pronoun or demonstrative ("He",
        "This", "Its") whose referent is in an earlier sentence."""
        first = self.opening(sentence)
        return bool(first) and first[0] in self.pronouns

    def standalone(self, sentence: str) -> str:
        """``sentence`` without its opening connective ("But the plan failed."
        → "The plan failed."), when it has one and the rest stands alone."""
        n = self.connective(sentence)
        if n == 0:
            return sentence
        rest = _OPENING.sub("", sentence)
        for _ in range(n):
            rest = rest.split(None, 1)[1] if len(rest.split(None, 1)) == 2 else ""
        rest = rest.lstrip(",;:\u2014\u2013- ")
        if len(rest.split()) < MIN_WORDS or self.refers_back(rest):
            return sentence
        return rest[0].upper() + rest[1:]
