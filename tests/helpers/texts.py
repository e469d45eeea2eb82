"""Fresh inputs: texts no earlier test has submitted, so never cached yet."""

from __future__ import annotations

import uuid


def text_about(topic: str) -> str:
    """A multi-sentence text, the same for the same topic (unique per topic)."""
    return (
        f"The {topic} project started last spring with a small team of volunteers. "
        f"Volunteers on the {topic} project met every week to plan the next steps. "
        f"By autumn the {topic} project had delivered its first public results. "
        f"Local newspapers praised the {topic} results and asked for more."
    )


def unique_text(topic: str) -> str:
    """A text about ``topic`` that differs on every call."""
    return text_about(f"{topic} {uuid.uuid4().hex[:8]}")
