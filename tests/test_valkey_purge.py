"""Purging an input asked in many languages, through the API: every variant's
entry and job row, more of them than one transaction locks at once."""

from __future__ import annotations

import pytest
import redis
from django.test import Client
from django.utils import timezone

from summaries.core.inputs import TEXT, NormalizedInput, normalize_text
from summaries.infra import cache
from summaries.models import Job
from tests.helpers.texts import unique_text

pytestmark = pytest.mark.django_db(transaction=True)


def cached_variant(text: str, language: str | None, namespace: str) -> str:
    """A completed job of ``text`` asked in ``language``, and its cache entry."""
    key = NormalizedInput(TEXT, normalize_text(text), language).cache_key(namespace)
    job = Job.objects.create(kind=TEXT, input_hash=key, input_text=normalize_text(text),
                             status=Job.Status.COMPLETED, stage="done", summary="A summary.",
                             tags=["variant"], provider=namespace, language=language or "",
                             completed_at=timezone.now())
    cache.set_summary(key, {"job_id": str(job.id), "summary": job.summary, "tags": job.tags},
                      ttl=3600)
    return key


def test_purging_an_input_purges_each_of_its_many_languages(
        valkey: redis.Redis, namespace: str) -> None:
    text = unique_text("many languages")
    # Regions as UN M.49 codes: as many distinct tags as wanted, more than a
    # purge locks in one transaction (services/purge.py: PURGE_LOCKS_PER_TRANSACTION).
    languages = [None, *(f"de-{n:03d}" for n in range(1, 41))]
    keys = {cached_variant(text, language, namespace) for language in languages}
    other = cached_variant(unique_text("not purged"), "de-001", namespace)

    response = Client().post("/api/cache/purge", {"input": text},
                             content_type="application/json")

    assert response.status_code == 200
    assert response.json()["deleted"] is True
    assert response.json()["jobs_purged"] == len(languages)
    assert not any(valkey.exists(cache.summary_name(key)) for key in keys)
    assert Job.objects.filter(input_hash__in=keys, purged_at__isnull=True).count() == 0
    assert valkey.exists(cache.summary_name(other))  # another input's variant stays
