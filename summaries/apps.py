import django_stubs_ext
from django.apps import AppConfig

# The tasks' Celery app, configured from the settings, wherever Django starts
# (web, workers, manage.py, tests): shared_task binds to it.
from smartcache.celery import app as celery_app

__all__ = ["SummariesConfig", "celery_app"]

# Lets admin.ModelAdmin[Job] and friends be subscripted at run time (typing).
# Here, not in the settings, which beat and Flower read without the admin.
django_stubs_ext.monkeypatch()


class SummariesConfig(AppConfig):
    name = "summaries"
    verbose_name = "Summaries"
    default_auto_field = "django.db.models.BigAutoField"
