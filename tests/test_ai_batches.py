"""Errors about a batch are not errors about its items: a batch blocked for one
item's text, or rejected as too long for the model's context, is split, and
only what fails alone fails; neither turns batching off. Real SDKs over real
HTTP to the loopback fakes; the end-to-end tests through real workers."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest
from django.test import override_settings

from summaries.core.errors import JobError
from summaries.providers import SummaryResult
from summaries.providers.gemini import GeminiProvider
from summaries.providers.openai import OpenAIProvider
from summaries.services.batching import UNUSABLE_IN_A_ROW, Batcher
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.fakes.openai import FakeOpenAI
from tests.helpers.stack import stack_of
from tests.test_batching import bulk, run_backlog, topic_text

pytestmark = pytest.mark.django_db(transaction=True)

Outcome = SummaryResult | JobError


def long_text(n: int) -> tuple[str, str]:
    """(its own word, a text of about 2,800 characters)."""
    word, text = topic_text(n)
    more = " The survey team wrote careful notes about the weather and the old site each day."
    return word, (text + more * 40)[:2800]


def ask_all(batcher: Batcher, provider: GeminiProvider | OpenAIProvider,
            texts: list[str]) -> list[Outcome]:
    """Each text from its own thread, as the pipeline asks: the batcher, then
    alone when it hands the text back (None)."""
    outcomes: list[Outcome | None] = [None] * len(texts)

    def ask(i: int) -> None:
        try:
            result = batcher.summarize(texts[i])[0]
            outcomes[i] = result if result is not None else provider.summarize(texts[i])
        except JobError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(outcome is not None for outcome in outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


def own(word: str, outcome: Outcome) -> bool:
    return isinstance(outcome, SummaryResult) and word in outcome.summary


# --- the batcher in this process --------------------------------------------------


@override_settings(AI_MAX_RPM=0, AI_MAX_TPM=0)
def test_a_batch_blocked_for_one_item_is_split_and_only_that_item_fails(
        gemini: FakeGemini) -> None:
    gemini.mode = "block_word"
    provider = GeminiProvider("k", "gemini-test", gemini.base_url, 10)
    batcher = Batcher(provider, size=10, wait_s=2.0, timeout_s=10)
    for round_ in range(UNUSABLE_IN_A_ROW + 1):
        before = gemini.calls
        topics = [topic_text(10 * round_ + n) for n in range(10)]
        texts = [text for _, text in topics]
        texts[round_ % 10] += f" Also {gemini.block_word}."
        outcomes = ask_all(batcher, provider, texts)

        blocked = outcomes[round_ % 10]
        assert isinstance(blocked, JobError) and blocked.code == "ai_blocked", blocked
        for n, ((word, _), outcome) in enumerate(zip(topics, outcomes, strict=True)):
            assert n == round_ % 10 or own(word, outcome), (word, outcome)
        calls = gemini.items_per_call[before:]
        print(f"round {round_}: items per call {calls}")
        # Halves down to the blocked item: one call per half, not one per item.
        assert len(calls) <= 1 + 2 * math.ceil(math.log2(10)), calls
        # Batches stay on (a blocked prompt says nothing about them): after as
        # many blocked batches as would turn off unusable ones, still one call.
        assert calls[0] == 10 and not batcher.off, calls


@override_settings(AI_MAX_RPM=0, AI_MAX_TPM=0)
def test_a_text_that_got_a_batch_blocked_goes_alone_when_it_comes_again(
        gemini: FakeGemini) -> None:
    gemini.mode = "block_word"
    provider = GeminiProvider("k", "gemini-test", gemini.base_url, 10)
    batcher = Batcher(provider, size=10, wait_s=2.0, timeout_s=10)
    bad = topic_text(99)[1] + f" Also {gemini.block_word}."
    first = ask_all(batcher, provider, [bad] + [topic_text(n)[1] for n in range(9)])
    assert isinstance(first[0], JobError)
    before = gemini.calls

    again = ask_all(batcher, provider, [bad] + [topic_text(n)[1] for n in range(10, 19)])
    assert isinstance(again[0], JobError) and again[0].code == "ai_blocked"
    assert all(isinstance(outcome, SummaryResult) for outcome in again[1:]), again
    # Its own single call, and one batch for the nine others: no splitting.
    assert sorted(gemini.items_per_call[before:]) == [1, 9]


@override_settings(AI_MAX_RPM=0, AI_MAX_TPM=0)
def test_a_batch_too_long_for_the_context_is_split_gemini(gemini: FakeGemini) -> None:
    gemini.mode = "context_limit"  # 2,048 tokens: one text fits, three do not
    provider = GeminiProvider("k", "gemini-test", gemini.base_url, 10)
    batcher = Batcher(provider, size=10, wait_s=2.0, timeout_s=10)
    topics = [long_text(n) for n in range(3)]
    outcomes = ask_all(batcher, provider, [text for _, text in topics])
    for (word, _), outcome in zip(topics, outcomes, strict=True):
        assert own(word, outcome), (word, outcome)
    print("items per call:", gemini.items_per_call)
    assert gemini.items_per_call[0] == 3 and gemini.calls <= 4


@override_settings(AI_MAX_RPM=0, AI_MAX_TPM=0)
def test_a_batch_holds_at_most_max_chars_of_text(gemini: FakeGemini) -> None:
    gemini.mode = "context_limit"
    provider = GeminiProvider("k", "gemini-test", gemini.base_url, 10)
    batcher = Batcher(provider, size=10, wait_s=2.0, timeout_s=10, max_chars=6000)
    topics = [long_text(n) for n in range(4)]
    outcomes = ask_all(batcher, provider, [text for _, text in topics])
    for (word, _), outcome in zip(topics, outcomes, strict=True):
        assert own(word, outcome), (word, outcome)
    assert gemini.items_per_call == [2, 2]  # built to fit: no call refused


@override_settings(AI_MAX_RPM=0, AI_MAX_TPM=0)
def test_a_content_filter_on_a_batch_is_split_openai() -> None:
    with FakeOpenAI() as fake:
        fake.mode = "block_word"  # the filter stops the answer of any call with the word
        provider = OpenAIProvider("sk", "gpt-test", fake.base_url, 10)
        batcher = Batcher(provider, size=4, wait_s=2.0, timeout_s=10)
        topics = [topic_text(n) for n in range(4)]
        texts = [text for _, text in topics]
        texts[2] += f" Also {fake.block_word}."
        outcomes = ask_all(batcher, provider, texts)
        assert isinstance(outcomes[2], JobError) and outcomes[2].code == "ai_blocked"
        for n, ((word, _), outcome) in enumerate(zip(topics, outcomes, strict=True)):
            assert n == 2 or own(word, outcome), (word, outcome)
        print("items per call:", fake.items_per_call)
        assert fake.items_per_call[:2] == [4, 2] and fake.calls <= 5  # the good half shares a call
        assert not batcher.off


# --- through real workers -----------------------------------------------------------


def test_blocked_items_in_a_worker_fail_alone_and_batching_stays_on(
        tmp_path: Path, worker_env: dict[str, str], gemini: FakeGemini) -> None:
    gemini.mode = "block_word"
    with stack_of(tmp_path, worker_env, AI_BATCH_SIZE="10", AI_BATCH_WAIT_MS="2000",
                  AI_BATCH_MAX_CHARS="1000") as stack:
        topics = [topic_text(n) for n in range(30)]
        texts = [text for _, text in topics]
        bad = {5, 15, 25}  # one in each batch of ten, as they arrive
        for n in bad:
            texts[n] += f" Also {gemini.block_word}."
        api, done = run_backlog(stack, texts)

        for n, ((word, _), job) in enumerate(zip(topics, done, strict=True)):
            if n in bad:
                assert (job["status"], job["attempts"]) == ("failed", 1), job
                assert job["code"] == "ai_blocked", job
            else:
                assert job["status"] == "completed" and word in job["summary"], job
        first_round = gemini.calls
        print("blocked round, items per call:", gemini.items_per_call)
        assert first_round <= 3 * (1 + 2 * math.ceil(math.log2(10))) < 30 + 3

        later = [topic_text(n) for n in range(30, 50)]
        again = [api.wait(job_id, timeout=60) for job_id in bulk(api, [t for _, t in later])]
        assert all(job["status"] == "completed" for job in again), again
        # Batches are still on: twenty texts arriving together share calls.
        assert max(gemini.items_per_call[first_round:]) > 1, gemini.items_per_call
        assert "single calls only" not in stack.logs()


def test_texts_too_long_together_for_the_context_each_succeed_alone(
        tmp_path: Path, worker_env: dict[str, str]) -> None:
    # Three 2.8k-character texts, a server with a 2,048-token context: the
    # batch of three is refused (HTTP 400); none of the texts is at fault.
    with FakeOpenAI() as fake, stack_of(
            tmp_path, worker_env, SUMMARIZER="openai", OPENAI_BASE_URL=fake.base_url,
            OPENAI_MODEL="gpt-test", OPENAI_API_KEY="sk-test", AI_BATCH_SIZE="10",
            AI_BATCH_WAIT_MS="2000") as stack:
        fake.mode = "context_limit"
        topics = [long_text(n) for n in range(3)]
        _, done = run_backlog(stack, [text for _, text in topics])

        for (word, _), job in zip(topics, done, strict=True):
            assert (job["status"], job["attempts"]) == ("completed", 1), job
            assert word in job["summary"], job
        print("items per call:", fake.items_per_call)
        assert fake.items_per_call[0] == 3 and fake.calls <= 4
