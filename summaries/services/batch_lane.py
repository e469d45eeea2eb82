"""The batch lane: work that can wait goes to the provider's batch API, at
half the live price (issue 21, part 2). Not services/batching.py, which packs
short texts into one *live* call inside a worker process.

The story of an item, end to end:

1. A submit (or batch item) with ``"priority": "batch"`` or a ``deadline``
   that misses the cache and joins no job (dedup applies first, as for any
   submit) creates its job as **processing, stage batched**, with its
   ``deadline`` and a lease that ends then (submit._create_job; no task is
   sent). Processing: the one-active-job constraint and the in-flight marker
   make every later submit of the input join it; the lease is the safety
   net: if the lane never finishes it, the reconciler runs it live then.
   A text only: a URL must be fetched first, so it runs live on its lane.
2. Beat's batch tick (``tick``, every BATCH_LANE_TICK_SECONDS) takes a Valkey
   lease (one poller at a time, renewed between steps) and:
   - polls every open provider batch (``ProviderBatch``): a succeeded one
     completes each of its jobs from its result (jobs.job_complete_from_batch:
     contract check, row, cache, marker, events, webhooks, exactly as a live
     attempt) and sends the items it did not answer usably to a live call; a
     failed, expired or cancelled one sends all its unfinished items live; a
     running one sends live the items whose deadline is near
     (BATCH_LANE_LIVE_MARGIN), and is cancelled once none is left in it;
   - sends due groups: the waiting jobs, oldest first, up to
     BATCH_LANE_MAX_ITEMS, once the oldest has waited BATCH_LANE_MAX_WAIT
     seconds or the group is full. The ``ProviderBatch`` row and each job's
     ``provider_batch`` are committed BEFORE the provider is asked, under a
     stable display name; a poller that dies between the two leaves a
     ``creating`` row, which the next tick looks up at the provider by that
     name (adopting the batch it finds) before it creates it again.
   A submit that joins a waiting job with an earlier deadline of its own
   moves the job's deadline to it (``tighten``); one that cannot wait at
   all takes it out of the lane (``promote``).
3. Every change of a job is a conditional UPDATE on its state (processing,
   stage batched, that provider batch): a tick run twice over the same
   results, or a job promoted meanwhile, never completes a job twice.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from redis.exceptions import RedisError

from summaries.core.errors import JobError
from summaries.core.inputs import TEXT, NormalizedInput
from summaries.core.pricing import Cost
from summaries.core.tokens import Usage, estimated, reported
from summaries.infra import cache, runtime
from summaries.infra.dispatch import enqueue
from summaries.models import Job, ProviderBatch
from summaries.providers import BatchApi, BatchItem, batch_api_of
from summaries.providers.batch_api import ItemResult, RemoteState
from summaries.services import costs, events, jobs
from summaries.services.config import cache_namespace, summarizer

logger = logging.getLogger(__name__)

LEASE_KEY = "batchlane:poller"  # one key, with a TTL: bounded
# Open provider batches polled per tick (oldest first); the rest wait a tick.
POLL_PER_TICK = 100
# Groups sent per tick at most (each up to BATCH_LANE_MAX_ITEMS jobs).
GROUPS_PER_TICK = 20

# Renew (ARGV[2] seconds) or end (ARGV[2] = 0) the lease, if ARGV[1] holds it.
_LEASE_IF_HOLDER = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then redis.call('del', KEYS[1]) else redis.call('expire', KEYS[1], ARGV[2]) end
return 1
"""

_WAITING = {"status": Job.Status.PROCESSING, "stage": Job.Stage.BATCHED}


def _build_api() -> BatchApi | None:
    return batch_api_of(summarizer(), max_response_bytes=settings.BATCH_LANE_MAX_RESPONSE_BYTES)


# This process's batch API (its own SDK client): built once, reset after a fork.
_API = runtime.slot("batch-api", _build_api)


# --- the submit side -------------------------------------------------------------------


def available() -> bool:
    """Whether batch-lane submits go to a batch API (from the settings alone:
    the web never builds the summariser). The offline summariser has none."""
    return bool(settings.BATCH_LANE) and settings.SUMMARIZER in ("gemini", "openai")


