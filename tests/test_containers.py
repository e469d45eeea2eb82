"""The container setup kept honest without an engine: scripts/compose_check.py
passes on the real files and catches each gap it exists for; the
healthcheck script judges beat's schedule file and picks a Host Django serves.
(The image itself is built and run by scripts/container_check.sh in CI.)"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


compose_check = load("compose_check")
healthcheck = load("healthcheck")
COMPOSE = (ROOT / "docker-compose.yml").read_text()


def test_the_real_files_pass() -> None:
    assert compose_check.problems(ROOT / "docker-compose.yml") == []


@pytest.mark.parametrize(("broken", "complaint"), [
    (COMPOSE.replace("${DATABASE_URL:-", "${DATABASE_URL:?"), "down, logs"),
    (COMPOSE.replace('"${PUBLISH_ADDRESS:-127.0.0.1}:${PORT:-8000}:8000"', '"8000:8000"'),
     "web: port '8000:8000' is published on every interface"),
    (COMPOSE.replace("${PUBLISH_ADDRESS:-127.0.0.1}:${FLOWER_PORT", "0.0.0.0:${FLOWER_PORT"),
     "flower: port"),
    (COMPOSE.replace('"scripts/healthcheck.py", "beat"', '"true"'), "beat: no healthcheck"),
    (COMPOSE.replace("      required: false\n", ""), "no optional .env"),
    (COMPOSE.replace("command: python -m smartcache.commands worker",
                     "command: celery -A smartcache worker"), "worker: command"),
])
def test_each_gap_is_caught(broken: str, complaint: str) -> None:
    found = compose_check.compose_problems(broken)
    assert any(complaint in problem for problem in found), found


def test_a_build_context_with_secrets_is_caught() -> None:
    assert compose_check.dockerignore_problems(".git\n.venv\n") == [
        ".dockerignore does not exclude var"]
    assert compose_check.dockerignore_problems("*\n!smartcache/\n!var/\n") == [
        ".dockerignore lets var back in"]
    assert compose_check.dockerfile_problems("FROM python:3.11-slim\n") != []


def test_an_undocumented_setting_is_caught() -> None:
    settings = 'X = env_int("BRAND_NEW_SETTING", 3)\nY = env_str("LOG_LEVEL", "INFO")\n'
    assert compose_check.env_example_problems(settings, "# LOG_LEVEL=INFO\n") == [
        ".env.example does not mention BRAND_NEW_SETTING (smartcache/settings/ reads it)"]


def test_beat_is_healthy_while_it_saves_its_schedule(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTCACHE_VAR_DIR", str(tmp_path))
    assert healthcheck.check_beat() == f"no beat schedule in {tmp_path}"
    schedule = tmp_path / "celerybeat-schedule"
    schedule.write_bytes(b"")
    assert healthcheck.check_beat() is None
    stale = time.time() - healthcheck.BEAT_STALE_SECONDS - 60
    os.utime(schedule, (stale, stale))
    assert "not saved for" in (healthcheck.check_beat() or "")


def test_the_web_check_asks_with_a_host_django_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", "*, .example.com,api.example.com")
    assert healthcheck.allowed_host() == "example.com"
    monkeypatch.setenv("HOST", "0.0.0.0")
    assert healthcheck.local_host() == "127.0.0.1"
    assert healthcheck.main(["nonsense"]) == 2
