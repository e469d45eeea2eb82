"""Bulk submit: each item of a batch answered as a single submit of it would be."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rest_framework import status

from summaries.api.errors import count_rejected, first_error, refusal
from summaries.api.serializers import SubmitRequest
from summaries.core.lanes import Lane
from summaries.infra import dispatch
from summaries.representations.bodies import CACHE_STATUS
from summaries.services.submit import Submission, summary_request


@dataclass(frozen=True)
class ItemAnswer:
    """One item's answer: its Submission, or why it was refused.

    ``http_status`` is what a single submit of the item would have got;
    ``error``/``code`` say why it was refused, or why its job failed.
    """

    http_status: int
    submission: Submission | None = None
    status_url: str = ""
    error: str = ""
    code: str = ""

    @property
    def cache(self) -> str:
        return CACHE_STATUS[self.submission.outcome] if self.submission else ""


def answer_items(items: Sequence[Any], status_url: Callable[[str], str]) -> list[ItemAnswer]:
    """Answer each item in order, on the bulk lane. Each is validated, counted
    and deduplicated like a single submit (an item repeated in the batch
    joins the first one's job). A refused item (invalid, too large, busy) is
    answered alone; an unavailable Valkey or database raises, and the whole
    batch gets the single submit's 503. ``status_url`` maps a job id to
    its status URL. The new jobs' messages are sent together once every
    item is answered (``dispatch.held``): the workers get them at once."""
    with dispatch.held():
        return [_answer(item, status_url) for item in items]


def _answer(item: Any, status_url: Callable[[str], str]) -> ItemAnswer:
    form = SubmitRequest(data={"input": item} if isinstance(item, str) else item)
    if not form.is_valid():
        message, code = first_error(form.errors)
        return ItemAnswer(status.HTTP_400_BAD_REQUEST, error=message, code=code)
    try:
        options = replace(SubmitRequest.options(form.validated_data), queue=Lane.BULK)
        sub = summary_request(raw=form.validated_data["input"], options=options)
    except Exception as exc:
        if (refused := refusal(exc)) is None:
            raise
        message, code, http_status = refused
        count_rejected(exc)
        return ItemAnswer(http_status, error=message, code=code)
    if sub.cached:
        return ItemAnswer(status.HTTP_200_OK, sub, error=sub.error, code=sub.code)
    return ItemAnswer(status.HTTP_202_ACCEPTED, sub, status_url=status_url(sub.job_id))
