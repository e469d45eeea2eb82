"""The OpenAI-compatible provider: the official SDK against a loopback fake
Chat Completions server, first in this process, then in real worker processes
(SUMMARIZER=openai) behind a real API."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from summaries.core.errors import JobError
from summaries.providers import BatchItem, ContractError, batching_of, build_provider
from summaries.providers.common import PROMPT_VERSION
from summaries.providers.openai import JSON_OBJECT, JSON_SCHEMA, PROMPT_ONLY, OpenAIProvider
from tests.helpers.api import Api
from tests.helpers.fakes.openai import FakeOpenAI
from tests.helpers.polling import wait_for
from tests.helpers.stack import Stack, stack_of

TEXT = ("Valkey is an open source key-value store. It forked from Redis in 2024. "
        "Many cloud providers now offer it as a managed service.")
GERMAN = ("Die Stadtverwaltung hat am Montag einen neuen Radweg am Fluss eröffnet. "
          "Der Weg verbindet die Altstadt mit dem Bahnhof und ist vier Kilometer lang. "
          "Die Bürger hatten sich seit Jahren eine sichere Verbindung gewünscht.")


@pytest.fixture(scope="module")
def openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake(openai_server: FakeOpenAI) -> FakeOpenAI:
    openai_server.reset()
    return openai_server


def provider_for(fake: FakeOpenAI, timeout_s: float = 2.0) -> OpenAIProvider:
    return OpenAIProvider("sk-test", "gpt-test", fake.base_url, timeout_s)


# --- the provider in this process ----------------------------------------------------


@pytest.mark.no_valkey
def test_it_summarises_with_a_json_schema(fake: FakeOpenAI) -> None:
    result = provider_for(fake).summarize(TEXT)

    assert result.summary.startswith("Valkey is an open source key-value store.")
    assert 2 <= len(result.tags) <= 4
    (call,) = fake.received
    assert (call.model, call.api_key, call.response_format) == ("gpt-test", "sk-test",
                                                                JSON_SCHEMA)
    schema = call.body["response_format"]["json_schema"]
    assert schema["strict"] is True and schema["schema"]["required"] == ["summary", "tags"]
    assert call.user == f"<text>\n{TEXT.strip()}\n</text>"
    assert "in English (the language of the text)" in call.system
    assert call.body.get("n") == 1


@pytest.mark.no_valkey
def test_the_namespace_names_provider_and_model() -> None:
    provider = build_provider("openai", openai_model="llama3.1:8b",
                              openai_base_url="http://127.0.0.1:9/v1")
    assert provider.cache_namespace == f"openai:llama3.1:8b:{PROMPT_VERSION}"
    assert build_provider("openai", openai_model="other").cache_namespace != \
        provider.cache_namespace
    keyed = build_provider("openai", openai_api_key="sk-secret-1", openai_model="m")
    assert "sk-secret-1" not in repr(keyed)
    with pytest.raises(ValueError, match="model"):
        build_provider("openai", openai_model="")


@pytest.mark.no_valkey
def test_a_server_without_json_schema_gets_json_object_and_that_is_remembered(
        fake: FakeOpenAI) -> None:
    fake.formats = {"json_object"}
    provider = provider_for(fake)

    assert provider.summarize(TEXT).summary.startswith("Valkey")
    assert [call.response_format for call in fake.received] == [JSON_SCHEMA, JSON_OBJECT]
    assert provider.mode == JSON_OBJECT
    assert "JSON value only" in fake.received[1].system
    provider.summarize(TEXT)  # the next call goes straight to json_object
    assert [call.response_format for call in fake.received][2:] == [JSON_OBJECT]


@pytest.mark.no_valkey
def test_a_server_without_any_response_format_is_asked_in_words(fake: FakeOpenAI) -> None:
    fake.formats = set()  # and it answers with prose around a code fence
    provider = provider_for(fake)

    assert provider.summarize(TEXT).summary.startswith("Valkey")
    assert [call.response_format for call in fake.received] == [JSON_SCHEMA, JSON_OBJECT, ""]
    assert provider.mode == PROMPT_ONLY
    assert "response_format" not in fake.received[-1].body


@pytest.mark.no_valkey
def test_a_400_about_something_else_is_rejected_without_stepping_down(fake: FakeOpenAI) -> None:
    fake.mode = "rejected"
    provider = provider_for(fake)
    with pytest.raises(JobError) as caught:
        provider.summarize(TEXT)
    assert (caught.value.code, caught.value.transient) == ("ai_rejected", False)
    assert provider.mode == JSON_SCHEMA and fake.calls == 1


@pytest.mark.no_valkey
@pytest.mark.parametrize(("mode", "code", "transient"), [
    ("rate_limit", "ai_rate_limited", True),
    ("server_error", "ai_unavailable", True),
    ("unavailable", "ai_unavailable", True),
    ("html", "ai_unavailable", True),
    ("unauthorized", "ai_rejected", False),
    ("not_found", "ai_rejected", False),
    ("content_filter", "ai_blocked", False),
    ("refusal", "ai_blocked", False),
])
def test_failures_are_mapped_without_retrying(fake: FakeOpenAI, mode: str, code: str,
                                              transient: bool) -> None:
    fake.mode = mode
    with pytest.raises(JobError) as caught:
        provider_for(fake).summarize(TEXT)
    assert (caught.value.code, caught.value.transient) == (code, transient)
    assert caught.value.retry_after is None
    assert fake.calls == 1  # the SDK's own retries are off


@pytest.mark.no_valkey
def test_a_429_carries_its_retry_after(fake: FakeOpenAI) -> None:
    fake.mode, fake.retry_after_s = "rate_limit_retry_after", 7
    with pytest.raises(JobError) as caught:
        provider_for(fake).summarize(TEXT)
    assert (caught.value.code, caught.value.retry_after) == ("ai_rate_limited", 7.0)


@pytest.mark.no_valkey
def test_a_hang_is_a_transient_timeout(fake: FakeOpenAI) -> None:
    fake.mode = "hang"
    with pytest.raises(JobError) as caught:
        provider_for(fake, timeout_s=0.5).summarize(TEXT)
    assert (caught.value.code, caught.value.transient) == ("ai_timeout", True)


@pytest.mark.no_valkey
@pytest.mark.parametrize("mode", ["bad", "length"])
def test_a_broken_answer_is_asked_again_once_then_fails(fake: FakeOpenAI, mode: str) -> None:
    fake.mode = mode
    with pytest.raises(ContractError):
        provider_for(fake).summarize(TEXT)
    assert fake.calls == 2
    assert "previous answer was rejected" in fake.received[1].user


@pytest.mark.no_valkey
def test_a_broken_answer_then_a_good_one_succeeds(fake: FakeOpenAI) -> None:
    fake.mode = "bad_then_ok"
    assert provider_for(fake).summarize(TEXT).summary.startswith("Valkey")
    assert fake.calls == 2


@pytest.mark.no_valkey
def test_the_prompt_asks_for_the_language(fake: FakeOpenAI) -> None:
    provider = provider_for(fake)
    provider.summarize(GERMAN)
    provider.summarize(TEXT, language="fr")
    german, french = fake.received
    assert "in German (the language of the text)" in german.system
    assert "in French, whatever the language of the text" in french.system


@pytest.mark.no_valkey
def test_a_batch_is_one_call_each_item_with_its_own_summary(fake: FakeOpenAI) -> None:
    provider = batching_of(provider_for(fake))
    assert provider is not None
    items = [BatchItem(f"id{n}", f"The item{n} survey began in spring. Volunteers measured "
                                 f"the item{n} site every week.") for n in range(3)]
    results = provider.summarize_batch(items)

    assert fake.items_per_call == [3]
    for n in range(3):
        result = results[f"id{n}"]
        assert not isinstance(result, JobError) and f"item{n}" in result.summary
    assert fake.received[0].body["response_format"]["json_schema"]["name"] == "batch"


@pytest.mark.no_valkey
def test_the_provider_is_safe_to_share_across_threads(fake: FakeOpenAI) -> None:
    provider = provider_for(fake, timeout_s=10)
    errors: list[BaseException] = []

    def ask(n: int) -> None:
        try:
            assert f"thread{n}" in provider.summarize(
                f"The thread{n} bridge opened in May. Crowds crossed the thread{n} bridge.").summary
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and fake.calls == 24


# --- real worker processes ------------------------------------------------------------

def fresh(n: int | str) -> tuple[str, str]:
    word = f"river{n}x{uuid.uuid4().hex[:8]}"
    return word, (f"The {word} survey began in spring with a small team. "
                  f"Volunteers measured the {word} site every week. "
                  f"By autumn the {word} results were published.")


@pytest.fixture(scope="module")
def openai_stack(tmp_path_factory: pytest.TempPathFactory, worker_env: dict[str, str],
                 openai_server: FakeOpenAI) -> Iterator[Stack]:
    """An API and a worker with SUMMARIZER=openai and batches of up to 10
    (a lone job waits briefly for company, then is asked alone)."""
    with stack_of(tmp_path_factory.mktemp("openai"), worker_env, SUMMARIZER="openai",
                  OPENAI_BASE_URL=openai_server.base_url, OPENAI_API_KEY="sk-stack",
                  OPENAI_MODEL="gpt-stack", OPENAI_TIMEOUT="2", AI_BATCH_SIZE="10",
                  AI_BATCH_WAIT_MS="300", AI_MAX_RPM="1000") as stack:
        stack.api()
        stack.worker("openai")
        yield stack


@pytest.fixture
def stack_api(openai_stack: Stack, fake: FakeOpenAI) -> Api:
    assert openai_stack.web is not None
    return Api(openai_stack.web.url)


def submit_and_wait(api: Api, text: str, **extra: Any) -> dict[str, Any]:
    response = api.submit(text, **extra)
    assert response.status_code == 202, response.text
    return api.wait(response.json()["job_id"], timeout=60)


@pytest.mark.django_db(transaction=True)
def test_a_job_completes_with_the_openai_provider(stack_api: Api, fake: FakeOpenAI) -> None:
    word, text = fresh("ok")
    done = submit_and_wait(stack_api, text)

    assert done["status"] == "completed" and word in done["summary"], done
    (call,) = fake.received
    assert (call.model, call.api_key) == ("gpt-stack", "sk-stack")
    again = stack_api.submit(text)  # cached under the openai namespace
    assert again.status_code == 200 and again.json()["job_id"] == done["job_id"]


@pytest.mark.django_db(transaction=True)
def test_a_worker_steps_down_from_json_schema_once(stack_api: Api, fake: FakeOpenAI) -> None:
    fake.formats = {"json_object"}
    (_, first), (_, second) = fresh("fmt1"), fresh("fmt2")
    assert submit_and_wait(stack_api, first)["status"] == "completed"
    assert submit_and_wait(stack_api, second)["status"] == "completed"
    formats = [call.response_format for call in fake.received]
    # The worker process remembers: only its first call tried json_schema.
    assert formats.count(JSON_SCHEMA) <= 1 and formats[-1] == JSON_OBJECT, formats


@pytest.mark.django_db(transaction=True)
def test_a_429_with_retry_after_makes_the_job_wait_then_complete(
        stack_api: Api, fake: FakeOpenAI) -> None:
    fake.retry_after_s = 2
    fake.script(["rate_limit_retry_after"])
    word, text = fresh("429")
    job_id = stack_api.submit(text).json()["job_id"]
    wait_for(lambda: stack_api.status(job_id).json()["stage"] in ("waiting", "done"), 15,
             "the job to step aside")
    done = stack_api.wait(job_id, timeout=60)

    assert done["status"] == "completed" and word in done["summary"], done
    assert done["attempts"] == 1  # stepping aside burns no attempt
    assert fake.calls == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first", ["server_error", "hang"])
def test_a_transient_failure_is_retried(stack_api: Api, fake: FakeOpenAI, first: str) -> None:
    fake.hang_s = 5  # past OPENAI_TIMEOUT (2 s)
    fake.script([first])
    word, text = fresh(first)
    done = submit_and_wait(stack_api, text)

    assert done["status"] == "completed" and word in done["summary"], done
    assert done["attempts"] == 2 and fake.calls == 2


@pytest.mark.django_db(transaction=True)
def test_a_bad_answer_is_asked_again_in_the_same_attempt(stack_api: Api,
                                                         fake: FakeOpenAI) -> None:
    fake.script(["bad"])
    word, text = fresh("bad")
    done = submit_and_wait(stack_api, text)

    assert done["status"] == "completed" and word in done["summary"], done
    assert done["attempts"] == 1 and fake.calls == 2
    assert "previous answer was rejected" in fake.received[1].user


@pytest.mark.django_db(transaction=True)
def test_a_permanent_failure_fails_the_job(stack_api: Api, fake: FakeOpenAI) -> None:
    fake.mode = "unauthorized"
    done = submit_and_wait(stack_api, fresh("401")[1])
    assert (done["status"], done["code"], done["attempts"]) == ("failed", "ai_rejected", 1)


@pytest.mark.django_db(transaction=True)
def test_short_texts_arriving_together_share_calls(stack_api: Api, fake: FakeOpenAI) -> None:
    fake.delay_s = 0.3  # calls overlap the arrivals
    topics = [fresh(f"b{n}") for n in range(12)]
    response = stack_api.http.post(f"{stack_api.base_url}/api/submit/batch",
                                   json={"inputs": [text for _, text in topics]}, timeout=30)
    assert response.status_code == 202, response.text
    job_ids = [item["job_id"] for item in response.json()["results"]]
    done = [stack_api.wait(job_id, timeout=60) for job_id in job_ids]

    for (word, _), job in zip(topics, done, strict=True):
        assert job["status"] == "completed" and word in job["summary"], job
    sizes = fake.items_per_call
    assert sum(sizes) == 12 and max(sizes) > 1, sizes  # fewer calls than jobs


@pytest.mark.django_db(transaction=True)
def test_a_requested_language_is_asked_for_and_keyed_apart(stack_api: Api,
                                                           fake: FakeOpenAI) -> None:
    _, text = fresh("lang")
    first = stack_api.submit(text)
    plain = stack_api.wait(first.json()["job_id"], timeout=60)
    german = stack_api.submit(text, language="de")
    assert german.status_code == 202, german.text  # not the English summary
    assert german.json()["cache_key"] != first.json()["cache_key"]
    stack_api.wait(german.json()["job_id"], timeout=60)
    assert "in German, whatever the language of the text" in fake.received[-1].system
    # Asking for the text's own language is the plain request: a hit.
    english = stack_api.submit(text, language="en")
    assert english.status_code == 200 and english.json()["job_id"] == plain["job_id"]
    bad = stack_api.submit(text, language="klingon!")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_language", bad.text
