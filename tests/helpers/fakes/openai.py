"""A loopback fake of an OpenAI-compatible ``/v1/chat/completions``, for the real SDK.

Usage::

    with FakeOpenAI() as server:                  # 127.0.0.1, free port
        provider = OpenAIProvider("key", "gpt-x", server.base_url, 2.0)
        server.mode = "rate_limit_retry_after"    # switch behaviour at runtime
        server.script(["server_error", "ok"])     # or one mode per coming call
        server.formats = {"json_object"}          # a server without json_schema
        assert server.calls == 2 and server.received[0].response_format == "json_schema"

``base_url`` ends in ``/v1``, as an OpenAI-compatible base URL does. The
answer is built like the fake Gemini's (tests/helpers/fakes/gemini.py): the
first two sentences of the text between ``<text>`` markers and its most
frequent words as tags, in the form the system message asks for (as the
fake Gemini's: ``form_of``); a batch prompt (a JSON array of items) is
answered ``{"items": [{"id", "summary", "tags"}, ...]}``.

``formats``: the ``response_format`` types the server accepts (default both
``json_schema`` and ``json_object``); a request with another one gets a 400
naming ``response_format``, as vLLM, llama.cpp and LiteLLM answer. With no
``response_format`` at all the answer comes in a Markdown code fence after a
sentence of prose, as chat models write when only asked for JSON in words.

Modes: ``ok``; ``rate_limit`` (429), ``rate_limit_retry_after`` (the same
with ``Retry-After: <retry_after_s>``); ``server_error`` (500),
``unavailable`` (503); ``rejected`` (400, not about the format),
``unauthorized`` (401), ``not_found`` (404, an unknown model); ``hang`` (no
answer for ``hang_s``); ``content_filter`` and ``length`` (those
finish_reasons); ``refusal`` (a refusal message); ``bad`` (an answer that
breaks the contract), ``bad_then_ok``; ``html`` (200 with an HTML page);
``huge`` and ``huge_unsized`` (a valid answer padded to ``huge_bytes``, with
and without Content-Length; ``huge_sent``: the bytes the client took);
``context_limit`` (HTTP 400 ``context_length_exceeded``, as vLLM and OpenAI
answer, to a request over ``context_tokens`` tokens of 4 characters; ``ok``
to the others); ``block_word`` (a ``content_filter`` finish for a request
whose user text holds ``block_word``, ``ok`` for the others).

Every completion reports its tokens (``usage``: ``prompt_tokens``, the
messages at 4 characters a token, and ``completion_tokens``, the answer's);
``report_usage = False`` leaves ``usage`` out, as some OpenAI-compatible
servers do.
The Batch API: ``POST /v1/files`` (multipart, purpose ``batch``: a JSONL of
``/v1/chat/completions`` requests), ``POST /v1/batches``, ``GET
/v1/batches/<id>`` (done: ``output_file_id`` and, for errors,
``error_file_id``), ``GET /v1/batches`` (list), ``POST
/v1/batches/<id>/cancel``, ``GET /v1/files/<id>/content``. Each request of a
batch is answered as ``ok`` answers a live call. Not in ``calls`` (live calls
only); knobs and counters are ``batches`` (tests/helpers/fakes/batch_jobs.py).
"""

from __future__ import annotations

import itertools
import json
import re
import time
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.helpers.fakes.batch_jobs import BatchJobs, FakeBatchJob
from tests.helpers.fakes.gemini import (
    _batch_items,
    _summary_of,
    form_of,
    prompt_tokens,
    send_huge,
)
from tests.helpers.fakes.loopback import LoopbackServer, send, send_raw

_BATCHES = re.compile(r"^/v1/batches(?:/(?P<id>[^/?]+)(?P<cancel>/cancel)?)?(?:\?.*)?$")
_FILE_CONTENT = re.compile(r"^/v1/files/(?P<id>[^/?]+)/content$")

MODES = frozenset({"ok", "rate_limit", "rate_limit_retry_after", "server_error", "unavailable",
                   "rejected", "unauthorized", "not_found", "hang", "content_filter", "length",
                   "refusal", "bad", "bad_then_ok", "html", "huge", "huge_unsized",
                   "context_limit", "block_word"})
FORMATS = frozenset({"json_schema", "json_object"})
_ERRORS = {
    "rate_limit": (429, "rate_limit_exceeded", "Rate limit reached for requests"),
    "rate_limit_retry_after": (429, "rate_limit_exceeded", "Rate limit reached for requests"),
    "server_error": (500, "server_error", "The server had an error processing your request."),
    "unavailable": (503, "service_unavailable", "The engine is currently overloaded."),
    "rejected": (400, "invalid_request_error", "'messages' must contain at least one message."),
    "unauthorized": (401, "invalid_api_key", "Incorrect API key provided."),
    "not_found": (404, "model_not_found", "The model does not exist."),
}
_HTML = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"


