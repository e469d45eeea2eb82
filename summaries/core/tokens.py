"""A rough, conservative AI token estimate from text lengths: about four
characters a token, plus the prompt's instructions and the answer. The AI
quota (services/ai_quota.py) and the token counters (observability) share it."""

from __future__ import annotations

import math
from collections.abc import Sequence

CHARS_PER_TOKEN = 4
OVERHEAD_TOKENS = 400


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) + OVERHEAD_TOKENS


def answer_tokens(summary: str, tags: Sequence[str]) -> int:
    """The estimated tokens of one answer (its summary and tags), without the overhead."""
    return estimate_tokens(summary + " ".join(tags)) - OVERHEAD_TOKENS
