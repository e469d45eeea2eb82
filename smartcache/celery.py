"""The Celery app: configured from Django settings (CELERY_* names)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import celeryd_after_setup, setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smartcache.settings")

app = Celery("smartcache")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def _use_django_logging(**kwargs: Any) -> None:
    """Workers and beat log through settings.LOGGING, as the API does (one
    format, the job id on every line about a job), not Celery's own setup."""
    from django.conf import settings

    from summaries.logcontext import configure

    configure(settings.LOGGING)


@celeryd_after_setup.connect
def _no_banner_in_json_logs(instance: Any, **kwargs: Any) -> None:
    """With LOG_FORMAT=json the worker's output is JSON lines only: no
    startup banner (its configuration is in Flower and `celery inspect`)."""
    from django.conf import settings

    if settings.LOG_FORMAT == "json":
        instance.quiet = True
