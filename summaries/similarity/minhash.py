"""A text's MinHash fingerprint and its LSH band keys: how candidates are found.

rensa (a Rust MinHash wheel with no dependencies) was chosen by
bench/neardup.py --libraries on the held-out half of the labelled set: all
four candidates found every copy's original as an LSH candidate and proposed
no other article, so cost decided: per document, rensa 0.18 ms CPU and 1 MiB
of RSS imported; datasketch 0.86 ms and 78 MiB (it imports numpy and scipy);
a hand-written 128-permutation MinHash in pure Python 16 ms; a hand-written
one-permutation MinHash (one hash per shingle, densified) 0.69 ms. rensa's
hash is seeded and fixed, not Python's ``hash``, so a signature is the same in
every process (tests/test_similarity.py checks).

LSH: the 128 values are cut into BANDS bands of ROWS rows; two texts become
candidates when any band is equal. With 32 x 4 a pair at Jaccard 0.5 is a
candidate with probability 1 - (1 - 0.5**4)**32 = 0.87, at 0.6 0.99, at 0.3
0.23: the confirming check, not LSH, decides.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

from rensa import RMinHash

from .text import text_shingles

__all__ = ["BANDS", "MIN_SHINGLES", "ROWS", "Fingerprint", "MemoryIndex", "fingerprint",
           "lsh_bands"]

NUM_PERM = 128
BANDS = 32
ROWS = 4
_SEED = 20261207
# Bumped when the shingling, seed or banding changes: keys of another version
# never meet (the Valkey index keeps them apart until their TTL ends).
_VERSION = "nd1"
# A text with fewer shingles (under 64 words) is never matched. In a text
# that short one changed word moves so few shingles that the Jaccard stays
# above the threshold (30 shingles: one word changed leaves about 0.71), so
# a changed verb ("approved" for "rejected"), which the fact check does not
# cover, would be shared; and such a text costs a few dozen tokens to
# summarise. 64 words is the shortest article of the labelled set
# (bench/neardup.py), so every one of its pairs is still measured; a short
# brief or a three-sentence note is summarised as it is.
MIN_SHINGLES = 60


@dataclass(frozen=True, slots=True)
class Fingerprint:
    signature: tuple[int, ...]  # NUM_PERM MinHash values; empty when too short
    shingle_count: int

    @property
    def indexable(self) -> bool:
        return bool(self.signature)


def fingerprint(text: str) -> Fingerprint:
    """The MinHash signature of ``text``'s word shingles (none if too short)."""
    grams = text_shingles(text)
    if len(grams) < MIN_SHINGLES:
        return Fingerprint((), len(grams))
    minhash = RMinHash(NUM_PERM, _SEED)
    minhash.update(sorted(grams))
    return Fingerprint(tuple(minhash.digest()), len(grams))


def lsh_bands(signature: tuple[int, ...]) -> list[str]:
    """One key per band, e.g. ``"nd1:07:3fa2..."``: equal keys, a candidate pair.

    A key names its band, so equal values in different bands never collide;
    the value is a 16-byte BLAKE2b of the band's rows (a Valkey key suffix).
    """
    if not signature:
        return []
    keys = []
    for band in range(BANDS):
        rows = signature[band * ROWS:(band + 1) * ROWS]
        digest = hashlib.blake2b(b"".join(v.to_bytes(4, "big") for v in rows),
                                 digest_size=16).hexdigest()
        keys.append(f"{_VERSION}:{band:02d}:{digest}")
    return keys


class MemoryIndex:
    """An LSH index in a dict, for tests and benches (Valkey's comes later)."""

    def __init__(self) -> None:
        self._buckets: dict[str, set[str]] = defaultdict(set)

    def add(self, doc_id: str, fp: Fingerprint) -> None:
        for key in lsh_bands(fp.signature):
            self._buckets[key].add(doc_id)

    def candidates(self, fp: Fingerprint) -> list[str]:
        """Ids sharing a band with ``fp``, most shared bands first, then by id."""
        hits: dict[str, int] = defaultdict(int)
        for key in lsh_bands(fp.signature):
            for doc_id in self._buckets.get(key, ()):
                hits[doc_id] += 1
        return sorted(hits, key=lambda d: (-hits[d], d))
