"""AI tokens: what a call used (``Usage``: the provider's report, or an
estimate when it reports none) and a rough, conservative estimate from text
lengths: about four characters a token, plus the prompt's instructions and
the answer. The AI quota (services/ai_quota.py), the token counters
(observability) and each job's cost (services/costs.py) share them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

CHARS_PER_TOKEN = 4
OVERHEAD_TOKENS = 400


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) + OVERHEAD_TOKENS


def answer_tokens(summary: str, tags: Sequence[str]) -> int:
    """The estimated tokens of one answer (its summary and tags), without the overhead."""
    return estimate_tokens(summary + " ".join(tags)) - OVERHEAD_TOKENS


@dataclass(frozen=True)
class Usage:
    """The tokens of one or more AI calls. ``estimated``: some of them are
    our estimate (the provider reported none for that call), not the
    provider's count."""

    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens,
                     self.output_tokens + other.output_tokens,
                     self.estimated or other.estimated)

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


NO_USAGE = Usage()


def add_usage(first: Usage | None, second: Usage | None) -> Usage | None:
    """The sum of two usages, either of which may be unknown (None)."""
    if first is None or second is None:
        return first or second
    return first + second


def reported(input_tokens: object, output_tokens: object) -> Usage | None:
    """A provider's reported counts as ``Usage``, or None when it reported no
    input count (then the caller estimates). A missing output count is 0 (a
    blocked prompt has no answer)."""
    if not isinstance(input_tokens, int) or isinstance(input_tokens, bool) or input_tokens < 0:
        return None
    out = output_tokens if isinstance(output_tokens, int) and output_tokens >= 0 else 0
    return Usage(input_tokens, int(out))


def estimated(text: str, summary: str = "", tags: Sequence[str] = ()) -> Usage:
    """The estimate for one call on ``text`` that answered ``summary`` and ``tags``."""
    return Usage(estimate_tokens(text), answer_tokens(summary, tags) if summary else 0,
                 estimated=True)


def split(usage: Usage, weights: Sequence[int]) -> list[Usage]:
    """``usage`` shared out in proportion to ``weights`` (an AI batch call's
    tokens over its items, by the length of each item's text): whole tokens,
    the remainders to the largest fractions, so the shares add up to
    ``usage`` exactly."""
    if not weights:
        return []
    total = sum(weights)
    shares = [max(w, 0) if total > 0 else 1 for w in weights]
    whole = sum(shares)
    inputs = _apportion(usage.input_tokens, shares, whole)
    outputs = _apportion(usage.output_tokens, shares, whole)
    return [Usage(i, o, usage.estimated) for i, o in zip(inputs, outputs, strict=True)]


def _apportion(amount: int, shares: Sequence[int], whole: int) -> list[int]:
    exact = [amount * share / whole for share in shares]
    parts = [math.floor(x) for x in exact]
    left = amount - sum(parts)
    for index in sorted(range(len(exact)), key=lambda i: parts[i] - exact[i])[:left]:
        parts[index] += 1
    return parts
