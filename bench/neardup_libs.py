"""MinHash implementations compared for summaries.similarity (bench/neardup.py --libraries).

For each: CPU per document for the signature (the shingles given), the RSS
its import adds (in a fresh process), and, on the labelled pairs, the share
of copies whose original shares an LSH band (candidate recall) and of other
articles that do (candidates the exact check must then refuse). The exact
check does not depend on the signature, so these decide between them.
"""

from __future__ import annotations

import hashlib
import importlib
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import neardup_sets as sets
from rensa import RMinHash

from summaries.similarity import lsh_bands
from summaries.similarity.minhash import NUM_PERM
from summaries.similarity.text import shingles, tokenize

Signer = Callable[[set[str]], tuple[int, ...]]
_MASK = 0xFFFFFFFF
_PRIME = (1 << 61) - 1


def _rensa() -> Signer:
    def sign(grams: set[str]) -> tuple[int, ...]:
        minhash = RMinHash(NUM_PERM, 20261207)
        minhash.update(sorted(grams))
        return tuple(minhash.digest())
    return sign


def _datasketch() -> Signer:
    # Not a dependency: measured where installed (pip install datasketch).
    minhash_class: Any = importlib.import_module("datasketch").MinHash

    def sign(grams: set[str]) -> tuple[int, ...]:
        minhash = minhash_class(num_perm=NUM_PERM, seed=1)
        minhash.update_batch([g.encode() for g in grams])
        return tuple(int(v) & _MASK for v in minhash.hashvalues)
    return sign


def _h64(gram: str) -> int:
    return int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=8).digest(), "big")


def _hand_permutations() -> Signer:
    """Classic MinHash, pure Python: NUM_PERM affine permutations per shingle."""
    params = [(_h64(f"a{i}") % _PRIME | 1, _h64(f"b{i}") % _PRIME) for i in range(NUM_PERM)]

    def sign(grams: set[str]) -> tuple[int, ...]:
        hashes = [_h64(g) for g in grams]
        return tuple(min((a * h + b) % _PRIME for h in hashes) & _MASK for a, b in params)
    return sign


def _hand_one_permutation() -> Signer:
    """One-permutation MinHash (one hash per shingle, NUM_PERM bins), pure
    Python, empty bins filled from the next full one (rotation densification)."""
    def sign(grams: set[str]) -> tuple[int, ...]:
        bins: list[int | None] = [None] * NUM_PERM
        for gram in grams:
            h = _h64(gram)
            b, v = h % NUM_PERM, (h >> 7) & _MASK
            current = bins[b]
            if current is None or v < current:
                bins[b] = v
        out = []
        for i in range(NUM_PERM):
            for step in range(NUM_PERM):
                value = bins[(i + step) % NUM_PERM]
                if value is not None:
                    out.append((value + step * 0x9E3779B1) & _MASK)
                    break
        return tuple(out)
    return sign


CANDIDATES: dict[str, tuple[str, Callable[[], Signer]]] = {
    "rensa (chosen)": ("rensa", _rensa),
    "datasketch": ("datasketch", _datasketch),
    "hand-written, 128 permutations": ("hashlib", _hand_permutations),
    "hand-written, one permutation": ("hashlib", _hand_one_permutation),
}


_RSS = ("import re; rss = lambda: int(re.search(r'VmRSS:\\s+(\\d+)', "
        "open('/proc/self/status').read()).group(1))")


def _import_rss(module: str) -> str:
    """The resident memory ``import module`` adds to a fresh interpreter (Linux)."""
    code = f"{_RSS}; before = rss(); import {module}; print(rss() - before)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    return f"{int(done.stdout) / 1024:.1f} MiB" if done.returncode == 0 else "n/a"


def compare(pairs: list[sets.Pair]) -> None:
    grams = {text: shingles(tokenize(text)) for p in pairs for text in (p.original, p.query)}
    print("MinHash implementations (held-out half):")
    for name, (module, load) in CANDIDATES.items():
        try:
            sign = load()
        except ImportError:
            print(f"  {name}: not installed")
            continue
        started = time.process_time()
        bands = {text: set(lsh_bands(sign(g))) for text, g in grams.items()}
        ms = (time.process_time() - started) * 1000 / len(grams)
        found = [bool(bands[p.original] & bands[p.query]) for p in pairs if p.match]
        others = [bool(bands[p.original] & bands[p.query]) for p in pairs
                  if p.kind == "neg:other"]
        print(f"  {name}: {ms:.2f} ms CPU per document, import adds "
              f"{_import_rss(module)} RSS, candidate recall "
              f"{sum(found) / len(found):.3f}, other articles proposed "
              f"{sum(others)}/{len(others)}")
