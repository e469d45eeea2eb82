"""The bounds every parser here honours, and the two checks they share.

Defaults only: the settings (DOCUMENT_MAX_BYTES, DOCUMENT_MAX_PAGES) pass
their own values when the pipeline calls ``extract``.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable

from summaries.documents.errors import DecompressionBomb, Timeout

MAX_BYTES = 20 * 1024 * 1024  # DOCUMENT_MAX_BYTES
MAX_PAGES = 500  # DOCUMENT_MAX_PAGES
# Extracted text; past this a document is refused, not cut (a summary of half a book misleads).
MAX_CHARS = 5_000_000
# Compressed parts may inflate to at most MAX_RATIO times the document's size,
# never past MAX_INFLATED; below INFLATED_FLOOR the ratio is not checked (a
# small DOCX's XML inflates 20-50x, a flat image in a small PDF far more).
# One PDF is parsed at a time per process (pdf.py's lock) and PDFium took
# about twice a stream's inflated size: MAX_INFLATED bounds that peak.
MAX_INFLATED = 128 * 1024 * 1024
MAX_RATIO = 100
INFLATED_FLOOR = 32 * 1024 * 1024
# Inflated in steps of this many bytes, each dropped at once: counting costs no memory.
_STEP = 1024 * 1024


def time_left(deadline: float) -> float:
    """Seconds until ``deadline`` (a time.monotonic() value); Timeout if none are left."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise Timeout("the document was not parsed by the deadline")
    return left


def inflation_budget(size: int, *, max_inflated: int = MAX_INFLATED) -> int:
    """How many inflated bytes a document of ``size`` compressed bytes may hold."""
    return min(max_inflated, max(INFLATED_FLOOR, MAX_RATIO * size))


class Inflation:
    """Counts inflated bytes against a budget; DecompressionBomb past it."""

    def __init__(self, budget: int, deadline: float) -> None:
        self.budget = budget
        self.deadline = deadline
        self.total = 0

    def add(self, count: int) -> None:
        self.total += count
        if self.total > self.budget:
            raise DecompressionBomb(
                f"compressed parts inflate past {self.budget} bytes (a decompression bomb)"
            )
        time_left(self.deadline)

    def count_zlib(self, chunks: Iterable[bytes]) -> None:
        """Inflates one zlib stream from ``chunks`` to count it; stops at its end or garbage."""
        inflater = zlib.decompressobj()
        for chunk in chunks:
            data = chunk
            while data and not inflater.eof:
                try:
                    out = inflater.decompress(data, _STEP)
                except zlib.error:
                    return  # not (or no longer) deflate data: nothing more to count
                self.add(len(out))
                data = inflater.unconsumed_tail
            if inflater.eof:
                return
