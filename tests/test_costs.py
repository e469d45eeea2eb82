"""Cost you can see: each job's AI tokens (the provider's reported counts,
estimated only when it reports none) and what they cost at the configured
prices; money spent and saved by cause in /api/analytics and /metrics.

Through real processes: the session's worker and the fake Gemini (its model
at the list price, gemini-2.5-flash: 0.30 / 2.50 USD per million tokens), a
stack of its own against the fake OpenAI server at given prices, and one with
batching on."""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings

from summaries.core.pricing import Prices, cost_of, prices_for
from summaries.core.tokens import Usage, split
from summaries.services import costs
from tests.helpers.api import Api
from tests.helpers.fakes.gemini import FakeGemini, _batch_answer_text, _summary_of, prompt_tokens
from tests.helpers.fakes.openai import FakeOpenAI
from tests.helpers.polling import wait_for
from tests.helpers.stack import stack_of
from tests.helpers.stories import story, syndicated
from tests.helpers.texts import unique_text
from tests.test_metrics import scrape, value

pytestmark = pytest.mark.django_db(transaction=True)

# The session worker's model (GEMINI_MODEL's default), at its list price.
GEMINI_IN, GEMINI_OUT = 0.30, 2.50


def usd(input_tokens: int, output_tokens: int, price_in: float, price_out: float) -> float:
    return round((input_tokens * price_in + output_tokens * price_out) / 1e6, 6)


def gemini_usage(call_prompt: str, user_text: str) -> tuple[int, int]:
    """What the fake Gemini reported for a single prompt: (in, out)."""
    return prompt_tokens(call_prompt), len(json.dumps(_summary_of(user_text))) // 4


# --- pure: prices and shares ---------------------------------------------------------


@pytest.mark.no_valkey
def test_a_cost_is_tokens_at_the_price_and_half_through_the_batch_api() -> None:
    prices = Prices(Decimal("0.30"), Decimal("2.50"), Decimal("0.5"))
    assert cost_of(Usage(1_000_000, 0), prices).micros == 300_000
    assert cost_of(Usage(1000, 200), prices).micros == 800  # 300 + 500 micro-dollars
    through_batch = cost_of(Usage(1000, 200), prices, via_batch_api=True)
    assert (through_batch.micros, through_batch.batch_saved_micros) == (400, 400)
    assert str(cost_of(Usage(1000, 200), prices).usd) == "0.000800"


@pytest.mark.no_valkey
def test_prices_default_to_the_models_list_price_and_nothing_for_the_offline_one() -> None:
    listed = prices_for("gemini", "gemini-2.5-flash", input_per_mtok=None,
                        output_per_mtok=None, batch_discount=0.5)
    assert (listed.input_per_mtok, listed.output_per_mtok) == (Decimal("0.30"), Decimal("2.50"))
    unknown = prices_for("openai", "llama3.1:8b", input_per_mtok=None, output_per_mtok=None,
                         batch_discount=0.5)
    assert (unknown.input_per_mtok, unknown.output_per_mtok) == (Decimal(0), Decimal(0))
    given = prices_for("openai", "gpt-4o-mini", input_per_mtok=2.0, output_per_mtok=None,
                       batch_discount=0.5)
    assert (given.input_per_mtok, given.output_per_mtok) == (Decimal("2.0"), Decimal("0.60"))
    local = prices_for("local", "gemini-2.5-flash", input_per_mtok=None, output_per_mtok=None,
                       batch_discount=0.5)
    assert local.micros(Usage(10_000, 10_000)) == 0


@pytest.mark.no_valkey
def test_a_batched_calls_tokens_are_shared_by_text_length_and_add_up() -> None:
    shares = split(Usage(1001, 99, estimated=False), [300, 100, 600])
    assert sum(s.input_tokens for s in shares) == 1001
    assert sum(s.output_tokens for s in shares) == 99
    assert shares[2].input_tokens > shares[0].input_tokens > shares[1].input_tokens
    assert [s.input_tokens for s in shares] == [300, 100, 601]


