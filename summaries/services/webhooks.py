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
  delivery whose message was lost or whose worker died mid-POST.
- An attempt (:func:`attempt`) claims its delivery with a conditional
  UPDATE (pending and due → sending, attempts + 1), so a duplicate message
  does nothing. It checks the URL under the page fetcher's address policy
  again, connects to the address it checked (no second lookup) and POSTs;
  a redirect is not followed.
- What is sent: the job's status body as GET /api/status/<id> renders it
  (without its ``callbacks``), frozen at the first attempt so every retry
  sends the same bytes; headers ``X-SmartCache-Signature: t=<unix>,v1=<hex>``
  (HMAC-SHA256 with WEBHOOK_SECRET over ``"<t>.<body>"``, signed anew at
  every attempt), ``X-SmartCache-Delivery`` (the delivery id, the same on
  every attempt: the receiver's idempotency key), ``X-SmartCache-Event``
  (``job.completed`` or ``job.failed``), ``X-SmartCache-Attempt`` and, for a
  watch's change, ``X-SmartCache-Watch``.
- Outcomes: 2xx delivered. A network error, a timeout (WEBHOOK_TIMEOUT for
  the whole attempt), 5xx, 408 or 429 is retried after
  WEBHOOK_BACKOFF_BASE * 2^(attempt-1) seconds (jittered, capped at
  WEBHOOK_BACKOFF_MAX, below the broker's visibility timeout), up to
  WEBHOOK_MAX_ATTEMPTS attempts in all. Any other 4xx, a 3xx, or a
  destination the policy refuses is final: the receiver said no, and the
  same bytes would get the same answer.
- A worker delivers on at most WEBHOOK_CONCURRENCY threads at once; a
  delivery beyond that steps aside for a second instead of taking a thread
  that summarises.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import random
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from summaries import urls
from summaries.database import release_connection
from summaries.errors import InvalidInput, JobError, RetryLater, backoff
from summaries.fetching import check_submit_url, transport
from summaries.logcontext import job_context
from summaries.models import Job, WebhookDelivery
from summaries.services.config import fetch_policy

logger = logging.getLogger(__name__)

Delivery = WebhookDelivery.Status
FINISHED: Final = (Job.Status.COMPLETED, Job.Status.FAILED)
SIGNATURE_HEADER: Final = "X-SmartCache-Signature"
DELIVERY_HEADER: Final = "X-SmartCache-Delivery"
# A countdown may fire a moment before the row says it is due (clocks).
DUE_SLACK: Final = timedelta(seconds=2)
# A pending delivery this overdue lost its message: the sweep sends it again.
LOST_AFTER: Final = timedelta(seconds=60)
_RETRY_STATUSES: Final = frozenset({408, 429})
AWAIT_POLLS: Final = 120

_slots = threading.BoundedSemaphore(settings.WEBHOOK_CONCURRENCY)


@dataclass(frozen=True)
class Callback:
    """Where to deliver a job's status: a URL checked by check_callback_url,
    and the watch whose change made the job, if any."""

    url: str
    watch_id: str | None = None


def check_callback_url(url: str) -> str:
    """A callback URL as we will call it, checked as a page URL is at
    submit: http(s), no credentials, not an IP literal (in any form) or a
    ``localhost`` name the address policy refuses. Its query is kept whole
    (no tracking parameter is the receiver's business to lose). Names are
    resolved and checked at every delivery, not here (no DNS in the
    request). Raises InvalidInput: ``invalid_callback_url`` or
    ``blocked_callback_url``."""
    try:
        parsed = urls.parse_url(url.strip())
    except urls.InvalidURL as exc:
        raise InvalidInput(f"callback_url: {exc.message}", code=_callback_code(exc.code)) from None
    canonical, host = parsed.url, parsed.host
    if len(canonical) > urls.MAX_URL_CHARS:
        raise InvalidInput(f"callback_url: longer than {urls.MAX_URL_CHARS} characters",
                           code="invalid_callback_url")
    if host == "localhost" or host.endswith(".localhost"):  # loopback by definition (RFC 6761)
        raise InvalidInput("callback_url: localhost is not a destination we call",
                           code="blocked_callback_url")
    try:
        check_submit_url(canonical, fetch_policy())
    except JobError as exc:
        raise InvalidInput(f"callback_url: {exc.message}", code=_callback_code(exc.code)) from None
    return canonical


def _callback_code(code: str) -> str:
    return "invalid_callback_url" if code == "invalid_url" else "blocked_callback_url"


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
        send(str(delivery.id))
    elif status == Job.Status.PROCESSING:
        # Its worker read the row before the flag was set, and may finish
        # without releasing us: look again while it runs (the tick would too).
        await_job(job_id=job_id)
    return delivery


def await_job(*, job_id: str, polls: int = 0) -> None:
    """Release the job's deliveries once it is finished, looking every
    second while it is active, at most AWAIT_POLLS times (then the tick)."""
    from summaries import tasks  # tasks imports this module

    if polls >= AWAIT_POLLS:
        return
    try:
        tasks.dispatch(tasks.await_job_callbacks, job_id, str(polls + 1),
                       queue=settings.WEBHOOK_QUEUE, countdown=1.0)
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
    from summaries import tasks  # tasks imports this module

    try:
        tasks.dispatch(tasks.release_callbacks, job_id, queue=settings.WEBHOOK_QUEUE)
    except Exception:
        logger.warning("job %s: callbacks not released now; the tick will", job_id,
                       exc_info=True)


def await_release(*, job_id: str, polls: int) -> list[str]:
    """One look of await_job: the released deliveries if the job is
    finished; else, while it is active, another look in a second."""
    released = release(job_id=job_id)
    if released is None:
        if Job.objects.filter(id=job_id).exclude(status__in=FINISHED).exists():
            await_job(job_id=job_id, polls=polls)
        return []
    return released


def release(*, job_id: str) -> list[str] | None:
    """Turn the waiting deliveries of a finished job pending; their ids.
    None if the job is not finished (or gone)."""
    if not Job.objects.filter(id=job_id, status__in=FINISHED).exists():
        return None
    waiting = WebhookDelivery.objects.filter(job_id=job_id, status=Delivery.WAITING)
    ids = [str(i) for i in waiting.values_list("id", flat=True)]
    now = timezone.now()
    WebhookDelivery.objects.filter(id__in=ids, status=Delivery.WAITING).update(
        status=Delivery.PENDING, next_attempt_at=now, updated_at=now)
    return ids


def sweep(*, limit: int = 500) -> list[str]:
    """Deliveries to send now (the tick's part): waiting ones whose job
    finished, pending ones whose message was lost (overdue by LOST_AFTER),
    and sending ones whose worker died (lease over). A delivery sent twice
    is claimed once."""
    now = timezone.now()
    finished = WebhookDelivery.objects.filter(status=Delivery.WAITING, job__status__in=FINISHED)
    lapsed = Q(status=Delivery.SENDING, lease_expires_at__lt=now)
    lost = Q(status=Delivery.PENDING, next_attempt_at__lt=now - LOST_AFTER)
    ids = [str(i) for i in finished.values_list("id", flat=True)[:limit]]
    ids += [str(i) for i in WebhookDelivery.objects.filter(lapsed | lost)
            .values_list("id", flat=True)[:limit]]
    if ids:
        WebhookDelivery.objects.filter(Q(status=Delivery.WAITING) | lapsed, id__in=ids).update(
            status=Delivery.PENDING, next_attempt_at=now, lease_expires_at=None, updated_at=now)
    return ids


def send(delivery_id: str, *, countdown: float = 0) -> None:
    """Enqueue an attempt of the delivery, after the current transaction."""
    from summaries import tasks  # tasks imports this module

    def publish() -> None:
        try:
            tasks.dispatch(tasks.deliver_webhook, delivery_id, queue=settings.WEBHOOK_QUEUE,
                           countdown=countdown)
        except Exception:
            logger.warning("delivery %s not enqueued; the tick will", delivery_id, exc_info=True)

    transaction.on_commit(publish)


def retry_delay(attempt: int) -> float:
    return backoff(attempt, base=settings.WEBHOOK_BACKOFF_BASE, cap=settings.WEBHOOK_BACKOFF_MAX)


def signature(body: bytes, *, timestamp: int, secret: str) -> str:
    """``t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>">``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def attempt(*, delivery_id: str) -> None:
    """One attempt of a delivery. Raises RetryLater when it should be tried
    again (a failed attempt, or this worker's delivery threads all busy)."""
    if not _slots.acquire(blocking=False):
        raise RetryLater(JobError("delivery threads busy", code="webhook_busy", transient=True),
                         delay=random.uniform(0.5, 1.5))
    try:
        _attempt(delivery_id)
    finally:
        _slots.release()


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
    """POST a claimed delivery and record the outcome (raises RetryLater to try again)."""
    delivery_id = str(delivery.id)
    try:
        body = delivery.body.encode() if delivery.body else _frozen_body(delivery)
        release_connection()  # not held through the POST (summaries/database.py)
        status, error, final = _post(delivery, body)
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
    mine.update(status=Delivery.PENDING, last_status_code=status, last_error=error,
                next_attempt_at=now + timedelta(seconds=delay), lease_expires_at=None,
                updated_at=now)
    raise RetryLater(JobError(error, code="webhook_failed", transient=True), delay=delay)


def _frozen_body(delivery: WebhookDelivery) -> bytes:
    """The job's status body, rendered once and kept for every retry."""
    from summaries.api.serializers import JobWebhookBody  # the API's one rendering

    body = JSONRenderer().render(JobWebhookBody.render(delivery.job))
    WebhookDelivery.objects.filter(id=delivery.id, body="").update(body=body.decode())
    return body


def _post(delivery: WebhookDelivery, body: bytes) -> tuple[int | None, str, bool]:
    """POST once: (HTTP status or None, error message, whether the failure is final)."""
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(body, timestamp=timestamp, secret=settings.WEBHOOK_SECRET),
        DELIVERY_HEADER: str(delivery.id),
        "X-SmartCache-Event": f"job.{delivery.job.status}",
        "X-SmartCache-Attempt": str(delivery.attempts),
    }
    if delivery.watch_id:
        headers["X-SmartCache-Watch"] = str(delivery.watch_id)
    try:
        target = urls.parse_url(delivery.url)
        deadline = time.monotonic() + settings.WEBHOOK_TIMEOUT
        status = transport.post(target, body, headers, fetch_policy(), deadline)
    except urls.InvalidURL as exc:
        return None, exc.message, True
    except JobError as exc:  # refused by the address policy, or the name is unknown
        return None, exc.message, exc.code == "blocked_destination"
    except TimeoutError:
        return None, f"no answer within {settings.WEBHOOK_TIMEOUT:g}s", False
    except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
        return None, f"connection failed: {exc or type(exc).__name__}", False
    if 200 <= status < 300:
        return status, "", False
    retry = status >= 500 or status in _RETRY_STATUSES
    return status, f"receiver answered HTTP {status}", not retry
