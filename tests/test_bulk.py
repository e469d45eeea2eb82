"""Bulk submit (POST /api/submit/batch) over real HTTP, with a real worker:
each item is answered as a single submit of it would be, in order, and goes
to the bulk lane."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from django.test import Client

from summaries.bypasses import broker
from summaries.core.inputs import normalize_input
from summaries.core.lanes import Lane
from summaries.models import Job
from tests.helpers.api import Api
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.texts import text_about

pytestmark = pytest.mark.django_db(transaction=True)


def batch(api: Api, inputs: Any) -> requests.Response:
    return api.http.post(f"{api.base_url}/api/submit/batch", json={"inputs": inputs},
                         timeout=30)


def test_a_mixed_batch_is_answered_item_by_item_in_order(
        api: Api, gemini: FakeGemini, namespace: str) -> None:
    cached_text = text_about("bulk cached")
    done = api.wait(api.submit(cached_text).json()["job_id"])
    assert done["status"] == "completed", done
    new_text = text_about("bulk new")

    response = batch(api, [
        cached_text,                                             # 0 hit
        new_text,                                                # 1 miss: creates the job
        {"input": "  " + new_text.replace(" ", "  ") + "\n"},    # 2 the same input again
        "One sentence only",                                     # 3 refused: too short
        42,                                                      # 4 refused: not a string
        {"input": text_about("bulk cached"), "refresh": "yes"},  # 5 refused: not a boolean
    ])

    assert response.status_code == 202  # item 1's job is queued
    hit, miss, joined, short, number, bad_refresh = response.json()["results"]
    assert hit == {"job_id": done["job_id"], "status": "completed", "cached": True,
                   "cache_key": normalize_input(cached_text).cache_key(namespace),
                   "cache": "HIT", "summary": done["summary"], "tags": done["tags"],
                   "http_status": 200}
    new_key = normalize_input(new_text).cache_key(namespace)
    assert miss == {"job_id": miss["job_id"], "status": "pending", "cached": False,
                    "cache_key": new_key, "cache": "MISS", "http_status": 202,
                    "status_url": f"{api.base_url}/api/status/{miss['job_id']}"}
    # The duplicate joined the job its twin created a moment before.
    assert (joined["job_id"], joined["cache"], joined["cache_key"]) == (
        miss["job_id"], "JOINED", new_key)
    assert (short["code"], short["http_status"]) == ("input_too_short", 400)
    assert (number["code"], number["http_status"]) == ("invalid", 400)
    assert (bad_refresh["code"], bad_refresh["http_status"]) == ("invalid", 400)
    for refused in (short, number, bad_refresh):
        assert set(refused) == {"error", "code", "http_status"} and refused["error"]

    # The job completes, on the bulk lane; one AI call for both duplicates.
    finished = api.wait(miss["job_id"])
    assert finished["status"] == "completed", finished
    assert Job.objects.get(id=miss["job_id"]).queue == Lane.BULK
    assert Job.objects.filter(input_hash=new_key).count() == 1
    assert gemini.calls == 2  # the cached text's job, and the new one

    # Each accepted item is counted like a single submit; refused ones are not.
    stats = api.analytics()
    assert (stats["total_requests"], stats["cache_hits"], stats["cache_misses"],
            stats["joined"]) == (1 + 3, 1, 1 + 2, 1)


def test_a_batch_answered_entirely_from_the_cache_is_200(api: Api) -> None:
    texts = [text_about(f"bulk warm {i}") for i in range(2)]
    first = batch(api, texts)
    assert first.status_code == 202
    for item in first.json()["results"]:
        assert api.wait(item["job_id"])["status"] == "completed"

    again = batch(api, [texts[1], texts[0], {"input": texts[1]}])
    assert again.status_code == 200
    results = again.json()["results"]
    assert [r["cache"] for r in results] == ["HIT", "HIT", "HIT"]
    assert [r["job_id"] for r in results] == [first.json()["results"][i]["job_id"]
                                              for i in (1, 0, 1)]
    assert all("status_url" not in r and r["summary"] for r in results)


def test_a_batch_of_refused_items_only_is_200_and_creates_nothing(api: Api) -> None:
    response = batch(api, ["", "http://127.0.0.1/admin"])
    assert response.status_code == 200
    assert [(r["code"], r["http_status"]) for r in response.json()["results"]] == [
        ("empty_input", 400), ("blocked_url", 400)]
    assert Job.objects.count() == 0


def test_an_item_over_the_size_limit_is_refused_alone(api: Api, settings: Any) -> None:
    settings.MAX_INPUT_CHARS = 1000
    response = batch(api, ["word. " * 400, text_about("bulk small")])
    assert response.status_code == 202
    big, small = response.json()["results"]
    assert (big["code"], big["http_status"]) == ("input_too_large", 413)
    assert small["cache"] == "MISS"


# --- Whole-batch errors (in-process: no job is ever created) -----------------

def post_batch(client: Client, body: Any) -> Any:
    return client.post("/api/submit/batch", data=json.dumps(body),
                       content_type="application/json")


@pytest.mark.parametrize(("body", "code"), [
    ({"inputs": [text_about(f"limit {i}") for i in range(101)]}, "max_length"),
    ({"inputs": []}, "min_length"),
    ({"inputs": text_about("not a list")}, "not_a_list"),
    ({}, "required"),
    ([text_about("no envelope")], "invalid"),
])
def test_a_malformed_batch_is_refused_whole(client: Client, body: Any, code: str) -> None:
    response = post_batch(client, body)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert Job.objects.count() == 0


def test_a_batch_that_is_not_json_is_400(client: Client) -> None:
    response = client.post("/api/submit/batch", data="{nope", content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (400, "malformed_json")


def test_each_item_counts_against_the_rate_limit(client: Client, settings: Any) -> None:
    settings.RATE_LIMIT = (5, 60)
    assert post_batch(client, {"inputs": [text_about(f"rl {i}") for i in range(4)]}
                      ).status_code == 202
    over = post_batch(client, {"inputs": [text_about(f"rl {i}") for i in range(4, 6)]})
    assert over.status_code == 429
    assert over.json()["code"] == "throttled" and over["Retry-After"]
    assert Job.objects.count() == 4  # the refused batch created nothing


def test_valkey_down_fails_the_whole_batch_with_503(client: Client, settings: Any) -> None:
    settings.VALKEY_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    response = post_batch(client, {"inputs": [text_about("outage one"),
                                              text_about("outage two")]})
    assert response.status_code == 503
    assert response.json()["code"] == "valkey_unavailable"
    assert Job.objects.count() == 0


def test_the_schema_documents_the_batch_endpoint(client: Client) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    answers = schema["paths"]["/api/submit/batch"]["post"]["responses"]
    assert {"200", "202", "400", "413", "429", "503"} <= set(answers)
    submit = schema["paths"]["/api/submit"]["post"]["responses"]
    assert {"X-Cache", "X-Cache-Key"} <= set(submit["200"]["headers"])


def test_a_batchs_new_jobs_are_sent_to_the_workers_together(
        client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """The jobs leave in one send at the end of the request, in item order, so
    a worker gets them at once (short texts then share AI batches)."""
    sends: list[list[tuple[str, str, str]]] = []
    real_send = broker._send

    def send(messages: list[tuple[str, str, str]]) -> None:
        sends.append(list(messages))
        real_send(messages)

    monkeypatch.setattr(broker, "_send", send)
    texts = [text_about(f"together {i}") for i in range(3)]
    response = post_batch(client, {"inputs": [*texts, texts[0]]})  # the last one joins
    assert response.status_code == 202
    job_ids = [item["job_id"] for item in response.json()["results"]]
    assert [[(queue, task_id) for queue, task_id, _ in send] for send in sends] == [
        [(Lane.BULK, job_id) for job_id in job_ids[:3]]]
    assert job_ids[3] == job_ids[0]
