"""Short inputs waiting together in one process go to the AI in one call.

With ``AI_BATCH_SIZE`` > 1 and a provider that supports batches (Gemini; the
offline summariser does not), a job thread with a short text (at most
``AI_BATCH_MAX_CHARS``) hands it to this process's ``Batcher`` and blocks on
its own future. A dispatcher thread collects the texts that arrive within
``AI_BATCH_WAIT_MS`` of the first one (or until ``AI_BATCH_SIZE`` are there,
then at once) and hands each batch to a bounded pool of threads, so that many
batches are in flight at once: 100 job threads waiting → about 10 calls
overlapping, not one after another.

A batch holds at most ``AI_MAX_INPUT_CHARS`` characters of text in all (the
model's context bounds a call, not only each item).

One batch is one request to the provider: it takes one request and the sum of
its items' estimated tokens from the shared quota (``ai_quota.acquire``), and
every item's caller gets the same outcome when that or the call fails for a
reason about everyone (``QuotaWait``, or the call's ``JobError``: 429, 5xx,
timeout ...): retried as a batch later, no call multiplied. An error about
what the batch holds is not an error about each item: a batch blocked by a
safety filter (one item's text may be the cause) or rejected (400: too long
for the context ...) is split in two halves, each asked again, down to
single items; so only what fails alone fails, and one bad item costs about
2·log2(size) calls, not one per co-batched item; and the texts such a split
came down to are remembered for a while (``LONERS``) and sent alone when
they come again, so resubmitting one costs others nothing. Each item is otherwise
answered on its own: its result, or ``None`` meaning "ask for this one
alone" (it was alone in its batch or half, or its part of the answer was
missing or broke the output contract); the caller then makes the ordinary
single call, with its own quota and its one re-ask. So every item still gets
its own job, cache entry and result; the cache namespace is the provider's
usual one (a batched answer meets the same contract as a single one).

Tokens (and so each job's cost, services/costs.py): a batch call's
reported tokens (or our estimate, when the provider reports none) are
shared out over its items in proportion to the length of their texts,
whole tokens, so the shares add up to the call's (``core.tokens.split``).
An item's share goes to its job: with its result, or, when it is asked
again alone (its part of the answer unusable, the batch blocked and split),
added to that call's; a batch that fails for everyone (429, 5xx) reported
no tokens.

A batch holds items of one form only (style and length: one instruction and
one answer schema per call): the dispatcher takes the first waiting item
and the items of its form behind it; the others wait for the next batch.

When the answers to batches keep having no usable item (a model or gateway
that cannot answer them), the process sends single calls only for a while.
Only whole answers count, and only when their halves are unusable too: one
item that spoils an answer (or gets it blocked) cannot turn batches off for
everyone. A caller never waits longer than the batch wait, the quota wait
and the provider's timeout once per round of splitting, and a margin: then
it gets a transient ``ai_timeout``.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from django.conf import settings

from summaries.core.errors import ErrorCode, JobError, QuotaWait
from summaries.core.forms import DEFAULT_FORM, Form
from summaries.core.tokens import Usage, add_usage, estimate_tokens, split
from summaries.infra import runtime
from summaries.observability import counters
from summaries.providers import (
    BatchItem,
    BatchProvider,
    Provider,
    RequestRejected,
    SummaryResult,
    batching_of,
)
from summaries.services import ai_quota

# Batches in flight at once in one process. With WORKER_CONCURRENCY (100)
# job threads and batches of 10, about 10 are needed; more leaves room for
# smaller batches under an uneven load. Threads are only started when used.
MAX_IN_FLIGHT = 32
QUOTA_MAX_WAIT_S = 2.0  # as ai_quota.acquire's default for a single call
# How long past its own bound a caller gives the batch (thread scheduling,
# a backlog of batches in the pool).
MARGIN_S = 5.0
# A model or gateway that cannot answer batches (every item of every batch
# unusable: a single answer to the array, prose ...) would cost each item a
# wasted call before its own. After this many such batches in a row the
# process sends single calls only, for OFF_S, then tries batches again.
UNUSABLE_IN_A_ROW = 3
OFF_S = 300.0
# Texts a blocked or refused batch was split down to (the culprit, and
# perhaps one innocent beside it), most recent first: they go alone when
# they come again. A bounded set: an anonymous client can only push out
# older entries.
LONERS = 4096

logger = logging.getLogger(__name__)


@dataclass
class _Waiting:
    """One caller's item in the queue, and the future it waits on
    (``None``: ask alone)."""

    item: BatchItem
    tokens: int
    arrived: float
    future: Future[SummaryResult | None] = field(default_factory=Future)
    # Its share of batched calls that gave it no usable answer (a blocked
    # batch, an unusable part of an answer): paid, though it is asked again.
    usage: Usage | None = None


class Batcher:
    """Collects items into batches for ``provider`` (thread-safe; one per process)."""

    def __init__(self, provider: BatchProvider, *, size: int, wait_s: float,
                 timeout_s: float, max_chars: int = 30_000) -> None:
        if size < 2:
            raise ValueError("a batch holds at least 2 items")
        self._provider = provider
        self._namespace = provider.cache_namespace
        self._size = size
        self._max_chars = max_chars  # of text in one batch, all items together
        self._wait_s = max(0.0, wait_s)
        self._timeout_s = timeout_s
        self._queue: deque[_Waiting] = deque()
        self._unusable = 0  # batches in a row whose answer had no usable item
        self._off_until = 0.0  # monotonic time until which items go alone
        self._loners: OrderedDict[bytes, None] = OrderedDict()
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._executor = ThreadPoolExecutor(MAX_IN_FLIGHT, thread_name_prefix="ai-batch")
        self._dispatcher = threading.Thread(target=self._dispatch, name="ai-batcher",
                                            daemon=True)
        self._dispatcher.start()

    @property
    def off(self) -> bool:
        """Whether batches are off for now (answers to them kept being unusable)."""
        return time.monotonic() < self._off_until

    def summarize(self, text: str, language: str | None = None, form: Form = DEFAULT_FORM
                  ) -> tuple[SummaryResult | None, Usage | None]:
        """``text``'s contract-checked summary (in ``form``) from a batched
        call (carrying its share of the call's tokens), or None when it is to
        be asked alone, with its share of the batched calls that gave it no
        usable answer. Raises ``QuotaWait`` (the batch could not take the
        quota) or a transient/permanent ``JobError`` (the batch call failed,
        or took longer than it may; carrying its share of the tokens, if any)."""
        digest = _digest(text)
        with self._cond:
            if digest in self._loners:  # blocked or refused with others before
                self._loners.move_to_end(digest)
                return None, None
            waiting = _Waiting(BatchItem(str(next(self._ids)), text, language, form),
                               estimate_tokens(text), time.monotonic())
            self._queue.append(waiting)
            self._cond.notify()
        # A batch split down to single items takes one call per round.
        rounds = math.ceil(math.log2(self._size))
        bound = self._wait_s + rounds * (QUOTA_MAX_WAIT_S + self._timeout_s) + MARGIN_S
        try:
            result = waiting.future.result(timeout=bound)
        except FutureTimeout:
            waiting.future.cancel()  # if not started yet, it never will be
            raise JobError(f"the batched AI call did not end within {bound:g}s",
                           code=ErrorCode.AI_TIMEOUT, transient=True) from None
        # Each caller raises its own copy: one exception object raised in
        # many threads at once would have its traceback grown by all of them.
        except QuotaWait as wait:
            raise QuotaWait(wait.delay) from wait
        except JobError as error:
            own = JobError(error.message, code=error.code, transient=error.transient,
                           retry_after=error.retry_after)
            own.usage = waiting.usage
            raise own from error
        if result is not None:
            return result.plus(waiting.usage), None
        return None, waiting.usage

    # -- the dispatcher thread and the pool ---------------------------------

    def _dispatch(self) -> None:
        while True:
            batch = self._next_batch()
            self._executor.submit(self._run, batch)

    def _next_batch(self) -> list[_Waiting]:
        """Blocks until an item waits, then until the batch is full (``size``
        items of the first one's form, or ``max_chars`` of their text) or the
        first item has waited ``wait_s``; takes the first item and, in order,
        the items of its form, at most ``size`` items and ``max_chars`` of
        text (always one item at least: a longer one is refused alone).
        Items of other forms stay queued, in their order."""
        with self._cond:
            while not self._queue:
                self._cond.wait()
            head = self._queue[0]
            deadline = head.arrived + self._wait_s
            while ((alike := [w for w in self._queue if w.item.form == head.item.form])
                   and len(alike) < self._size
                   and sum(len(w.item.text) for w in alike) < self._max_chars
                   and (left := deadline - time.monotonic()) > 0):
                self._cond.wait(left)
            batch = [self._queue.popleft()]
            chars = len(batch[0].item.text)
            others: list[_Waiting] = []
            while self._queue and len(batch) < self._size:
                waiting = self._queue.popleft()
                if waiting.item.form != head.item.form:
                    others.append(waiting)
                elif chars + len(waiting.item.text) <= self._max_chars:
                    chars += len(waiting.item.text)
                    batch.append(waiting)
                else:
                    self._queue.appendleft(waiting)
                    break
            self._queue.extendleft(reversed(others))
            if self._queue:
                self._cond.notify()  # the rest goes on in the next batch
            return batch

    def _run(self, batch: list[_Waiting]) -> None:
        self._settle([w for w in batch if w.future.set_running_or_notify_cancel()], whole=True)

    def _settle(self, group: list[_Waiting], *, whole: bool, refused: bool = False) -> None:
        """Answer every caller in ``group`` (one batch, or a part of one split
        off; ``refused``: from a batch blocked or refused for what it held):
        one call for all of them, split further when the call is refused for
        what it holds. Never raises: each future gets its outcome."""
        if len(group) <= 1:
            for waiting in group:  # alone: asked the ordinary way, by its caller
                if refused:
                    self._remember_loner(waiting.item.text)
                waiting.future.set_result(None)
            return
        try:
            ai_quota.acquire(self._namespace, tokens=sum(w.tokens for w in group),
                             max_wait=QUOTA_MAX_WAIT_S)
            results = self._provider.summarize_batch([w.item for w in group])
        except JobError as exc:
            # A call that answered (blocked) was paid: each item its share.
            if exc.usage is not None:
                counters.record_ai_call(self._provider.name, self._provider.model, exc.usage,
                                        answered=False)
            self._share(group, exc.usage)
            if exc.code == ErrorCode.AI_BLOCKED or isinstance(exc, RequestRejected):
                # About what the batch holds, not about each item; nor about
                # batches as such: not counted by _judge.
                self._split(group, refused=True)
                return
            self._fail(group, exc)  # 429, 5xx, timeout: everyone's, retried as a batch
            return
        except Exception as exc:  # QuotaWait, Valkey down ...: everyone's
            self._fail(group, exc)
            return
        # Each item's result (or ContractError) carries its share of the
        # call's tokens, in proportion to its text (providers/common.py
        # batch_outcome): the shares add up to the call's.
        shares = [r.usage for r in results.values() if r.usage is not None]
        if shares:
            call = shares[0]
            for share in shares[1:]:
                call = call + share
            counters.record_ai_call(self._provider.name, self._provider.model, call)
        for waiting in group:
            result = results.get(waiting.item.id)
            if isinstance(result, JobError):
                waiting.usage = add_usage(waiting.usage, result.usage)
        usable = any(isinstance(r, SummaryResult) for r in results.values())
        if whole and not usable:
            # No usable item: a model that cannot answer batches, or one item
            # that spoilt the answer? The halves tell (one call more each).
            self._judge(usable=False)
            self._split(group, refused=False)
            return
        if usable:
            self._judge(usable=True)
        for waiting in group:  # an unusable item is asked alone by its caller
            result = results.get(waiting.item.id)
            waiting.future.set_result(result if isinstance(result, SummaryResult) else None)

    def _split(self, group: list[_Waiting], *, refused: bool) -> None:
        """Settle the two halves of ``group`` (the second in the pool: the
        halves overlap, so a caller waits one call per round of splitting)."""
        middle = len(group) // 2
        try:
            self._executor.submit(self._settle, group[middle:], whole=False, refused=refused)
        except RuntimeError as exc:  # the pool is shut down (interpreter exit)
            self._fail(group[middle:], exc)
        self._settle(group[:middle], whole=False, refused=refused)

    @staticmethod
    def _share(group: list[_Waiting], usage: Usage | None) -> None:
        """A failed call's tokens, shared out over its items by their texts' length."""
        if usage is None:
            return
        for waiting, share in zip(group, split(usage, [len(w.item.text) for w in group]),
                                  strict=True):
            waiting.usage = add_usage(waiting.usage, share)

    def _remember_loner(self, text: str) -> None:
        digest = _digest(text)
        with self._cond:
            self._loners[digest] = None
            self._loners.move_to_end(digest)
            while len(self._loners) > LONERS:
                self._loners.popitem(last=False)

    @staticmethod
    def _fail(group: list[_Waiting], exc: BaseException) -> None:
        for waiting in group:
            waiting.future.set_exception(exc)

    def _judge(self, *, usable: bool) -> None:
        """Count whole answers that had no usable item; a usable answer (of a
        batch or of a half) resets the count. Turns batches off for OFF_S
        after UNUSABLE_IN_A_ROW of them."""
        with self._cond:
            self._unusable = 0 if usable else self._unusable + 1
            if self._unusable < UNUSABLE_IN_A_ROW:
                return
            self._unusable = 0
            self._off_until = time.monotonic() + OFF_S
        logger.warning("%d batched AI answers in a row had no usable item: single calls "
                       "only for %.0f s", UNUSABLE_IN_A_ROW, OFF_S)


def _digest(text: str) -> bytes:
    # surrogatepass: a text may hold lone surrogates (cleaned only on output).
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class _Built:
    """This process's batcher and the provider it was built for (a runtime
    slot: a forked child has no dispatcher thread, it builds its own)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batcher: tuple[Provider, Batcher] | None = None


_BUILT = runtime.slot("batcher", _Built)


def batcher_for(provider: Provider, text: str) -> Batcher | None:
    """This process's batcher for ``provider`` if ``text`` may be batched
    (batches on, the provider supports them, the text is short enough)."""
    size = int(settings.AI_BATCH_SIZE)
    batch_provider = batching_of(provider)
    if size <= 1 or batch_provider is None or len(text) > settings.AI_BATCH_MAX_CHARS:
        return None
    built = _BUILT.get()
    current = built.batcher
    if current is not None and current[0] is provider:
        return None if current[1].off else current[1]
    with built.lock:
        current = built.batcher
        if current is None or current[0] is not provider:
            batcher = Batcher(batch_provider, size=size,
                              wait_s=settings.AI_BATCH_WAIT_MS / 1000,
                              timeout_s=batch_provider.timeout_s,
                              max_chars=settings.AI_MAX_INPUT_CHARS)
            current = (provider, batcher)
            built.batcher = current
    return current[1]
