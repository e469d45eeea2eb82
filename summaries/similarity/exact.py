"""The exact check that confirms a candidate: may two texts share one summary?

LSH only proposes; this decides, on the two texts themselves:

1. the same language (a translation is another summary);
2. their word-shingle Jaccard is at least JACCARD_THRESHOLD (chosen in
   bench/neardup.py on one half of the development pages, reported on the
   other): a copy under other boilerplate, headline, byline, with a trimmed
   or added paragraph stays above it, half of a story or a shared quote falls
   below. Containment (shared / smaller set) is reported but does not decide:
   it is 1.0 for a text that is a small part of a much longer one, whose
   summary is not the same;
3. neither text's story is mostly left out: the words of its sentences of
   12+ words that the alignment below does not share are at most 40 % of
   them. A copy loses a trimmed paragraph and gains a site's short lines;
   part of a story (three paragraphs of five), or half of one mixed with a
   little of another, loses more, and its Jaccard can still pass (a story
   repeating itself, another half that is short);
4. no difference in the facts a summary states (numbers, dates, names,
   negation: :mod:`.facts`) in the body they share. The two token streams
   are aligned on their shared shingles (difflib; a pair that repeats
   itself too much to align cheaply is refused as ``repetitive``); every
   difference is one of
   - a whole added or removed run of sentences or lines, or anything before
     the first or after the last shared word (headline, byline, "Related:",
     a trimmed paragraph, another site's boilerplate): ignored, unless it is
     an edited copy of a sentence of the other text (same shape, other facts);
   - an edit inside a sentence: refused if it adds, removes or changes a fact.
   Words that carry no fact may differ ("says" for "said"): Jaccard bounds them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from difflib import SequenceMatcher

from .facts import FactKind, fact_kind, fact_value, skeleton
from .minhash import MIN_SHINGLES
from .text import SHINGLE_WORDS, Token, shingle_runs, tokenize

__all__ = ["JACCARD_THRESHOLD", "Verdict", "confirm"]

# Chosen in bench/neardup.py (its output gives the margin on both sides).
JACCARD_THRESHOLD = 0.5
# An inserted or deleted run shorter than this is an edit, not boilerplate.
_MIN_BLOCK = 4
# An ignored sentence of which this share of shape trigrams occurs in the
# other text is an edited copy of one of its sentences.
_EDITED_SHARE = 0.6
_PLACEHOLDERS = frozenset("~D#N")  # facts.skeleton's
# A side whose story words the alignment leaves out beyond this share is
# part of a story, or half of one mixed with another, not a copy of it: a
# copy loses a trimmed paragraph and gains a site's short lines. Chosen by
# hand on bench/neardup.py's labelled pairs of four seeds (a mixed article
# whose Jaccard passes 0.45 leaves out 0.43-0.52; 99 % of syndicated copies
# at most 0.39, the rest short stories trimmed by up to half); checked on
# five seeds not looked at: no false hit, recall 0.990-0.995 held out.
_MOST_UNSHARED = 0.4
# Pairs of equal shingles per shingle of the two texts beyond which they are
# not aligned (``_alignment_work``): at most 2.8 on every pair of
# bench/neardup.py's labelled set (a meal plan repeating its lines); 16,000
# words drawn from three give 33, one sentence repeated thousands.
_MOST_WORK = 8
_STORY_SENTENCE = 12
_ORDER: tuple[FactKind, ...] = ("negation", "date", "number", "name")


@dataclass(frozen=True, slots=True)
class Verdict:
    same: bool
    reason: str  # "near_duplicate", "language", "too_short", "dissimilar",
    # "repetitive", "partial", "facts:<kind>" or "edited_sentence"
    jaccard: float = 0.0
    containment: float = 0.0
    detail: str = ""


def confirm(a: str, b: str, *, language_a: str | None, language_b: str | None,
            threshold: float = JACCARD_THRESHOLD) -> Verdict:
    """Whether ``b`` may be answered with ``a``'s summary, and if not, why.

    ``threshold`` is for bench/neardup.py, which chooses it: callers keep the default.
    """
    if language_a != language_b:
        return Verdict(False, "language", detail=f"{language_a} != {language_b}")
    tokens_a, tokens_b = tokenize(a), tokenize(b)
    runs_a, runs_b = shingle_runs(tokens_a), shingle_runs(tokens_b)
    grams_a, grams_b = set(runs_a), set(runs_b)
    if min(len(grams_a), len(grams_b)) < MIN_SHINGLES:
        return Verdict(False, "too_short")
    shared = len(grams_a & grams_b)
    jaccard = shared / len(grams_a | grams_b)
    containment = shared / min(len(grams_a), len(grams_b))
    if jaccard < threshold:
        return Verdict(False, "dissimilar", jaccard, containment)
    if _alignment_work(runs_a, runs_b) > _MOST_WORK * (len(runs_a) + len(runs_b)):
        # A text that repeats itself this much is no article (and aligning it
        # would cost seconds): it is summarised on its own.
        return Verdict(False, "repetitive", jaccard, containment)
    gaps = _gaps(tokens_a, tokens_b, runs_a, runs_b)
    partial = max(_unshared_story(tokens_a, [(i1, i2) for i1, i2, _, _ in gaps]),
                  _unshared_story(tokens_b, [(j1, j2) for _, _, j1, j2 in gaps]))
    if partial > _MOST_UNSHARED:
        return Verdict(False, "partial", jaccard, containment, f"{partial:.2f} of a story unshared")
    refusal = _fact_difference(tokens_a, tokens_b, gaps, language_a)
    if refusal:
        return Verdict(False, refusal[0], jaccard, containment, refusal[1])
    return Verdict(True, "near_duplicate", jaccard, containment)


def _facts(tokens: list[Token], language: str | None) -> Counter[tuple[FactKind, str]]:
    found: Counter[tuple[FactKind, str]] = Counter()
    for token in tokens:
        kind = fact_kind(token, language)
        if kind:
            found[kind, fact_value(token, kind)] += 1
    return found


def _compare(side_a: list[Token], side_b: list[Token], language: str | None
             ) -> tuple[str, str] | None:
    """("facts:<kind>", detail) if the two runs state different facts."""
    facts_a, facts_b = _facts(side_a, language), _facts(side_b, language)
    if facts_a == facts_b:
        return None
    differing = (facts_a - facts_b) + (facts_b - facts_a)
    kind = next(k for k in _ORDER if any(fk == k for fk, _ in differing))
    only_a = " ".join(v for _, v in (facts_a - facts_b))
    only_b = " ".join(v for _, v in (facts_b - facts_a))
    return f"facts:{kind}", f"{only_a or '-'} / {only_b or '-'}"


def _starts_segment(tokens: list[Token], i: int) -> bool:
    return i == 0 or tokens[i - 1].ends_segment


def _whole(tokens: list[Token], start: int, end: int) -> bool:
    """Whether tokens[start:end] is a run of whole sentences or lines."""
    return _starts_segment(tokens, start) and tokens[end - 1].ends_segment


def _tail(run: list[Token]) -> list[Token]:
    """The part of ``run`` after its last segment end (what flows into the next word)."""
    cut = max((i + 1 for i, t in enumerate(run) if t.ends_segment), default=0)
    return run[cut:]


def _head(tokens: list[Token], start: int, end: int) -> list[Token]:
    """The part of tokens[start:end] before its first segment end, if it
    continues a sentence begun before ``start``."""
    if _starts_segment(tokens, start):
        return []
    for i in range(start, end):
        if tokens[i].ends_segment:
            return tokens[start:i + 1]
    return tokens[start:end]


def _alignment_work(runs_a: list[str], runs_b: list[str]) -> int:
    """How many pairs of equal shingles the two texts hold: what aligning
    them costs (difflib looks at each such pair). About the length of the
    texts for prose, whose shingles are nearly all distinct; the square of
    it for a text that repeats itself."""
    counts_b = Counter(runs_b)
    return sum(n * counts_b[run] for run, n in Counter(runs_a).items())


def _gaps(ta: list[Token], tb: list[Token], runs_a: list[str], runs_b: list[str]
          ) -> list[tuple[int, int, int, int]]:
    """(i1, i2, j1, j2), token positions, for each difference between the
    texts' shared runs.

    Only runs of at least SHINGLE_WORDS equal words anchor the alignment: a
    stray shared "the" between a trimmed paragraph and a site's footer would
    otherwise turn the texts' ends into edits inside the body. So the
    texts are aligned shingle by shingle (a shared shingle is a shared run of
    SHINGLE_WORDS words): prose has few repeated shingles where it has many
    repeated words, so difflib's work is about linear (aligning the words
    took 1-3 s on two 100,000-character texts, and 14 s on a crafted pair).
    """
    matcher = SequenceMatcher(None, runs_a, runs_b, autojunk=False)
    gaps, i, j = [], 0, 0
    for block in matcher.get_matching_blocks():
        if block.size == 0:  # the end sentinel
            if i < len(ta) or j < len(tb):
                gaps.append((i, len(ta), j, len(tb)))
            break
        # Two runs of shingles may share words at their ends (a repeated
        # word next to an edit): the gap between them is then empty there.
        start_a, start_b = max(i, block.a), max(j, block.b)
        if start_a > i or start_b > j:
            gaps.append((i, start_a, j, start_b))
        i = max(i, block.a + block.size + SHINGLE_WORDS - 1)
        j = max(j, block.b + block.size + SHINGLE_WORDS - 1)
    return [g for g in gaps if g[0] < g[1] or g[2] < g[3]]


def _unshared_story(tokens: list[Token], gaps: list[tuple[int, int]]) -> float:
    """The share of a text's story words that its alignment with the other
    leaves out. Story words are those of sentences of at least
    ``_STORY_SENTENCE`` words (split at sentence punctuation, line breaks
    aside, so a reflowed paragraph stays one sentence): a site's own lines
    (a byline, "Comments are closed.", a headline's fragment) are shorter."""
    story = [False] * len(tokens)
    start = 0
    for i, token in enumerate(tokens):
        if token.ends_sentence:
            if i + 1 - start >= _STORY_SENTENCE:
                story[start:i + 1] = [True] * (i + 1 - start)
            start = i + 1
    total = sum(story)
    if not total:
        return 0.0
    return sum(sum(story[s:e]) for s, e in gaps) / total


def _fact_difference(ta: list[Token], tb: list[Token], gaps: list[tuple[int, int, int, int]],
                     language: str | None) -> tuple[str, str] | None:
    ignored: list[tuple[list[Token], list[Token]]] = []
    for i1, i2, j1, j2 in gaps:
        run_a, run_b = ta[i1:i2], tb[j1:j2]
        leading, trailing = i1 == j1 == 0, i2 == len(ta) and j2 == len(tb)
        if leading or trailing:
            # Only the part that runs into the shared body is compared; the
            # rest (headline, byline, boilerplate, a trimmed paragraph) is not.
            if run_a and run_b:
                part_a = _tail(run_a) if leading else _head(ta, i1, i2)
                part_b = _tail(run_b) if leading else _head(tb, j1, j2)
                refusal = (_compare(part_a, part_b, language)
                           or _edge_edit(run_a, run_b, language, leading=leading))
                if refusal:
                    return refusal
            ignored.append((run_a, run_b))
            continue
        if not run_a or not run_b:
            tokens, start, end = (ta, i1, i2) if run_a else (tb, j1, j2)
            if end - start >= _MIN_BLOCK and _whole(tokens, start, end):
                ignored.append((run_a, run_b))
                continue
        refusal = _compare(run_a, run_b, language)
        if refusal:
            return refusal
    if any(_edited_copy(run_a, run_b, tb, language) or _edited_copy(run_b, run_a, ta, language)
           for run_a, run_b in ignored):
        return "edited_sentence", ""
    return None


def _edge_edit(run_a: list[Token], run_b: list[Token], language: str | None, *,
               leading: bool) -> tuple[str, str] | None:
    """The facts changed in the sentence next to the shared body, if it was edited.

    "HAYWARD, Calif. (AP) —" against "... Published May 3, 2024 HAYWARD,
    Tanaka. (AP) —", whitespace collapsed: the sentence that touches the shared
    body on one side, against as many words touching it on the other.
    """
    for run, other in ((run_a, run_b), (run_b, run_a)):
        sentence = _sentences(run)[-1 if leading else 0]
        n = len(sentence)
        facing = other[-n:] if leading else other[:n]
        shape = skeleton(sentence, language)
        if len(facing) != n or skeleton(facing, language) != shape:
            continue
        # Names alone, none in common, are two sites' own lines ("FTC: ...",
        # "Comments are closed"), not one line edited.
        names_only = all(w == "N" for w in shape)
        if not names_only or {t.fold for t in sentence} & {t.fold for t in facing}:
            refusal = _compare(sentence, facing, language)
            if refusal:
                return refusal
    return None


def _sentences(run: list[Token]) -> list[list[Token]]:
    pieces, current = [], []
    for token in run:
        current.append(token)
        if token.ends_segment:
            pieces.append(current)
            current = []
    return [*pieces, current] if current else pieces


def _trigrams(shape: tuple[str, ...]) -> set[tuple[str, ...]]:
    return {shape[i:i + 3] for i in range(len(shape) - 2)}


def _edited_copy(run: list[Token], facing: list[Token], other: list[Token],
                 language: str | None) -> bool:
    """Whether a sentence of an ignored ``run`` is a sentence of the other text
    with its facts edited: a short one (``"48."``, ``"HAYWARD, Calif."``) of
    the same shape as one in the ``facing`` run (what stands in its place in
    the other text), a long one whose shape is mostly found in ``other``.
    """
    sentences = _sentences(run)
    if not sentences:
        return False
    facing_shapes = {skeleton(s, language): tuple(t.fold for t in s)
                     for s in _sentences(facing)}
    other_trigrams = _trigrams(skeleton(other, language))
    other_text = f" {' '.join(t.fold for t in other)} "
    for sentence in sentences:
        shape = skeleton(sentence, language)
        if len(sentence) < _MIN_BLOCK:
            same_shape = facing_shapes.get(shape)
            # Names alone prove nothing ("All About Space", "Facebook Twitter Email").
            if same_shape is not None and same_shape != tuple(t.fold for t in sentence) \
                    and any(w != "N" for w in shape) \
                    and any(fact_kind(t, language) for t in sentence):
                return True
            continue
        if f" {' '.join(t.fold for t in sentence)} " in other_text:
            continue  # said word for word in the other text: moved or repeated, not edited
        # Nor do trigrams of placeholders, or a title-cased headline made of the
        # body's words: a sentence needs two ordinary words to be recognised.
        if sum(w not in _PLACEHOLDERS for w in shape) < 2:
            continue
        telling = {g for g in _trigrams(shape) if any(w not in _PLACEHOLDERS for w in g)}
        if len(telling) >= 2 and len(telling & other_trigrams) >= _EDITED_SHARE * len(telling):
            return True
    return False
