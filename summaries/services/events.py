"""Live job updates: the worker announces every state change of a job on a
Valkey channel of the job's own, and ``GET /api/jobs/<id>/events`` relays
them to the client as Server-Sent Events.

Channel ``job-events:<job_id>``; each message is JSON with the field names
of ``/api/status``: ``job_id``, ``status``, ``stage``, ``attempts``, plus
``last_error`` while retrying or waiting, and ``at`` (epoch seconds when it
was published, to order it against the row; see ``JobEventStream``).

Publishing is one PUBLISH, fire and forget: the row is the truth, so an
error from Valkey is logged and never fails the job; a stream that missed a
message catches up from the row at its next heartbeat. The worker announces
a job's end after its row and its cache entry are written, so a client that
resubmits on hearing it gets a plain cache hit.

A stream never loses a change: it subscribes first (and waits for Valkey to
confirm), then reads the row and sends it, then relays what it hears. A
change made before the subscription is in the row; one made after is heard.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import weakref
from collections.abc import Callable, Generator, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis
from django.conf import settings
from redis.exceptions import RedisError

from summaries.infra import cache, runtime
from summaries.models import Job

if TYPE_CHECKING:
    from summaries.core.errors import JobError
    from summaries.services.pipeline import Outcome

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "job-events:"
FINAL = frozenset({Job.Status.COMPLETED, Job.Status.FAILED})
# How long a client waits before reconnecting after the stream ends (the
# lifetime bound, a Valkey blip): the SSE ``retry`` field, milliseconds.
RECONNECT_MS = 1000


def channel(job_id: str) -> str:
    return f"{CHANNEL_PREFIX}{job_id}"


# --- publishing (the worker) ------------------------------------------------------

def publish(job_id: str, status: str, stage: str, *, pipe: redis.client.Pipeline | None = None,
            **fields: Any) -> None:
    """Announce a job's new state (one PUBLISH; errors logged, not raised).
    ``pipe``: queue it there instead, for the caller to send (and to handle
    its errors)."""
    payload = {"job_id": job_id, "status": status, "stage": stage, **fields,
               "at": time.time()}
    if pipe is not None:
        pipe.publish(channel(job_id), json.dumps(payload))
        return
    try:
        cache.events_client().publish(channel(job_id), json.dumps(payload))
    except RedisError as exc:
        logger.warning("job %s: could not publish its %s event (Valkey: %s)", job_id, stage, exc)


def job_stage(job: Job, stage: str) -> None:
    publish(str(job.id), Job.Status.PROCESSING, stage, attempts=job.attempts)


def job_parts(job: Job, done: int, total: int) -> None:
    """A long document's progress: ``done`` of its ``total`` parts summarised."""
    publish(str(job.id), Job.Status.PROCESSING, Job.Stage.SUMMARIZING, attempts=job.attempts,
            parts={"done": done, "total": total})


def job_completed(job: Job, outcome: Outcome, *, duration_ms: int | None,
                  pipe: redis.client.Pipeline | None = None) -> None:
    """``pipe``: the main server's part of the completion's batch (sent after
    the cache's part, so the end is announced once the summary is cached)."""
    publish(str(job.id), Job.Status.COMPLETED, Job.Stage.DONE, pipe=pipe, attempts=job.attempts,
            summary=outcome.summary, tags=outcome.tags, cached=outcome.cached,
            duration_ms=duration_ms)


def job_failed(job: Job, error: JobError) -> None:
    publish(str(job.id), Job.Status.FAILED, Job.Stage.FAILED, attempts=job.attempts,
            error=error.message, code=error.code)


def job_pending(job: Job, stage: str, reason: str) -> None:
    """Back to pending: ``stage`` retrying (a transient failure) or waiting
    (the provider's quota)."""
    publish(str(job.id), Job.Status.PENDING, stage, attempts=job.attempts, last_error=reason)


# --- streaming (the API) ----------------------------------------------------------

