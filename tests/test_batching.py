"""Batched AI calls and the provider's retry delay, with real processes: an
API, Celery workers (threads pool) and the loopback fake Gemini through the
real SDK. Jobs are queued before the worker starts, so they reach it together
(as a backlog does); the batch wait is long, so every batch fills up."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from summaries.core.errors import JobError, QuotaWait
from summaries.infra import cache
from summaries.providers import SummaryResult
from summaries.providers.gemini import GeminiProvider
from summaries.services import ai_quota
from summaries.services.batching import Batcher
from tests.helpers.api import Api
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.polling import wait_for
from tests.helpers.stack import Stack, stack_of

pytestmark = pytest.mark.django_db(transaction=True)


def topic_text(n: int) -> tuple[str, str]:
    """(a word found only in this text, the text): fresh, so never cached."""
    word = f"topic{n}x{uuid.uuid4().hex[:8]}"
    return word, (f"The {word} survey began in spring with a small team. "
                  f"Volunteers measured the {word} site every week. "
                  f"By autumn the {word} results were published.")


def bulk(api: Api, texts: list[str]) -> list[str]:
    response = api.http.post(f"{api.base_url}/api/submit/batch", json={"inputs": texts},
                             timeout=30)
    assert response.status_code == 202, response.text
    return [item["job_id"] for item in response.json()["results"]]


@pytest.fixture
def batch_stack(tmp_path: Path, worker_env: dict[str, str]) -> Iterator[Stack]:
    # Every batch fills up: ten short texts, a long wait.
    with stack_of(tmp_path, worker_env, AI_BATCH_SIZE="10", AI_BATCH_WAIT_MS="2000",
                  AI_BATCH_MAX_CHARS="1000") as stack:
        yield stack


def run_backlog(stack: Stack, texts: list[str]) -> tuple[Api, list[dict[str, Any]]]:
    api = stack.api()
    job_ids = bulk(api, texts)  # queued: no worker yet
    stack.worker("batch")
    return api, [api.wait(job_id, timeout=60) for job_id in job_ids]


def test_short_texts_waiting_together_share_calls_each_with_its_own_result(
        batch_stack: Stack, gemini: FakeGemini) -> None:
    topics = [topic_text(n) for n in range(40)]
    api, done = run_backlog(batch_stack, [text for _, text in topics])

    for (word, _), job in zip(topics, done, strict=True):
        assert job["status"] == "completed", job
        assert word in job["summary"], (word, job)  # its own text, no cross-wiring
        assert job["attempts"] == 1
    sizes = gemini.items_per_call
    print("items per call:", sizes)
    assert sum(sizes) == 40 and max(sizes) <= 10
    assert len(sizes) <= 4 + 2, sizes  # ⌈40 / 10⌉ and a small remainder
    # Each item has its own cache entry: submitting one again is a hit.
    again = api.submit(topics[7][1])
    assert again.status_code == 200 and again.json()["job_id"] == done[7]["job_id"]


@pytest.mark.parametrize("mode", ["batch_drop", "batch_mangle", "batch_wrong_id"])
def test_an_item_missing_or_mangled_in_the_answer_is_asked_alone(
        batch_stack: Stack, gemini: FakeGemini, mode: str) -> None:
    gemini.script([mode])  # the first (batched) call spoils its first item
    topics = [topic_text(n) for n in range(3)]
    _, done = run_backlog(batch_stack, [text for _, text in topics])

    assert all(job["status"] == "completed" and job["attempts"] == 1 for job in done), done
    for (word, _), job in zip(topics, done, strict=True):
        assert word in job["summary"], (word, job)
    first, *rest = gemini.received
    assert first.items is not None and len(first.items) == 3
    assert [call.items for call in rest] == [None]  # one single call: the spoilt item
    assert first.items[0]["text"] in rest[0].user_text


def test_a_model_that_cannot_answer_batches_gets_single_calls(
        batch_stack: Stack, gemini: FakeGemini) -> None:
    gemini.mode = "batch_unsupported"  # one summary object for the whole array
    topics = [topic_text(n) for n in range(40)]
    api, done = run_backlog(batch_stack, [text for _, text in topics])
    assert all(job["status"] == "completed" for job in done), done
    for (word, _), job in zip(topics, done, strict=True):
        assert word in job["summary"], (word, job)  # each asked alone, after its batch
    first_round = gemini.calls

    later = [topic_text(n) for n in range(40, 60)]
    again = [api.wait(job_id, timeout=60) for job_id in bulk(api, [t for _, t in later])]

    assert all(job["status"] == "completed" for job in again), again
    # Arriving together, they would have shared two batches; batches are off
    # now: 20 single calls, none wasted before them.
    assert gemini.items_per_call[first_round:] == [1] * 20
    assert "single calls only" in batch_stack.logs()


def test_a_long_input_goes_alone(batch_stack: Stack, gemini: FakeGemini) -> None:
    (_, short_a), (_, short_b), (word, long_text) = (topic_text(n) for n in range(3))
    long_text += " More measurements followed in the winter." * 40  # > AI_BATCH_MAX_CHARS
    _, done = run_backlog(batch_stack, [short_a, short_b, long_text])

    assert all(job["status"] == "completed" for job in done), done
    assert word in done[2]["summary"]
    assert sorted(gemini.items_per_call) == [1, 2]
    alone = next(call for call in gemini.received if call.items is None)
    assert word in alone.user_text


def test_a_failed_batch_call_retries_every_item_as_transient(
        batch_stack: Stack, gemini: FakeGemini) -> None:
    gemini.script(["unavailable"])
    topics = [topic_text(n) for n in range(4)]
    _, done = run_backlog(batch_stack, [text for _, text in topics])

    first = gemini.received[0]
    assert first.items is not None and len(first.items) == 4
    for (word, _), job in zip(topics, done, strict=True):
        assert job["status"] == "completed" and job["attempts"] == 2, job
        assert word in job["summary"]


# --- the batcher on its own (threads in this process, the real provider) ------------


@override_settings(AI_MAX_RPM=0, AI_MAX_TPM=0)
def test_batcher_answers_each_caller_with_its_own_result(gemini: FakeGemini) -> None:
    provider = GeminiProvider("k", "gemini-test", gemini.base_url, 5)
    batcher = Batcher(provider, size=5, wait_s=1.0, timeout_s=5)
    topics = [topic_text(n) for n in range(10)]
    results: dict[str, SummaryResult | None] = {}

    def ask(word: str, text: str) -> None:
        results[word] = batcher.summarize(text)[0]

    threads = [threading.Thread(target=ask, args=topic) for topic in topics]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(gemini.items_per_call) == [5, 5]  # full batches go at once
    for word, _ in topics:
        result = results[word]
        assert result is not None and word in result.summary


@override_settings(AI_MAX_RPM=0, AI_MAX_TPM=0)
def test_batcher_hands_a_lone_item_back_to_be_asked_alone(gemini: FakeGemini) -> None:
    provider = GeminiProvider("k", "gemini-test", gemini.base_url, 5)
    batcher = Batcher(provider, size=5, wait_s=0.05, timeout_s=5)
    assert batcher.summarize(topic_text(1)[1]) == (None, None)
    assert gemini.calls == 0


@override_settings(AI_MAX_RPM=0, AI_MAX_TPM=0)
def test_batcher_gives_every_caller_the_call_error(gemini: FakeGemini) -> None:
    gemini.mode = "rate_limit_retry_info"
    gemini.retry_after_s = 7
    provider = GeminiProvider("k", "gemini-test", gemini.base_url, 5)
    batcher = Batcher(provider, size=3, wait_s=2.0, timeout_s=5)
    errors: list[JobError] = []

    def ask(text: str) -> None:
        try:
            batcher.summarize(text)
        except JobError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(topic_text(n)[1],)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert gemini.calls == 1
    assert [(e.code, e.retry_after) for e in errors] == [("ai_rate_limited", 7.0)] * 3


@override_settings(AI_MAX_RPM=1000, AI_MAX_TPM=0)
def test_batcher_under_a_pause_gives_every_caller_quota_wait(
        gemini: FakeGemini, request: pytest.FixtureRequest) -> None:
    provider = GeminiProvider("k", "gemini-test", gemini.base_url, 5)
    ai_quota.pause(provider.cache_namespace, 30)
    request.addfinalizer(lambda: cache.client().delete(f"aipause:{provider.cache_namespace}"))
    batcher = Batcher(provider, size=2, wait_s=2.0, timeout_s=5)
    waits: list[BaseException] = []

    def ask(text: str) -> None:
        try:
            batcher.summarize(text)
        except QuotaWait as exc:
            waits.append(exc)

    threads = [threading.Thread(target=ask, args=(topic_text(n)[1],)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(waits) == 2 and gemini.calls == 0


# --- a 429 with a retry delay pauses every worker ------------------------------------


@pytest.mark.parametrize("mode", ["rate_limit_retry_after", "rate_limit_retry_info"])
def test_a_429_retry_delay_pauses_every_worker_without_burning_attempts(
        tmp_path: Path, worker_env: dict[str, str], gemini: FakeGemini, mode: str) -> None:
    gemini.retry_after_s = 20
    gemini.script([mode])
    with stack_of(tmp_path, worker_env, AI_MAX_RPM="1000") as stack:
        api = stack.api()
        first_worker = stack.worker("hit-429")
        (_, text_1), (_, text_2) = topic_text(1), topic_text(2)
        job_1 = api.submit(text_1).json()["job_id"]
        wait_for(lambda: api.status(job_1).json()["stage"] == "waiting", 15,
                 "the job to step aside")
        state = api.status(job_1).json()
        assert (state["status"], state["attempts"]) == ("pending", 0), state
        assert gemini.calls == 1

        first_worker.stop()  # job 1's message goes back to the queue
        stack.worker("other")  # another process: it must honour the pause too
        job_2 = api.submit(text_2).json()["job_id"]
        wait_for(lambda: api.status(job_2).json()["stage"] == "waiting", 15,
                 "the second job to step aside")
        assert gemini.calls == 1  # nobody called the AI during the pause
        assert api.status(job_2).json()["attempts"] == 0

        for job_id in (job_1, job_2):
            done = api.wait(job_id, timeout=60)
            assert done["status"] == "completed" and done["attempts"] == 1, done
        assert gemini.calls == 3
