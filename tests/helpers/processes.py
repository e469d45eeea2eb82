"""Real service processes for tests: Celery workers and a gunicorn API."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from smartcache import commands

# The repository: child processes run from here.
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url(settings_dict: dict[str, Any]) -> str:
    """A DATABASE_URL for the test database, for child processes."""
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


class Service:
    """A child process in its own process group, logging to a temp file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log = Path(tempfile.mkstemp(prefix=f"smartcache-{name}-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (the parent and its pool children)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.kill(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.proc.wait()
        self.kill(signal.SIGKILL)  # any straggling pool children
        self.proc = None


class Worker(Service):
    """A Celery worker with the pool and concurrency the settings give
    (WORKER_POOL, WORKER_CONCURRENCY): the production configuration."""

    def __init__(self, env: dict[str, str], *, name: str = "w1") -> None:
        super().__init__(f"worker-{name}", [
            *commands.worker(hostname=f"{name}@%h"), "--without-gossip", "--without-mingle",
        ], env)

    def start(self, timeout: float = 30) -> None:
        super().start()
        deadline = time.monotonic() + timeout
        while " ready." not in self.output():
            if not self.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.output()[-3000:]}")
            time.sleep(0.1)


class WebServer(Service):
    def __init__(self, env: dict[str, str], *, workers: int = 2) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Not the per-user default control socket, which parallel sessions fight over.
        socket_dir = Path(tempfile.mkdtemp(prefix="smartcache-gunicorn-"))
        super().__init__("web", commands.web(
            bind=f"127.0.0.1:{self.port}", workers=workers,
            control_socket=socket_dir / "gunicorn.ctl"), env)

    def start(self, timeout: float = 30) -> None:
        super().start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                requests.get(f"{self.url}/api/health", timeout=2)
                return
            except requests.RequestException:
                if not self.alive() or time.monotonic() > deadline:
                    message = f"web server did not start:\n{self.output()[-3000:]}"
                    raise RuntimeError(message) from None
                time.sleep(0.2)


class Beat(Service):
    """Celery beat (the reconciler's clock), its schedule file under ``schedule_dir``."""

    def __init__(self, env: dict[str, str], *, schedule_dir: Path, name: str = "beat") -> None:
        super().__init__(name, [
            *commands.beat(schedule=schedule_dir / "celerybeat-schedule"), "--max-interval", "1",
        ], env)

    def start(self, timeout: float = 30) -> None:
        super().start()
        deadline = time.monotonic() + timeout
        while "beat: Starting..." not in self.output():
            if not self.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"beat did not start:\n{self.output()[-3000:]}")
            time.sleep(0.1)
