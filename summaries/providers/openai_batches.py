"""OpenAI's Batch API, for the batch lane (``BatchApi``:
summaries/providers/batch_api.py).

``create`` uploads a JSONL file (``files.create(purpose="batch")``) of
``/v1/chat/completions`` requests, one per item (``custom_id``: the item id;
``body``: the live call's, openai.OpenAIProvider.summary_request), then
``batches.create`` with ``metadata={"display_name": ...}``, so ``find`` can
look it up again in ``batches.list``. A finished batch (completed, or
expired with part of its work done) has an output file (each line
``{"custom_id", "response": {"status_code", "body"}}``) and an error file
(lines with ``error``), read with ``files.content``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Final

from openai.types.chat import ChatCompletion

from summaries.core.errors import ErrorCode, JobError
from summaries.core.forms import DEFAULT_FORM, Form
from summaries.providers.batch_api import ItemResult, RemoteBatch, RemoteState
from summaries.providers.common import GARBLED, brief
from summaries.providers.contract import BatchItem
from summaries.providers.openai import OpenAIProvider, read_completion

ENDPOINT: Final = "/v1/chat/completions"
WINDOW: Final = "24h"  # the only completion window OpenAI offers
_STATES = {
    "completed": RemoteState.SUCCEEDED,
    "failed": RemoteState.FAILED,
    "expired": RemoteState.EXPIRED,
    "cancelled": RemoteState.CANCELLED,
}
_FIND_PAGE = 100


class OpenAIBatchApi:
    """``BatchApi`` over an ``OpenAIProvider``'s SDK client, timeout and model."""

    name = "openai"

    def __init__(self, provider: OpenAIProvider) -> None:
        self._provider = provider

    def create(self, *, display_name: str, items: Sequence[BatchItem]) -> str:
        lines = [json.dumps({"custom_id": item.id, "method": "POST", "url": ENDPOINT,
                             "body": self._provider.summary_request(item.text, item.language,
                                                                    item.form)})
                 for item in items]
        data = ("\n".join(lines) + "\n").encode()
        client = self._provider.client()
        upload = self._provider.call(lambda: client.files.create(
            file=(f"{display_name}.jsonl", data, "application/jsonl"), purpose="batch"))
        batch = self._provider.call(lambda: client.batches.create(
            input_file_id=upload.id, endpoint=ENDPOINT, completion_window=WINDOW,
            metadata={"display_name": display_name}))
        return batch.id

    def find(self, *, display_name: str) -> str | None:
        client = self._provider.client()
        page = self._provider.call(lambda: client.batches.list(limit=_FIND_PAGE))
        for batch in page.data:
            if (batch.metadata or {}).get("display_name") == display_name:
                return batch.id
        return None

    def get(self, remote_id: str, forms: Mapping[str, Form] | None = None) -> RemoteBatch:
        client = self._provider.client()
        batch = self._provider.call(lambda: client.batches.retrieve(remote_id))
        state = _STATES.get(batch.status, RemoteState.RUNNING)
        if state == RemoteState.RUNNING:
            return RemoteBatch(remote_id, state, batch.status)
        results: dict[str, ItemResult] = {}
        for file_id in (batch.error_file_id, batch.output_file_id):  # output wins
            if file_id:
                results.update(self._read(file_id, forms or {}))
        return RemoteBatch(remote_id, state, batch.status, results)

    def cancel(self, remote_id: str) -> None:
        client = self._provider.client()
        self._provider.call(lambda: client.batches.cancel(remote_id))

    def _read(self, file_id: str, forms: Mapping[str, Form]) -> dict[str, ItemResult]:
        client = self._provider.client()
        content = self._provider.call(lambda: client.files.content(file_id))
        results: dict[str, ItemResult] = {}
        for line in content.text.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line we cannot read: its item has no answer
            if isinstance(entry, dict) and isinstance(entry.get("custom_id"), str):
                key = entry["custom_id"]
                results[key] = _item_result(entry, forms.get(key, DEFAULT_FORM))
        return results


def _item_result(entry: dict[str, object], form: Form) -> ItemResult:
    response = entry.get("response")
    body = response.get("body") if isinstance(response, dict) else None
    status = response.get("status_code") if isinstance(response, dict) else None
    if status != 200 or not isinstance(body, dict):
        error = entry.get("error")
        detail = error.get("message") if isinstance(error, dict) else f"HTTP {status}"
        return ItemResult(None, JobError(brief(f"the batch item failed: {detail}"),
                                         code=ErrorCode.AI_UNAVAILABLE, transient=True))
    try:
        completion = ChatCompletion.model_validate(body)
    except GARBLED as exc:
        return ItemResult(None, JobError(f"the batch item's answer is unreadable "
                                         f"({type(exc).__name__})",
                                         code=ErrorCode.AI_UNAVAILABLE, transient=True))
    usage = completion.usage
    tokens = (usage.prompt_tokens, usage.completion_tokens) if usage else (None, None)
    try:
        return ItemResult(read_completion(completion, form), None, *tokens)
    except JobError as exc:  # blocked, cut off, breaking the contract: asked live
        return ItemResult(None, exc, *tokens)
