"""What each job's AI calls cost, and the money spent and saved.

A job's row adds up its tokens and cost attempt by attempt (``charged``, in
the UPDATE that ends the attempt; ``record`` counts the same money in the
shared counters once that UPDATE took): a re-asked broken answer, a failed
attempt's answered call and a retried job's calls are all paid. A job
SIGKILLed mid-call never read its answer: that call is not counted (the
provider may bill it). Tokens are the provider's reported counts, estimated
only when it reports none (``Job.tokens_estimated``); a batched call's are
shared out over its items by the length of their texts
(services/batching.py). Prices: core/pricing.py (``AI_PRICE_INPUT_PER_MTOK``,
``AI_PRICE_OUTPUT_PER_MTOK``, ``AI_BATCH_DISCOUNT`` through the provider's
batch API).

What was saved, by cause (observability/counters.py ``SAVERS``): a cache
hit saves what its summary cost when it was made (``made``, kept in the
cache entry); a join saves what the joined job cost, counted when it
completes; a near-duplicate what the summary it shares cost (``made_by``:
its maker's row, at submit and in the worker alike); the batch
discount the part of the list price it took off. A provider batch's answer
for a job that went live meanwhile (an interactive submit joined it, or its
deadline came) is billed too: counted as spent (``record_unused``, on the
``ProviderBatch`` row's ``unused_cost``), and it saves nothing; so is one
that broke the contract (on the job's row, before it goes live).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings

from summaries.core.pricing import Cost, Prices, cost_of, prices_for
from summaries.core.tokens import Usage
from summaries.models import Job
from summaries.observability import counters
from summaries.services.config import provider_model

MILLION = Decimal(1_000_000)


def prices() -> Prices:
    """This deployment's prices (read at each use: settings may change in tests)."""
    provider, model = provider_model()
    return prices_for(provider, model, input_per_mtok=settings.AI_PRICE_INPUT_PER_MTOK,
                      output_per_mtok=settings.AI_PRICE_OUTPUT_PER_MTOK,
                      batch_discount=settings.AI_BATCH_DISCOUNT)


def priced(usage: Usage, *, via_batch_api: bool = False) -> Cost:
    """``usage`` at this deployment's prices."""
    return cost_of(usage, prices(), via_batch_api=via_batch_api)


def charged(job: Job, usage: Usage | None, *, via_batch_api: bool = False
            ) -> tuple[dict[str, Any], Cost]:
    """The row values that add ``usage`` (this attempt's AI calls) to the
    job's tokens and cost, and that cost; nothing when no call answered.
    ``via_batch_api``: the calls went through the provider's batch API (the
    batch lane's hook), at the discount."""
    if usage is None:
        return {}, Cost(0)
    cost = priced(usage, via_batch_api=via_batch_api)
    return {
        "input_tokens": job.input_tokens + usage.input_tokens,
        "output_tokens": job.output_tokens + usage.output_tokens,
        "tokens_estimated": job.tokens_estimated or usage.estimated,
        "cost": Decimal(job.cost) + cost.usd,
    }, cost


def record(cost: Cost) -> None:
    """Count ``cost`` as spent (and the batch discount as saved), once the
    row has taken it."""
    provider, model = provider_model()
    counters.spent(provider, model, cost.micros)
    if cost.batch_saved_micros:
        counters.saved(counters.BATCH, counters.Made(cost.batch_saved_micros, 0, 0), calls=0)


def record_unused(cost: Cost) -> None:
    """Count ``cost`` as spent on an answer nobody used (a provider batch's
    answer for a job that had gone live meanwhile, or one that broke the
    contract): spent, and no discount saved, since a live call pays for the
    job again."""
    provider, model = provider_model()
    counters.spent(provider, model, cost.micros)


def made(job: Job) -> counters.Made:
    """What the job's summary cost (all its attempts), for its cache entry:
    a hit on it saves that much."""
    return counters.Made(int(Decimal(job.cost) * MILLION), job.input_tokens, job.output_tokens)


def made_by(job_id: str) -> counters.Made | None:
    """What the summary of job ``job_id`` cost when that job made it (its
    row), for a near-duplicate's answer that shares it; None when the row
    is gone (a purge, the retention sweep): then the saving is estimated."""
    row = Job.objects.filter(id=job_id).values_list("cost", "input_tokens",
                                                    "output_tokens").first()
    if row is None:
        return None
    cost, input_tokens, output_tokens = row
    return counters.Made(int(Decimal(cost) * MILLION), input_tokens, output_tokens)
