"""An AI server's answer is bounded in bytes, not only in time: both SDKs go
through summaries/providers/deadline.py's client, which stops reading past
``max_response_bytes``. Real SDKs, real HTTP to the loopback fakes."""

from __future__ import annotations

import pytest

from summaries.core.errors import JobError
from summaries.providers.gemini import GeminiProvider
from summaries.providers.openai import OpenAIProvider
from tests.helpers.api import Api
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.fakes.openai import FakeOpenAI
from tests.helpers.polling import wait_for

TEXT = ("The windmill project started last spring with a small team of volunteers. "
        "Volunteers on the windmill project met every week to plan the next steps. "
        "By autumn the windmill project had delivered its first public results.")
MAX_RESPONSE_BYTES = 1024 * 1024  # the default cap
HUGE = 40 * 1024 * 1024  # more than any socket buffers hold: unread bytes stay unsent


@pytest.mark.no_valkey
@pytest.mark.parametrize("mode", ["huge", "huge_unsized"])
def test_gemini_stops_reading_a_huge_answer(gemini: FakeGemini, mode: str) -> None:
    gemini.mode, gemini.huge_bytes = mode, HUGE
    provider = GeminiProvider("k", "gemini-test", gemini.base_url, 20)
    with pytest.raises(JobError) as info:
        provider.summarize(TEXT)
    assert (info.value.code, info.value.transient) == ("ai_unavailable", True)
    assert f"larger than {MAX_RESPONSE_BYTES} bytes" in info.value.message
    assert gemini.calls == 1  # no re-ask: this is no answer of the model's
    wait_for(lambda: gemini.huge_sent > 0, 10, "the fake to see the client leave")
    assert gemini.huge_sent < HUGE // 2

    gemini.mode = "ok"  # the connection was dropped, not left half-read in the pool
    assert "windmill" in provider.summarize(TEXT).summary


@pytest.mark.no_valkey
@pytest.mark.parametrize("mode", ["huge", "huge_unsized"])
def test_an_openai_compatible_server_too(mode: str) -> None:
    with FakeOpenAI() as fake:
        fake.mode, fake.huge_bytes = mode, HUGE
        provider = OpenAIProvider("sk", "gpt-test", fake.base_url, 20)
        with pytest.raises(JobError) as info:
            provider.summarize(TEXT)
        assert (info.value.code, info.value.transient) == ("ai_unavailable", True)
        assert f"larger than {MAX_RESPONSE_BYTES} bytes" in info.value.message
        assert fake.calls == 1
        wait_for(lambda: fake.huge_sent > 0, 10, "the fake to see the client leave")
        assert fake.huge_sent < HUGE // 2


@pytest.mark.no_valkey
def test_the_cap_is_the_providers_setting(gemini: FakeGemini) -> None:
    # An ordinary answer is well below the default; a tiny cap refuses even it.
    small = GeminiProvider("k", "gemini-test", gemini.base_url, 5, max_response_bytes=200)
    with pytest.raises(JobError, match="larger than 200 bytes"):
        small.summarize(TEXT)
    assert GeminiProvider("k", "gemini-test", gemini.base_url, 5).summarize(TEXT).tags


@pytest.mark.django_db(transaction=True)
def test_a_worker_fails_a_huge_answer_as_unavailable(api: Api, gemini: FakeGemini) -> None:
    # 100 MB on each attempt: read whole, it would sit in a worker thread's memory.
    gemini.mode = "huge_unsized"
    text = TEXT.replace("windmill", "huge-answer")
    done = api.wait(api.submit(text).json()["job_id"], timeout=60)
    assert (done["status"], done["code"]) == ("failed", "ai_unavailable"), done
    assert "larger than" in done["error"]
    assert done["attempts"] == gemini.calls > 1  # transient: retried, then given up
