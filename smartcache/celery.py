"""The Celery apps: configured from Django settings (CELERY_* names).

``app`` is the workers' (and the web's, which sends its tasks): it finds the
task modules (autodiscovery, which sets Django up and runs its checks first).
``taskless`` is beat's and Flower's: the same configuration, but no Django
fixup and no tasks. Beat sends its schedule's tasks by name (it never runs
them) and Flower learns tasks from the workers' events and replies, so
neither needs the task modules, and through them every service, provider,
SDK and the admin: about 35 MiB each (bench/idle_memory.py).
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import celeryd_after_setup, setup_logging
from django.conf import settings

from summaries.logcontext import configure

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smartcache.settings")

app = Celery("smartcache")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

taskless = Celery("smartcache", fixups=[], set_as_current=False)
taskless.config_from_object("django.conf:settings", namespace="CELERY")

# Every task's name (summaries/tasks.py's; tests/test_process_imports.py keeps
# the two equal), registered on ``taskless`` without its body: Flower's task
# forms (rate limit, time limits, apply) accept only registered names. What
# beat or Flower sends through them is a message by name that a worker runs.
TASK_NAMES = (
    "summaries.process_job", "summaries.reconcile_jobs", "summaries.purge_old_jobs",
    "summaries.deliver_webhook", "summaries.release_callbacks",
    "summaries.await_job_callbacks", "summaries.check_watch",
    "summaries.start_scheduled_job", "summaries.integrations_tick",
)


def _sent_to_a_worker(*args: Any, **kwargs: Any) -> None:
    raise NotImplementedError("beat and Flower only send this task; a worker runs it")


for _name in TASK_NAMES:
    # shared=False: only this app gets the name, never the workers' app.
    taskless.task(name=_name, shared=False)(_sent_to_a_worker)


@setup_logging.connect
def _use_django_logging(**kwargs: Any) -> None:
    """Workers and beat log through settings.LOGGING, as the API does (one
    format, the job id on every line about a job), not Celery's own setup."""
    configure(settings.LOGGING)


@celeryd_after_setup.connect
def _no_banner_in_json_logs(instance: Any, **kwargs: Any) -> None:
    """With LOG_FORMAT=json the worker's output is JSON lines only: no
    startup banner (its configuration is in Flower and `celery inspect`)."""
    if settings.LOG_FORMAT == "json":
        instance.quiet = True