@pytest.mark.no_valkey
def test_prices_come_from_the_settings(settings: Any) -> None:
    settings.AI_PRICE_INPUT_PER_MTOK, settings.AI_PRICE_OUTPUT_PER_MTOK = 4.0, 16.0
    settings.AI_BATCH_DISCOUNT = 0.25
    prices = costs.prices()
    assert (prices.input_per_mtok, prices.output_per_mtok, prices.batch_discount) == (
        Decimal("4.0"), Decimal("16.0"), Decimal("0.25"))


# --- the session worker and the fake Gemini ---------------------------------------


def test_gemini_reported_tokens_reach_the_job_at_the_list_price(api: Api,
                                                                gemini: FakeGemini) -> None:
    text = unique_text("cost gemini")
    job = api.wait(api.submit(text).json()["job_id"])
    assert job["status"] == "completed", job
    (call,) = gemini.received
    expected_in, expected_out = gemini_usage(call.prompt, call.user_text)
    assert job["cost"] == {"input_tokens": expected_in, "output_tokens": expected_out,
                           "estimated": False,
                           "usd": usd(expected_in, expected_out, GEMINI_IN, GEMINI_OUT)}
    assert job["cost"]["usd"] > 0


def test_tokens_are_estimated_when_the_provider_reports_none(api: Api,
                                                             gemini: FakeGemini) -> None:
    gemini.report_usage = False
    text = unique_text("cost estimated")
    job = api.wait(api.submit(text).json()["job_id"])
    assert job["status"] == "completed", job
    (call,) = gemini.received
    cost = job["cost"]
    assert cost["estimated"] is True
    # Our estimate: what was sent (instructions and prompt) at 4 characters a
    # token, the answer's summary and tags likewise.
    assert abs(cost["input_tokens"] - math.ceil(len(call.prompt) / 4)) <= 1, cost
    assert 0 < cost["output_tokens"] < 200
    assert cost["usd"] == usd(cost["input_tokens"], cost["output_tokens"], GEMINI_IN, GEMINI_OUT)


def broken_then_good(gemini: FakeGemini) -> tuple[int, int]:
    """The tokens (in, out) of the fake's calls 1 (a broken answer) and 3 (a
    good one): what a job pays that got both (call 2 answered no tokens)."""
    broken = prompt_tokens(gemini.received[0].prompt)
    good_in, good_out = gemini_usage(gemini.received[2].prompt, gemini.received[2].user_text)
    bad_out = len(json.dumps({"summary": " ".join(["This is one sentence."] * 6),
                              "tags": ["x"]})) // 4
    return broken + good_in, bad_out + good_out


def test_a_broken_answer_and_a_failed_attempt_are_paid_too(api: Api,
                                                           gemini: FakeGemini) -> None:
    # Attempt 1: a broken answer (paid), its re-ask a 503 (transient: retried);
    # attempt 2 answers. The job pays the broken answer and the good one.
    gemini.script(["bad", "unavailable", "ok"])
    text = unique_text("cost retried")
    job = api.wait(api.submit(text).json()["job_id"])
    assert (job["status"], job["attempts"]) == ("completed", 2), job
    assert gemini.calls == 3
    assert (job["cost"]["input_tokens"], job["cost"]["output_tokens"]) == (
        broken_then_good(gemini))


def test_a_failed_job_shows_what_its_calls_cost(api: Api, gemini: FakeGemini) -> None:
    gemini.mode = "bad"  # the contract broken twice: failed for good, both calls paid
    job = api.wait(api.submit(unique_text("cost failed")).json()["job_id"])
    assert (job["status"], job["code"]) == ("failed", "ai_bad_output"), job
    assert gemini.calls == 2
    assert job["cost"]["input_tokens"] == sum(prompt_tokens(c.prompt) for c in gemini.received)
    assert job["cost"]["usd"] > 0


