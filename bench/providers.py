"""Benchmark the sentence splitter and the offline summariser on very large text.

Usage: .venv/bin/python bench/providers.py [--repeat N]

Prints, for each input, the median seconds of ``split_sentences``,
``has_sentences`` (the API's "at least two sentences" check) and
``LocalProvider().summarize``. All of them should grow linearly with the
input (or not at all, for ``has_sentences``): a 2M-character input within a
few times the 1M one. No network, no database.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from summaries.core.errors import JobError  # noqa: E402
from summaries.providers import LocalProvider, has_sentences, split_sentences  # noqa: E402

# Prose with the splitter's traps: titles, initialisms, decimals, quotes,
# ellipses, paragraph breaks.
_MIXED = [
    "Dr. Smith met Mrs. Jones at 9 a.m. in the U.S. Army office near the harbour.",
    "Prices rose 3.5 percent to $4.20 a unit, e.g. for cargo bound for the docks.",
    '"Why?" she asked the ferry pilot.',
    "Wait... what happened to the crane schedule?",
    "The harbour crew checked the ferry schedule and the freight records.",
    "Visit example.com today, or read the v1.2 docs, etc. and more.",
    "J. R. R. Tolkien wrote it!\n\nA heading\n\nThe body starts here with the tide tables.",
]


def mixed(size: int) -> str:
    parts: list[str] = []
    total = 0
    while total < size:
        piece = f"{_MIXED[len(parts) % len(_MIXED)]} Item {len(parts)}. "
        parts.append(piece)
        total += len(piece)
    return "".join(parts)[:size]


INPUTS: dict[str, Callable[[], str]] = {
    "mixed prose, 1M chars": lambda: mixed(1_000_000),
    '"Cats purr. ", 2M chars': lambda: ("Cats purr. " * 181_819)[:2_000_000],
    '"Hi. " short sentences, 0.4M chars': lambda: "Hi. " * 100_000,
    "mixed prose, 100k chars (API limit)": lambda: mixed(100_000),
    "one 100k-char sentence (API worst case)": lambda: "word " * 20_000,
}


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def summarize(text: str) -> str:
    try:
        result = LocalProvider().summarize(text)
    except JobError as exc:
        return exc.code
    return f"{len(split_sentences(result.summary))} sentences, tags {result.tags}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    args = parser.parse_args()
    print(f"{'input':42} {'split':>8} {'has_2':>8} {'local':>8}  local result")
    for name, make in INPUTS.items():
        text = make()
        split = median_seconds(lambda: split_sentences(text), args.repeat)  # noqa: B023
        check = median_seconds(lambda: has_sentences(text), args.repeat)  # noqa: B023
        local = median_seconds(lambda: summarize(text), args.repeat)  # noqa: B023
        print(f"{name:42} {split:7.3f}s {check:7.4f}s {local:7.3f}s  {summarize(text)}",
              flush=True)


if __name__ == "__main__":
    main()
