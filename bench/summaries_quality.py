"""Does the offline summariser read like a summary? Counted on real articles.

Usage: .venv/bin/python bench/summaries_quality.py [--data DIR] [--show N]

The articles are the texts of the shared extraction benchmark's ground truth
(``ground-truth.json``: ``{id: {"articleBody", "url"}}``), by default in
``../shared/extraction-benchmark``. Without it the benchmark says so and
exits 0 (skipped: nothing was measured, nothing failed).

For every article, ``LocalProvider().summarize(articleBody)``, judged by
tests/helpers/summary_quality.py (written apart from the summariser):

- sentences that open with a connective ("And", "But", "However" ...);
- sentences that open with a pronoun referring back ("He", "It", "This" ...)
  whose referent, the sentence before it in the text, is not in the summary;
- the lead-sentence inclusion rate: how often the summary opens with the
  article's first sentence, among articles whose first sentence can open one
  (8 words or more, a complete sentence, no connective or pronoun first);
- tags that are stopwords, bare verbs, possessives or not words of the text.

The summariser's rules were tuned on one half of the pages only ("tuning":
ids whose last hex digit is even); the other half is held out and reported
on its own. Targets, on each half: 0 bad starts and 0 bad tags (PASS/FAIL;
the exit status is 1 only for a FAIL). The lead rate is reported, not judged.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from summaries.core.errors import JobError  # noqa: E402
from summaries.core.language import detect_language  # noqa: E402
from summaries.providers import LocalProvider  # noqa: E402
from tests.helpers.summary_quality import Judgement, judge, tally  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "extraction-benchmark"


def half_of(page_id: str) -> str:
    """"tuning" or "held-out", fixed by the id (a hex digest)."""
    return "tuning" if int(page_id[-1], 16) % 2 == 0 else "held-out"


def run(data: Path, show: int) -> int:
    truth_file = data / "ground-truth.json"
    if not truth_file.is_file():
        print(f"SKIPPED: no {truth_file} (the shared extraction benchmark); nothing measured")
        return 0
    truth = json.loads(truth_file.read_text(encoding="utf-8"))
    provider = LocalProvider()
    judged: dict[str, list[tuple[str, Judgement]]] = {"tuning": [], "held-out": []}
    refused: dict[str, int] = {"tuning": 0, "held-out": 0}
    for page_id in sorted(truth):
        text = truth[page_id]["articleBody"]
        half = half_of(page_id)
        try:
            result = provider.summarize(text)
        except JobError:
            refused[half] += 1  # too short to summarise: nothing to judge
            continue
        judged[half].append((page_id, judge(text, result.summary, result.tags,
                                            detect_language(text))))
    failed = False
    print("offline summariser (local:textrank) on the development pages")
    print(f"{'':10} {'pages':>5} {'refused':>7} {'connective':>10} {'pronoun':>7} "
          f"{'bad tags':>8} {'lead rate':>12}  verdict")
    for half in ("tuning", "held-out"):
        counts = tally([j for _, j in judged[half]])
        bad = counts["connective_starts"] + counts["pronoun_starts"] + counts["bad_tags"]
        verdict = "PASS" if bad == 0 else "FAIL"
        failed |= bad > 0
        rate = (f"{counts['lead_included']}/{counts['lead_eligible']} "
                f"{counts['lead_included'] / max(1, counts['lead_eligible']):.0%}")
        print(f"{half:10} {len(judged[half]):>5} {refused[half]:>7} "
              f"{counts['connective_starts']:>10} {counts['pronoun_starts']:>7} "
              f"{counts['bad_tags']:>8} {rate:>12}  {verdict}")
    print("targets: 0 connective starts, 0 unresolved pronoun starts, 0 bad tags per half")
    shown = 0
    for half in ("tuning",):  # the held-out pages' problems stay unseen while tuning
        for page_id, j in judged[half]:
            if j.clean or shown >= show:
                continue
            shown += 1
            print(f"\n{half} {page_id[:12]}:")
            for sentence in j.connective_starts:
                print(f"  connective: {sentence[:100]}")
            for sentence in j.pronoun_starts:
                print(f"  pronoun:    {sentence[:100]}")
            for tag, problem in j.bad_tags:
                print(f"  tag {tag!r}: {problem}")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--show", type=int, default=10,
                        help="pages of the tuning half whose problems are shown, at most")
    args = parser.parse_args()
    return run(args.data, args.show)


if __name__ == "__main__":
    sys.exit(main())