def test_a_near_answer_saves_what_the_shared_summary_cost(api: Api, gemini: FakeGemini) -> None:
    wire = story("Costford" + uuid.uuid4().hex[:6].translate(str.maketrans(
        "0123456789", "ghijklmnop")))
    original = api.wait(api.submit(wire).json()["job_id"])
    assert original["status"] == "completed" and original["cost"]["usd"] > 0
    before = api.analytics()["ai_saved"]["near"]

    near = api.submit(syndicated(wire))

    assert near.headers["X-Cache"] == "NEAR", near.text
    assert gemini.calls == 1

    wait_for(lambda: api.analytics()["ai_saved"]["near"]["calls"] > before["calls"], 10,
             "the near answer's saving")
    after = api.analytics()["ai_saved"]["near"]
    assert after["usd"] - before["usd"] == pytest.approx(original["cost"]["usd"], abs=2e-6)
    assert after["tokens"] - before["tokens"] == (original["cost"]["input_tokens"]
                                                  + original["cost"]["output_tokens"])
    # Its cache entry keeps that cost: a HIT on the copy saves it too (cache).
    assert api.submit(syndicated(wire)).headers["X-Cache"] == "HIT"


def test_a_hit_and_a_join_save_what_the_job_cost(api: Api, gemini: FakeGemini,
                                                 valkey: redis.Redis) -> None:
    # The session worker may still be flushing an earlier test's spending
    # (every METRICS_FLUSH_SECONDS): let it, then start from zero.
    time.sleep(4 * settings.METRICS_FLUSH_SECONDS)
    stale = list(valkey.scan_iter(match="metrics:*", count=1000))
    if stale:
        valkey.delete(*stale)
    text = unique_text("cost saved")
    gemini.delay_s = 1.0  # the job still runs when the same text comes again
    first, joined = api.submit(text), api.submit(text)
    assert (first.headers["X-Cache"], joined.headers["X-Cache"]) == ("MISS", "JOINED")
    job = api.wait(first.json()["job_id"])
    gemini.delay_s = 0.0
    assert api.submit(text).headers["X-Cache"] == "HIT"
    made = job["cost"]
    assert made["usd"] > 0

    def settled() -> dict[str, Any] | None:
        figures = api.analytics()
        return figures if figures["ai_saved"]["dedup"]["usd"] > 0 else None

    wait_for(settled, 10, "the join's saving, counted as its job completed")
    figures = api.analytics()
    assert figures["ai_spent"]["usd"] == made["usd"]
    assert figures["ai_spent"]["calls"] == 1
    assert figures["ai_spent"]["input_tokens"] == made["input_tokens"]
    assert figures["ai_spent"]["estimated_tokens"] == 0
    for cause in ("cache", "dedup"):
        assert figures["ai_saved"][cause] == {
            "calls": 1, "tokens": made["input_tokens"] + made["output_tokens"],
            "usd": made["usd"]}, cause
    assert figures["ai_saved"]["near"]["usd"] == figures["ai_saved"]["batch"]["usd"] == 0
    assert figures["ai_cost_saved"] == pytest.approx(2 * made["usd"])
    assert figures["ai_saved_share"] == pytest.approx(2 / 3, abs=1e-3)

    samples = scrape(api.base_url)
    assert value(samples, "smartcache_ai_cost_saved_total", by="cache") == made["usd"]
    assert value(samples, "smartcache_ai_cost_saved_total", by="dedup") == made["usd"]
    assert value(samples, "smartcache_ai_cost_spent_total", provider="gemini",
                 model="gemini-2.5-flash") == made["usd"]
    assert value(samples, "smartcache_gen_ai_client_token_usage_total", provider="gemini",
                 model="gemini-2.5-flash", token_type="input",
                 source="reported") == made["input_tokens"]
    # The labels are a fixed set: nothing a client sends becomes one.
    causes = {dict(labels)["by"] for name, labels in samples
              if name == "smartcache_ai_cost_saved_total"}
    assert causes <= {"cache", "dedup", "near", "batch"}


