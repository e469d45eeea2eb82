"""Prometheus (``/metrics``): the shared counters, queue depths and worker
heartbeats rendered at scrape time, so one scrape of any API process sees
every API and worker process (the counters are Valkey's, observability/counters.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder

from summaries.core.lanes import JOB_LANES
from summaries.infra import cache, queues, runtime
from summaries.observability import counters, heartbeats


class ValkeyCollector:
    """Renders the shared counters, queue depths and heartbeats at scrape time."""

    def collect(self) -> Iterator[Metric]:
        counters.flush()
        client = cache.client()
        pipe = client.pipeline(transaction=False)
        for name in counters.LABELLED:
            pipe.hgetall(f"metrics:c:{name}")
        pipe.hgetall(f"metrics:h:{counters.PROCESSING}")
        pipe.hgetall(f"metrics:c:{counters.COST_SPENT}")
        pipe.hgetall(f"metrics:c:{counters.COST_SAVED}")
        *labelled, histogram, spent, saved = pipe.execute()
        values = dict(zip(counters.LABELLED, labelled, strict=True))
        for name, (doc, labels) in counters.LABELLED.items():
            family = CounterMetricFamily(f"smartcache_{name}", doc, labels=labels)
            for field, value in sorted(values[name].items()):
                family.add_metric(json.loads(field), float(value))
            yield family
        yield _money("smartcache_ai_cost_spent", "USD the AI calls cost (each job's calls at "
                     "AI_PRICE_INPUT_PER_MTOK / AI_PRICE_OUTPUT_PER_MTOK, less the batch "
                     "discount through the provider's batch API).", ("provider", "model"), spent)
        yield _money("smartcache_ai_cost_saved", "USD saved, by cause: cache (a hit: what its "
                     "summary cost when made), dedup (a join: what the joined job cost), near "
                     "(a near-duplicate's shared summary), batch (the provider batch API's "
                     "discount).", ("by",), saved)
        yield _histogram(histogram)
        depth = GaugeMetricFamily("smartcache_queue_depth",
                                  "Messages waiting in each queue (lane), not yet taken.",
                                  labels=("queue",))
        for lane in JOB_LANES:
            depth.add_metric([lane], queues.depth(lane))
        yield depth
        yield GaugeMetricFamily("smartcache_workers_online",
                                "Worker processes whose heartbeat is fresh.",
                                value=heartbeats.workers_online())


def _money(name: str, doc: str, labels: tuple[str, ...], fields: dict[str, str]) -> Metric:
    """A money counter (micro-dollars in Valkey) in USD."""
    family = CounterMetricFamily(name, doc, labels=labels)
    for values, amount in sorted(counters.usd(fields).items()):
        family.add_metric(list(values), amount)
    return family


def _histogram(fields: dict[str, str]) -> Metric:
    family = HistogramMetricFamily(f"smartcache_{counters.PROCESSING}", counters.PROCESSING_HELP,
                                   labels=("stage",))
    per_stage: dict[str, dict[str, float]] = {}
    for field, value in fields.items():
        stage, part = json.loads(field)
        per_stage.setdefault(stage, {})[part] = float(value)
    for stage, parts in sorted(per_stage.items()):
        running, buckets = 0.0, []
        for bound in counters.BUCKETS:  # stored per bucket; Prometheus wants them cumulative
            le = counters.le(bound)
            running += parts.get(le, 0.0)
            buckets.append((le, running))
        family.add_metric([stage], buckets, sum_value=parts.get("sum", 0.0))
    return family


def _build_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ValkeyCollector())
    return registry


_REGISTRY = runtime.slot("prometheus-registry", _build_registry)


def exposition(accept: str | None) -> tuple[bytes, str]:
    """The metrics in the format ``accept`` asks for (text or OpenMetrics),
    and its content type. Raises redis.RedisError when Valkey is down."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(_REGISTRY.get()), content_type