def holds(item: NormalizedInput, deadline: datetime | None) -> bool:
    """Whether a new job for ``item`` waits in the batch lane."""
    return deadline is not None and item.kind == TEXT and available()


def waiting_fields(deadline: datetime) -> dict[str, Any]:
    """A new batch-lane job's state (see the module docstring, step 1)."""
    return {"status": Job.Status.PROCESSING, "stage": Job.Stage.BATCHED,
            "deadline": deadline, "lease_expires_at": deadline}


def promote(job: Job) -> bool:
    """An interactive submit joined a job waiting in the batch lane: run it
    live now (its batch result, if one comes, then finds it taken). Whether
    this call moved it."""
    return _send_live([job], reason="an interactive submit joined it") > 0


def tighten(job: Job, deadline: datetime) -> bool:
    """A submit that can wait until ``deadline`` joined ``job``, waiting in
    the lane until later: the job is now due by the earlier of the two (its
    lease too), so the joiner is not made to wait past its own deadline (a
    running provider batch sends it live near it: ``_late``). Conditional on
    the job still waiting; whether it moved it."""
    return bool(Job.objects.filter(id=job.id, **_WAITING, deadline__gt=deadline).update(
        deadline=deadline, lease_expires_at=deadline, updated_at=timezone.now()))


# --- the tick --------------------------------------------------------------------------


@dataclass
class TickReport:
    polled: int = 0
    sent: int = 0  # jobs sent in new provider batches
    completed: int = 0
    live: int = 0  # jobs sent to live calls
    skipped: bool = False  # another poller holds the lease


def tick() -> TickReport:
    """One run of beat's batch tick (module docstring, step 2)."""
    report = TickReport()
    api = _API.get()
    if api is None:  # the summariser changed to one without a batch API
        report.live = _send_live(list(Job.objects.filter(**_WAITING)[:1000]),
                                 reason="the summariser has no batch API")
        return report
    holder = uuid.uuid4().hex
    if not cache.client().set(LEASE_KEY, holder, nx=True, ex=settings.BATCH_LANE_LEASE_SECONDS):
        report.skipped = True  # another poller got there first
        return report
    try:
        open_batches = ProviderBatch.objects.filter(state__in=ProviderBatch.OPEN).order_by(
            "created_at")[:POLL_PER_TICK]
        for batch in open_batches:
            if not _renew(holder):
                return report
            _poll(api, batch, report)
        report.live += _send_live(_late(Job.objects.filter(**_WAITING,
                                                           provider_batch__isnull=True)),
                                  reason="its deadline is near")
        for _ in range(GROUPS_PER_TICK):
            group = _due_group()
            if not group or not _renew(holder):
                break
            _send_group(api, group, report)
    finally:
        try:
            cache.client().eval(_LEASE_IF_HOLDER, 1, LEASE_KEY, holder, "0")
        except RedisError as exc:  # it expires
            logger.warning("batch lane: could not release the poller's lease (%s)", exc)
    return report


def _renew(holder: str) -> bool:
    held = cache.client().eval(_LEASE_IF_HOLDER, 1, LEASE_KEY, holder,
                               str(settings.BATCH_LANE_LEASE_SECONDS))
    if not held:
        logger.warning("batch lane: the poller's lease was lost; stopping this tick")
    return bool(held)


def _due_group() -> list[Job]:
    """The next group to send, oldest first: full (BATCH_LANE_MAX_ITEMS jobs,
    or BATCH_LANE_MAX_CHARS characters of text), or its oldest job has
    waited BATCH_LANE_MAX_WAIT seconds; else nothing."""
    waiting = Job.objects.filter(**_WAITING, provider_batch__isnull=True).order_by("created_at")
    group: list[Job] = []
    chars, full = 0, False
    for job in waiting.only("id", "input_text", "language", "deadline", "created_at",
                            "queue")[: settings.BATCH_LANE_MAX_ITEMS]:
        chars += len(job.input_text)
        if group and chars > settings.BATCH_LANE_MAX_CHARS:
            full = True  # one request may carry only so much (Gemini: 20 MB inline)
            break
        group.append(job)
    if not group:
        return []
    old_enough = group[0].created_at <= timezone.now() - timedelta(
        seconds=settings.BATCH_LANE_MAX_WAIT)
    full = full or len(group) >= settings.BATCH_LANE_MAX_ITEMS
    return group if old_enough or full else []


