"""The API side: turn a submission into a cache hit or a (shared) job."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from summaries.bypasses import job_rows
from summaries.core import outcomes
from summaries.core.errors import Busy, ErrorCode, InputTooLarge, InvalidInput, JobError
from summaries.core.forms import Form
from summaries.core.inputs import TEXT, URL, NormalizedInput, normalize_input
from summaries.core.language import normalize_language
from summaries.fetching import check_submit_url
from summaries.infra import cache, local_cache, runtime
from summaries.infra.database import lock_input
from summaries.infra.dispatch import enqueue
from summaries.models import Job
from summaries.observability import counters
from summaries.providers import has_sentences
from summaries.providers.contract import MIN_POINTS
from summaries.services import batch_lane, costs, inflight, near_duplicates, scheduling, webhooks
from summaries.services.callbacks import Callback, check_callback_url
from summaries.services.config import cache_namespace, fetch_policy, translates
from summaries.services.submit_options import DEFAULTS, SubmitOptions

# A submit that lost the race for an input waits this long for the winner's
# job row to appear before trying to create the job itself (safe: the
# database refuses a second active job for one input).
OWNER_ROW_WAIT_SECONDS = 2.0


@dataclass(frozen=True)
class Submission:
    job_id: str
    status: str
    cached: bool
    summary: str = ""
    tags: list[str] = field(default_factory=list)
    error: str = ""
    code: str = ""
    # How the answer was reached, for analytics and the X-Cache header:
    # outcomes.HIT, MISS (this submit created the job), JOINED (it joined a
    # job already in flight) or KNOWN_FAILURE.
    outcome: str = ""
    # The input's cache key (summary_request always sets it).
    cache_key: str = ""
    # A hit: seconds since its summary was made (infinite when unknown).
    age: float = 0.0
    # A cached summary was older than the submit's max_age: this answer is
    # the job that makes it anew.
    refreshed: bool = False
    # A hit: what its summary cost when it was made (None: the entry does
    # not say), which the hit saved.
    made: counters.Made | None = None
    # The job whose summary this answer shares (a near-duplicate's).
    near_duplicate_of: str = ""

    def __post_init__(self) -> None:
        if not self.outcome:
            object.__setattr__(self, "outcome", outcomes.HIT if self.cached else outcomes.MISS)


@dataclass(frozen=True)
class CheckedInput:
    """An input the fast path (cached_summary) checked and keyed, found no
    hit for, and hands to summary_request with the request (the middleware
    sets it on the request, SubmitView passes it on): it is not checked twice."""

    raw: str
    item: NormalizedInput
    key: str


def summary_request(*, raw: str, options: SubmitOptions = DEFAULTS,
                    checked: CheckedInput | None = None) -> Submission:
    """Answer from the cache, join the in-flight job, or start a new one.

    ``options`` (services/submit_options.py): ``max_age``: a cached summary
    older than that is not served; the submit then refreshes it
    (``refreshed`` on the answer). ``store=False``: reading the cache, and
    joining a job in flight, still happen. ``language``: without, the
    summary is in the input's own (see ``NormalizedInput.in_language`` for
    when it is keyed apart). ``form``: style and length, keyed apart unless
    the default. ``callback_url``: services/webhooks.py.
    ``run_at``: services/scheduling.py; neither answered from the cache nor
    joined. ``checked``: ``raw`` as the fast path already checked it.

    Raises InvalidInput (400), InputTooLarge (413), Busy (503) and
    redis.RedisError when Valkey is down (503).
    """
    if len(raw) > settings.MAX_INPUT_CHARS:
        raise InputTooLarge(f"input is {len(raw)} characters; the limit is "
                            f"{settings.MAX_INPUT_CHARS}")
    callback = (Callback(check_callback_url(options.callback_url), options.watch_id)
                if options.callback_url else None)
    if options.run_at is not None:
        scheduling.check_run_at(options.run_at, max_age=options.max_age)
    item, key = ((checked.item, checked.key) if checked is not None and checked.raw == raw
                 else _keyed(raw))
    if options.language is not None:
        item = item.in_language(normalize_language(options.language), translates=translates())
        key = item.cache_key(cache_namespace())
    if not options.form.is_default:
        item = in_form(item, options.form)
        key = item.cache_key(cache_namespace())
    if options.run_at is not None:
        job = scheduling.job_schedule(item=item, key=key, run_at=options.run_at,
                                      options=options, callback=callback)
        return Submission(str(job.id), job.status, cached=False, cache_key=key)
    job_id = str(uuid.uuid4())  # the id of the job, if this submit creates it
    answer, look = None, None
    if not options.refresh and (held := local_cache.peek(key)) is not None:
        answer = _hit(held)
    elif not options.refresh:
        # The cache (and a URL's failure memory) and the claim: one round trip.
        read = local_cache.reading()
        look = inflight.look_or_claim(key, job_id, failure=item.kind == URL)
        if look.hit is not None:
            local_cache.keep(key, look.hit, ttl_ms=look.hit_ttl_ms, read=read)
            answer = _hit(look.hit)
        elif look.failed_job is not None:
            answer = _known_failure(look.failed_job)
        elif look.claimed and item.kind == TEXT and _near_wanted(options):
            answer = _near_answer(job_id, raw, item, key, options)
    refreshed = answer is not None and not _fresh(answer, options.max_age)
    if answer is None or refreshed:
        answer = _job_answer(job_id, item, key,
                             replace(options, refresh=True) if refreshed else options,
                             look=None if refreshed else look, callback=callback)
        answer = replace(answer, refreshed=refreshed and not answer.cached)
    counters.record_request(answer.outcome, text=item.value if item.kind == TEXT else "",
                            made=answer.made, job_id=answer.job_id,
                            near=bool(answer.near_duplicate_of))
    if callback is not None and answer.outcome != outcomes.MISS:  # a new job: subscribed in it
        webhooks.subscribe(job_id=answer.job_id, callback=callback)
    return replace(answer, cache_key=key)


def _near_wanted(options: SubmitOptions) -> bool:
    return near_duplicates.enabled() and options.near_duplicates and not options.refresh


def _near_answer(job_id: str, raw: str, item: NormalizedInput, key: str,
                 options: SubmitOptions) -> Submission | None:
    """A text nearly the same as one already summarised for the same request
    (services/near_duplicates.py), answered at once with that summary: a
    completed job ``job_id`` of its own that names the one it shares, cached
    under its own key (unless store:false). None (the claim on ``key``
    kept) when there is none. Texts only: a page's text is known only in
    the worker, which looks there. A text nearly the same as one still in
    flight (being made, or waiting in the batch lane) joins that job
    instead (``_near_join``)."""
    namespace = cache_namespace()
    source = near_duplicates.source_lines(raw)
    try:
        for _ in range(2):  # an original that completed meanwhile: look again
            match = near_duplicates.find(
                source or item.value,
                variant=near_duplicates.variant(namespace, item.language, item.form),
                namespace=namespace, max_age=options.max_age, in_flight=True)
            if match is None or not match.in_flight:
                break
            if (joined := _near_join(job_id, key, match.job_id, options)) is not None:
                return joined
        if match is None or match.in_flight:
            return None
        made = costs.made_by(match.job_id)  # what the shared summary cost: saved (near)
        now = timezone.now()
        job = Job(id=job_id, kind=item.kind, status=Job.Status.COMPLETED, stage=Job.Stage.DONE,
                  input_hash=key, queue=options.queue, cached=True, store=options.store,
                  provider=namespace, language=item.language or "", style=item.form.style,
                  length=item.form.length, summary=match.summary,
                  tags=match.tags, near_duplicate_of=match.job_id,
                  near_duplicates=options.near_duplicates, max_age=options.max_age,
                  attempts=0, created_at=now, completed_at=now,  # no processing: no duration
                  **(job_fields := {"input_text": item.value, "source_text": source}))
        for name, value in job.input_when_finished(**job_fields).items():
            setattr(job, name, value)
        job_rows.insert(job)
    except BaseException:
        inflight.release(key, job_id)
        raise
    both = cache.batch()
    if options.store:
        cache.set_summary(key, {"job_id": job_id, "summary": match.summary, "tags": match.tags,
                                "near_duplicate_of": match.job_id,
                                **(made.as_payload() if made is not None else {})},
                          ttl=settings.CACHE_TTL, cached_at=match.made_at, pipe=both.cache)
    inflight.release(key, job_id, pipe=both.main)
    both.execute()
    return Submission(job_id, Job.Status.COMPLETED, cached=True, summary=match.summary,
                      tags=match.tags, outcome=outcomes.NEAR, near_duplicate_of=match.job_id,
                      age=max(0.0, time.time() - match.made_at), made=made)


def _near_join(job_id: str, key: str, original: str, options: SubmitOptions) -> Submission | None:
    """Join ``original``, a text job in flight whose text this submit's
    nearly repeats, as a submit of its own input joins it (an interactive
    one takes it out of the batch lane: ``_joined``); the claim on
    ``key`` (made with ``job_id``) is freed. None (the claim kept) when the
    job stopped being active meanwhile (the caller looks again: a job that
    completed is then shared NEAR)."""
    job = job_rows.load(original)
    if job is None or not job.is_active or job.purged_at is not None:
        return None
    inflight.release(key, job_id)
    _joined(job, options)
    return Submission(str(job.id), job.status, cached=False, outcome=outcomes.JOINED,
                      near_duplicate_of=str(job.id))


def in_form(item: NormalizedInput, form: Form) -> NormalizedInput:
    """``item`` asked in ``form``; raises InvalidInput for bullet points of
    a text with fewer sentences than points (a URL's page or an upload's
    text is not known yet: its job fails with input_too_short instead)."""
    if (form.bullets and item.kind == TEXT
            and not has_sentences(item.value, at_least=MIN_POINTS)):
        raise InvalidInput(f"input is too short for bullet points: give at least {MIN_POINTS} "
                           f"sentences", code=ErrorCode.INPUT_TOO_SHORT)
    return item.in_form(form)


def _keyed(raw: str) -> tuple[NormalizedInput, str]:
    item = _validated(raw)
    return item, item.cache_key(cache_namespace())


def _fresh(answer: Submission, max_age: int | None) -> bool:
    """Whether an answer from the cache may be served under ``max_age``. A
    remembered failure is always fresh enough: it is kept only briefly."""
    return max_age is None or answer.outcome != outcomes.HIT or answer.age <= max_age


# Inputs recently answered from memory, and their (cache key, text for the
# savings estimate): a hit repeated does not normalise and hash again. Bounded
# in entries and in the size of each input.
_HIT_KEYS_MAX, _HIT_KEY_MAX_CHARS = 4096, 4096
_HIT_KEYS = runtime.slot("hit-keys", dict[str, tuple[str, str]])


def cached_summary(*, raw: str) -> Submission | CheckedInput | None:
    """The answer to ``raw`` if this process holds its summary in memory,
    counted as summary_request counts a hit; else ``raw`` checked, for
    summary_request to take over; None for input that is not valid (the full
    path, summary_request, answers those) or already known.
    Touches neither Valkey nor the database: the fast path for hits
    (summaries/bypasses/fastpath.py)."""
    item, hit_keys = None, _HIT_KEYS.get()
    if (known := hit_keys.get(raw)) is None:
        if len(raw) > settings.MAX_INPUT_CHARS:
            return None
        try:
            item, key = _keyed(raw)
        except InvalidInput:
            return None
        known = (key, "" if item.kind == URL else item.value)
    key, text = known
    if (hit := local_cache.peek(key)) is None:
        return None if item is None else CheckedInput(raw, item, key)
    if len(raw) <= _HIT_KEY_MAX_CHARS:  # the same input again: no normalising, no hashing
        if len(hit_keys) >= _HIT_KEYS_MAX:
            hit_keys.clear()
        hit_keys[raw] = known
    made = counters.made_from(hit)
    counters.record_request(outcomes.HIT, text=text, made=made)
    return Submission(hit["job_id"], Job.Status.COMPLETED, cached=True, summary=hit["summary"],
                      tags=hit["tags"], cache_key=key, made=made,
                      near_duplicate_of=hit.get("near_duplicate_of", ""))


def _remembered(item: NormalizedInput, key: str) -> Submission | None:
    """A cached summary or, for a URL, a fetch that failed moments ago."""
    if hit := cache.get_summary(key):
        return _hit(hit)
    if item.kind == URL and (job_id := cache.recent_failure(key)):
        return _known_failure(job_id)
    return None


def _hit(hit: dict[str, Any]) -> Submission:
    return Submission(hit["job_id"], Job.Status.COMPLETED, cached=True, summary=hit["summary"],
                      tags=hit["tags"], age=cache.summary_age(hit), made=counters.made_from(hit),
                      near_duplicate_of=hit.get("near_duplicate_of", ""))


def _job_answer(job_id: str, item: NormalizedInput, key: str, options: SubmitOptions, *,
                look: inflight.Look | None = None,
                callback: Callback | None = None) -> Submission:
    job = _join_or_create(job_id, item, key, options, look=look, callback=callback)
    if isinstance(job, Submission):
        return job
    if job.status == Job.Status.COMPLETED:
        return _completed(job)
    outcome = outcomes.MISS if str(job.id) == job_id else outcomes.JOINED
    return Submission(str(job.id), job.status, cached=False, outcome=outcome)


def _completed(job: Job) -> Submission:
    return Submission(str(job.id), job.status, cached=True, summary=job.summary, tags=job.tags,
                      age=_row_age(job), made=costs.made(job))


def _row_age(job: Job) -> float:
    if job.completed_at is None:
        return float("inf")
    return max(0.0, (timezone.now() - job.completed_at).total_seconds())


def _reusable(job: Job, max_age: int | None) -> bool:
    """Whether a completed row may answer (and re-cache) its input: not a
    store:false job's, not purged, and within ``max_age``."""
    return (job.status == Job.Status.COMPLETED and job.store and job.purged_at is None
            and (max_age is None or _row_age(job) <= max_age))


