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

from summaries.errors import JobError
from summaries.providers.contract import (
    MAX_SUMMARY_CHARS,
    MAX_TAG_CHARS,
    SummaryResult,
    check_output,
    clean_text,
    split_sentences,
)

ALGORITHM_VERSION = "v3"  # bump when the output for a given text changes (cache key)

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

_WORD = re.compile(r"[a-z][a-z0-9]*(?:['-][a-z0-9]+)*")



def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Function words and filler that carry no topic; terms of 1-2 letters and
# numbers are dropped separately.
STOPWORDS = _wordset("""
about above across after afterwards again against ago ahead all almost alone along already also
although always among amongst and another any anybody anyone anything anyway anywhere are
aren't around as ask asked asks away back be became because become becomes becoming been before
beforehand behind being below beside besides best better between beyond both but by came can
can't cannot could couldn't did didn't do does doesn't doing don't done down during each
either else elsewhere enough especially even ever every everybody everyone everything
everywhere except far few fifth first five for former formerly four from further furthermore
get gets getting give given gives go goes going gone got had hadn't has hasn't have haven't
having he he'd he'll he's hence her here here's hers herself him himself his how how's however
i'd i'll i'm i've if in indeed instead into is isn't it it's its itself just keep kept know
known knows last later latter least less let let's like likely made make makes making many may
maybe me meanwhile might mine more moreover most mostly much must mustn't my myself namely
near nearly need needs neither never nevertheless next nine no nobody none nor not nothing now
nowhere of off often on once one only onto or other others otherwise ought our ours ourselves
out over overall own per perhaps put quite rather really said same saw say saying says second
see seem seemed seeming seems seen several shall shan't she she'd she'll she's should
shouldn't since six so some somebody someone something sometime sometimes somewhere soon still
such take taken takes ten than that that's the their theirs them themselves then thence there
there's thereafter thereby therefore therein these they they'd they'll they're they've thing
things third this those though three through throughout thus to together too took toward
towards two under unless until up upon us use used uses using very via was wasn't way ways we
we'd we'll we're we've well went were weren't what what's whatever when whence whenever where
where's whereas whereby wherever whether which while who who's whoever whole whom whose why
why's will with within without won't would wouldn't yes yet you you'd you'll you're you've
your yours yourself yourselves also around came come comes coming want wants wanted year years
""")


class LocalProvider:
    """Extractive summary (2-3 central sentences, in original order) plus
    2-4 keyword tags. Raises ``JobError(code="input_too_short")`` when the text
    has fewer than two sentences or too few content words to tag."""

    name = "local"
    model = "textrank"

    @property
    def cache_namespace(self) -> str:
        return f"{self.name}:{self.model}:{ALGORITHM_VERSION}"

    @property
    def translates(self) -> bool:
        return False  # extractive: its sentences are the text's, in the text's language

    def summarize(self, text: str, *, title: str | None = None,
                  language: str | None = None) -> SummaryResult:
        sentences = _leading_sentences(clean_text(text))
        if len(sentences) < 2:
            raise JobError("text has fewer than two sentences to summarise",
                           code="input_too_short", transient=False)
        tokens = [_terms(s) for s in sentences]
        usable = [i for i, s in enumerate(sentences) if _usable(s, tokens[i])]
        if len(usable) < 2:  # nothing well-formed: fall back to any sentence with content
            usable = [i for i, toks in enumerate(tokens) if toks]
        if len(usable) < 2:
            raise JobError("text has fewer than two sentences with content words",
                           code="input_too_short", transient=False)
        want = 3 if len(usable) >= THREE_SENTENCES_FROM else 2
        ranked = rank_sentences([tokens[i] for i in usable])
        summary = _compose([sentences[usable[j]] for j in ranked], [usable[j] for j in ranked],
                           want)
        tags = extract_tags(sentences, title=title)
        if len(tags) < 2:
            raise JobError("text has too few distinct content words to tag",
                           code="input_too_short", transient=False)
        return check_output(summary, tags)


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
        candidate = {**chosen, pos: _tidy(sentence)}
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


def _words(sentence: str) -> list[str]:
    return _WORD.findall(sentence.lower().replace("\u2019", "'"))


def _terms(sentence: str) -> list[str]:
    return [_stem(w) for w in _words(sentence) if _is_content(w)]


def _is_content(word: str) -> bool:
    return len(word) > 2 and word not in STOPWORDS and not word[0].isdigit()


def _stem(word: str) -> str:
    # Just enough folding for overlap ("volunteers" ~ "volunteer", "city's" ~
    # "city"); a real stemmer would mangle the surface forms we show as tags.
    word = word.removesuffix("'s")
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and len(word) > 3 and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _usable(sentence: str, terms: list[str]) -> bool:
    words = len(sentence.split())
    return MIN_WORDS <= words <= MAX_WORDS and len(sentence) <= MAX_CHARS and len(terms) >= 2


def extract_tags(sentences: list[str], *, title: str | None = None) -> list[str]:
    """2-4 lower-case keyword tags: content words and adjacent content-word pairs
    scored by frequency x spread (share of the text's sections they occur in),
    with a bonus for title words and for names (capitalised inside a sentence).
    Ties go to the term seen first. Shows each term's most frequent surface form."""
    n = len(sentences)
    names = _names(sentences)
    first_seen: dict[str, int] = {}
    sections = max(1, min(5, n))
    counts: Counter[str] = Counter()
    spread: dict[str, set[int]] = defaultdict(set)
    surface: dict[str, Counter[str]] = defaultdict(Counter)
    for i, sentence in enumerate(sentences):
        section = i * sections // n
        previous: str | None = None
        for word in _words(sentence):
            if not _is_content(word):
                previous = None
                continue
            stem = _stem(word)
            first_seen.setdefault(stem, len(first_seen))
            surface[stem][word] += 1
            counts[stem] += 1
            spread[stem].add(section)
            if previous is not None and previous != stem:
                pair = f"{previous} {stem}"
                counts[pair] += 1
                spread[pair].add(section)
            previous = stem
    title_terms = set(_terms(title or ""))
    scores: dict[str, float] = {}
    for term, count in counts.items():
        parts = term.split()
        if len(parts) == 2 and count < 2:
            continue  # a pair seen once is a coincidence, not a phrase
        score = count * len(spread[term]) / sections
        if len(parts) == 2:
            score *= 1.5
        if title_terms.intersection(parts):
            score *= 2.0
        if names.intersection(parts):
            score *= 1.5
        scores[term] = score
    order = {term: min(first_seen.get(p, len(first_seen)) for p in term.split())
             for term in scores}
    return _pick_tags(scores, surface, order)


def _names(sentences: list[str]) -> set[str]:
    """Terms written capitalised somewhere other than a sentence's first word."""
    names: set[str] = set()
    for sentence in sentences:
        for token in sentence.split()[1:]:
            token = token.strip("\"'()[],.;:!?\u201c\u201d\u2018\u2019")
            if token[:1].isupper() and not token.isupper():
                names.update(_stem(w) for w in _words(token) if _is_content(w))
    return names


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
        tag = " ".join(surface[p].most_common(1)[0][0] if surface[p] else p for p in parts)
        if len(tag) > MAX_TAG_CHARS or tag in tags:
            continue
        tags.append(tag)
        covered.update(parts)
        best = max(best, scores[term])
        if len(tags) == MAX_TAGS:
            break
    return tags