class _Streams:
    """The streams this process serves (a runtime slot)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open = 0


_STREAMS = runtime.slot("sse-slots", _Streams)


def open_streams() -> int:
    """Streams this process is serving now."""
    return _STREAMS.get().open


def _take_slot() -> bool:
    """Reserve one of this process's SSE_MAX_STREAMS stream slots. Each open
    stream holds a web thread, so the cap leaves threads for the rest of the
    API; a client refused gets a 503 and can poll instead. Taken only by
    ``JobEventStream.open``, which gives the slot back on every path."""
    streams = _STREAMS.get()
    with streams.lock:
        if streams.open >= settings.SSE_MAX_STREAMS:
            return False
        streams.open += 1
        return True


def _release_slot() -> None:
    streams = _STREAMS.get()
    with streams.lock:
        streams.open = max(0, streams.open - 1)


# The ids this server sends are small counters; a Last-Event-ID is one of them.
MAX_EVENT_ID_DIGITS = 18


def parse_last_event_id(value: str | None) -> int:
    """The event id a reconnecting client gave (its Last-Event-ID header),
    0 when absent or empty. Raises ValueError for anything but up to 18
    ASCII digits: ``str.isdigit`` takes "²", and ``int`` refuses that and
    numbers of more than 4300 digits."""
    if not value:
        return 0
    if not (value.isascii() and value.isdigit() and len(value) <= MAX_EVENT_ID_DIGITS):
        raise ValueError(f"Last-Event-ID: up to {MAX_EVENT_ID_DIGITS} digits 0-9")
    return int(value)


def sse(event: str, data: dict[str, Any], event_id: int) -> bytes:
    return f"id: {event_id}\nevent: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _subscriber() -> redis.client.PubSub:
    """A subscription on a connection of its own, used by one thread only
    (a redis-py PubSub is not thread-safe); no client-side socket timeout
    is hit while waiting, since get_message polls with its own timeout. On
    the server the worker publishes to (``cache.events_client``), whichever
    layout (CACHE_VALKEY_URL or not)."""
    return cache.events_pubsub()


def _epoch(value: datetime | str | None) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return 0.0


class JobEventStream:
    """The body of one SSE response: an iterable of encoded events that the
    WSGI server writes as they come, and closes (``close``) when the client
    leaves or the stream ends.

    ``read_state`` returns the job's /api/status body and its ``updated_at``
    (the row is read there, in the stream's thread). Events:

    - ``status``: the state now, at once on connect (the whole status body),
      then one per change heard from the worker (the published fields);
    - ``result``: the final state, completed (summary, tags) or failed
      (error, code), the whole status body read from the row; then the
      stream ends.

    Order: a message published before the row was last written is older
    than what the client already has, and is dropped (its ``at`` is not
    after the row's ``updated_at``); repeats of the state just sent are
    dropped too. A comment line every SSE_HEARTBEAT_SECONDS keeps proxies
    from closing an idle stream, and the row is read again then (a message
    Valkey lost is caught up). After SSE_MAX_SECONDS the stream ends; the
    client reconnects (``retry``) and gets the current state at once.
    ``last_event_id`` (parse_last_event_id): a reconnecting client gets the
    current state, numbered after the id it gave.

    Made by ``open``, a stream holds one of this process's stream slots and
    gives it back exactly once: at ``close``, when its events end (or fail),
    or when it is garbage collected without either (a response never sent).
    """

    def __init__(self, job_id: str, read_state: Callable[[], tuple[dict[str, Any], datetime]],
                 *, last_event_id: int = 0) -> None:
        self.job_id = job_id
        self.read_state = read_state
        self.next_id = last_event_id + 1
        self._slot: weakref.finalize[[], JobEventStream] | None = None
        self._pubsub: redis.client.PubSub | None = None
        self._closed = False
        self._sent: tuple[Any, ...] | None = None  # (status, stage, attempts, parts) last sent
        self._progress: tuple[Any, ...] = (None, None)  # queue_position, eta_seconds sent
        self._floor = 0.0  # updated_at of the newest row state sent

    @classmethod
    def open(cls, job_id: str, read_state: Callable[[], tuple[dict[str, Any], datetime]],
             *, last_event_id: int = 0) -> JobEventStream | None:
        """A stream holding a slot, or None when every slot is taken. Nothing
        that can fail comes between taking the slot and arming its release."""
        stream = cls(job_id, read_state, last_event_id=last_event_id)
        if not _take_slot():
            return None
        stream._slot = weakref.finalize(stream, _release_slot)
        return stream

    def close(self) -> None:
        """Called by the WSGI server once the response is done (or the client left)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._pubsub is not None:
                with contextlib.suppress(RedisError, OSError):
                    self._pubsub.close()
        finally:
            if self._slot is not None:
                self._slot()  # a finalizer runs once: later calls do nothing

    def __iter__(self) -> Generator[bytes, None, None]:
        try:
            yield from self._events()
        finally:  # ended, failed, or closed by the server (the client left)
            self.close()

    def _events(self) -> Iterator[bytes]:
        heartbeat = float(settings.SSE_HEARTBEAT_SECONDS)
        ends = time.monotonic() + float(settings.SSE_MAX_SECONDS)
        yield f"retry: {RECONNECT_MS}\n\n".encode()
        try:
            self._pubsub = self._subscribe()
        except (RedisError, OSError) as exc:
            # No live updates: the current state, then the client polls or reconnects.
            logger.warning("job %s: event stream without Valkey (%s)", self.job_id, exc)
            self._pubsub = None
        first = self._from_row()
        if first is not None:
            yield first
        if self._finished() or self._pubsub is None:
            return
        last_write = time.monotonic()
        while (now := time.monotonic()) < ends:
            try:
                message = self._pubsub.get_message(timeout=min(heartbeat, ends - now))
            except (RedisError, OSError, ValueError) as exc:
                logger.info("job %s: event stream lost Valkey (%s); client will reconnect",
                            self.job_id, exc)
                return
            if message is not None:
                chunk = self._from_message(str(message.get("data", "")))
            elif time.monotonic() - last_write >= heartbeat:
                chunk = self._from_row() or b": keep-alive\n\n"
            else:
                continue
            if chunk:
                last_write = time.monotonic()
                yield chunk
                if self._finished():
                    return

    # -- internals ----------------------------------------------------------

    def _finished(self) -> bool:
        return self._sent is not None and self._sent[0] in FINAL

    def _subscribe(self) -> redis.client.PubSub:
        pubsub = _subscriber()
        pubsub.ignore_subscribe_messages = False
        pubsub.subscribe(channel(self.job_id))
        deadline = time.monotonic() + float(settings.VALKEY_SOCKET_TIMEOUT)
        while True:  # the confirmation: from here on, every change is heard
            message = pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
            if message is not None and message.get("type") == "subscribe":
                break
            if time.monotonic() >= deadline:
                pubsub.close()
                raise redis.TimeoutError("no subscription confirmation from Valkey")
        pubsub.ignore_subscribe_messages = True
        return pubsub

    def _emit(self, body: dict[str, Any], *, progress: bool = False) -> bytes | None:
        """The event for ``body`` unless it repeats the state just sent
        (``progress``, a row read: a changed queue position or ETA is news)."""
        attempts = body.get("attempts", self._sent[2] if self._sent else None)
        key = (body.get("status"), body.get("stage"), attempts, str(body.get("parts")))
        moved = progress and (body.get("queue_position"), body.get("eta_seconds")) != self._progress
        if key == self._sent and not moved:
            return None
        self._sent = key
        if progress:
            self._progress = (body.get("queue_position"), body.get("eta_seconds"))
        event = "result" if body.get("status") in FINAL else "status"
        chunk = sse(event, body, self.next_id)
        self.next_id += 1
        return chunk

    def _from_row(self) -> bytes | None:
        try:
            body, updated_at = self.read_state()
        except Exception as exc:  # the database is away, the job is gone: try later
            logger.warning("job %s: could not read its state (%s)", self.job_id, exc)
            return None
        self._floor = max(self._floor, _epoch(updated_at))
        return self._emit(body, progress=True)

    def _from_message(self, raw: str) -> bytes | None:
        try:
            payload = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(payload, dict) or float(payload.get("at", 0)) <= self._floor:
            return None  # older than the row state already sent
        # The final event is the whole status body, from the row (written
        # before the message was published); the message if that fails.
        if payload.get("status") in FINAL and (chunk := self._from_row()) is not None:
            return chunk
        payload.pop("at", None)
        return self._emit(payload)
