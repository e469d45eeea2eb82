"""The batch jobs of a fake provider's batch API (tests/helpers/fakes/gemini.py,
openai.py speak their own wire format over this).

Knobs, switched at runtime by the test:

``batch_mode``   ``ok`` (every item answered), ``fail`` (the job fails as a
                 whole), ``expire`` (the job expires), ``partial`` (the job
                 succeeds, but its second item gets an error and its last
                 no answer at all), ``slow`` (the job never finishes: a
                 deadline must give it up), ``bad`` (the job succeeds, every
                 item's answer breaks the contract: 6 sentences, 1 tag)
``polls_to_finish``  how many gets see the job running before it finishes (1:
                 the first get finds it done)
``get_delay_s``  seconds each get of a job waits before answering (a poller
                 killed mid-poll)

``creates``, ``gets``, ``lists``, ``cancels`` count the calls; ``items_created``
the items of every job created.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

BATCH_MODES = frozenset({"ok", "fail", "expire", "partial", "slow", "bad"})


@dataclass
class FakeBatchJob:
    id: str
    display_name: str
    items: list[tuple[str, dict[str, Any]]]  # (item key, its request as sent)
    mode: str
    polls: int = 0
    state: str = "running"  # running, succeeded, failed, expired, cancelled
    metadata: dict[str, Any] = field(default_factory=dict)


class BatchJobs:
    """Thread-safe store of a fake's batch jobs and their knobs."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.jobs: dict[str, FakeBatchJob] = {}
            self.batch_mode = "ok"
            self.polls_to_finish = 1
            self.get_delay_s = 0.0
            self.creates = self.gets = self.lists = self.cancels = 0
            self.items_created: list[int] = []

    def create(self, display_name: str, items: list[tuple[str, dict[str, Any]]],
               metadata: dict[str, Any] | None = None) -> FakeBatchJob:
        if self.batch_mode not in BATCH_MODES:
            raise ValueError(f"unknown batch mode {self.batch_mode!r}")
        with self._lock:
            job = FakeBatchJob(f"{self._prefix}{next(self._ids)}", display_name, items,
                               self.batch_mode, metadata=dict(metadata or {}))
            self.jobs[job.id] = job
            self.creates += 1
            self.items_created.append(len(items))
            return job

    def get(self, job_id: str) -> FakeBatchJob | None:
        """The job as a get sees it now (each get is one poll)."""
        with self._lock:
            self.gets += 1
            job = self.jobs.get(job_id)
            if job is None or job.state != "running":
                return job
            job.polls += 1
            if job.mode != "slow" and job.polls >= self.polls_to_finish:
                job.state = {"fail": "failed", "expire": "expired"}.get(job.mode, "succeeded")
            return job

    def listed(self) -> list[FakeBatchJob]:
        with self._lock:
            self.lists += 1
            return list(reversed(self.jobs.values()))  # newest first

    def cancel(self, job_id: str) -> FakeBatchJob | None:
        with self._lock:
            self.cancels += 1
            job = self.jobs.get(job_id)
            if job is not None and job.state == "running":
                job.state = "cancelled"
            return job

    @staticmethod
    def answered(job: FakeBatchJob) -> list[tuple[int, str, dict[str, Any]]]:
        """(index, key, request) of the items a succeeded job answers, and
        for ``partial`` which get an error: index 1 errs, the last is absent."""
        items = list(enumerate(job.items))
        if job.mode == "partial" and len(items) > 2:
            items = items[:-1]
        return [(index, key, request) for index, (key, request) in items]

    @staticmethod
    def errs(job: FakeBatchJob, index: int) -> bool:
        return job.mode == "partial" and index == 1
