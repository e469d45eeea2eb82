"""`make run` as an honest single-machine install: one launcher per var/,
its Valkey found by the other commands of that checkout, and housekeeping
that does not flood the output."""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_run_stack() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_stack_for_lock",
                                                  ROOT / "scripts" / "run_stack.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


run_stack = load_run_stack()


def clean_env(var: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in {"VALKEY_URL", "SMARTCACHE_VAR_DIR"}}
    return {**env, "SMARTCACHE_VAR_DIR": str(var), **extra}


def test_a_second_launcher_on_the_same_var_is_refused(tmp_path: Path) -> None:
    held = run_stack.hold_instance_lock(tmp_path)
    try:
        second = subprocess.run([sys.executable, "scripts/run_stack.py"], cwd=ROOT,
                                env=clean_env(tmp_path), capture_output=True, text=True,
                                timeout=120, check=False)
    finally:
        held.close()
    assert second.returncode == 1
    assert f"another `make run` (pid {os.getpid()}) is using {tmp_path}" in second.stderr
    # It started nothing: no Valkey data, no database.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run.lock"]


def test_the_lock_is_free_again_once_its_holder_is_gone(tmp_path: Path) -> None:
    first = run_stack.hold_instance_lock(tmp_path)
    with pytest.raises(SystemExit):
        run_stack.hold_instance_lock(tmp_path)
    first.close()
    run_stack.hold_instance_lock(tmp_path).close()


def valkey_url_seen(var: Path, **extra: str) -> str:
    probe = "from django.conf import settings; print(settings.VALKEY_URL)"
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", probe], cwd=ROOT,
                            env=clean_env(var, **extra), capture_output=True, text=True,
                            timeout=120, check=True)
    return result.stdout.strip().splitlines()[-1]  # after shell's own notes


def test_commands_use_the_running_stacks_valkey(tmp_path: Path) -> None:
    assert valkey_url_seen(tmp_path) == "redis://127.0.0.1:6379/0"
    run_stack.publish_valkey_url(tmp_path, "redis://127.0.0.1:6390/0")
    assert valkey_url_seen(tmp_path) == "redis://127.0.0.1:6390/0"
    # An explicit VALKEY_URL still wins.
    assert valkey_url_seen(tmp_path, VALKEY_URL="redis://10.1.2.3:6379/1") == \
        "redis://10.1.2.3:6379/1"


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def celery_lines() -> Iterator[Collect]:
    """What Celery's beat, task-received and task-result loggers let through
    (with the project's logging configuration, as every process has it)."""
    handler = Collect()
    names = ("celery.beat", "celery.worker.strategy", "celery.app.trace")
    for name in names:
        logging.getLogger(name).addHandler(handler)
    yield handler
    for name in names:
        logging.getLogger(name).removeHandler(handler)


def test_routine_housekeeping_is_not_logged_but_jobs_and_failures_are(
        celery_lines: Collect) -> None:
    from django.conf import settings  # the configuration is applied by django.setup()

    assert settings.QUIET_TASKS
    beat = logging.getLogger("celery.beat")
    trace = logging.getLogger("celery.app.trace")
    received = logging.getLogger("celery.worker.strategy")
    beat.info("Scheduler: Sending due task %s (%s)", "reconcile-stale-jobs",
              "summaries.reconcile_jobs")
    received.info("Task %s[%s] received", "summaries.reconcile_jobs", "abc")
    trace.info("Task %s[%s] succeeded in %ss: %r", "summaries.reconcile_jobs", "abc", 0.01, 0)
    trace.info("Task %s[%s] succeeded in %ss: %r", "summaries.purge_old_jobs", "d", 0.01, None)
    assert celery_lines.messages == []
    trace.info("Task %s[%s] succeeded in %ss: %r", "summaries.process_job", "j1", 1.2, None)
    trace.error("Task %s[%s] raised unexpected: %r", "summaries.reconcile_jobs", "e",
                "OperationalError()")
    assert celery_lines.messages == [
        "Task summaries.process_job[j1] succeeded in 1.2s: None",
        "Task summaries.reconcile_jobs[e] raised unexpected: 'OperationalError()'",
    ]


def test_summarize_names_the_valkey_it_could_not_reach_without_its_password(
        tmp_path: Path) -> None:
    text = ("Lighthouses guided ships along dangerous coasts for centuries. "
            "Their keepers trimmed wicks and wound clockwork every night. "
            "Automation ended the job in most countries by the late twentieth century.")
    result = subprocess.run(
        [sys.executable, "manage.py", "summarize", "--json", text], cwd=ROOT,
        env=clean_env(tmp_path, VALKEY_URL="redis://:hunter2@127.0.0.1:1/0",
                      SUMMARIZER="local", VALKEY_SOCKET_TIMEOUT="0.5"),
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "Valkey at redis://127.0.0.1:1/0 is not reachable" in result.stderr
    assert "hunter2" not in result.stderr
