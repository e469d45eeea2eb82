"""The batch lane (summaries/services/batch_lane.py) over real HTTP, real
workers and beat, against the fake Gemini's Batch API
(tests/helpers/fakes/gemini.py): submits that can wait go to provider batch
jobs and complete from their results; failed, expired, partial and late
batches fall back to live calls; a batch whose creator died before recording
it is adopted, not created twice. A killed poller and the OpenAI Batch API:
tests/test_batch_lane_stacks.py."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from summaries.models import Job, ProviderBatch
from summaries.providers import BatchItem
from summaries.providers.gemini import GeminiProvider
from summaries.providers.gemini_batches import GeminiBatchApi
from summaries.services.config import summarizer
from tests.helpers.api import Api
from tests.helpers.batch_lane import LANE, batched
from tests.helpers.fakes.gemini import FakeGemini, prompt_tokens
from tests.helpers.fakes.receiver import FakeReceiver
from tests.helpers.polling import wait_for
from tests.helpers.stack import Stack, stack_of
from tests.helpers.stories import story, syndicated
from tests.helpers.texts import unique_text

pytestmark = pytest.mark.django_db(transaction=True)

# --- the API (the session's worker, no beat: nothing is sent to a batch) ------------


@pytest.mark.parametrize(("extra", "code"), [
    ({"deadline": 1}, "invalid_deadline"),  # sooner than BATCH_LANE_MIN_DEADLINE
    ({"deadline": 30 * 86400}, "invalid_deadline"),  # later than BATCH_LANE_MAX_DEADLINE
    ({"deadline": "tomorrow"}, "invalid_deadline"),
    ({"deadline": 1.5e9}, "invalid_deadline"),
    ({"deadline": -4655456565139240363491328}, "invalid_deadline"),  # past timedelta's range
    ({"deadline": 10**30}, "invalid_deadline"),
    ({"deadline": 3600, "priority": "interactive"}, "invalid_deadline"),
    ({"priority": "batch", "run_at": "2099-01-01T00:00:00Z"}, "invalid_deadline"),
    ({"priority": "later"}, "invalid_choice"),
])
def test_a_bad_priority_or_deadline_is_a_400(api: Api, extra: dict[str, Any], code: str) -> None:
    response = api.submit(unique_text("refused"), **extra)

    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert not Job.objects.exists()


def test_a_batch_item_with_a_bad_deadline_is_refused_alone(api: Api) -> None:
    response = api.http.post(f"{api.base_url}/api/submit/batch", json={"inputs": [
        {"input": unique_text("alone"), "deadline": "soon"},
        {"input": unique_text("fine"), "deadline": 3600}]}, timeout=15)

    first, second = response.json()["results"]
    assert (first["http_status"], first["code"]) == (400, "invalid_deadline")
    assert second["http_status"] == 202 and second["status"] == "processing"
    job = Job.objects.get(id=second["job_id"])
    assert job.stage == Job.Stage.BATCHED and job.deadline is not None
    assert job.queue == "bulk"


def test_a_waiting_job_is_joined_and_an_interactive_submit_runs_it_live(
        api: Api, gemini: FakeGemini) -> None:
    text = unique_text("joined")
    job_id = batched(api, text, deadline=3600)
    waiting = api.status(job_id).json()
    assert (waiting["status"], waiting["stage"]) == ("processing", "batched")
    assert "deadline" in waiting and "provider_batch_id" not in waiting

    again = api.submit(text, priority="batch")  # can wait too: joins, stays in the lane
    assert (again.json()["job_id"], again.headers["X-Cache"]) == (job_id, "JOINED")
    assert Job.objects.get(id=job_id).stage == Job.Stage.BATCHED
    assert gemini.calls == 0

    now = api.submit(text)  # cannot wait: joins and takes it out of the lane
    assert (now.json()["job_id"], now.headers["X-Cache"]) == (job_id, "JOINED")
    done = api.wait(job_id)
    assert done["status"] == "completed" and "via_batch" not in done
    assert gemini.calls == 1 and gemini.batches.creates == 0


def wire_story() -> str:
    """STORY of a city no other test uses (letters only: a name, not a number)."""
    return story("Lanford" + uuid.uuid4().hex[:6].translate(str.maketrans(
        "0123456789", "ghijklmnop")))


def test_a_syndicated_copy_joins_its_original_waiting_in_the_lane(
        api: Api, gemini: FakeGemini) -> None:
    wire = wire_story()
    job_id = batched(api, wire, deadline=3600)

    copy = api.submit(syndicated(wire), priority="batch")  # can wait: joins, stays in the lane

    assert (copy.status_code, copy.headers["X-Cache"]) == (202, "JOINED"), copy.text
    assert (copy.json()["job_id"], copy.json()["near_duplicate_of"]) == (job_id, job_id)
    assert Job.objects.count() == 1
    assert Job.objects.get(id=job_id).stage == Job.Stage.BATCHED
    # The copy's own claim was freed: the same copy again joins again, not stuck.
    again = api.submit(syndicated(wire), priority="batch")
    assert (again.json()["job_id"], again.headers["X-Cache"]) == (job_id, "JOINED")
    # One number changed is another story: a job of its own.
    changed = api.submit(syndicated(wire.replace("40 million", "45 million")), priority="batch")
    assert (changed.status_code, changed.headers["X-Cache"]) == (202, "MISS"), changed.text
    assert changed.json()["job_id"] != job_id and "near_duplicate_of" not in changed.json()
    assert gemini.calls == 0


def test_an_interactive_copy_takes_its_waiting_original_out_of_the_lane(
        api: Api, gemini: FakeGemini) -> None:
    wire = wire_story()
    job_id = batched(api, wire, deadline=3600)

    copy = api.submit(syndicated(wire))  # cannot wait: the original runs live now

    assert (copy.json()["job_id"], copy.headers["X-Cache"]) == (job_id, "JOINED"), copy.text
    done = api.wait(job_id)
    assert done["status"] == "completed" and "via_batch" not in done
    assert gemini.calls == 1 and gemini.batches.creates == 0
    assert Job.objects.count() == 1


@pytest.mark.parametrize("extra", [{"store": False}, {"near_duplicates": False}])
def test_a_store_false_or_unshared_waiting_original_is_not_joined(
        api: Api, gemini: FakeGemini, extra: dict[str, Any]) -> None:
    wire = wire_story()
    job_id = batched(api, wire, deadline=3600, **extra)

    copy = api.submit(syndicated(wire), priority="batch")

    assert (copy.status_code, copy.headers["X-Cache"]) == (202, "MISS"), copy.text
    assert copy.json()["job_id"] != job_id
    assert Job.objects.count() == 2 and gemini.calls == 0


# --- through the provider's batch API (a stack with beat) ---------------------------


@pytest.fixture(scope="module")
def lane_stack(tmp_path_factory: pytest.TempPathFactory,
               worker_env: dict[str, str]) -> Iterator[Stack]:
    with stack_of(tmp_path_factory.mktemp("lane"), {**worker_env, **LANE}) as stack:
        stack.api()
        stack.worker("lane")
        stack.beat()
        yield stack


@pytest.fixture
def lane(lane_stack: Stack, gemini: FakeGemini) -> Api:
    assert lane_stack.web is not None
    return Api(lane_stack.web.url)


def test_waiting_items_complete_through_one_batch_job(lane: Api, gemini: FakeGemini) -> None:
    texts = [unique_text(f"lane {i}") for i in range(3)]
    ids = [batched(lane, text) for text in texts]

    done = [lane.wait(job_id, timeout=30) for job_id in ids]

    assert all(d["status"] == "completed" and d["via_batch"] for d in done), done
    remote_id = ProviderBatch.objects.get().remote_id
    assert remote_id.startswith("batches/fakebatch")
    assert {d["provider_batch_id"] for d in done} == {remote_id}
    assert gemini.calls == 0  # no live call
    assert (gemini.batches.creates, gemini.batches.items_created) == (1, [3])
    for job_id, body in zip(ids, done, strict=True):
        job = Job.objects.get(id=job_id)
        assert job.via_batch and job.input_tokens and job.output_tokens
        assert job.duration_ms is None and body["summary"]
    batch = ProviderBatch.objects.get()
    assert (batch.state, batch.items, batch.completed_items, batch.fallback_items) == (
        "succeeded", 3, 3, 0)
    # Cached as a live answer is: the same text again is a hit.
    hit = lane.submit(texts[0])
    assert (hit.status_code, hit.headers["X-Cache"]) == (200, "HIT")
    assert hit.json()["summary"] == done[0]["summary"]


def test_a_batch_result_calls_back_as_a_live_completion_does(lane: Api,
                                                              gemini: FakeGemini) -> None:
    with FakeReceiver() as receiver:
        job_id = batched(lane, unique_text("called back"), callback_url=receiver.url("/lane"))
        joined = lane.submit(Job.objects.get(id=job_id).input_text, priority="batch",
                             callback_url=receiver.url("/joined"))
        assert joined.headers["X-Cache"] == "JOINED"

        [mine] = receiver.wait_for("/lane", 1)
        [theirs] = receiver.wait_for("/joined", 1)

    for got in (mine, theirs):
        body = got.json()
        assert (body["job_id"], body["status"], body["via_batch"]) == (job_id, "completed", True)
        assert body["summary"] and body["provider_batch_id"].startswith("batches/")
    assert gemini.calls == 0 and gemini.batches.creates == 1


def test_a_batch_created_by_a_poller_that_died_before_recording_it_is_adopted(
        lane: Api, gemini: FakeGemini) -> None:
    # A poller recorded the batch and its jobs, asked the provider to create
    # it, and died before writing down the provider's id.
    texts = [unique_text(f"adopted {i}") for i in range(2)]
    batch = ProviderBatch(api="gemini", provider=summarizer().cache_namespace)
    batch.display_name = f"smartcache-{batch.id}"
    api = GeminiBatchApi(GeminiProvider("test-key", "gemini-2.5-flash", gemini.base_url, 5))
    waiting = [Job(kind="text", input_hash=uuid.uuid4().hex * 2, input_text=text,
                   status=Job.Status.PROCESSING, stage=Job.Stage.BATCHED,
                   deadline=timezone.now() + timedelta(hours=1), provider_batch=batch)
               for text in texts]
    remote_id = api.create(display_name=batch.display_name,
                           items=[BatchItem(str(job.id), job.input_text) for job in waiting])
    with transaction.atomic():
        batch.save()
        for job in waiting:
            job.save()

    done = [lane.wait(str(job.id), timeout=30) for job in waiting]

    assert all(d["status"] == "completed" and d["via_batch"] for d in done), done
    assert gemini.batches.creates == 1 and gemini.batches.lists >= 1  # found, not created again
    batch.refresh_from_db()
    assert (batch.state, batch.remote_id, batch.completed_items) == ("succeeded", remote_id, 2)


def test_a_waiting_job_in_bullets_completes_in_bullets_through_the_batch(
        lane: Api, gemini: FakeGemini) -> None:
    job_id = batched(lane, unique_text("pointed"), style="bullets")

    done = lane.wait(job_id, timeout=30)

    assert done["status"] == "completed" and done["via_batch"], done
    lines = done["summary"].splitlines()
    assert len(lines) >= 3 and all(line.startswith("- ") for line in lines), done["summary"]
    assert gemini.calls == 0
    (request,) = [r for _, r in next(iter(gemini.batches.jobs.values())).items]
    config = request["request"]["generationConfig"]
    assert "points" in json.dumps(config["responseSchema"])


def test_the_status_shows_the_provider_batch_while_it_runs(lane: Api,
                                                           gemini: FakeGemini) -> None:
    gemini.batches.batch_mode = "slow"
    job_id = batched(lane, unique_text("running"), deadline=3600)

    wait_for(lambda: "provider_batch_id" in lane.status(job_id).json(), 20,
             "the job to be sent in a provider batch")
    body = lane.status(job_id).json()
    assert (body["status"], body["stage"]) == ("processing", "batched")
    assert body["provider_batch_id"].startswith("batches/fakebatch")
    assert ProviderBatch.objects.get().state == "running"


@pytest.mark.parametrize(("mode", "state"), [("fail", "failed"), ("expire", "expired")])
def test_a_failed_or_expired_batch_falls_back_to_live_calls(
        lane: Api, gemini: FakeGemini, mode: str, state: str) -> None:
    gemini.batches.batch_mode = mode
    ids = [batched(lane, unique_text(f"{mode} {i}")) for i in range(2)]

    done = [lane.wait(job_id, timeout=30) for job_id in ids]

    assert all(d["status"] == "completed" and "via_batch" not in d for d in done), done
    assert gemini.batches.creates == 1 and gemini.calls == 2  # each asked live once
    batch = ProviderBatch.objects.get()
    assert (batch.state, batch.completed_items, batch.fallback_items) == (state, 0, 2)


def test_a_partial_result_sends_only_the_unanswered_items_live(
        lane: Api, gemini: FakeGemini) -> None:
    gemini.batches.batch_mode = "partial"  # item 2 errs, the last one is missing
    ids = [batched(lane, unique_text(f"partial {i}")) for i in range(4)]
    wait_for(lambda: gemini.batches.creates == 1, 20, "the batch")

    done = {job_id: lane.wait(job_id, timeout=30) for job_id in ids}

    assert all(d["status"] == "completed" for d in done.values()), done
    via_batch = {job_id for job_id, d in done.items() if d.get("via_batch")}
    assert len(via_batch) == 2 and gemini.calls == 2
    batch = ProviderBatch.objects.get()
    assert (batch.state, batch.completed_items, batch.fallback_items) == ("succeeded", 2, 2)


def test_a_batch_not_done_by_the_deadline_is_given_up_for_live_calls(
        lane: Api, gemini: FakeGemini) -> None:
    gemini.batches.batch_mode = "slow"  # never finishes
    job_id = batched(lane, unique_text("late"), deadline=8)  # live once 5 s away: ~3 s

    done = lane.wait(job_id, timeout=30)

    assert done["status"] == "completed" and "via_batch" not in done
    assert gemini.calls == 1 and gemini.batches.creates == 1
    wait_for(lambda: gemini.batches.cancels == 1, 10, "the batch to be cancelled")
    assert ProviderBatch.objects.get().state == "abandoned"


def test_two_hundred_bulk_items_complete_through_the_batch_api(
        lane: Api, gemini: FakeGemini) -> None:
    inputs = [{"input": unique_text(f"bulk {i}"), "priority": "batch"} for i in range(200)]
    ids = []
    for start in (0, 100):
        response = lane.http.post(f"{lane.base_url}/api/submit/batch",
                                  json={"inputs": inputs[start:start + 100]}, timeout=60)
        assert response.status_code == 202, response.text
        ids += [item["job_id"] for item in response.json()["results"]]

    wait_for(lambda: Job.objects.filter(status="completed").count() == 200, 90,
             "every bulk item to complete")

    assert set(Job.objects.values_list("id", flat=True)) == {uuid.UUID(i) for i in ids}
    assert Job.objects.filter(via_batch=True).count() == 200
    assert gemini.calls == 0  # live calls
    assert sum(gemini.batches.items_created) == 200
    # Grouped: one or two groups on an idle machine (157 + 43 seen); a
    # 100-item submit that spans several ticks on a loaded one sends what it
    # has written so far, so a few more, never one a job.
    assert gemini.batches.creates <= 8, gemini.batches.items_created


# --- cost and near-duplicates of a batch-made summary ---------------------------------


def saved_usd(api: Api, cause: str) -> float:
    return float(api.analytics()["ai_saved"][cause]["usd"])


def settled(api: Api, cause: str) -> float:
    """What ``cause`` saved so far, once the earlier tests' counts are all in
    Valkey (each process adds its own every METRICS_FLUSH_SECONDS)."""
    time.sleep(4 * settings.METRICS_FLUSH_SECONDS)
    return saved_usd(api, cause)


def test_a_batch_lane_job_costs_the_discounted_price_and_the_discount_is_saved(
        lane: Api, gemini: FakeGemini) -> None:
    before = settled(lane, "batch")
    job_id = batched(lane, unique_text("lane cost"))

    done = lane.wait(job_id, timeout=30)

    assert done["via_batch"] and gemini.calls == 0
    job = Job.objects.get(id=job_id)
    # The fake's reported counts (its batch answers carry usageMetadata), at
    # the model's list price (gemini-2.5-flash: 0.30 / 2.50 USD per Mtok), half off.
    assert not job.tokens_estimated and job.input_tokens and job.output_tokens
    live = (job.input_tokens * 0.30 + job.output_tokens * 2.50) / 1e6
    assert float(job.cost) == pytest.approx(live / 2, abs=2e-6)
    assert done["cost"] == {"input_tokens": job.input_tokens, "output_tokens": job.output_tokens,
                            "estimated": False, "usd": float(job.cost)}
    # The other half is saved, under batch (counted as its row took the cost).
    wait_for(lambda: saved_usd(lane, "batch") > before, 10, "the discount counted as saved")
    assert saved_usd(lane, "batch") - before == pytest.approx(live / 2, abs=2e-6)


def test_a_batch_made_summary_is_shared_near_by_a_syndicated_copy(
        lane: Api, gemini: FakeGemini) -> None:
    wire = story("Batchford" + uuid.uuid4().hex[:6].translate(str.maketrans(
        "0123456789", "ghijklmnop")))
    job_id = batched(lane, wire)
    done = lane.wait(job_id, timeout=30)
    assert done["via_batch"] and gemini.calls == 0
    cost = float(Job.objects.get(id=job_id).cost)
    assert cost > 0
    before = settled(lane, "near")

    near = lane.submit(syndicated(wire))  # indexed as a live summary is: answered at once

    assert (near.status_code, near.headers["X-Cache"]) == (200, "NEAR"), near.text
    assert near.json()["near_duplicate_of"] == job_id
    assert near.json()["summary"] == done["summary"]
    assert gemini.calls == 0
    # It saved what the shared summary cost when the batch made it (its row).
    wait_for(lambda: saved_usd(lane, "near") > before, 10, "the near answer's saving")
    assert saved_usd(lane, "near") - before == pytest.approx(cost, abs=2e-6)


def test_a_copy_that_joined_a_waiting_original_completes_with_it_through_one_batch_item(
        lane: Api, gemini: FakeGemini) -> None:
    wire = wire_story()
    before = settled(lane, "near")
    job_id = batched(lane, wire)

    copy = lane.submit(syndicated(wire), priority="batch")
    assert (copy.json()["job_id"], copy.headers["X-Cache"]) == (job_id, "JOINED"), (
        copy.text, lane.status(job_id).json())
    done = lane.wait(job_id, timeout=30)

    assert done["status"] == "completed" and done["via_batch"]
    assert gemini.calls == 0 and gemini.batches.items_created == [1]  # no item of its own
    assert Job.objects.count() == 1
    # The join saved what the original cost, counted (under near) as it completed.
    cost = float(Job.objects.get(id=job_id).cost)
    wait_for(lambda: saved_usd(lane, "near") > before, 10, "the join's saving")
    assert saved_usd(lane, "near") - before == pytest.approx(cost, abs=2e-6)
    # Once it is done, a copy is answered NEAR at once.
    near = lane.submit(syndicated(wire))
    assert (near.status_code, near.headers["X-Cache"]) == (200, "NEAR"), near.text
    assert (near.json()["near_duplicate_of"], near.json()["summary"]) == (job_id, done["summary"])



def spent_usd(api: Api) -> float:
    return float(api.analytics()["ai_spent"]["usd"])


def test_a_batch_answer_for_a_job_that_went_live_is_counted_as_spent(
        lane: Api, gemini: FakeGemini) -> None:
    """An interactive submit took the job out of its provider batch after it
    was sent: the live call answers it, and the provider still bills the
    batch's answer. That money is spent (analytics, the batch's row), and
    nothing is saved by it."""
    gemini.batches.polls_to_finish = 8  # the provider batch runs about 4 s
    text = unique_text("went live")
    before = settled(lane, "batch"), spent_usd(lane)
    job_id = batched(lane, text)
    wait_for(lambda: lane.status(job_id).json().get("provider_batch_id"), 15,
             "the job sent in a provider batch")

    joined = lane.submit(text)  # cannot wait: the job runs live now
    assert (joined.json()["job_id"], joined.headers["X-Cache"]) == (job_id, "JOINED")
    done = lane.wait(job_id, timeout=30)
    assert done["status"] == "completed" and "via_batch" not in done
    assert gemini.calls == 1

    wait_for(lambda: ProviderBatch.objects.get().state == "succeeded", 30, "the batch read")
    batch = ProviderBatch.objects.get()
    live_cost = Decimal(Job.objects.get(id=job_id).cost)
    # The same request through the batch API: half the live price (the fake's
    # usage is the same for both).
    assert batch.unused_cost == pytest.approx(live_cost / 2, abs=Decimal("0.000002"))
    assert batch.completed_items == 0 and batch.items == 1
    total = float(live_cost + batch.unused_cost)
    wait_for(lambda: spent_usd(lane) - before[1] >= total - 2e-6, 10, "both costs counted")
    assert spent_usd(lane) - before[1] == pytest.approx(total, abs=2e-6)
    assert saved_usd(lane, "batch") == pytest.approx(before[0], abs=2e-6)  # nothing saved


def test_a_join_with_an_earlier_deadline_brings_the_jobs_deadline_forward(
        api: Api, gemini: FakeGemini) -> None:
    text = unique_text("sooner")
    job_id = batched(api, text, deadline=7200)
    later = Job.objects.get(id=job_id).deadline
    assert later is not None

    sooner = api.submit(text, deadline=1800)  # joins: it will not wait two hours
    assert (sooner.json()["job_id"], sooner.headers["X-Cache"]) == (job_id, "JOINED")
    job = Job.objects.get(id=job_id)
    assert job.deadline is not None and job.stage == Job.Stage.BATCHED
    assert abs((job.deadline - (timezone.now() + timedelta(seconds=1800))).total_seconds()) < 30
    assert job.lease_expires_at == job.deadline
    assert api.status(job_id).json()["deadline"].startswith(job.deadline.isoformat()[:16])

    relaxed = api.submit(text, deadline=3 * 3600)  # a later deadline changes nothing
    assert relaxed.headers["X-Cache"] == "JOINED"
    assert Job.objects.get(id=job_id).deadline == job.deadline
    assert gemini.calls == 0


def test_a_batch_answer_that_broke_the_contract_is_paid_and_the_job_runs_live(
        lane: Api, gemini: FakeGemini) -> None:
    gemini.batches.batch_mode = "bad"  # every item's answer: 6 sentences, 1 tag
    before = spent_usd(lane)
    job_id = batched(lane, unique_text("broke it in the batch"))

    done = lane.wait(job_id, timeout=30)

    assert done["status"] == "completed" and "via_batch" not in done, done
    assert gemini.calls == 1  # the live call that made it
    batch = ProviderBatch.objects.get()
    assert (batch.items, batch.completed_items, batch.fallback_items) == (1, 0, 1)
    # The job pays the batch's broken answer (at the batch price) and the live call.
    (live,) = gemini.received
    live_in = prompt_tokens(live.prompt)
    bad_out = len(json.dumps({"summary": " ".join(["This is one sentence."] * 6),
                              "tags": ["x"]})) // 4
    job = Job.objects.get(id=job_id)
    assert job.input_tokens == 2 * live_in, (job.input_tokens, live_in)
    assert job.output_tokens > bad_out
    live_only = (Decimal(live_in) * Decimal("0.30")
                 + Decimal(job.output_tokens - bad_out) * Decimal("2.50")) / 1_000_000
    broken = (Decimal(live_in) * Decimal("0.30") + Decimal(bad_out) * Decimal("2.50")) / 2_000_000
    assert job.cost == pytest.approx(live_only + broken, abs=Decimal("0.000002"))
    wait_for(lambda: spent_usd(lane) - before >= float(job.cost) - 2e-6, 10, "both counted")
    assert spent_usd(lane) - before == pytest.approx(float(job.cost), abs=2e-6)
