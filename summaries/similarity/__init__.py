"""Near-duplicate detection: may a new text share the summary of an earlier one?

Self-contained (the standard library and rensa only): :func:`fingerprint`
and :func:`lsh_bands` find candidates, :func:`confirm` decides on the two
texts. Wiring it into the pipeline (a Valkey LSH index, the X-Cache: NEAR
answer) lives elsewhere; bench/neardup.py measures it.
"""

from .exact import JACCARD_THRESHOLD, Verdict, confirm
from .minhash import Fingerprint, MemoryIndex, fingerprint, lsh_bands

__all__ = ["JACCARD_THRESHOLD", "Fingerprint", "MemoryIndex", "Verdict", "confirm",
           "fingerprint", "lsh_bands"]