def _send_group(api: BatchApi, group: list[Job], report: TickReport) -> None:
    """Record the provider batch and its jobs, then create it at the provider."""
    batch_id = uuid.uuid4()
    with transaction.atomic():
        batch = ProviderBatch.objects.create(
            id=batch_id, api=api.name, provider=cache_namespace(),
            display_name=f"smartcache-{batch_id}",
            deadline=min((job.deadline for job in group if job.deadline), default=None))
        batch.items = Job.objects.filter(
            id__in=[job.id for job in group], **_WAITING, provider_batch__isnull=True,
        ).update(provider_batch=batch, updated_at=timezone.now())
        batch.save(update_fields=["items"])
    report.sent += batch.items
    _create_remote(api, batch, report, look_first=False)


def _create_remote(api: BatchApi, batch: ProviderBatch, report: TickReport, *,
                   look_first: bool) -> None:
    """Create ``batch`` (state creating) at the provider; ``look_first``: it
    may exist already (a poller died after asking): adopt it if found."""
    waiting = list(Job.objects.filter(provider_batch=batch, **_WAITING).only(
        "id", "input_text", "language", "style", "length", "queue", "deadline"))
    if not waiting:
        _finish(batch, ProviderBatch.State.ABANDONED, "no job left waiting in it")
        return
    try:
        remote_id = api.find(display_name=batch.display_name) if look_first else None
        if remote_id is None:
            remote_id = api.create(display_name=batch.display_name, items=[
                BatchItem(str(job.id), job.input_text, job.language or None, job.form)
                for job in waiting])
    except JobError as exc:
        if exc.transient:  # the next tick asks again (looking first)
            ProviderBatch.objects.filter(id=batch.id).update(error=exc.message,
                                                             polled_at=timezone.now())
            return
        report.live += _send_live(waiting, reason=f"the batch API refused it: {exc.message}")
        _finish(batch, ProviderBatch.State.FAILED, exc.message)
        return
    ProviderBatch.objects.filter(id=batch.id, state=ProviderBatch.State.CREATING).update(
        remote_id=remote_id, state=ProviderBatch.State.RUNNING, submitted_at=timezone.now(),
        error="")
    for job in waiting:  # their status shows the provider's batch id now
        events.publish(str(job.id), Job.Status.PROCESSING, Job.Stage.BATCHED,
                       attempts=0, provider_batch_id=remote_id)
    logger.info("batch lane: %d job(s) sent in %s batch %s", len(waiting), api.name, remote_id)


def _poll(api: BatchApi, batch: ProviderBatch, report: TickReport) -> None:
    if batch.state == ProviderBatch.State.CREATING:
        _create_remote(api, batch, report, look_first=True)
        return
    report.polled += 1
    waiting = list(Job.objects.filter(provider_batch=batch, **_WAITING))
    try:
        remote = api.get(batch.remote_id, {str(job.id): job.form for job in waiting})
    except JobError as exc:
        ProviderBatch.objects.filter(id=batch.id).update(error=exc.message,
                                                         polled_at=timezone.now())
        report.live += _send_live(_late(waiting), reason="its deadline is near", batch=batch)
        return
    ProviderBatch.objects.filter(id=batch.id).update(remote_state=remote.provider_state,
                                                     polled_at=timezone.now())
    if remote.state == RemoteState.RUNNING:
        late = _late(waiting)
        report.live += _send_live(late, reason="its deadline is near", batch=batch)
        if waiting and len(late) == len(waiting):
            try:
                api.cancel(batch.remote_id)
            except JobError as exc:
                logger.warning("batch lane: could not cancel %s (%s)", batch.remote_id, exc)
            _finish(batch, ProviderBatch.State.ABANDONED, "its jobs' deadline came first")
        return
    # Finished: complete what it answered (an expired OpenAI batch keeps the
    # work it did), send the rest live.
    live, paid = [], {}
    for job in waiting:
        item = remote.results.get(str(job.id))
        if item is None or item.result is None:
            live.append(job)
            # An answer that broke the contract was billed all the same.
            if item is not None and (usage := reported(item.input_tokens, item.output_tokens)):
                paid[str(job.id)] = usage
        elif jobs.job_complete_from_batch(job=job, result=item.result,
                                          provider_batch_id=str(batch.id),
                                          input_tokens=item.input_tokens,
                                          output_tokens=item.output_tokens):
            report.completed += 1
            ProviderBatch.objects.filter(id=batch.id).update(
                completed_items=F("completed_items") + 1)
    report.live += _send_live(live, reason=f"no usable answer in its provider batch "
                                           f"({remote.provider_state})", batch=batch, paid=paid)
    state = {RemoteState.SUCCEEDED: ProviderBatch.State.SUCCEEDED,
             RemoteState.EXPIRED: ProviderBatch.State.EXPIRED}.get(remote.state,
                                                                   ProviderBatch.State.FAILED)
    unused = _unused_cost(batch, remote.results, answered={str(job.id) for job in waiting})
    if _finish(batch, state, "" if remote.state == RemoteState.SUCCEEDED
               else f"the provider's batch {remote.provider_state}", unused=unused):
        costs.record_unused(unused)  # once: only the poll that finished the row counts it


