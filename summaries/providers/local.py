"""An offline extractive summariser: TextRank over TF-IDF cosine similarity.

No network and no model download, so it serves as the default when no AI key
is configured and as a stand-in in tests. Deterministic: the same text always
yields the same summary and tags (ties break by position, then alphabetically).

Bounded work on any input: only the first ``MAX_INPUT_CHARS`` characters are
read (a summary is drawn from them, as Gemini is sent only the start of a
long text), every step is linear in their length except the similarity graph,
which is built over at most ``MAX_GRAPH_SENTENCES`` sentences.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter, defaultdict

from summaries.core.errors import JobError
from summaries.core.language import WORD, detect_language
from summaries.core.lexicon import ALL_STOPWORDS, LEXICONS, lexicon
from summaries.providers.contract import (
    MAX_SUMMARY_CHARS,
    MAX_TAG_CHARS,
    SummaryResult,
    check_output,
    clean_text,
    split_sentences,
)

# Bump when the output for a given text changes (cache key). v5: the language
# (and so the word lists) detected by fastText's model, and no title bonus.
ALGORITHM_VERSION = "v5"

# What is read of a long text: a 2M-character page is summarised from its
# first 100,000 characters (about 15,000 words), like the API's longest text.
MAX_INPUT_CHARS = 100_000

# Fragments outside these bounds are headings, captions or run-ons; they make
# poor summary sentences, so they are ranked only if nothing better exists.
MIN_WORDS, MAX_WORDS, MAX_CHARS = 5, 60, 320
THREE_SENTENCES_FROM = 8  # usable sentences needed before a 3-sentence summary
# The similarity graph is quadratic in its size: long documents are first cut
# down to the sentences closest to the document's centroid, then ranked.
MAX_GRAPH_SENTENCES = 250
NEIGHBOURS = 20  # edges kept per sentence (a sparse k-NN graph converges the same)
DAMPING, TOLERANCE, MAX_ITERATIONS = 0.85, 1e-6, 100
MAX_TAGS = 4


class LocalProvider:
    """Extractive summary (2-3 central sentences, in original order) plus
    2-4 keyword tags. Raises ``JobError(code="input_too_short")`` when the text
    has fewer than two sentences or too few content words to tag.

    Reads like a summary: a sentence that opens with a connective ("But",
    "However") or a pronoun that refers back ("He", "This") is chosen only
    when nothing else will do (and then without its connective); a news
    article's lead opens the summary when it carries the story (it ranks
    among the central sentences). Tags are names and noun phrases of the
    text: never stopwords, common verbs or possessives. Works in the text's
    language (``summaries.core.language.detect_language``: the word lists of
    English, German, French, Spanish, Italian, Portuguese, Dutch), on
    Unicode words."""

    name = "local"
    model = "textrank"

    @property
    def cache_namespace(self) -> str:
        return f"{self.name}:{self.model}:{ALGORITHM_VERSION}"

    @property
    def translates(self) -> bool:
        return False  # extractive: its sentences are the text's, in the text's language

    def summarize(self, text: str, *, language: str | None = None) -> SummaryResult:
        # ``language`` (a requested one) is ignored: an extract is in the text's own.
        # Each distinct sentence once (a repeated quote, embed or boilerplate
        # line would otherwise outrank everything by agreeing with itself).
        sentences = list(dict.fromkeys(_leading_sentences(clean_text(text))))
        if len(sentences) < 2:
            raise JobError("text has fewer than two sentences to summarise",
                           code="input_too_short", transient=False)
        words = Words(detect_language(" ".join(sentences[:40])))
        tokens = [words.terms(s) for s in sentences]
        usable = [i for i, s in enumerate(sentences) if _usable(s, tokens[i])]
        if len(usable) < 2:  # nothing well-formed: fall back to any sentence with content
            usable = [i for i, toks in enumerate(tokens) if toks]
        if len(usable) < 2:
            raise JobError("text has fewer than two sentences with content words",
                           code="input_too_short", transient=False)
        want = 3 if len(usable) >= THREE_SENTENCES_FROM else 2
        ranked = [usable[j] for j in rank_sentences([tokens[i] for i in usable])]
        order = _reading_order(sentences, ranked, words)
        summary = _compose([words.standalone(sentences[i]) for i in order], order, want)
        if len(split_sentences(summary)) < 2:
            raise JobError("text has fewer than two distinct sentences to summarise",
                           code="input_too_short", transient=False)
        tags = extract_tags(sentences, words=words)
        if len(tags) < 2:
            raise JobError("text has too few distinct content words to tag",
                           code="input_too_short", transient=False)
        return check_output(summary, tags)


# --- words ----------------------------------------------------------------------

# "l'état", "dell'anno", "d'Italia": the elided article or preposition is a
# word of its own (a stopword), the rest is the word.
_ELIDED_MAX = 5
_OPENING = re.compile(r"^[\s\"'\u201c\u2018\u00ab(\[\u2014\u2013-]+")
# English words after which a word is used as a verb ("to open", "they say").
_VERB_CONTEXT_WORDS = (
    "to will would can could should may might must shall not did does do don't doesn't didn't"
    " we you they who")
_VERB_CONTEXT = frozenset(_VERB_CONTEXT_WORDS.split())
# Addresses, handles and hashtags' marks are no words of the text.
_NOT_WORDS = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+\.\S+|@\w+")
# A run of letters and digits: a word glued to a number ("£38million",
# "60fps") is no word of the text, and is dropped.
_TOKEN = re.compile(r"[^\W_]+(?:['\u2019\-][^\W_]+)*")
_DIGIT = re.compile(r"\d")
# Verb forms ("confirmed", "announcing") make poor tags; nouns with these
# endings are let through by a name's capital letter or a phrase.
_VERB_ENDINGS = ("ed", "ing")


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


# --- choosing sentences -----------------------------------------------------------

# The lead opens the summary when it ranks among this share of the
# candidates (and is one of the first ones): it carries the story.
LEAD_RANK_SHARE = 0.5
LEAD_WITHIN = 3  # sentences from the start that may be the lead


def _reading_order(sentences: list[str], ranked: list[int], words: Words) -> list[int]:
    """``ranked`` (indices, best first) reordered for a summary that reads
    well: sentences that open with a connective or a back-referring pronoun
    go last (used only when nothing else will do; a pronoun's sentence is
    fine right after the sentence before it, which holds its referent), and
    a lead that carries the story goes first."""
    plain = [i for i in ranked if not words.connective(sentences[i])
             and not words.refers_back(sentences[i])]
    # A question asks; a summary tells. Questions come after the statements.
    good = ([i for i in plain if not sentences[i].endswith("?")]
            + [i for i in plain if sentences[i].endswith("?")])
    lead = min((i for i in good if i < LEAD_WITHIN), default=None)
    if lead is not None and good.index(lead) < max(2, round(len(ranked) * LEAD_RANK_SHARE)):
        good.remove(lead)
        good.insert(0, lead)
    # A sentence whose predecessor opens the summary may refer back to it.
    placed, usable = set(good), set(ranked)
    for first in good[:2]:
        follower = first + 1
        if (follower not in placed and follower in usable
                and words.refers_back(sentences[follower])
                and not words.connective(sentences[follower])):
            good.insert(good.index(first) + 1, follower)
            placed.add(follower)
    rescued = [i for i in ranked if i not in placed
               and words.standalone(sentences[i]) is not sentences[i]]
    placed.update(rescued)
    return good + rescued + [i for i in ranked if i not in placed]


def _leading_sentences(text: str) -> list[str]:
    """The sentences of the first ``MAX_INPUT_CHARS`` characters of ``text``;
    when that cuts the text, without the last one (probably cut mid-way)."""
    if len(text) <= MAX_INPUT_CHARS:
        return split_sentences(text)
    return split_sentences(text[:MAX_INPUT_CHARS])[:-1]


def rank_sentences(docs: list[list[str]]) -> list[int]:
    """Indices of ``docs`` (term lists) from most to least central.

    TF-IDF vectors, cosine similarity graph (sparse: top ``NEIGHBOURS`` per
    node), weighted PageRank by power iteration; ties go to the earlier one.
    """
    n = len(docs)
    candidates = list(range(n))
    if n > MAX_GRAPH_SENTENCES:
        candidates = _closest_to_centroid(docs, MAX_GRAPH_SENTENCES)
    vectors = _tfidf([docs[i] for i in candidates])
    graph = _similarity_graph(vectors)
    scores = _pagerank(graph)
    order = sorted(range(len(candidates)), key=lambda k: (-scores[k], candidates[k]))
    chosen = [candidates[k] for k in order]
    rest = sorted(set(range(n)) - set(chosen))
    return chosen + rest


def _tfidf(docs: list[list[str]]) -> list[dict[str, float]]:
    df = Counter(term for doc in docs for term in set(doc))
    n = len(docs)
    vectors = []
    for doc in docs:
        weights = {t: (1 + math.log(c)) * math.log(1 + n / df[t]) for t, c in Counter(doc).items()}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        vectors.append({t: w / norm for t, w in weights.items()})
    return vectors


def _closest_to_centroid(docs: list[list[str]], keep: int) -> list[int]:
    """The ``keep`` sentences most similar to the whole document (linear time)."""
    vectors = _tfidf(docs)
    centroid: dict[str, float] = defaultdict(float)
    for vec in vectors:
        for t, w in vec.items():
            centroid[t] += w
    scores = [sum(w * centroid[t] for t, w in vec.items()) for vec in vectors]
    best = heapq.nsmallest(keep, range(len(docs)), key=lambda i: (-scores[i], i))
    return sorted(best)


def _similarity_graph(vectors: list[dict[str, float]]) -> list[dict[int, float]]:
    # An inverted index visits only pairs that share a term, instead of all n^2.
    postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for i, vec in enumerate(vectors):
        for t, w in vec.items():
            postings[t].append((i, w))
    rows: list[dict[int, float]] = [defaultdict(float) for _ in vectors]
    for plist in postings.values():
        for a, (i, wi) in enumerate(plist):
            row = rows[i]
            for j, wj in plist[a + 1 :]:
                row[j] += wi * wj
    # Symmetrise, then keep each node's strongest edges.
    full: list[dict[int, float]] = [{} for _ in vectors]
    for i, row in enumerate(rows):
        for j, sim in row.items():
            full[i][j] = sim
            full[j][i] = sim
    graph: list[dict[int, float]] = [{} for _ in vectors]
    for i, row in enumerate(full):
        for j, sim in heapq.nlargest(NEIGHBOURS, row.items(), key=lambda e: (e[1], -e[0])):
            graph[i][j] = sim
            graph[j][i] = sim
    return graph


def _pagerank(graph: list[dict[int, float]]) -> list[float]:
    n = len(graph)
    if n == 0:
        return []
    out_weight = [sum(row.values()) for row in graph]
    scores = [1.0 / n] * n
    for _ in range(MAX_ITERATIONS):
        # Dangling nodes (no similar sentence) spread their score evenly.
        dangling = sum(scores[i] for i in range(n) if out_weight[i] == 0.0)
        base = (1 - DAMPING) / n + DAMPING * dangling / n
        new = [base] * n
        for i, row in enumerate(graph):
            if out_weight[i]:
                share = DAMPING * scores[i] / out_weight[i]
                for j, w in row.items():
                    new[j] += share * w
        delta = sum(abs(a - b) for a, b in zip(new, scores, strict=True))
        scores = new
        if delta < TOLERANCE:
            break
    return scores


def _compose(ranked: list[str], positions: list[int], want: int) -> str:
    """Best-ranked sentences joined in document order, such that the summary
    re-splits into exactly the chosen sentences and stays within the length cap."""
    chosen: dict[int, str] = {}
    for sentence, pos in zip(ranked, positions, strict=True):
        tidy = _tidy(sentence)
        if tidy in chosen.values():
            continue  # the same sentence twice (a quote or an embed repeated)
        candidate = {**chosen, pos: tidy}
        joined = " ".join(candidate[p] for p in sorted(candidate))
        if len(joined) <= MAX_SUMMARY_CHARS and len(split_sentences(joined)) == len(candidate):
            chosen = candidate
            if len(chosen) == want:
                break
    return " ".join(chosen[p] for p in sorted(chosen))


def _tidy(sentence: str) -> str:
    """A sentence that stands on its own: capitalised, bounded, terminally punctuated."""
    if len(sentence) > MAX_CHARS:
        sentence = sentence[:MAX_CHARS].rsplit(" ", 1)[0].rstrip(",;:-\u2014 ") + "\u2026"
    if sentence[0].islower():
        sentence = sentence[0].upper() + sentence[1:]
    if not re.search(r"[.!?\u2026][\"'\u201d\u2019)\]]*$", sentence):
        sentence += "."
    return sentence


def _usable(sentence: str, terms: list[str]) -> bool:
    words = len(sentence.split())
    return (MIN_WORDS <= words <= MAX_WORDS and len(sentence) <= MAX_CHARS and len(terms) >= 2
            and not sentence.endswith(":"))  # it introduces a list, which is not there


# --- tags ---------------------------------------------------------------------------


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