# --- stacks of their own ---------------------------------------------------------------


@pytest.fixture
def openai_stack(tmp_path: Path, worker_env: dict[str, str]) -> Iterator[tuple[Api, FakeOpenAI]]:
    """An API and a worker summarising with the fake OpenAI server, at 2 and 8
    USD per million tokens."""
    with FakeOpenAI() as fake, stack_of(
            tmp_path, worker_env, SUMMARIZER="openai", OPENAI_BASE_URL=fake.base_url,
            OPENAI_MODEL="gpt-test", OPENAI_API_KEY="sk-test", AI_PRICE_INPUT_PER_MTOK="2",
            AI_PRICE_OUTPUT_PER_MTOK="8") as stack:
        api = stack.api()
        stack.worker("openai")
        yield api, fake


def test_openai_reported_tokens_reach_the_job_at_the_given_prices(
        openai_stack: tuple[Api, FakeOpenAI]) -> None:
    api, fake = openai_stack
    job = api.wait(api.submit(unique_text("cost openai")).json()["job_id"])
    assert job["status"] == "completed", job
    (call,) = fake.received
    expected_in = (len(call.system) + len(call.user)) // 4 + 1
    expected_out = len(json.dumps(_summary_of(call.user))) // 4
    assert job["cost"] == {"input_tokens": expected_in, "output_tokens": expected_out,
                           "estimated": False, "usd": usd(expected_in, expected_out, 2, 8)}

    fake.report_usage = False  # a server that reports none: estimated
    job = api.wait(api.submit(unique_text("cost openai bare")).json()["job_id"])
    assert job["cost"]["estimated"] is True
    assert abs(job["cost"]["input_tokens"] - expected_in) < 10
    assert job["cost"]["usd"] == usd(job["cost"]["input_tokens"], job["cost"]["output_tokens"],
                                     2, 8)


def test_a_batched_calls_tokens_are_shared_over_its_jobs(
        tmp_path: Path, worker_env: dict[str, str], gemini: FakeGemini) -> None:
    with stack_of(tmp_path, worker_env, AI_BATCH_SIZE="10", AI_BATCH_WAIT_MS="1500") as stack:
        api = stack.api()
        texts = [unique_text("cost batch"), unique_text("cost batch") * 3,
                 unique_text("cost batch") * 6]
        answer = api.http.post(f"{api.base_url}/api/submit/batch", json={"inputs": texts},
                               timeout=30)
        assert answer.status_code == 202, answer.text
        job_ids = [item["job_id"] for item in answer.json()["results"]]
        stack.worker("batching")
        jobs = [api.wait(job_id) for job_id in job_ids]
    assert gemini.items_per_call == [3]
    (call,) = gemini.received
    assert call.items is not None
    reported_in = prompt_tokens(call.prompt)
    shares = [job["cost"] for job in jobs]
    assert sum(s["input_tokens"] for s in shares) == reported_in
    assert sum(s["output_tokens"] for s in shares) == len(_batch_answer_text("ok", call.items)) // 4
    assert shares[0]["input_tokens"] < shares[1]["input_tokens"] < shares[2]["input_tokens"]
    assert not any(s["estimated"] for s in shares)


def test_a_broken_answer_whose_re_ask_was_told_to_wait_is_paid(api: Api,
                                                               gemini: FakeGemini) -> None:
    # Attempt 1: a broken answer (paid), its re-ask a 429 with Retry-After:
    # the job steps aside (the attempt not counted), then answers. It pays
    # the broken answer and the good one (the 429 was not billed).
    gemini.retry_after_s = 1
    gemini.script(["bad", "rate_limit_retry_after", "ok"])
    job = api.wait(api.submit(unique_text("cost told to wait")).json()["job_id"], timeout=30)
    assert (job["status"], job["attempts"]) == ("completed", 1), job
    assert gemini.calls == 3
    assert (job["cost"]["input_tokens"], job["cost"]["output_tokens"]) == (
        broken_then_good(gemini))
