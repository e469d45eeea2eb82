"""The in-process copy of hits (summaries.infra.local_cache), across real API
processes: a refreshed or purged summary is never served from an old copy,
and a copy never outlives the entry's TTL in Valkey."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from summaries.core.inputs import normalize_input
from summaries.infra import cache
from tests.helpers.processes import WebServer
from tests.helpers.texts import text_about

pytestmark = pytest.mark.django_db(transaction=True)


def submit(server: WebServer, text: str) -> requests.Response:
    return requests.post(f"{server.url}/api/submit", json={"input": text}, timeout=10)


def payload(summary: str) -> dict[str, object]:
    return {"job_id": str(uuid.uuid4()), "summary": summary, "tags": ["a", "b"]}


def eventually(check: object, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_a_new_summary_replaces_every_processs_copy(web_server: WebServer, namespace: str) -> None:
    text = text_about("copy")
    key = normalize_input(text).cache_key(namespace)
    cache.set_summary(key, payload("Old one. Old two."), ttl=600)
    assert submit(web_server, text).json()["summary"] == "Old one. Old two."  # now held locally
    cache.set_summary(key, payload("New one. New two."), ttl=600)  # e.g. a refresh
    assert eventually(
        lambda: submit(web_server, text).json().get("summary") == "New one. New two.")


def test_a_purged_summary_is_not_served_from_a_copy(web_server: WebServer, namespace: str) -> None:
    text = text_about("purge")
    key = normalize_input(text).cache_key(namespace)
    cache.set_summary(key, payload("Gone one. Gone two."), ttl=600)
    assert submit(web_server, text).status_code == 200
    cache.delete_summary(key)
    assert eventually(lambda: submit(web_server, text).status_code == 202)


def test_a_copy_never_outlives_the_entry_in_valkey(web_server: WebServer, namespace: str) -> None:
    text = text_about("ttl")
    key = normalize_input(text).cache_key(namespace)
    cache.set_summary(key, payload("Brief one. Brief two."), ttl=1)
    assert submit(web_server, text).status_code == 200
    time.sleep(1.2)
    # Expiry is not announced: the copy must have been bounded by the TTL.
    assert submit(web_server, text).status_code == 202
