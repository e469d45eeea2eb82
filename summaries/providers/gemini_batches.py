"""Gemini's Batch API with inline requests (``client.batches``), for the
batch lane (``BatchApi``: summaries/providers/batch_api.py).

Each item is one ``InlinedRequest``: the live call's instructions, prompt
and schema (gemini.generate_config), with ``metadata={"key": <item id>}``
naming it; the batch job is created under a display name of ours
(``CreateBatchJobConfig(display_name=...)``), so ``find`` can look it up
again in ``batches.list``. A finished job's ``dest.inlined_responses`` carry
each item's ``GenerateContentResponse`` (read and contract-checked as a live
answer: gemini.read_batch_answer) or its ``error``, with the metadata given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from google.genai import types

from summaries.core.errors import ErrorCode, JobError
from summaries.core.forms import DEFAULT_FORM, Form
from summaries.providers.batch_api import ItemResult, RemoteBatch, RemoteState
from summaries.providers.common import brief, build_prompt, instructions
from summaries.providers.contract import BatchItem
from summaries.providers.gemini import (
    GeminiProvider,
    generate_config,
    read_batch_answer,
    schema_for,
)

# JobState names (the SDK maps the REST API's BATCH_STATE_* to these).
_STATES = {
    "JOB_STATE_SUCCEEDED": RemoteState.SUCCEEDED,
    "JOB_STATE_PARTIALLY_SUCCEEDED": RemoteState.SUCCEEDED,
    "JOB_STATE_FAILED": RemoteState.FAILED,
    "JOB_STATE_EXPIRED": RemoteState.EXPIRED,
    "JOB_STATE_CANCELLED": RemoteState.CANCELLED,
}
# How many of the newest batch jobs ``find`` looks through for a display name.
_FIND_PAGE = 100


class GeminiBatchApi:
    """``BatchApi`` over a ``GeminiProvider``'s SDK client, timeout and model."""

    name = "gemini"

    def __init__(self, provider: GeminiProvider) -> None:
        self._provider = provider

    def create(self, *, display_name: str, items: Sequence[BatchItem]) -> str:
        requests = [
            types.InlinedRequest(
                contents=build_prompt(item.text),
                metadata={"key": item.id},
                config=generate_config(instructions(item.text, item.language, item.form),
                                       schema_for(item.form)),
            )
            for item in items
        ]
        client = self._provider.client()
        job = self._provider.call(lambda: client.batches.create(
            model=self._provider.model, src=requests,
            config=types.CreateBatchJobConfig(display_name=display_name)))
        if not job.name:
            raise JobError("Gemini created a batch job without a name",
                           code=ErrorCode.AI_UNAVAILABLE, transient=True)
        return job.name

    def find(self, *, display_name: str) -> str | None:
        client = self._provider.client()
        page = self._provider.call(lambda: client.batches.list(
            config=types.ListBatchJobsConfig(page_size=_FIND_PAGE)))
        for job in page.page or []:
            if job.display_name == display_name and job.name:
                return job.name
        return None

    def get(self, remote_id: str, forms: Mapping[str, Form] | None = None) -> RemoteBatch:
        client = self._provider.client()
        job = self._provider.call(lambda: client.batches.get(name=remote_id))
        provider_state = _state_name(job.state)
        state = _STATES.get(provider_state, RemoteState.RUNNING)
        if state != RemoteState.SUCCEEDED:
            return RemoteBatch(remote_id, state, provider_state)
        results: dict[str, ItemResult] = {}
        for answer in (job.dest.inlined_responses if job.dest is not None else None) or []:
            key = (answer.metadata or {}).get("key")
            if isinstance(key, str):
                results[key] = _item_result(answer, (forms or {}).get(key, DEFAULT_FORM))
        return RemoteBatch(remote_id, state, provider_state, results)

    def cancel(self, remote_id: str) -> None:
        client = self._provider.client()
        self._provider.call(lambda: client.batches.cancel(name=remote_id))


def _item_result(answer: types.InlinedResponse, form: Form) -> ItemResult:
    if answer.response is None:
        detail = answer.error.message if answer.error is not None else "no response"
        return ItemResult(None, JobError(brief(f"Gemini's batch item failed: {detail}"),
                                         code=ErrorCode.AI_UNAVAILABLE, transient=True))
    usage = answer.response.usage_metadata
    tokens = (usage.prompt_token_count, usage.candidates_token_count) if usage else (None, None)
    try:
        return ItemResult(read_batch_answer(answer.response, form), None, *tokens)
    except JobError as exc:  # blocked, cut off, breaking the contract: asked live
        return ItemResult(None, exc, *tokens)


def _state_name(state: object) -> str:
    return str(getattr(state, "value", state) or "").upper()
