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

from summaries.core.errors import ErrorCode, JobError
from summaries.core.forms import DEFAULT_FORM, LONG, MEDIUM, SHORT, Form
from summaries.core.language import detect_language
from summaries.providers.contract import (
    MAX_POINTS,
    MIN_POINTS,
    POINT_CHARS,
    PROSE_BOUNDS,
    SummaryResult,
    check_output,
    check_points,
    clean_text,
    split_sentences,
)
from summaries.providers.local_tags import extract_tags
from summaries.providers.local_words import MIN_WORDS, Words

# Bump when the output for a given text changes (cache key). v5: the language
# (and so the word lists) detected by fastText's model, and no title bonus.
ALGORITHM_VERSION = "v5"

# What is read of a long text: a 2M-character page is summarised from its
# first 100,000 characters (about 15,000 words), like the API's longest text.
MAX_INPUT_CHARS = 100_000

# Fragments outside these bounds are headings, captions or run-ons; they make
# poor summary sentences, so they are ranked only if nothing better exists.
MAX_WORDS, MAX_CHARS = 60, 320  # and local_words.MIN_WORDS
THREE_SENTENCES_FROM = 8  # usable sentences needed before a 3-sentence summary
# The similarity graph is quadratic in its size: long documents are first cut
# down to the sentences closest to the document's centroid, then ranked.
MAX_GRAPH_SENTENCES = 250
NEIGHBOURS = 20  # edges kept per sentence (a sparse k-NN graph converges the same)
DAMPING, TOLERANCE, MAX_ITERATIONS = 0.85, 1e-6, 100
# The other forms (summaries/core/forms.py): sentences of a medium and of a
# long summary (at most, and about one in LONG_SHARE of the text's for long),
# sentences in a long summary's paragraph, and key points per length.
MEDIUM_SENTENCES = 5
LONG_SENTENCES, LONG_SHARE = 15, 5
PARAGRAPH_SENTENCES = 3
POINTS = {SHORT: MIN_POINTS, MEDIUM: 5, LONG: MAX_POINTS}


class LocalProvider:
    """Extractive summary (2-3 central sentences, in original order) plus
    2-4 keyword tags. Raises ``JobError(code=ErrorCode.INPUT_TOO_SHORT)`` when the text
    has fewer than two sentences or too few content words to tag.

    Other forms: ``medium`` up to ``MEDIUM_SENTENCES`` sentences, ``long``
    up to ``LONG_SENTENCES`` (one in ``LONG_SHARE`` of the text's) in
    paragraphs, one per section of the text that holds chosen sentences;
    ``bullets``: the key sentences as points (``POINTS`` for the length), in
    the text's order.

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

    def summarize(self, text: str, *, language: str | None = None,
                  form: Form = DEFAULT_FORM) -> SummaryResult:
        # ``language`` (a requested one) is ignored: an extract is in the text's own.
        # Each distinct sentence once (a repeated quote, embed or boilerplate
        # line would otherwise outrank everything by agreeing with itself).
        sentences = list(dict.fromkeys(_leading_sentences(clean_text(text))))
        if len(sentences) < 2:
            raise JobError("text has fewer than two sentences to summarise",
                           code=ErrorCode.INPUT_TOO_SHORT, transient=False)
        words = Words(detect_language(" ".join(sentences[:40])))
        tokens = [words.terms(s) for s in sentences]
        usable = [i for i, s in enumerate(sentences) if _usable(s, tokens[i])]
        if len(usable) < 2:  # nothing well-formed: fall back to any sentence with content
            usable = [i for i, toks in enumerate(tokens) if toks]
        if len(usable) < 2:
            raise JobError("text has fewer than two sentences with content words",
                           code=ErrorCode.INPUT_TOO_SHORT, transient=False)
        want = _wanted(form, len(usable))
        ranked = [usable[j] for j in rank_sentences([tokens[i] for i in usable])]
        order = _reading_order(sentences, ranked, words)
        chosen = _choose([words.standalone(sentences[i]) for i in order], order, want,
                         _max_chars(form))
        if len(chosen) < (MIN_POINTS if form.bullets else 2):
            raise JobError(f"text has fewer than {'three' if form.bullets else 'two'} distinct "
                           f"sentences to summarise", code=ErrorCode.INPUT_TOO_SHORT,
                           transient=False)
        tags = extract_tags(sentences, words=words)
        if len(tags) < 2:
            raise JobError("text has too few distinct content words to tag",
                           code=ErrorCode.INPUT_TOO_SHORT, transient=False)
        if form.bullets:
            return check_points([chosen[p] for p in sorted(chosen)], tags, form)
        if form.length == LONG:
            return check_output(_paragraphs(chosen, len(sentences)), tags, form)
        return check_output(" ".join(chosen[p] for p in sorted(chosen)), tags, form)


def _wanted(form: Form, usable: int) -> int:
    """How many sentences (or points) a summary in ``form`` is made of,
    from a text with ``usable`` well-formed ones."""
    if form.bullets:
        return POINTS[form.length]
    if form.length == MEDIUM:
        return MEDIUM_SENTENCES
    if form.length == LONG:
        return max(MEDIUM_SENTENCES, min(LONG_SENTENCES, usable // LONG_SHARE))
    return 3 if usable >= THREE_SENTENCES_FROM else 2


def _max_chars(form: Form) -> int:
    if form.bullets:
        return POINT_CHARS[form.length] * MAX_POINTS
    return PROSE_BOUNDS[form.length][2]


def _paragraphs(chosen: dict[int, str], total: int) -> str:
    """The chosen sentences (by position among ``total``) in paragraphs:
    the text cut into as many equal sections as paragraphs of
    ``PARAGRAPH_SENTENCES`` the summary needs, one paragraph per section
    that holds a chosen sentence."""
    sections = max(1, math.ceil(len(chosen) / PARAGRAPH_SENTENCES))
    grouped: dict[int, list[str]] = defaultdict(list)
    for position in sorted(chosen):
        grouped[position * sections // max(1, total)].append(chosen[position])
    return "\n\n".join(" ".join(grouped[section]) for section in sorted(grouped))


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


def _choose(ranked: list[str], positions: list[int], want: int,
            max_chars: int) -> dict[int, str]:
    """Up to ``want`` best-ranked sentences, tidied, by their position in
    the document: such that, joined in document order, they re-split into
    exactly the chosen sentences and stay within ``max_chars``."""
    chosen: dict[int, str] = {}
    for sentence, pos in zip(ranked, positions, strict=True):
        tidy = _tidy(sentence)
        if tidy in chosen.values():
            continue  # the same sentence twice (a quote or an embed repeated)
        candidate = {**chosen, pos: tidy}
        joined = " ".join(candidate[p] for p in sorted(candidate))
        if len(joined) <= max_chars and len(split_sentences(joined)) == len(candidate):
            chosen = candidate
            if len(chosen) == want:
                break
    return chosen


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
