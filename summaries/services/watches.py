"""Watched URLs: re-fetch a page on a schedule, summarise it again when its
article text changed, and call the watch's callback with the new job.

The schedule is the rows' ``next_run_at``, so it survives restarts. The tick
(beat, every SCHEDULE_TICK_SECONDS) claims each due watch with a
conditional UPDATE that moves ``next_run_at`` on from the value it read:
however many beat or worker processes tick at once, one of them wins a
watch's turn, and the others' UPDATE matches nothing. A check whose message
is lost is simply skipped until the next turn.

A check (:func:`watch_check`) fetches and extracts the page as a job would,
and hashes the extracted text (normalised, SHA-256). The same hash as last
time, and its job completed (or still running): nothing more, no AI call.
A new one: a refresh job for the URL (one AI call per change; it also
refreshes the URL's cached summary for every client) with the watch's
callback subscribed to it. The first check counts as a change: it makes the
first summary. A hash is done only once its job completed: when the job
failed (the AI refused it once, the fetch failed in the job ...), the next
check starts another for the same text.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import timedelta
from typing import Final

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from summaries.core.errors import ErrorCode, InvalidInput, JobError
from summaries.core.forms import DEFAULT_FORM, Form
from summaries.core.inputs import URL, normalize_input, normalize_text
from summaries.core.lanes import Lane
from summaries.fetching import check_submit_url
from summaries.infra import dispatch
from summaries.infra.database import release_connection
from summaries.models import Job, Watch
from summaries.services import callbacks
from summaries.services.config import fetch_policy
from summaries.services.pipeline import fetch_article
from summaries.services.submit import summary_request
from summaries.services.submit_options import SubmitOptions

logger = logging.getLogger(__name__)

MIN_EVERY: Final = 60
MAX_EVERY: Final = 366 * 86400
UNITS: Final = {"m": 60, "h": 3600, "d": 86400}
_EVERY: Final = re.compile(r"([1-9][0-9]{0,6})([mhd])")


def parse_every(value: object) -> int:
    """Seconds from ``"15m"``, ``"1h"``, ``"1d"`` or a JSON integer of
    seconds; at least a minute, at most a year. Raises InvalidInput
    (``invalid_every``)."""
    if type(value) is int:
        seconds = value
    elif isinstance(value, str) and (match := _EVERY.fullmatch(value.strip())):
        seconds = int(match[1]) * UNITS[match[2]]
    else:
        raise InvalidInput('every: give seconds as an integer, or a number with m, h or d '
                           '("15m", "1h", "1d")', code=ErrorCode.INVALID_EVERY)
    if not MIN_EVERY <= seconds <= MAX_EVERY:
        raise InvalidInput(f"every: from {MIN_EVERY} seconds (one minute) to a year, "
                           f"not {seconds}", code=ErrorCode.INVALID_EVERY)
    return seconds


def watch_create(*, url: str, every: int, callback_url: str = "",
                 form: Form = DEFAULT_FORM) -> Watch:
    """A watch of ``url`` (checked as a submitted URL is) every ``every``
    seconds, its summaries asked in ``form``; its first check is sent at
    once. Raises InvalidInput."""
    item = normalize_input(url)
    if item.kind != URL:
        raise InvalidInput("url: give an http(s) URL to watch", code=ErrorCode.INVALID_URL)
    try:
        check_submit_url(item.value, fetch_policy())
    except JobError as exc:
        raise InvalidInput(exc.message, code=exc.code) from None
    callback = callbacks.check_callback_url(callback_url) if callback_url else ""
    watch = Watch.objects.create(url=item.value, every_seconds=every, callback_url=callback,
                                 style=form.style, length=form.length,
                                 next_run_at=timezone.now() + timedelta(seconds=every))
    watch_id = str(watch.id)
    transaction.on_commit(lambda: send_check(watch_id))
    return watch


def watch_list() -> QuerySet[Watch]:
    return Watch.objects.select_related("last_job").order_by("-created_at", "-id")


def watch_delete(*, watch: Watch) -> None:
    watch.delete()


def watches_due(*, limit: int = 200) -> list[str]:
    """Claim the due watches (the tick's part): each one's next turn is
    moved on by a conditional UPDATE on the ``next_run_at`` read, so one
    ticker wins it however many race. The ids this ticker won."""
    now = timezone.now()
    due = (Watch.objects.filter(next_run_at__lte=now).order_by("next_run_at")
           .values_list("id", "next_run_at", "every_seconds")[:limit])
    won = []
    for watch_id, next_run_at, every in due:
        claimed = Watch.objects.filter(id=watch_id, next_run_at=next_run_at).update(
            next_run_at=now + timedelta(seconds=every))
        if claimed:
            won.append(str(watch_id))
        else:
            logger.info("watch %s: another ticker got there first", watch_id)
    return won


def send_check(watch_id: str) -> None:
    try:
        dispatch.send(dispatch.CHECK_WATCH, watch_id, queue=Lane.BULK)
    except Exception:
        logger.warning("watch %s: check not sent; it runs at its next turn", watch_id,
                       exc_info=True)


def content_hash(text: str) -> str:
    return hashlib.sha256(normalize_text(text).encode()).hexdigest()


def watch_check(*, watch_id: str) -> None:
    """Fetch the watched page; summarise it again if its text changed."""
    watch = Watch.objects.select_related("last_job").filter(id=watch_id).first()
    if watch is None:
        return  # deleted meanwhile
    mine = Watch.objects.filter(id=watch_id)
    now = timezone.now()
    release_connection()  # not held through the fetch (summaries/infra/database.py)
    try:
        _, article = fetch_article(watch.url)
    except JobError as exc:
        mine.update(last_checked_at=now, checks=F("checks") + 1, last_error=exc.message,
                    last_error_code=exc.code)
        return
    digest = content_hash(article.text)
    if digest == watch.content_hash and not _failed(watch):
        mine.update(last_checked_at=now, checks=F("checks") + 1, last_error="",
                    last_error_code="")
        return
    retry = digest == watch.content_hash  # the same text, whose summary failed
    try:
        job_id = summary_request(raw=watch.url, options=SubmitOptions(
            refresh=True, queue=Lane.BULK, callback_url=watch.callback_url,
            watch_id=watch_id, form=Form(watch.style, watch.length))).job_id
    except Exception as exc:  # Valkey down, busy ...: the next turn tries again
        logger.warning("watch %s: could not start its job: %s", watch_id, exc)
        mine.update(last_checked_at=now, checks=F("checks") + 1,
                    last_error=f"could not start the summary ({type(exc).__name__})",
                    last_error_code=ErrorCode.JOB_NOT_STARTED)
        return
    if retry:
        mine.update(last_checked_at=now, last_job_id=job_id, checks=F("checks") + 1,
                    last_error="", last_error_code="")
        logger.info("watch %s: summarising %s again after a failed job; job %s",
                    watch_id, watch.url, job_id)
        return
    mine.update(content_hash=digest, last_checked_at=now, last_changed_at=now,
                last_job_id=job_id, checks=F("checks") + 1, changes=F("changes") + 1,
                last_error="", last_error_code="")
    logger.info("watch %s: %s changed; job %s", watch_id, watch.url, job_id)


def _failed(watch: Watch) -> bool:
    """Whether the job of the watch's last change failed: its text is then
    not summarised yet, and the check after the failure tries again (one job
    per check at most, as a page changing at every check would cost). A job
    still running, or one gone (retention deletes only old jobs, long after
    a retry would have replaced a failed one), counts as done."""
    return watch.last_job is not None and watch.last_job.status == Job.Status.FAILED