def _unused_cost(batch: ProviderBatch, results: dict[str, ItemResult], *,
                 answered: set[str]) -> Cost:
    """What the provider billed for the answers of ``batch``'s jobs that had
    left it meanwhile (an interactive join or a near deadline sent them
    live): their reported tokens (estimated for an answer without them) at
    the batch price. Paid, and never used."""
    gone = [job_id for job_id in results if job_id not in answered]
    if not gone:
        return Cost(0)
    texts = dict(Job.objects.filter(provider_batch=batch, id__in=gone).values_list(
        "id", "input_text"))
    micros = 0
    for job_id, text in texts.items():
        item = results[str(job_id)]
        usage = reported(item.input_tokens, item.output_tokens) or (
            estimated(text, item.result.summary, item.result.tags) if item.result else None)
        if usage is not None:
            micros += costs.priced(usage, via_batch_api=True).micros
    return Cost(micros)

def _late(waiting: Sequence[Job] | Any) -> list[Job]:
    """The jobs of ``waiting`` whose deadline is too near to wait longer."""
    cutoff = timezone.now() + timedelta(seconds=settings.BATCH_LANE_LIVE_MARGIN)
    return [job for job in waiting if job.deadline is None or job.deadline <= cutoff]


def _finish(batch: ProviderBatch, state: str, error: str, *, unused: Cost | None = None) -> bool:
    """End ``batch`` in ``state`` if it is still open; whether this call did."""
    return bool(ProviderBatch.objects.filter(id=batch.id, state__in=ProviderBatch.OPEN).update(
        state=state, error=error, finished_at=timezone.now(),
        **({"unused_cost": unused.usd} if unused is not None else {})))


def _send_live(waiting: Sequence[Job], *, reason: str, batch: ProviderBatch | None = None,
               paid: dict[str, Usage] | None = None) -> int:
    """Send each job still waiting in the lane to a live call on its lane
    (conditional: one taken meanwhile is left alone); how many were sent.
    ``paid``: the tokens of a provider batch's unusable answer for a job (it
    broke the contract), added to its cost in the same UPDATE (so a poll run
    twice charges it once): spent, at the batch price, nothing saved."""
    sent = 0
    now = timezone.now()
    for job in waiting:
        charge, cost = costs.charged(job, (paid or {}).get(str(job.id)), via_batch_api=True)
        moved = Job.objects.filter(id=job.id, **_WAITING).update(
            **charge, status=Job.Status.PENDING, stage=Job.Stage.QUEUED, lease_expires_at=None,
            updated_at=now)
        if not moved:
            continue
        costs.record_unused(cost)
        sent += 1
        # After commit: a caller inside a transaction (a submit) sends once it is seen.
        transaction.on_commit(functools.partial(enqueue, str(job.id), queue=job.queue))
        events.publish(str(job.id), Job.Status.PENDING, Job.Stage.QUEUED, attempts=0,
                       last_error=f"sent to a live call: {reason}")
    if sent:
        logger.info("batch lane: %d job(s) sent to live calls: %s", sent, reason)
        if batch is not None:
            ProviderBatch.objects.filter(id=batch.id).update(
                fallback_items=F("fallback_items") + sent)
    return sent

