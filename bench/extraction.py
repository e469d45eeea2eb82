"""Benchmark article extraction against the shared development set.

Usage: .venv/bin/python bench/extraction.py [--data DIR]

Prints F1, precision, recall and milliseconds per page for our
``extract_article`` and two trafilatura baselines, using the benchmark's own
metric (see ``shingle_scores``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import trafilatura
from trafilatura.utils import decode_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from summaries.extraction import extract_article  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "extraction-benchmark"
_TOKEN = re.compile(r"\w+")

Extractor = Callable[[str, str], str]


def _shingles(text: str, n: int = 4) -> Counter[str]:
    # Texts shorter than n tokens still give one (shorter) shingle.
    tokens = _TOKEN.findall(text)
    return Counter(
        " ".join(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1)) if tokens
    )


def shingle_scores(predicted: str, truth: str) -> tuple[float, float]:
    """Per-page (precision, recall) over multisets of 4-token shingles."""
    pred, true = _shingles(predicted), _shingles(truth)
    tp = sum((pred & true).values())
    fp = sum((pred - true).values())
    fn = sum((true - pred).values())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return precision, recall


def aggregate(scores: Iterable[tuple[float, float]]) -> tuple[float, float, float]:
    """(F1, precision, recall): per-page scores averaged, F1 from the averages."""
    rows = list(scores)
    precision = sum(p for p, _ in rows) / len(rows)
    recall = sum(r for _, r in rows) / len(rows)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return f1, precision, recall


def load_pages(data: Path) -> list[tuple[str, str, str]]:
    """(html, url, ground truth) for every page of the benchmark."""
    truth = json.loads((data / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for page_id, entry in sorted(truth.items()):
        raw = gzip.decompress((data / "html" / f"{page_id}.html.gz").read_bytes())
        pages.append((decode_file(raw), entry["url"], entry["articleBody"]))
    return pages


def ours(html: str, url: str) -> str:
    return extract_article(html, url=url).text


def trafilatura_precision(html: str, url: str) -> str:
    return trafilatura.extract(html, favor_precision=True, include_comments=False) or ""


def trafilatura_default(html: str, url: str) -> str:
    return trafilatura.extract(html, include_comments=False) or ""


def run(extractor: Extractor, pages: list[tuple[str, str, str]]) -> tuple[float, ...]:
    scores, elapsed = [], 0.0
    for html, url, truth in pages:
        start = time.perf_counter()
        predicted = extractor(html, url)
        elapsed += time.perf_counter() - start
        scores.append(shingle_scores(predicted, truth))
    return (*aggregate(scores), 1000 * elapsed / len(pages))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="benchmark directory")
    args = parser.parse_args()
    pages = load_pages(args.data)
    print(f"{len(pages)} pages from {args.data}")
    print(f"{'extractor':<34}{'F1':>7}{'prec':>7}{'recall':>7}{'ms/page':>9}")
    for name, extractor in (
        ("extract_article (ours)", ours),
        ("trafilatura favor_precision", trafilatura_precision),
        ("trafilatura default", trafilatura_default),
    ):
        f1, precision, recall, ms = run(extractor, pages)
        print(f"{name:<34}{f1:>7.3f}{precision:>7.3f}{recall:>7.3f}{ms:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