def _validated(raw: str) -> NormalizedInput:
    item = normalize_input(raw)
    if item.kind == URL:
        try:
            check_submit_url(item.value, fetch_policy())
        except JobError as exc:
            raise InvalidInput(exc.message, code=exc.code) from None
    elif not has_sentences(item.value):
        raise InvalidInput("input is too short to summarise: give at least two sentences",
                           code=ErrorCode.INPUT_TOO_SHORT)
    return item


def _known_failure(job_id: str) -> Submission | None:
    """The answer of a URL whose fetch failed moments ago, in job ``job_id``."""
    job = Job.objects.filter(id=job_id, status=Job.Status.FAILED).first()
    if job is None:
        return None
    return Submission(str(job.id), job.status, cached=True, error=job.error, code=job.error_code,
                      outcome=outcomes.KNOWN_FAILURE)


def _recache(job: Job) -> None:
    """The row is the truth when the cache lost an entry (Valkey flushed, or
    down when the job finished): cache it again for the rest of its TTL."""
    if job.completed_at is not None:
        left = settings.CACHE_TTL - (timezone.now() - job.completed_at).total_seconds()
        cache.set_summary(job.input_hash, {"job_id": str(job.id), "summary": job.summary,
                                           "tags": job.tags, **costs.made(job).as_payload()},
                          ttl=int(left), cached_at=job.completed_at.timestamp())


