"""Prometheus at /metrics: the shared counters of every API and worker
process, queue depth, workers online; the alert rules and dashboard in deploy/."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import yaml
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from summaries.models import Job
from summaries.selectors.capacity import percentile
from tests.helpers.api import Api
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.polling import wait_for
from tests.helpers.processes import WebServer
from tests.helpers.texts import unique_text

pytestmark = pytest.mark.django_db(transaction=True)

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(base_url: str, **headers: str) -> Samples:
    """Every sample of /metrics, parsed by prometheus_client's own parser."""
    response = requests.get(f"{base_url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample ``name`` with exactly ``labels`` (0 when absent)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= got)


def test_counters_and_savings_move_with_submits(api: Api, gemini: FakeGemini) -> None:
    text = unique_text("metrics")
    gemini.delay_s = 1.0  # the job is still running when the same text comes again
    first = api.submit(text)
    joined = api.submit(text)
    assert (first.headers["X-Cache"], joined.headers["X-Cache"]) == ("MISS", "JOINED")
    assert api.wait(first.json()["job_id"])["status"] == "completed"
    gemini.delay_s = 0.0
    assert api.submit(text).headers["X-Cache"] == "HIT"
    assert api.submit("Too short.").status_code == 400

    def settled() -> Samples | None:
        samples = scrape(api.base_url)
        done = value(samples, "smartcache_jobs_finished_total", status="completed",
                     error_code="") >= 1
        return samples if done else None

    wait_for(settled, 10, "the worker's counts in Valkey")
    samples = scrape(api.base_url)
    for outcome in ("miss", "joined", "hit", "rejected"):
        assert value(samples, "smartcache_submissions_total", outcome=outcome) == 1, outcome
    assert value(samples, "smartcache_ai_calls_saved_total", by="cache") == 1
    assert value(samples, "smartcache_ai_calls_saved_total", by="dedup") == 1
    saved_input = value(samples, "smartcache_ai_tokens_saved_total", by="cache",
                        token_type="input")
    assert saved_input > len(text) / 4
    # At the worker's prices (the model's list price): tests/test_costs.py
    # checks the amounts.
    assert value(samples, "smartcache_ai_cost_saved_total", by="cache") > 0
    assert total(samples, "smartcache_gen_ai_client_calls_total") >= 1
    assert total(samples, "smartcache_gen_ai_client_token_usage_total", token_type="input") > 0
    assert total(samples, "smartcache_gen_ai_client_token_usage_total", token_type="output") > 0
    assert value(samples, "smartcache_processing_seconds_count", stage="total") >= 1
    assert value(samples, "smartcache_processing_seconds_bucket", stage="total", le="+Inf") \
        == value(samples, "smartcache_processing_seconds_count", stage="total")
    assert value(samples, "smartcache_http_requests_total", view="submit", method="POST",
                 status="202") == 2
    assert value(samples, "smartcache_http_requests_total", view="submit", method="POST",
                 status="400") == 1
    assert not any(labels and ("view", "metrics") in labels for _, labels in samples)
    assert value(samples, "smartcache_workers_online") >= 1


def test_totals_add_up_across_two_api_processes(api: Api,
                                                worker_env: dict[str, str]) -> None:
    other = WebServer(worker_env, workers=2)
    try:
        other.start()
        second = Api(other.url)
        texts = [unique_text(f"across{i}") for i in range(2)]
        for client, text in ((api, texts[0]), (second, texts[1])):
            assert client.wait(client.submit(text).json()["job_id"])["status"] == "completed"
        for client in (api, second, second, api):  # hits, through both processes
            client.submit(texts[0])

        def both_agree() -> bool:
            scrapes = [scrape(api.base_url), scrape(other.url)]
            return all(value(s, "smartcache_submissions_total", outcome="miss") == 2
                       and value(s, "smartcache_submissions_total", outcome="hit") == 4
                       for s in scrapes)

        wait_for(both_agree, 10, "both API processes' counts in every scrape")
    finally:
        other.stop()


def test_queue_depth_shows_waiting_jobs(worker_env: dict[str, str], settings: Any) -> None:
    # An API on a Valkey database no worker reads: its job waits in the queue.
    own = re.search(r"/(\d+)$", settings.VALKEY_URL)
    other = 8 if own and own.group(1) == "9" else 9  # not the session's own database
    url = re.sub(r"/\d*$", "", settings.VALKEY_URL) + f"/{other}"
    web = WebServer({**worker_env, "VALKEY_URL": url}, workers=1)
    try:
        web.start()
        answer = Api(web.url).submit(unique_text("queued"))
        assert answer.status_code == 202
        samples = scrape(web.url)
        assert value(samples, "smartcache_queue_depth", queue="celery") == 1
        assert value(samples, "smartcache_queue_depth", queue="bulk") == 0
        assert value(samples, "smartcache_workers_online") == 0
    finally:
        web.stop()
        Job.objects.filter(status=Job.Status.PENDING).delete()
        redis.Redis.from_url(url).flushdb()


def test_metrics_need_the_operator_token_when_one_is_set(client: Client,
                                                         settings: Any) -> None:
    assert client.get("/metrics").status_code == 200
    settings.JOBS_API_TOKEN = "s3cret"
    refused = client.get("/metrics")
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    allowed = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret")
    assert allowed.status_code == 200
    assert b"smartcache_workers_online" in allowed.content


def test_openmetrics_is_served_when_asked_for(client: Client) -> None:
    response = client.get("/metrics", HTTP_ACCEPT="application/openmetrics-text")
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.rstrip().endswith(b"# EOF")


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exposed_names(client: Client) -> set[str]:
    """Every series name /metrics declares, also those with no sample yet."""
    text = client.get("/metrics").content.decode()
    return {family.name + suffix for family in text_string_to_metric_families(text)
            for suffix in SUFFIXES[family.type]}


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression reads (label names, functions and
    keywords are followed by "(", "=" or sit inside braces or by/without)."""
    without_labels = re.sub(r"\{[^}]*\}", "", expression)
    without_groups = re.sub(r"\b(by|without)\s*\([^)]*\)", "", without_labels)
    names = re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*(?![a-zA-Z0-9_:]*\s*\()", without_groups)
    return {name for name in names if name.startswith("smartcache_")}


def test_alert_rules_parse_and_read_exposed_metrics(client: Client) -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    names = {rule["alert"] for rule in alerts}
    assert {"SmartCacheNoWorkerOnline", "SmartCacheFailureRatioHigh",
            "SmartCacheQueueGrowing"} <= names
    exposed = exposed_names(client)
    for rule in alerts:
        used = metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= exposed, (rule["alert"], used - exposed)


def test_dashboard_parses_and_reads_exposed_metrics(client: Client) -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "smartcache.json").read_text())
    exprs = list(_exprs(dashboard["panels"]))
    assert len(exprs) >= 6
    exposed = exposed_names(client)
    for expr in exprs:
        assert metric_names(expr) <= exposed, expr


def _exprs(panels: Iterable[dict[str, Any]]) -> Iterable[str]:
    for panel in panels:
        for target in panel.get("targets", []):
            yield target["expr"]
        yield from _exprs(panel.get("panels", []))


def test_analytics_show_savings_and_percentiles(api: Api) -> None:
    text = unique_text("analytics")
    assert api.wait(api.submit(text).json()["job_id"])["status"] == "completed"
    assert api.submit(text).headers["X-Cache"] == "HIT"
    stats = api.analytics()
    assert stats["hit_ratio"] == 0.5
    assert stats["ai_calls_saved"] == 1
    assert stats["ai_tokens_saved"] > len(text) / 4
    # The hit saved what the job cost (the worker's model at its list price).
    assert stats["ai_cost_saved"] == stats["ai_saved"]["cache"]["usd"] > 0
    assert 0 < stats["p50_processing_time_ms"] <= stats["p95_processing_time_ms"]
    assert stats["capacity"]["arrival_rate_per_s"] > 0
    assert stats["capacity"]["recommended_threads"] >= 1


def test_capacity_follows_littles_law(client: Client, settings: Any) -> None:
    settings.CELERY_WORKER_CONCURRENCY = 8
    now = timezone.now()
    # 900 jobs in the 15-minute window: λ = 1 job/s; each took 14 s: W = 14 s.
    Job.objects.bulk_create(
        Job(kind="text", input_hash=f"{i:064d}", input_text="t", status="completed",
            duration_ms=14_000, created_at=now - timedelta(seconds=i), completed_at=now)
        for i in range(900))
    stats = client.get("/api/analytics").json()
    capacity = stats["capacity"]
    assert capacity["arrival_rate_per_s"] == 1.0
    assert capacity["mean_processing_time_s"] == 14.0
    assert capacity["jobs_in_service"] == 14.0  # L = λW
    assert capacity["recommended_threads"] == 20  # 14 / 0.7
    assert capacity["recommended_processes"] == 3  # 20 threads, 8 a process
    assert stats["p50_processing_time_ms"] == stats["p95_processing_time_ms"] == 14_000


def test_percentiles_are_nearest_rank() -> None:
    ordered = list(range(1, 101))
    assert (percentile(ordered, 50), percentile(ordered, 95)) == (50, 95)
    assert percentile([], 95) == 0
    assert percentile([7], 50) == 7


@pytest.mark.parametrize("name", ["google_genai.models", "httpx", "httpx2", "httpcore2"])
def test_sdk_chatter_stays_out_of_the_log(name: str) -> None:
    assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING
