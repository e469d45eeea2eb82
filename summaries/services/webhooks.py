"""Webhooks: POST a finished job's status body to the callback URLs of its submits.

The story, end to end:

- A submit with ``callback_url`` subscribes (:func:`subscribe`): one
  WebhookDelivery row, ``waiting`` while its job runs, ``pending`` at once
  when the answer is already finished (a cache hit, a known failure). The
  job row is flagged ``has_callbacks``.
- The worker that finishes a flagged job calls :func:`job_finished` (one
  publish, nothing else): on the webhooks lane, :func:`release` turns the
  job's waiting deliveries pending and each is sent. A job that finished
  before its subscriber flagged it (a race of milliseconds: the worker had
  read the row already), or whose publish failed, is caught by
  :func:`sweep`, which the tick runs every SCHEDULE_TICK_SECONDS; so is a
  delivery whose message was lost or whose worker died mid-POST. While such
  a job is processing, one poller per job (:func:`watch_job`, a SET NX
  lease in Valkey) looks every second, however many submits join it.
- An attempt (:func:`attempt`) claims its delivery with a conditional
  UPDATE (pending and due → sending, attempts + 1), so a duplicate message
  does nothing. It checks the URL under the page fetcher's address policy
  again, connects to the address it checked (no second lookup) and POSTs;
  a redirect is not followed.
- What is sent: the job's status body as GET /api/status/<id> renders it
  (without its ``callbacks``), frozen at the first attempt so every retry
  sends the same bytes, signed as Standard Webhooks sign
  (https://www.standardwebhooks.com): ``webhook-id`` (the delivery id, the
  same on every attempt: the receiver's idempotency key),
  ``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64 HMAC-SHA256
  of "<id>.<timestamp>.<body>">``, signed anew at every attempt, once per
  secret while one is being rotated out). The key is the callback's own:
  derived from the secret and the callback URL's origin
  (webhook_sending.endpoint_secret), so a delivery captured at one receiver does not
  verify at another. For one more release the old headers come too:
  ``X-SmartCache-Signature: t=<unix>,v1=<hex>`` (HMAC-SHA256 with
  WEBHOOK_SECRET over ``"<t>.<body>"``, which signs neither the delivery id
  nor the receiver) and ``X-SmartCache-Delivery``; and always
  ``X-SmartCache-Event`` (``job.completed`` or ``job.failed``),
  ``X-SmartCache-Attempt`` and, for a watch's change, ``X-SmartCache-Watch``.
- Outcomes: 2xx delivered. A network error, a timeout (WEBHOOK_TIMEOUT for
  the whole attempt), 5xx, 408 or 429 is retried after
  WEBHOOK_BACKOFF_BASE * 2^(attempt-1) seconds (jittered, capped at
  WEBHOOK_BACKOFF_MAX, below the broker's visibility timeout), up to
  WEBHOOK_MAX_ATTEMPTS attempts in all. Any other 4xx, a 3xx, or a
  destination the policy refuses is final: the receiver said no, and the
  same bytes would get the same answer.
- A worker delivers on at most WEBHOOK_CONCURRENCY threads at once, at
  most half of them to one receiver (origin); a delivery beyond that steps
  aside for a second instead of taking a thread that summarises, or one
  that another receiver's deliveries need.
- One message per delivery, however long receivers keep the threads busy:
  each message carries the ``next_attempt_at`` it was sent for, and
  whatever sends a message (a step-aside, a retry, the sweep) first moves
  that clock with a conditional UPDATE on the value it read. A message whose
  value is no longer the row's (a duplicate: the sweep's resend of a
  message that was only late, a redelivery) ends when it would step aside,
  and the sweep never finds a stepping-aside delivery overdue.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Final

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from redis.exceptions import RedisError
from rest_framework.renderers import JSONRenderer

from summaries.core import canonical_urls
from summaries.core.errors import ErrorCode, JobError, RetryLater, backoff
from summaries.core.lanes import Lane
from summaries.infra import cache, dispatch, runtime
from summaries.infra.database import release_connection
from summaries.logcontext import job_context
from summaries.models import Job, WebhookDelivery
from summaries.representations.bodies import JobWebhookBody  # the API's one rendering
from summaries.services.callbacks import Callback
from summaries.services.webhook_sending import origin, post

logger = logging.getLogger(__name__)

Delivery = WebhookDelivery.Status
FINISHED: Final = (Job.Status.COMPLETED, Job.Status.FAILED)
# A countdown may fire a moment before the row says it is due (clocks).
DUE_SLACK: Final = timedelta(seconds=2)
# A pending delivery this overdue lost its message: the sweep sends it again.
LOST_AFTER: Final = timedelta(seconds=60)
AWAIT_POLLS: Final = 120
# The poller's lease on its job, renewed at every look (one a second): a
# poller whose message was lost gives way to the next join within this.
AWAIT_LEASE_SECONDS: Final = 10


class _Slots:
    """This worker's delivery threads: at most ``total`` at once, and at
    most half of them (at least one) to one receiver origin, so a receiver
    that never answers holds up only its own deliveries, not everyone's."""

    def __init__(self, total: int) -> None:
        self.total, self.per_origin = total, max(1, total // 2)
        self._lock = threading.Lock()
        self._taken: Counter[str] = Counter()

    def take(self, receiver: str) -> bool:
        with self._lock:
            if self._taken.total() >= self.total or self._taken[receiver] >= self.per_origin:
                return False
            self._taken[receiver] += 1
            return True

    def give(self, receiver: str) -> None:
        with self._lock:
            self._taken[receiver] -= 1
            if not self._taken[receiver]:
                del self._taken[receiver]


_SLOTS = runtime.slot("webhook-slots", lambda: _Slots(settings.WEBHOOK_CONCURRENCY))


class SendLater(RetryLater):
    """Try the delivery again after ``delay`` seconds, in a message sent for
    ``due`` (the ``next_attempt_at`` the row was just moved to)."""

    def __init__(self, error: JobError, *, delay: float, due: datetime) -> None:
        super().__init__(error, delay=delay)
        self.due = due.isoformat()


def subscribe(*, job_id: str, callback: Callback) -> WebhookDelivery | None:
    """Deliver job ``job_id``'s status to the callback once it is finished:
    at once if it is. None if the job row does not exist (a cache entry
    outliving its row)."""
    now = timezone.now()
    with transaction.atomic():
        status = Job.objects.filter(id=job_id).values_list("status", flat=True).first()
        if status is None:
            logger.warning("callback for job %s not registered: no such job", job_id)
            return None
        Job.objects.filter(id=job_id, has_callbacks=False).update(has_callbacks=True)
        finished = status in FINISHED
        delivery = WebhookDelivery.objects.create(
            job_id=job_id, watch_id=callback.watch_id, url=callback.url,
            status=Delivery.PENDING if finished else Delivery.WAITING,
            next_attempt_at=now if finished else None)
    if finished:
        send(str(delivery.id), due=now)
    elif status == Job.Status.PROCESSING:
        # Its worker read the row before the flag was set, and may finish
        # without releasing us: look again while it runs (the tick would too).
        watch_job(job_id=job_id)
    return delivery


def watch_job(*, job_id: str) -> None:
    """Have a processing job looked at every second until it is finished
    (:func:`await_release`), by one poller per job however many submits
    join it: the first takes the job's lease (SET NX, holding the poller's
    id), the others leave it to that poller. Without Valkey, the tick looks
    instead."""
    poller = uuid.uuid4().hex
    try:
        if not cache.client().set(_poller_key(job_id), poller, nx=True,
                                  ex=AWAIT_LEASE_SECONDS):
            return  # a poller watches this job already
    except RedisError as exc:
        logger.warning("job %s: callbacks left to the tick (Valkey: %s)", job_id, exc)
        return
    await_job(job_id=job_id, poller=poller)


def _poller_key(job_id: str) -> str:
    return f"callbacks:await:{job_id}"  # a job id of ours, with a TTL: bounded


# Renew (ARGV[2] seconds) or end (ARGV[2] = 0) the lease, if the poller
# ARGV[1] still holds it: 1 if it did.
_LEASE_IF_HOLDER = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then redis.call('del', KEYS[1]) else redis.call('expire', KEYS[1], ARGV[2]) end
return 1
"""


def await_job(*, job_id: str, poller: str, polls: int = 0) -> None:
    """The poller's next look at the job in a second (at most AWAIT_POLLS,
    then the tick). Only the holder of the job's lease calls this."""
    if polls >= AWAIT_POLLS:
        return
    try:
        dispatch.send(dispatch.AWAIT_JOB_CALLBACKS, job_id, str(polls + 1), poller,
                      queue=Lane.WEBHOOKS, countdown=1.0)
    except Exception:
        logger.warning("job %s: callbacks left to the tick", job_id, exc_info=True)


def subscribe_new(*, job: Job, callback: Callback) -> WebhookDelivery:
    """The delivery of a job being created (flagged has_callbacks in its
    INSERT, so the worker that finishes it releases the delivery at once);
    in the creating transaction."""
    return WebhookDelivery.objects.create(job=job, url=callback.url, watch_id=callback.watch_id,
                                          status=Delivery.WAITING)


def job_finished(*, job_id: str) -> None:
    """The worker finished a job flagged has_callbacks: have its deliveries
    sent, on the webhooks lane. Never raises: the sweep is the safety net."""
    try:
        dispatch.send(dispatch.RELEASE_CALLBACKS, job_id, queue=Lane.WEBHOOKS)
    except Exception:
        logger.warning("job %s: callbacks not released now; the tick will", job_id,
                       exc_info=True)


def await_release(*, job_id: str, polls: int, poller: str) -> list[str]:
    """One look of the job's poller: the deliveries it sent if the job is
    finished; else, while it is active and this poller still holds the
    job's lease (renewed), another look in a second. A poller that lost its
    lease (its message came late) stops: the lease's new holder looks."""
    released = release(job_id=job_id)
    going_on = (released is None and polls < AWAIT_POLLS
                and Job.objects.filter(id=job_id).exclude(status__in=FINISHED).exists())
    try:
        holds = cache.client().eval(_LEASE_IF_HOLDER, 1, _poller_key(job_id), poller,
                                    AWAIT_LEASE_SECONDS if going_on else 0)
    except RedisError as exc:  # the lease expires; the tick looks meanwhile
        logger.warning("job %s: callbacks left to the tick (Valkey: %s)", job_id, exc)
        return released or []
    if going_on and holds:
        await_job(job_id=job_id, poller=poller, polls=polls)
    return released or []


def release(*, job_id: str) -> list[str] | None:
    """Send the waiting deliveries of a finished job; the ids of those this
    call sent (of racing releasers and sweeps, one sends each). None if the
    job is not finished (or gone)."""
    if not Job.objects.filter(id=job_id, status__in=FINISHED).exists():
        return None
    return _send_moved(WebhookDelivery.objects.filter(job_id=job_id, status=Delivery.WAITING))


def sweep(*, limit: int = 500) -> list[str]:
    """Send what should be on its way and is not (the tick's part): waiting
    deliveries whose job finished, pending ones whose message was lost
    (overdue by LOST_AFTER), and sending ones whose worker died (lease over).
    Idempotent: each is sent by moving its clock to now first, so the next
    tick does not find it again (for LOST_AFTER), and a sweep racing
    another, or a release, sends it once. The ids sent."""
    now = timezone.now()
    finished = Q(status=Delivery.WAITING, job__status__in=FINISHED)
    lapsed = Q(status=Delivery.SENDING, lease_expires_at__lt=now)
    lost = Q(status=Delivery.PENDING, next_attempt_at__lt=now - LOST_AFTER)
    return _send_moved(WebhookDelivery.objects.filter(finished | lapsed | lost), limit=limit)


def _send_moved(rows: QuerySet[WebhookDelivery], *, limit: int = 500) -> list[str]:
    """Make each of ``rows`` pending and due now, by a conditional UPDATE on
    the status and ``next_attempt_at`` read, and send those this call moved."""
    now = timezone.now()
    sent = []
    found = rows.order_by("created_at").values_list("id", "status", "next_attempt_at")[:limit]
    for delivery_id, status, due in found:
        moved = WebhookDelivery.objects.filter(id=delivery_id, status=status,
                                               next_attempt_at=due).update(
            status=Delivery.PENDING, next_attempt_at=now, lease_expires_at=None, updated_at=now)
        if moved:
            send(str(delivery_id), due=now)
            sent.append(str(delivery_id))
    return sent


def send(delivery_id: str, *, due: datetime, countdown: float = 0) -> None:
    """Enqueue an attempt of the delivery, after the current transaction;
    ``due``: the row's ``next_attempt_at`` as the sender left it."""
    def publish() -> None:
        try:
            dispatch.send(dispatch.DELIVER_WEBHOOK, delivery_id, due.isoformat(),
                          queue=Lane.WEBHOOKS, countdown=countdown)
        except Exception:
            logger.warning("delivery %s not enqueued; the tick will", delivery_id, exc_info=True)

    transaction.on_commit(publish)


def retry_delay(attempt: int) -> float:
    return backoff(attempt, base=settings.WEBHOOK_BACKOFF_BASE, cap=settings.WEBHOOK_BACKOFF_MAX)


def attempt(*, delivery_id: str, due: str = "") -> None:
    """One attempt of a delivery, by its message for ``due`` (the row's
    ``next_attempt_at`` when it was sent; empty in messages sent before
    messages carried it). Raises SendLater when it should be tried again (a
    failed attempt, or this worker's delivery threads all busy, or as many
    as one receiver may take)."""
    url = WebhookDelivery.objects.filter(id=delivery_id).values_list("url", flat=True).first()
    if url is None:
        return  # deleted with its job
    try:
        receiver = origin(url)
    except canonical_urls.InvalidURL:
        receiver = url  # its attempt fails it for good
    slots = _SLOTS.get()
    if not slots.take(receiver):
        _step_aside(delivery_id, due)
        return
    try:
        _attempt(delivery_id)
    finally:
        slots.give(receiver)


def _step_aside(delivery_id: str, due: str) -> None:
    """All delivery threads busy: try again in a second, moving the row's
    clock on so the sweep does not take it for lost. Only the message for
    the row's ``next_attempt_at`` does so; any other (a duplicate) ends here."""
    now = timezone.now()
    delay = random.uniform(0.5, 1.5)
    later = now + timedelta(seconds=delay)
    current = WebhookDelivery.objects.filter(id=delivery_id, status=Delivery.PENDING)
    current = (current.filter(next_attempt_at=datetime.fromisoformat(due)) if due
               else current.filter(next_attempt_at__lte=now + DUE_SLACK))
    if current.update(next_attempt_at=later, updated_at=now):
        raise SendLater(JobError("delivery threads busy", code=ErrorCode.WEBHOOK_BUSY,
                                 transient=True), delay=delay, due=later)


def _attempt(delivery_id: str) -> None:
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        id=delivery_id, status=Delivery.PENDING, next_attempt_at__lte=now + DUE_SLACK,
    ).update(status=Delivery.SENDING, attempts=F("attempts") + 1, updated_at=now,
             lease_expires_at=now + timedelta(seconds=settings.WEBHOOK_TIMEOUT + 30))
    if not claimed:
        return  # delivered, failed, not due yet, or another worker is sending it
    delivery = WebhookDelivery.objects.select_related("job").get(id=delivery_id)
    with job_context(str(delivery.job_id)):  # its lines carry the job id, as the job's do
        _send(delivery)


def _send(delivery: WebhookDelivery) -> None:
    """POST a claimed delivery and record the outcome (raises SendLater to try again)."""
    delivery_id = str(delivery.id)
    try:
        body = delivery.body.encode() if delivery.body else _frozen_body(delivery)
        release_connection()  # not held through the POST (summaries/infra/database.py)
        status, error, final = post(delivery, body)
    except Exception as exc:  # a bug, not the receiver: fail visibly instead of looping
        logger.exception("delivery %s crashed", delivery_id)
        status, error, final = None, f"internal error ({type(exc).__name__})", True
    mine = WebhookDelivery.objects.filter(id=delivery_id, status=Delivery.SENDING,
                                          attempts=delivery.attempts)
    now = timezone.now()
    if status is not None and 200 <= status < 300:
        mine.update(status=Delivery.DELIVERED, delivered_at=now, last_status_code=status,
                    last_error="", lease_expires_at=None, updated_at=now)
        return
    if final or delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        mine.update(status=Delivery.FAILED, last_status_code=status, last_error=error,
                    lease_expires_at=None, updated_at=now)
        logger.warning("delivery %s to %s failed for good after %d attempt(s): %s",
                       delivery.id, delivery.url, delivery.attempts, error)
        return
    delay = retry_delay(delivery.attempts)
    later = now + timedelta(seconds=delay)
    if mine.update(status=Delivery.PENDING, last_status_code=status, last_error=error,
                   next_attempt_at=later, lease_expires_at=None, updated_at=now):
        raise SendLater(JobError(error, code=ErrorCode.WEBHOOK_FAILED, transient=True), delay=delay,
                        due=later)


def _frozen_body(delivery: WebhookDelivery) -> bytes:
    """The job's status body, rendered once and kept for every retry."""
    body = JSONRenderer().render(JobWebhookBody.render(delivery.job))
    WebhookDelivery.objects.filter(id=delivery.id, body="").update(body=body.decode())
    return body