def _join_or_create(job_id: str, item: NormalizedInput, key: str, options: SubmitOptions, *,
                    look: inflight.Look | None = None,
                    callback: Callback | None = None) -> Job | Submission:
    """The active job for ``key`` (joined), or a new one with id ``job_id``.

    The in-flight marker (services.inflight) is the fast path: the submit that
    claims it creates the job, the others read the owner's row and join it.
    The database's one-active-job-per-input constraint decides every other
    case (the marker expired, the owner's row is slow to appear, or its
    creator died): we try to create the job, and if another one is active the
    INSERT fails (or waits for the other INSERT, then fails) and we join that
    one. A slow database costs waiting, never a second job.

    ``look``: the submit's first look (inflight.look_or_claim), if it made
    one that claimed the marker or found its owner.
    """
    looked = look is not None and (look.claimed or look.owner is not None)
    if look is None or not looked:
        look = inflight.look_or_claim(key, job_id, cached=False)
    claimed = look.claimed
    if not claimed and look.owner is not None:
        job = _owner_row(key, look.owner)
        if job is not None and job.is_active:
            return _joined(job, options)
        if job is not None:
            # A finished job's marker outlived it: Valkey (or the cache's own
            # server) was down when the job's completion released it. Drop it
            # (only if still that job's), so the next submit looks at the
            # cache again, and put a reusable row's summary back there.
            inflight.release(key, look.owner)
            if not options.refresh and _reusable(job, options.max_age):
                _recache(job)
                return job
    # Nobody is computing it now. A job releases the marker only after
    # completing, so the cache tells whether one finished between our first
    # look and now (and the row does, under the lock in _create_or_join).
    # A claim made in the same atomic step as that look needs no second one.
    if not options.refresh and not (looked and claimed) and (done := _remembered(item, key)):
        if _fresh(done, options.max_age):
            if claimed:
                inflight.release(key, job_id)
            return done
        # Cached meanwhile, but too old for max_age: make it anew.
        options = replace(options, refresh=True)
    return _create_or_join(job_id, item, key, options, claimed=claimed, callback=callback)


