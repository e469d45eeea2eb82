"""How a process builds its summary provider."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from summaries.providers.gemini import GeminiProvider
from summaries.services import config


def test_one_provider_for_all_threads(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.SUMMARIZER, settings.GEMINI_API_KEY = "gemini", "test-key"
    monkeypatch.setattr(config, "_provider", None)  # as in a fresh process; restored after
    barrier = threading.Barrier(32)

    def first_call(_: int) -> object:
        barrier.wait()  # all threads ask at the same moment
        return config.summarizer()

    with ThreadPoolExecutor(max_workers=32) as pool:
        providers = list(pool.map(first_call, range(32)))
    assert isinstance(providers[0], GeminiProvider)
    assert all(provider is providers[0] for provider in providers)
