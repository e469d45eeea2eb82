"""The form of a summary: its style (prose or bullet points) and its length.

``prose``/``short`` is the default and the form every summary had before
forms existed (2-3 sentences): its cache key, prompt and output contract are
unchanged. Any other form is keyed apart (``NormalizedInput.cache_key``),
asked for in its own words (providers/common.py) and checked against its
own bounds (providers/contract.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

PROSE: Final = "prose"
BULLETS: Final = "bullets"
SHORT: Final = "short"
MEDIUM: Final = "medium"
LONG: Final = "long"

STYLES: Final = (PROSE, BULLETS)
LENGTHS: Final = (SHORT, MEDIUM, LONG)


@dataclass(frozen=True)
class Form:
    """``style``: ``prose`` (sentences) or ``bullets`` (3-6 key points);
    ``length``: ``short`` (today's 2-3 sentences), ``medium`` or ``long``
    (up to a paragraph per major section of a long document)."""

    style: str = PROSE
    length: str = SHORT

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"unknown summary style {self.style!r}")
        if self.length not in LENGTHS:
            raise ValueError(f"unknown summary length {self.length!r}")

    @property
    def is_default(self) -> bool:
        return self.style == PROSE and self.length == SHORT

    @property
    def bullets(self) -> bool:
        return self.style == BULLETS

    def __str__(self) -> str:
        return f"{self.style}/{self.length}"


DEFAULT_FORM: Final = Form()