def _owner_row(key: str, owner: str) -> Job | None:
    """The marker owner's job row, waiting a moment while its creator writes
    it; None if it does not appear (a slow database, or a creator that died):
    the caller then tries to create the job itself, which the database allows
    only if no other job for the input is active."""
    deadline = time.monotonic() + OWNER_ROW_WAIT_SECONDS
    while (job := job_rows.load(owner)) is None:
        if inflight.owner(key) != owner or time.monotonic() > deadline:
            return None
        time.sleep(0.02)
    return job


def _active_or_completed(key: str, *, refresh: bool, max_age: int | None = None) -> Job | None:
    """The active job for ``key``, or (unless ``refresh``) the newest one that
    completed it within the cache TTL (and ``max_age``), if that row may be
    reused (_reusable: not store:false, not purged); one query, in plain SQL
    (summaries/bypasses/job_rows.py): every submit that misses the cache makes it."""
    since = None
    if not refresh:
        window = settings.CACHE_TTL if max_age is None else min(settings.CACHE_TTL, max_age)
        since = timezone.now() - timedelta(seconds=window)
    return job_rows.active_or_completed(key, completed_since=since)


def _create_or_join(job_id: str, item: NormalizedInput, key: str, options: SubmitOptions, *,
                    claimed: bool, callback: Callback | None = None) -> Job:
    """Create the job for ``key`` unless one is active (join it) or, without
    ``options.refresh``, one just completed (answer with it).

    Look and INSERT happen under one lock per input (SQLite's write lock,
    PostgreSQL's advisory lock), so a job cannot be created and completed
    between them: however long the INSERT waited, it never starts a second
    job for what another one just summarised.
    """
    try:
        with transaction.atomic():
            lock_input(key)
            current = _active_or_completed(key, refresh=options.refresh,
                                           max_age=options.max_age)
            if current is not None:
                if current.is_active:
                    inflight.adopt(key, str(current.id))
                    _joined(current, options)
                else:
                    if claimed:
                        inflight.release(key, job_id)
                    _recache(current)
                return current
            job = _create_job(job_id, item, key, options, callback=callback)
    except IntegrityError:  # an active job appeared all the same: join it
        active = Job.objects.filter(input_hash=key, status__in=Job.ACTIVE).first()
        if active is None:
            if claimed:
                inflight.release(key, job_id)
            raise Busy("a job for this input just ended; try again") from None
        inflight.adopt(key, str(active.id))
        return active
    except BaseException:
        if claimed:  # no job came of our claim: free the input at once
            inflight.release(key, job_id)
        raise
    if not claimed:
        inflight.adopt(key, job_id)
    return job


