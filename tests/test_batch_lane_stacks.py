"""The batch lane's stories that need a stack of their own, apart from
tests/test_batch_lane.py's (every stack shares the test database, so two
stacks with beat running at once would each send the other's waiting jobs):
a poller SIGKILLed mid-poll, and SUMMARIZER=openai through the fake OpenAI
Batch API (files + /v1/batches). The killed-poller test runs first, before
the module's OpenAI stack starts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from summaries.models import Job, ProviderBatch
from tests.helpers.api import Api
from tests.helpers.batch_lane import LANE, batched
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.fakes.openai import FakeOpenAI
from tests.helpers.polling import wait_for
from tests.helpers.stack import Stack, stack_of
from tests.helpers.texts import unique_text

pytestmark = pytest.mark.django_db(transaction=True)


# --- a poller killed mid-poll ---------------------------------------------------------


def test_a_poller_killed_mid_poll_loses_nothing_and_answers_nothing_twice(
        tmp_path: Path, worker_env: dict[str, str], gemini: FakeGemini) -> None:
    with stack_of(tmp_path, {**worker_env, **LANE}) as stack:
        api = stack.api()
        doomed = stack.worker("doomed")
        stack.beat()
        gemini.batches.get_delay_s = 4.0  # every poll hangs a while
        ids = [batched(api, unique_text(f"killed {i}")) for i in range(3)]

        wait_for(lambda: gemini.batches.creates == 1, 20, "the batch to be created")
        time.sleep(1.0)  # a poll is in flight now, in the doomed worker
        doomed.kill()
        wait_for(lambda: not doomed.alive(), 5, "the worker to die")
        assert all(Job.objects.get(id=i).stage == Job.Stage.BATCHED for i in ids)
        gemini.batches.get_delay_s = 0.0
        stack.worker("replacement")

        done = [api.wait(job_id, timeout=40) for job_id in ids]

    assert all(d["status"] == "completed" and d["via_batch"] for d in done), done
    assert gemini.calls == 0 and gemini.batches.creates == 1  # nothing asked twice
    batch = ProviderBatch.objects.get()
    assert (batch.state, batch.completed_items, batch.fallback_items) == ("succeeded", 3, 0)


# --- SUMMARIZER=openai: the OpenAI Batch API (files + /v1/batches) -------------------


@pytest.fixture(scope="module")
def openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def openai_stack(tmp_path_factory: pytest.TempPathFactory, worker_env: dict[str, str],
                 openai_server: FakeOpenAI) -> Iterator[Stack]:
    env = {**worker_env, **LANE, "SUMMARIZER": "openai", "OPENAI_BASE_URL": openai_server.base_url,
           "OPENAI_API_KEY": "sk-lane", "OPENAI_MODEL": "gpt-lane", "OPENAI_TIMEOUT": "2"}
    with stack_of(tmp_path_factory.mktemp("openai-lane"), env) as stack:
        stack.api()
        stack.worker("openai-lane")
        stack.beat()
        yield stack


@pytest.fixture
def openai_lane(openai_stack: Stack, openai_server: FakeOpenAI) -> tuple[Api, FakeOpenAI]:
    openai_server.reset()
    assert openai_stack.web is not None
    return Api(openai_stack.web.url), openai_server


def test_openai_items_complete_through_the_batch_api(
        openai_lane: tuple[Api, FakeOpenAI]) -> None:
    api, fake = openai_lane
    ids = [batched(api, unique_text(f"openai {i}")) for i in range(3)]

    done = [api.wait(job_id, timeout=30) for job_id in ids]

    assert all(d["status"] == "completed" and d["via_batch"] for d in done), done
    remote_id = ProviderBatch.objects.get().remote_id
    assert remote_id.startswith("batch_fake")
    assert {d["provider_batch_id"] for d in done} == {remote_id}
    assert fake.calls == 0 and (fake.batches.creates, fake.batches.items_created) == (1, [3])
    upload = next(iter(fake.files.values()))  # the first file: the requests
    request = json.loads(upload.splitlines()[0])
    assert (request["method"], request["url"]) == ("POST", "/v1/chat/completions")
    assert request["body"]["model"] == "gpt-lane"
    assert request["body"]["response_format"]["type"] == "json_schema"
    job = Job.objects.get(id=ids[0])
    assert job.input_tokens and job.output_tokens


@pytest.mark.parametrize(("mode", "state", "via_batch"), [
    ("partial", "succeeded", 2), ("expire", "expired", 0), ("fail", "failed", 0)])
def test_an_openai_batch_that_fails_expires_or_answers_part_falls_back_live(
        openai_lane: tuple[Api, FakeOpenAI], mode: str, state: str, via_batch: int) -> None:
    api, fake = openai_lane
    fake.batches.batch_mode = mode
    ids = [batched(api, unique_text(f"openai {mode} {i}")) for i in range(4)]
    wait_for(lambda: fake.batches.creates == 1, 20, "the batch")

    done = [api.wait(job_id, timeout=30) for job_id in ids]

    assert all(d["status"] == "completed" for d in done), done
    assert sum(1 for d in done if d.get("via_batch")) == via_batch
    assert fake.calls == 4 - via_batch  # the rest asked live, once each
    batch = ProviderBatch.objects.get()
    assert (batch.api, batch.state, batch.fallback_items) == ("openai", state, 4 - via_batch)