@dataclass(frozen=True)
class Call:
    """One chat.completions request as received."""

    model: str
    api_key: str
    system: str
    user: str
    response_format: str  # its "type", or "" when none was sent
    body: dict[str, Any]
    items: list[dict[str, Any]] | None = None  # a batch prompt's items


class FakeOpenAI(LoopbackServer[Call]):
    """Threaded HTTP server speaking enough of the Chat Completions API for the SDK."""

    modes = MODES
    thread_name = "fake-openai"
    answers_get = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.batches = BatchJobs("batch_fake")
        self.files: dict[str, bytes] = {}
        self._file_ids = itertools.count(1)
        super().__init__(host, port)
        self.formats: set[str] = set(FORMATS)
        self.retry_after_s = 3
        self.huge_bytes, self.huge_sent = 100 * 1024 * 1024, 0
        self.block_word, self.context_tokens = "forbiddenword", 2048
        self.report_usage = True

    def reset(self) -> None:
        super().reset()
        self.batches.reset()
        self.files.clear()
        self.formats = set(FORMATS)
        self.retry_after_s = 3
        self.huge_bytes, self.huge_sent = 100 * 1024 * 1024, 0
        self.block_word, self.context_tokens = "forbiddenword", 2048
        self.report_usage = True

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    @property
    def items_per_call(self) -> list[int]:
        return [len(call.items) if call.items is not None else 1 for call in self.received]

    def handle(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        if self._handle_batches(handler, raw):
            return
        if handler.path.rstrip("/") != "/v1/chat/completions":
            send(handler, 404, _error(404, "not_found", f"no route for {handler.path}"))
            return
        body = json.loads(raw or b"{}")
        messages = body.get("messages", [])
        system = "\n\n".join(str(m.get("content", "")) for m in messages
                             if m.get("role") == "system")
        user = "\n\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "user")
        fmt = (body.get("response_format") or {}).get("type", "")
        auth = handler.headers.get("Authorization", "")
        call = Call(model=str(body.get("model", "")), api_key=auth.removeprefix("Bearer "),
                    system=system, user=user, response_format=fmt, body=body,
                    items=_batch_items(user))
        mode, number, release = self.record(call)
        if self.delay_s > 0 and self.wait(release, self.delay_s):
            return
        if fmt and fmt not in self.formats:
            send(handler, 400, _error(400, "invalid_request_error",
                                      f"response_format of type {fmt!r} is not supported by "
                                      f"this model", param="response_format"))
            return
        if mode == "hang":
            self.wait(release, self.hang_s)
            return
        if mode == "context_limit" and (
                tokens := prompt_tokens(call.system + call.user)) > self.context_tokens:
            send(handler, 400, _error(400, "context_length_exceeded",
                                      f"This model's maximum context length is "
                                      f"{self.context_tokens} tokens. However, your messages "
                                      f"resulted in {tokens} tokens.", param="messages"))
            return
        if mode == "block_word" and self.block_word in call.user:
            mode = "content_filter"
        if mode in _ERRORS:
            status, code, message = _ERRORS[mode]
            extra = {"Retry-After": str(self.retry_after_s)} if mode.endswith("retry_after") \
                else {}
            send(handler, status, _error(status, code, message), extra)
            return
        if mode == "html":
            send_raw(handler, 200, "text/html; charset=utf-8", _HTML)
            return
        if mode in ("huge", "huge_unsized"):
            data = json.dumps(_completion("ok", call, number)).encode()
            self.huge_sent = send_huge(handler, data, self.huge_bytes, mode == "huge")
            return
        completion = _completion(mode, call, number)
        if not self.report_usage:
            completion.pop("usage", None)
        send(handler, 200, completion)

    # -- the Batch API ------------------------------------------------------------

    def _handle_batches(self, handler: BaseHTTPRequestHandler, raw: bytes) -> bool:
        """Answer a Files or Batch API request; False for any other."""
        path = handler.path
        if path == "/v1/files" and handler.command == "POST":
            uploaded = _uploaded(handler.headers.get("Content-Type", ""), raw)
            send(handler, 200, self._file(uploaded, "input.jsonl", "batch"))
            return True
        if (content := _FILE_CONTENT.match(path)) is not None:
            data = self.files.get(content.group("id"))
            if data is None:
                send(handler, 404, _error(404, "not_found", "no such file"))
            else:
                send_raw(handler, 200, "application/octet-stream", data)
            return True
        match = _BATCHES.match(path)
        if match is None:
            return False
        job_id = match.group("id")
        if job_id is None and handler.command == "POST":
            body = json.loads(raw or b"{}")
            lines = self.files.get(str(body.get("input_file_id", "")), b"").splitlines()
            requests = [json.loads(line) for line in lines if line.strip()]
            job = self.batches.create(
                str((body.get("metadata") or {}).get("display_name", "")),
                [(str(r.get("custom_id", "")), r) for r in requests],
                {"input_file_id": body.get("input_file_id"),
                 "metadata": body.get("metadata") or {}})
            send(handler, 200, self._batch(job))
        elif job_id is None:
            listed = [self._batch(job) for job in self.batches.listed()]
            send(handler, 200, {"object": "list", "data": listed, "has_more": False,
                                "first_id": listed[0]["id"] if listed else None,
                                "last_id": listed[-1]["id"] if listed else None})
        else:
            if match.group("cancel"):
                found = self.batches.cancel(job_id)
            else:
                if self.batches.get_delay_s > 0:
                    self.wait(self._release, self.batches.get_delay_s)
                found = self.batches.get(job_id)
            if found is None:
                send(handler, 404, _error(404, "not_found", f"no batch {job_id}"))
            else:
                send(handler, 200, self._batch(found))
        return True

    def _file(self, data: bytes, name: str, purpose: str) -> dict[str, Any]:
        file_id = f"file-fake{next(self._file_ids)}"
        self.files[file_id] = data
        return {"id": file_id, "object": "file", "bytes": len(data),
                "created_at": int(time.time()), "filename": name, "purpose": purpose,
                "status": "processed"}

    def _batch(self, job: FakeBatchJob) -> dict[str, Any]:
        status = {"running": "in_progress", "succeeded": "completed"}.get(job.state, job.state)
        output_id = error_id = None
        if job.state == "succeeded":
            if "output_file_id" not in job.metadata:
                outputs, errors = [], []
                for index, key, request in self.batches.answered(job):
                    line = {"id": f"batch_req_{index}", "custom_id": key, "error": None}
                    if self.batches.errs(job, index):
                        errors.append({**line, "response": {
                            "status_code": 500, "request_id": f"req_{index}",
                            "body": _error(500, "server_error", "internal error")}})
                        continue
                    body = request.get("body", {})
                    messages = body.get("messages", [])
                    call = Call(model=str(body.get("model", "")), api_key="",
                                system="\n\n".join(str(m.get("content", "")) for m in messages
                                                    if m.get("role") == "system"),
                                user="\n\n".join(str(m.get("content", "")) for m in messages
                                                  if m.get("role") == "user"),
                                response_format=(body.get("response_format") or {}).get(
                                    "type", ""), body=body)
                    outputs.append({**line, "response": {
                        "status_code": 200, "request_id": f"req_{index}",
                        "body": _completion("bad" if job.mode == "bad" else "ok", call,
                                            index)}})
                job.metadata["output_file_id"] = self._file(_jsonl(outputs), "output.jsonl",
                                                            "batch_output")["id"]
                if errors:
                    job.metadata["error_file_id"] = self._file(_jsonl(errors), "errors.jsonl",
                                                               "batch_output")["id"]
            output_id = job.metadata["output_file_id"]
            error_id = job.metadata.get("error_file_id")
        return {"id": job.id, "object": "batch", "endpoint": "/v1/chat/completions",
                "errors": None, "input_file_id": job.metadata.get("input_file_id"),
                "completion_window": "24h", "status": status, "output_file_id": output_id,
                "error_file_id": error_id, "created_at": int(time.time()),
                "metadata": job.metadata.get("metadata") or {},
                "request_counts": {"total": len(job.items), "completed": 0, "failed": 0}}


def _uploaded(content_type: str, raw: bytes) -> bytes:
    """The ``file`` part of a multipart/form-data body."""
    message = BytesParser(policy=email_policy).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else b""
    return b""


def _jsonl(entries: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(entry) + "\n" for entry in entries).encode()


def _completion(mode: str, call: Call, number: int) -> dict[str, Any]:
    finish = "stop"
    refusal = None
    if mode == "bad":
        content = json.dumps({"summary": " ".join(["This is one sentence."] * 6), "tags": ["x"]})
    elif call.items is not None:
        form = form_of(call.system)
        content = json.dumps({"items": [{"id": item["id"], **_summary_of(item["text"], form)}
                                        for item in call.items]})
    else:
        content = json.dumps(_summary_of(call.user, form_of(call.system)))
    if mode == "length":
        content, finish = content[: len(content) // 2], "length"
    elif mode == "content_filter":
        content, finish = "", "content_filter"
    elif mode == "refusal":
        content, refusal = "", "I can't help with that."
    elif not call.response_format:
        content = f"Here is the JSON you asked for:\n```json\n{content}\n```"
    message: dict[str, Any] = {"role": "assistant", "content": content or None}
    if refusal:
        message["refusal"] = refusal
    prompt_tokens = (len(call.system) + len(call.user)) // 4 + 1
    return {
        "id": f"chatcmpl-fake-{number}", "object": "chat.completion",
        "created": int(time.time()), "model": call.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish,
                     "logprobs": None}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(content) // 4,
                  "total_tokens": prompt_tokens + len(content) // 4},
    }


def _error(status: int, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    kind = "invalid_request_error" if 400 <= status < 500 and status != 429 else code
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}

