"""Flower tells the truth: a job that fails for good is a failed task.

A stack (its own Valkey, API, worker) and a real Flower on it, plus a real
Celery event receiver: a job the AI refuses (a permanent error) produces a
``task-failed`` event and shows as FAILURE in Flower's task list; a completed
job a ``task-succeeded`` / SUCCESS. The failed task's message is acked once
(never redelivered), and the worker logs the failure in one line, without a
traceback.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from celery import Celery

from smartcache import commands
from tests.helpers.api import Api
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.polling import wait_for
from tests.helpers.processes import Service, Worker, free_port
from tests.helpers.stack import Stack, stack_of
from tests.helpers.texts import unique_text

pytestmark = pytest.mark.django_db(transaction=True)

AUTH = ("ops", "flower-test")


class Flower(Service):
    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__("flower", commands.flower(
            port=self.port, address="127.0.0.1", basic_auth=":".join(AUTH)), env)

    def start(self, timeout: float = 30) -> None:
        super().start()
        wait_for(self.answers, timeout, "Flower to answer")

    def answers(self) -> bool:
        try:
            return requests.get(f"{self.url}/api/workers", auth=AUTH, timeout=2).ok
        except requests.RequestException:
            return False

    def task(self, task_id: str) -> dict[str, Any]:
        response = requests.get(f"{self.url}/api/task/info/{task_id}", auth=AUTH, timeout=5)
        return dict(response.json()) if response.ok else {}


class Events:
    """Every task event the workers send, gathered by a Celery event receiver."""

    def __init__(self, broker_url: str) -> None:
        self.app = Celery("events", broker=broker_url, set_as_current=False)
        self.seen: list[dict[str, Any]] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._capture, daemon=True)
        self._receiver: Any = None

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(10), "the event receiver did not start"

    def _capture(self) -> None:
        with self.app.connection() as connection:
            self._receiver = self.app.events.Receiver(
                connection, handlers={"*": self.seen.append})
            self._ready.set()
            self._receiver.capture(limit=None, timeout=None, wakeup=False)

    def of(self, task_id: str) -> list[str]:
        return [event["type"] for event in list(self.seen) if event.get("uuid") == task_id]

    def stop(self) -> None:
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(timeout=5)
        self.app.close()


@pytest.fixture
def watched(tmp_path: Path, worker_env: dict[str, str]
            ) -> Iterator[tuple[Stack, Api, Worker, Flower, Events]]:
    with stack_of(tmp_path, worker_env) as stack:
        events = Events(stack.url)
        events.start()
        flower = Flower(stack.env)
        stack.services.append(flower)
        flower.start()
        api = stack.api()
        worker = stack.worker("flower")
        try:
            yield stack, api, worker, flower, events
        finally:
            events.stop()


def test_a_job_that_fails_for_good_is_a_failed_task_and_a_completed_one_succeeded(
        watched: tuple[Stack, Api, Worker, Flower, Events], gemini: FakeGemini) -> None:
    stack, api, worker, flower, events = watched
    gemini.mode = "rejected"  # HTTP 400 from the AI: permanent, no retry
    failed = api.wait(api.submit(unique_text("flower refused")).json()["job_id"])
    gemini.mode = "ok"
    completed = api.wait(api.submit(unique_text("flower fine")).json()["job_id"])
    assert (failed["status"], failed["code"], failed["attempts"]) == ("failed", "ai_rejected", 1)
    assert completed["status"] == "completed"

    # The task id is the job id (summaries.infra.dispatch.enqueue).
    failed_id, completed_id = failed["job_id"], completed["job_id"]
    wait_for(lambda: "task-failed" in events.of(failed_id), 20, "a task-failed event")
    wait_for(lambda: "task-succeeded" in events.of(completed_id), 20, "a task-succeeded event")
    assert "task-succeeded" not in events.of(failed_id)
    assert "task-failed" not in events.of(completed_id)
    wait_for(lambda: flower.task(failed_id).get("state") == "FAILURE", 20,
             "Flower to show the failed task")
    wait_for(lambda: flower.task(completed_id).get("state") == "SUCCESS", 20,
             "Flower to show the completed task")
    assert "JobFailed" in flower.task(failed_id)["exception"]

    # Acked once, never redelivered: nothing waiting, nothing unacked, one receipt.
    main = stack.client()
    assert main.llen("celery") == 0 and main.hlen("unacked") == 0
    assert events.of(failed_id).count("task-received") == 1
    # One line in the worker's log for the expected failure, no traceback.
    lines = [line for line in worker.output().splitlines() if failed_id in line]
    assert [line for line in lines if "failed" in line.lower()] == [
        line for line in lines if f"job {failed_id} failed: " in line]
    assert len([line for line in lines if f"job {failed_id} failed: " in line]) == 1
    assert "Traceback" not in worker.output()