def _joined(job: Job, options: SubmitOptions) -> Job:
    """A submit joins the active ``job``: one that cannot wait (no deadline)
    takes a job waiting in the batch lane out of it, to a live call; one
    that can wait less long than the job brings its deadline forward."""
    if job.stage == Job.Stage.BATCHED and options.deadline is None:
        batch_lane.promote(job)
    elif job.stage == Job.Stage.BATCHED and options.deadline is not None:
        batch_lane.tighten(job, options.deadline)
    return job


def _source_text(item: NormalizedInput) -> str:
    """A text's lines as submitted, for the near-duplicate index (an AI
    summary of it is indexed, and its row is what a later check reads)."""
    if item.kind == URL or not item.raw or not near_duplicates.enabled():
        return ""
    return near_duplicates.source_lines(item.raw)


def _create_job(job_id: str, item: NormalizedInput, key: str, options: SubmitOptions, *,
                callback: Callback | None = None) -> Job:
    # "priority": "batch" or a deadline: the job waits in the batch lane
    # (services/batch_lane.py), processing, and no task is sent.
    batched = batch_lane.holds(item, options.deadline)
    lane = batch_lane.waiting_fields(options.deadline) if batched and options.deadline else {
        "stage": Job.Stage.QUEUED}
    job = job_rows.insert(Job(
        id=job_id,
        kind=item.kind,
        input_hash=key,
        input_text=item.value,
        url=item.value if item.kind == URL else "",
        refresh=options.refresh,
        store=options.store,
        # Set at creation, so the worker that finishes the job knows (services/webhooks.py).
        has_callbacks=callback is not None,
        queue=options.queue,
        near_duplicates=options.near_duplicates,
        max_age=options.max_age,
        source_text=_source_text(item),
        provider=cache_namespace(),
        language=item.language or "",
        style=item.form.style,
        length=item.form.length,
        **lane,
    ))
    if callback is not None:
        webhooks.subscribe_new(job=job, callback=callback)
    if _near_indexed(item, options):
        # Indexed now, so a copy submitted while it is made (or waits in the
        # batch lane) joins it (services/near_duplicates.py, step 4).
        indexable = near_duplicates.Indexable(
            near_duplicates.variant(job.provider, item.language, item.form),
            job.source_text or job.input_text)
        transaction.on_commit(lambda: near_duplicates.index_now(job_id, indexable))
    if not batched:
        transaction.on_commit(lambda: enqueue(job_id, queue=options.queue))
    return job


def _near_indexed(item: NormalizedInput, options: SubmitOptions) -> bool:
    """Whether a job for ``item`` is indexed as a near-duplicate's original
    (as its completion would: services/jobs.py ``_indexable``)."""
    return (item.kind == TEXT and near_duplicates.enabled() and options.near_duplicates
            and not options.refresh and options.store)
