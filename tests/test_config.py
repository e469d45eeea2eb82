"""How a process builds its summary provider."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from summaries.infra import runtime
from summaries.providers.gemini import GeminiProvider
from summaries.providers.openai import OpenAIProvider
from summaries.services import config


def test_one_provider_for_all_threads(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.SUMMARIZER, settings.GEMINI_API_KEY = "gemini", "test-key"
    # As in a fresh process (no provider built yet); restored after.
    monkeypatch.setattr(config._SUMMARIZER, "_value", runtime._UNSET)
    barrier = threading.Barrier(32)

    def first_call(_: int) -> object:
        barrier.wait()  # all threads ask at the same moment
        return config.summarizer()

    with ThreadPoolExecutor(max_workers=32) as pool:
        providers = list(pool.map(first_call, range(32)))
    assert isinstance(providers[0], GeminiProvider)
    assert all(provider is providers[0] for provider in providers)


def test_the_openai_provider_is_built_from_its_settings(settings: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    settings.SUMMARIZER, settings.OPENAI_MODEL = "openai", "llama3.1:8b"
    settings.OPENAI_BASE_URL, settings.OPENAI_TIMEOUT = "http://127.0.0.1:9/v1", 7.0
    monkeypatch.setattr(config._SUMMARIZER, "_value", runtime._UNSET)
    provider = config.summarizer()
    assert isinstance(provider, OpenAIProvider)
    assert (provider.model, provider.timeout_s) == ("llama3.1:8b", 7.0)
    assert provider.cache_namespace.startswith("openai:llama3.1:8b:")


@pytest.mark.parametrize(("env", "message"), [
    ({"SUMMARIZER": "openai", "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""},
     "SUMMARIZER=openai needs OPENAI_API_KEY"),
    ({"SUMMARIZER": "nope"}, "SUMMARIZER must be auto, gemini, openai or local"),
])
def test_bad_provider_settings_stop_the_process(env: dict[str, str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "smartcache.settings", **env},
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0 and message in result.stderr, result.stderr[-500:]
