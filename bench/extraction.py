"""Benchmark article extraction, with k-fold cross-validation of our rules.

Usage: .venv/bin/python bench/extraction.py [--data DIR] [--folds K] [--seed N]

The data set is the shared extraction benchmark (``ground-truth.json`` and
``html/<id>.html.gz``), by default in ``../shared/extraction-benchmark``.

Our extractor is trafilatura (precision mode) plus hand-written rules, each a
switch or threshold of ``ExtractionOptions``. Rules are not fitted, but
choosing which ones ship is: so every rule is chosen on k-1 folds and scored on
the fold it was not chosen on. Printed:

1. held-out F1/precision/recall of that procedure next to trafilatura alone
   (default and favor_precision, which involve no choice), and of the shipped
   configuration (chosen on all pages, so in-sample);
2. the configuration chosen in each fold;
3. per rule: in how many folds it was chosen, its held-out effect (pooled
   held-out F1 of the chosen configurations minus the same with that rule
   off), and its in-sample ablation from the shipped configuration.

A rule belongs in ``SHIPPED`` only if a principle justifies it without these
pages, and its held-out effect is not negative ("neutral": it touches too few
of these pages to measure; it ships for its principle alone). Cross-validation cannot see that a
rule was written while looking at these very pages: on 58 pages of the same
public benchmark kept apart from this set (issue 18, main e36bccf), the rules
of that day scored F1 0.961 against trafilatura alone's 0.963. So every figure
here is a development figure, and the only honest unseen figure is the next
run on pages no rule was written against. Metric: the benchmark's own (see
``shingle_scores``).

Since issue 18 every rule keeps body text trafilatura kept: the headline rule
drops only a line that IS the title (or one part of "Headline | Site"), never
one that merely contains it; every boilerplate pattern matches from the
line's start (the line is a call to action or a label, not a sentence
mentioning one).

Removed after this test (held-out effect over 5 seeds, 5 folds; commit
224e0e2 has them): the recall-mode fallback when the precise text looked
truncated (threshold chosen from 0.1/0.25/0.5/0.75: +0.0000, it fixes a
single page), dateline removal (-0.0001) and advertising labels (+0.0000).
A knob's grid of values lives in ``knobs``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import trafilatura
from trafilatura.utils import decode_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from summaries.extraction import (  # noqa: E402
    BOILERPLATE_GROUPS,
    SHIPPED,
    ExtractionOptions,
    RawExtraction,
    extract_article,
    extract_raw,
    finish,
)

DEFAULT_DATA = ROOT.parent / "shared" / "extraction-benchmark"
_TOKEN = re.compile(r"\w+")

Scores = tuple[float, float]  # (precision, recall) of one page


# --- the benchmark's metric -------------------------------------------------------


def _shingles(text: str, n: int = 4) -> Counter[str]:
    # Texts shorter than n tokens still give one (shorter) shingle.
    tokens = _TOKEN.findall(text)
    return Counter(
        " ".join(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1)) if tokens
    )


def shingle_scores(predicted: str, truth: str) -> Scores:
    """Per-page (precision, recall) over multisets of 4-token shingles."""
    pred, true = _shingles(predicted), _shingles(truth)
    tp = sum((pred & true).values())
    fp = sum((pred - true).values())
    fn = sum((true - pred).values())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return precision, recall


def aggregate(scores: Iterable[Scores]) -> tuple[float, float, float]:
    """(F1, precision, recall): per-page scores averaged, F1 from the averages."""
    rows = list(scores)
    precision = sum(p for p, _ in rows) / len(rows)
    recall = sum(r for _, r in rows) / len(rows)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return f1, precision, recall


# --- data ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    id: str
    html: str
    url: str
    truth: str


class DataError(Exception):
    """The benchmark data set is absent or unreadable where we were told to look."""


def load_pages(data: Path) -> list[Page]:
    """Every page of the benchmark; DataError if the data set is absent or broken."""
    truth_file = data / "ground-truth.json"
    if not truth_file.is_file() or not (data / "html").is_dir():
        raise DataError(
            f"extraction benchmark data not found in {data}\n"
            "Expected: ground-truth.json ({id: {\"articleBody\", \"url\"}}) and "
            "html/<id>.html.gz.\n"
            "It is the shared extraction benchmark set (a development split of "
            "Scrapinghub's article-extraction-benchmark); put it in "
            f"{DEFAULT_DATA} or pass --data DIR."
        )
    try:
        truth = json.loads(truth_file.read_text(encoding="utf-8"))
        pages = []
        for page_id, entry in sorted(truth.items()):
            path = data / "html" / f"{page_id}.html.gz"
            if not path.is_file():
                raise DataError(f"{path} is missing (listed in {truth_file})")
            html = decode_file(gzip.decompress(path.read_bytes()))
            pages.append(Page(page_id, html, entry["url"], entry["articleBody"]))
    except (ValueError, KeyError, TypeError, AttributeError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read the benchmark data in {data}: {exc!r}") from exc
    if not pages:
        raise DataError(f"{truth_file} lists no pages")
    return pages


# --- scoring with caches ---------------------------------------------------------------


class Scorer:
    """Per-page scores of any ExtractionOptions, with trafilatura's output
    cached per page and tree-repair combination (the expensive part)."""

    def __init__(self, pages: Sequence[Page]) -> None:
        self.pages = {page.id: page for page in pages}
        self._raw: dict[tuple[str, bool, bool], RawExtraction] = {}
        self._scores: dict[tuple[str, str], Scores] = {}

    def raw(self, page_id: str, options: ExtractionOptions) -> RawExtraction:
        key = (page_id, options.merge_split_bodies, options.drop_link_lists)
        if key not in self._raw:
            page = self.pages[page_id]
            self._raw[key] = extract_raw(page.html, url=page.url, options=options)
        return self._raw[key]

    def text_scores(self, page_id: str, text: str) -> Scores:
        key = (page_id, text)
        if key not in self._scores:
            self._scores[key] = shingle_scores(text, self.pages[page_id].truth)
        return self._scores[key]

    def page(self, page_id: str, options: ExtractionOptions) -> Scores:
        return self.text_scores(page_id, finish(self.raw(page_id, options), options).text)

    def f1(self, page_ids: Iterable[str], options: ExtractionOptions) -> float:
        return aggregate(self.page(page_id, options) for page_id in page_ids)[0]


# --- the rules and how a fold chooses them ----------------------------------------------


@dataclass(frozen=True)
class Knob:
    """One rule: ``values[0]`` is off (plain trafilatura), the rest its settings."""

    name: str
    values: tuple[object, ...]
    apply: Callable[[ExtractionOptions, object], ExtractionOptions]

    def off(self, options: ExtractionOptions) -> ExtractionOptions:
        return self.apply(options, self.values[0])

    def value(self, options: ExtractionOptions) -> object:
        if self.name.startswith("boilerplate:"):
            return self.name.split(":", 1)[1] in options.boilerplate
        return getattr(options, self.name)


def _field(name: str) -> Callable[[ExtractionOptions, object], ExtractionOptions]:
    def apply(options: ExtractionOptions, value: object) -> ExtractionOptions:
        changes: dict[str, Any] = {name: value}  # a field named at run time
        return replace(options, **changes)
    return apply


def _group(name: str) -> Callable[[ExtractionOptions, object], ExtractionOptions]:
    def apply(options: ExtractionOptions, value: object) -> ExtractionOptions:
        groups = options.boilerplate | {name} if value else options.boilerplate - {name}
        return replace(options, boilerplate=groups)

    return apply


def knobs() -> list[Knob]:
    """Every rule ExtractionOptions offers (a new field must be added here)."""
    found = [
        Knob(f.name, (False, True), _field(f.name))
        for f in fields(ExtractionOptions)
        if f.name != "boilerplate"
    ]
    found += [Knob(f"boilerplate:{g}", (False, True), _group(g)) for g in BOILERPLATE_GROUPS]
    return found


PLAIN = ExtractionOptions(
    merge_split_bodies=False, drop_link_lists=False, drop_headline=False, boilerplate=frozenset()
)
# A rule must raise training F1 by more than this to be chosen: ties (rules
# that touch no training page) go to plain trafilatura.
_MIN_GAIN = 1e-4


def choose(scorer: Scorer, page_ids: Sequence[str], rules: Sequence[Knob]) -> ExtractionOptions:
    """Coordinate ascent from plain trafilatura on ``page_ids`` only."""
    current = PLAIN
    for _ in range(3):
        changed = False
        for knob in rules:
            best, best_f1 = current, scorer.f1(page_ids, current)
            for value in knob.values:
                candidate = knob.apply(current, value)
                f1 = scorer.f1(page_ids, candidate)
                if f1 > best_f1 + _MIN_GAIN:
                    best, best_f1 = candidate, f1
            changed |= best != current
            current = best
        if not changed:
            break
    return current


def folds(page_ids: Sequence[str], k: int, seed: int) -> list[list[str]]:
    shuffled = list(page_ids)
    random.Random(seed).shuffle(shuffled)
    return [shuffled[i::k] for i in range(k)]


# --- report ---------------------------------------------------------------------------------


def _describe(options: ExtractionOptions, rules: Sequence[Knob]) -> str:
    on = []
    for knob in rules:
        value = knob.value(options)
        if value != knob.values[0]:
            on.append(knob.name if value is True else f"{knob.name}={value}")
    return ", ".join(on) or "(plain trafilatura)"


def _timed(extractor: Callable[[Page], str], pages: Sequence[Page]) -> tuple[list[str], float]:
    texts, start = [], time.perf_counter()
    for page in pages:
        texts.append(extractor(page))
    return texts, 1000 * (time.perf_counter() - start) / len(pages)


def _row(name: str, scores: Sequence[Scores], per_fold: Sequence[float], ms: str) -> str:
    f1, precision, recall = aggregate(scores)
    spread = f"{min(per_fold):.3f}-{max(per_fold):.3f}"
    return f"{name:<40}{f1:>7.3f}{precision:>7.3f}{recall:>7.3f}{spread:>13}{ms:>9}"


def cross_validate(
    scorer: Scorer, rules: Sequence[Knob], k: int, seed: int
) -> tuple[list[list[str]], list[ExtractionOptions], dict[str, Scores]]:
    """(folds, options chosen without each fold, held-out scores by page)."""
    split = folds(list(scorer.pages), k, seed)
    chosen = [
        choose(scorer, [i for j, fold in enumerate(split) if j != n for i in fold], rules)
        for n in range(k)
    ]
    held_out = {i: scorer.page(i, chosen[n]) for n, fold in enumerate(split) for i in fold}
    return split, chosen, held_out


def rule_effect(
    scorer: Scorer, knob: Knob, split: Sequence[Sequence[str]],
    chosen: Sequence[ExtractionOptions], held_out: dict[str, Scores],
) -> float:
    """Pooled held-out F1 of the chosen options minus the same with ``knob`` off."""
    without = {i: scorer.page(i, knob.off(chosen[n])) for n, f in enumerate(split) for i in f}
    return aggregate(held_out.values())[0] - aggregate(without.values())[0]


def report(pages: Sequence[Page], k: int, seed: int, repeats: int) -> None:
    scorer = Scorer(pages)
    rules = knobs()
    print(f"{len(pages)} pages, {k}-fold cross-validation, seeds {seed}..{seed + repeats - 1}\n")

    baselines: dict[str, Callable[[Page], str]] = {
        "trafilatura default": lambda p: trafilatura.extract(p.html, include_comments=False) or "",
        "trafilatura favor_precision": lambda p: (
            trafilatura.extract(p.html, favor_precision=True, include_comments=False) or ""
        ),
        "ours, shipped configuration*": lambda p: extract_article(p.html, url=p.url).text,
    }
    by_id: dict[str, dict[str, Scores]] = {}
    timing: dict[str, float] = {}
    for name, extractor in baselines.items():
        texts, timing[name] = _timed(extractor, pages)
        by_id[name] = {p.id: scorer.text_scores(p.id, t) for p, t in zip(pages, texts, strict=True)}

    runs = [cross_validate(scorer, rules, k, s) for s in range(seed, seed + repeats)]
    split, chosen, cv = runs[0]

    def per_fold(scores: dict[str, Scores]) -> list[float]:
        return [aggregate(scores[i] for i in fold)[0] for fold in split]

    print(f"Held-out scores, seed {seed} (each page scored once, by the fold that did not see it)")
    print(f"{'extractor':<40}{'F1':>7}{'prec':>7}{'recall':>7}{'fold F1':>13}{'ms/page':>9}")
    for name in ("trafilatura default", "trafilatura favor_precision"):
        print(_row(name, list(by_id[name].values()), per_fold(by_id[name]),
                   f"{timing[name]:.1f}"))
    print(_row("ours, rules chosen per fold (CV)", list(cv.values()), per_fold(cv), "-"))
    name = "ours, shipped configuration*"
    print(_row(name, list(by_id[name].values()), per_fold(by_id[name]), f"{timing[name]:.1f}"))
    print("* chosen on all pages: an in-sample figure, not a held-out one; and the rules were")
    print("  written while looking at these pages, which cross-validation cannot see (on 58")
    print("  unseen pages, issue 18: main's rules 0.961, trafilatura favor_precision 0.963)")
    cv_f1 = [aggregate(held_out.values())[0] for _, _, held_out in runs]
    print(f"ours (CV) held-out F1 over {repeats} seeds: mean {sum(cv_f1) / len(cv_f1):.4f}, "
          f"range {min(cv_f1):.4f}-{max(cv_f1):.4f}\n")

    print(f"Rules chosen on the training folds, seed {seed}")
    for n, options in enumerate(chosen):
        print(f"  fold {n + 1}: {_describe(options, rules)}")

    print(f"\nPer rule, over {repeats} seeds: chosen = folds that chose it; held-out = mean")
    print("pooled held-out F1 of the per-fold choices minus the same with this rule off")
    print("(and seeds where that was > 0); ablation = shipped F1 minus shipped with it")
    print("off, and pages it improves/worsens there (both in-sample)")
    print(f"{'rule':<28}{'chosen':>8}{'held-out':>10}{'> 0':>6}{'ablation':>10}{'pages +/-':>11}"
          "  verdict")
    shipped = {i: scorer.page(i, SHIPPED) for i in scorer.pages}
    shipped_f1 = aggregate(shipped.values())[0]
    for knob in rules:
        effects = [rule_effect(scorer, knob, *run) for run in runs]
        effect = sum(effects) / len(effects)
        times = sum(knob.value(o) != knob.values[0] for _, chosen_, _ in runs for o in chosen_)
        if knob.value(SHIPPED) == knob.values[0]:
            ablation, better, worse = "-", 0, 0
        else:
            off = {i: scorer.page(i, knob.off(SHIPPED)) for i in scorer.pages}
            ablation = f"{shipped_f1 - aggregate(off.values())[0]:+.4f}"
            better = sum(_f1(shipped[i]) > _f1(off[i]) + 1e-9 for i in shipped)
            worse = sum(_f1(shipped[i]) < _f1(off[i]) - 1e-9 for i in shipped)
        # Neutral: no measurable effect here; it ships only for its principle
        # (a line that IS furniture), never for a figure.
        verdict = "keep" if effect >= _MIN_GAIN else "neutral" if effect > -_MIN_GAIN else "drop"
        positive = sum(e > 0 for e in effects)
        print(f"{knob.name:<28}{times:>4}/{k * repeats:<3}{effect:>+10.4f}{positive:>4}/{repeats}"
              f"{ablation:>10}{f'{better}/{worse}':>11}  {verdict}")


def _f1(scores: Scores) -> float:
    precision, recall = scores
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="benchmark directory")
    parser.add_argument("--folds", type=int, default=5, help="k of k-fold (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="first fold shuffle seed (default 0)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="repeat the k-fold split with this many seeds (default 5)")
    args = parser.parse_args()
    try:
        pages = load_pages(args.data)
    except DataError as exc:
        print(f"bench/extraction.py: {exc}", file=sys.stderr)
        return 2
    if not 2 <= args.folds <= len(pages):
        parser.error(f"--folds must be between 2 and {len(pages)}")
    print(f"data: {args.data}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    report(pages, args.folds, args.seed, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
