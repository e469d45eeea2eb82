"""Any OpenAI-compatible Chat Completions server, through the official SDK.

OpenAI itself, Ollama, vLLM, llama.cpp's server, a LiteLLM proxy ...: they
all take ``POST <base>/chat/completions``, but not all take the same
structured-output request. So the answer's format is asked for in the best
way the server accepts, stepping down once per process when a server refuses
one (HTTP 400 naming ``response_format``, ``json_schema`` or ``json_object``):

1. ``json_schema``: a strict JSON schema (OpenAI, vLLM, Ollama, llama.cpp);
2. ``json_object``: "some JSON object" (older servers and proxies);
3. ``prompt``: no ``response_format`` at all; the instructions ask for JSON
   and the answer's first JSON value is read (a model may wrap it in prose
   or a code fence).

Everything else is as for Gemini (summaries/providers/common.py): the same
prompts, output contract and one re-ask, the whole call bounded by the
timeout (``within``), the SDK's own retries off (the Celery task retries),
and failures mapped to ``JobError``:

=================  =========  ==============================================
ai_rate_limited    transient  HTTP 429 (``retry_after`` from ``Retry-After`` or
                              ``retry-after-ms`` when the server sends one)
ai_timeout         transient  the call took longer than the timeout, HTTP 408
ai_unavailable     transient  HTTP 5xx and 409, connection errors, garbled response,
                              one over ``max_response_bytes`` (deadline.py)
ai_rejected        permanent  other HTTP 4xx (bad request, key, model ...)
ai_blocked         permanent  ``finish_reason`` content_filter, or a refusal
ai_bad_output      permanent  contract broken twice (a ``length`` finish is a
                              broken answer: asked again once)
=================  =========  ==============================================
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import httpx2
import openai
from openai.types.chat import ChatCompletion

from summaries.core.errors import ErrorCode, JobError
from summaries.core.forms import DEFAULT_FORM, Form
from summaries.core.tokens import Usage, reported
from summaries.providers.common import (
    GARBLED,
    OBJECT,
    ProcessClient,
    ai_cache_namespace,
    ask_twice,
    batch_call,
    batch_form,
    batch_instructions,
    batch_outcome,
    bounded_delay,
    brief,
    build_batch_prompt,
    build_prompt,
    call_usage,
    checked,
    instructions,
    read_batch,
    retry_after_header,
    with_usage,
)
from summaries.providers.contract import BatchItem, ContractError, RequestRejected, SummaryResult
from summaries.providers.deadline import (
    MAX_RESPONSE_BYTES,
    ResponseTooLarge,
    deadline_client,
    within,
)

R = TypeVar("R")

# The structured-output modes, best first.
JSON_SCHEMA, JSON_OBJECT, PROMPT_ONLY = "json_schema", "json_object", "prompt"
MODES = (JSON_SCHEMA, JSON_OBJECT, PROMPT_ONLY)
# What a 400 about the answer's format names (OpenAI: "Invalid parameter:
# 'response_format' ..."; vLLM, llama.cpp and LiteLLM name the field or its type).
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "response format")

_TAGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}


def _answer_schema(field: str, *, item_id: bool = False) -> dict[str, Any]:
    """An answer object: ``field`` (``summary``: a string; ``points``: a
    list of strings) and tags, after an ``id`` for a batch item."""
    names = ["id", field, "tags"] if item_id else [field, "tags"]
    value = _TAGS if field == "points" else {"type": "string"}
    properties = {"id": {"type": "string"}, field: value, "tags": _TAGS}
    return {"type": "object", "properties": {name: properties[name] for name in names},
            "required": names, "additionalProperties": False}


def _batch_schema(field: str) -> dict[str, Any]:
    # Strict schemas want an object at the top: the batch's array goes in "items".
    return {"type": "object",
            "properties": {"items": {"type": "array",
                                     "items": _answer_schema(field, item_id=True)}},
            "required": ["items"], "additionalProperties": False}


# Prose (every length) answers a "summary" string; bullets a "points" list.
_SUMMARY_SCHEMA = _answer_schema("summary")
_POINTS_SCHEMA = _answer_schema("points")
_BATCH_SCHEMA = _batch_schema("summary")
_BATCH_POINTS_SCHEMA = _batch_schema("points")
_JSON_ONLY = ("Answer with the JSON value only: no prose before or after it, no code fence.")

# Where a JSON value may start, tried at most this often (each try reads on
# from there: bounded work on a long, JSON-less answer).
_MAX_JSON_STARTS = 20

# A response the SDK could not read as a completion.
_UNREADABLE: tuple[type[Exception], ...] = (openai.APIResponseValidationError, *GARBLED)

# An API key is required by the SDK; local servers (Ollama, llama.cpp) need none.
_NO_KEY = "unused"


class OpenAIProvider:
    """Summaries from a Chat Completions model (``summarize`` contract: see ``Provider``)."""

    name = "openai"

    def __init__(self, api_key: str = "", model: str = "gpt-4o-mini", base_url: str = "",
                 timeout_s: float = 30.0, max_response_bytes: int = MAX_RESPONSE_BYTES) -> None:
        if not model:
            raise ValueError("the openai provider needs a model (OPENAI_MODEL)")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.model = model
        self._api_key = api_key
        self._base_url = base_url
        self.timeout_s = timeout_s
        self._max_response_bytes = max_response_bytes
        self._client = ProcessClient(self._new_client)
        # The best structured-output mode this server has not refused. Shared
        # by every thread of the process; it only ever steps down.
        self._mode_index = 0
        self._mode_lock = threading.Lock()

    @property
    def cache_namespace(self) -> str:
        # The structured-output mode is not in it: each asks for the same answer.
        return ai_cache_namespace(self.name, self.model)

    @property
    def translates(self) -> bool:
        return True

    @property
    def supports_batches(self) -> bool:
        return True

    @property
    def mode(self) -> str:
        """The structured-output mode calls use now (``MODES``)."""
        return MODES[self._mode_index]

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIProvider(model={self.model!r}, base_url={self._base_url!r})"

    def summarize(self, text: str, *, language: str | None = None,
                  form: Form = DEFAULT_FORM) -> SummaryResult:
        system = instructions(text, language, form)
        schema = _POINTS_SCHEMA if form.bullets else _SUMMARY_SCHEMA
        return ask_twice(lambda prompt: self._ask(prompt, system, schema, form),
                         build_prompt(text), "The model", form)

    def _ask(self, prompt: str, system: str, schema: dict[str, Any], form: Form) -> SummaryResult:
        """One call, its answer read, carrying the tokens the server reported."""
        completion = self._complete(prompt, system, schema, "summary")
        counted = _reported(completion)
        return with_usage(lambda: checked(_parsed(completion), form),
                          lambda result: call_usage(counted, system + prompt, result))

    def summarize_batch(self, items: Sequence[BatchItem]) -> dict[str, SummaryResult | JobError]:
        """As ``GeminiProvider.summarize_batch``: one call for all ``items``."""
        form = batch_form(items)
        schema = _BATCH_POINTS_SCHEMA if form.bullets else _BATCH_SCHEMA

        def call() -> tuple[dict[str, SummaryResult | JobError], Usage]:
            prompt, system = build_batch_prompt(items), batch_instructions(OBJECT, form)
            completion = self._complete(prompt, system, schema, "batch")
            return batch_call(_reported(completion), system + prompt,
                              lambda: read_batch(_parsed(completion), form))

        return batch_outcome(items, call)

    # -- the call ----------------------------------------------------------------

    def _complete(self, prompt: str, system: str, schema: dict[str, Any],
                  name: str) -> ChatCompletion:
        """One call's completion, in the best mode the server takes (a
        refused mode costs one more call, once per process); raises
        ``JobError``. Not read yet (``_parsed``)."""
        while True:
            index = self._mode_index
            try:
                return self._complete_in(MODES[index], prompt, system, schema, name)
            except openai.BadRequestError as exc:
                if index + 1 == len(MODES) or not _about_format(exc):
                    raise _status_error(exc) from exc
                with self._mode_lock:  # another thread may have stepped down already
                    self._mode_index = max(self._mode_index, index + 1)

    def _complete_in(self, mode: str, prompt: str, system: str, schema: dict[str, Any],
                     name: str) -> ChatCompletion:
        client = self._client.get()
        body = request_body(self.model, mode, prompt, system, schema, name)
        completion = self.call(lambda: client.chat.completions.create(**body))
        if not isinstance(completion, ChatCompletion) or completion.choices is None:
            raise JobError("the model's server sent something that is not a completion",
                           code=ErrorCode.AI_UNAVAILABLE, transient=True)
        return completion

    def resized(self, max_response_bytes: int) -> OpenAIProvider:
        """The same provider with its own SDK client, bounded at
        ``max_response_bytes`` (a batch job's results are many answers)."""
        return OpenAIProvider(self._api_key, self.model, self._base_url, self.timeout_s,
                              max_response_bytes)

    def client(self) -> openai.OpenAI:
        """This process's SDK client (the batch API's calls share it: openai_batches.py)."""
        return self._client.get()

    def summary_request(self, text: str, language: str | None = None,
                        form: Form = DEFAULT_FORM) -> dict[str, Any]:
        """The body of a live summary request of ``text`` (in ``form``) in the
        best mode this server takes (a batch item's body: openai_batches.py)."""
        schema = _POINTS_SCHEMA if form.bullets else _SUMMARY_SCHEMA
        return request_body(self.model, MODES[self._mode_index], build_prompt(text),
                            instructions(text, language, form), schema, "summary")

    def call(self, request: Callable[[], R]) -> R:
        """``request()`` (an SDK call) within the timeout, its failures mapped
        to ``JobError`` (the module docstring's table); a 400 is raised as
        the SDK's ``BadRequestError`` (the caller decides what it refuses)."""
        try:
            with within(self.timeout_s):
                return request()
        except openai.BadRequestError:
            raise  # _complete decides: a refused mode, or a rejected request
        except openai.APIStatusError as exc:
            raise _status_error(exc) from exc
        except openai.APITimeoutError as exc:
            raise JobError(f"the model did not answer within {self.timeout_s:g}s",
                           code=ErrorCode.AI_TIMEOUT, transient=True) from exc
        except (openai.APIConnectionError, httpx2.HTTPError, OSError) as exc:
            # The SDK wraps what the client raised while reading the body.
            if isinstance(too_large := exc.__cause__ or exc, ResponseTooLarge):
                raise JobError(f"the model's server sent a response larger than "
                               f"{too_large.limit} bytes", code=ErrorCode.AI_UNAVAILABLE,
                               transient=True) from exc
            raise JobError(f"the model's server is unreachable or the connection broke: "
                           f"{type(exc).__name__}", code=ErrorCode.AI_UNAVAILABLE,
                           transient=True) from exc
        except _UNREADABLE as exc:
            raise JobError(f"the model's server sent an unreadable response "
                           f"({type(exc).__name__})", code=ErrorCode.AI_UNAVAILABLE,
                           transient=True) from exc

    def _new_client(self) -> openai.OpenAI:
        return openai.OpenAI(
            api_key=self._api_key or _NO_KEY,
            base_url=self._base_url or None,  # None: OpenAI's own
            timeout=self.timeout_s,  # per request; within() bounds the whole call
            max_retries=0,  # the Celery task retries
            # Ours (the SDK never closes it): bounded in time and in bytes.
            http_client=deadline_client(max_response_bytes=self._max_response_bytes),
        )


def request_body(model: str, mode: str, prompt: str, system: str, schema: dict[str, Any],
                 name: str) -> dict[str, Any]:
    """A Chat Completions request's body in structured-output ``mode``."""
    if mode != JSON_SCHEMA:
        system += "\n" + _JSON_ONLY
    body: dict[str, Any] = {"model": model, "n": 1,
                            "messages": [{"role": "system", "content": system},
                                         {"role": "user", "content": prompt}]}
    if mode == JSON_SCHEMA:
        body["response_format"] = {"type": "json_schema", "json_schema": {
            "name": name, "strict": True, "schema": schema}}
    elif mode == JSON_OBJECT:
        body["response_format"] = {"type": "json_object"}
    return body


def read_completion(completion: ChatCompletion, form: Form = DEFAULT_FORM) -> SummaryResult:
    """A single answer, contract-checked for ``form``, or raises ``JobError``
    (a batch item's too)."""
    return checked(_parsed(completion), form)


def _about_format(exc: openai.BadRequestError) -> bool:
    """Whether a 400 refuses the ``response_format`` asked for (not the request)."""
    text = f"{exc.message} {getattr(exc, 'param', '') or ''} {exc.body or ''}".lower()
    return any(word in text for word in _FORMAT_WORDS)


def _status_error(exc: openai.APIStatusError) -> JobError:
    status = exc.status_code
    # The SDK's message repeats the status and the whole body; the body's own
    # message is the part worth keeping.
    said = exc.body.get("message") if isinstance(exc.body, dict) else None
    detail = brief(f"the model's server answered HTTP {status}: "
                   f"{said if isinstance(said, str) else exc.message}")
    if status == 429:
        return JobError(detail, code=ErrorCode.AI_RATE_LIMITED, transient=True,
                        retry_after=_retry_after(exc.response))
    if status == 408:
        return JobError(detail, code=ErrorCode.AI_TIMEOUT, transient=True)
    if status == 409:  # OpenAI: a lock timeout, "try again"
        return JobError(detail, code=ErrorCode.AI_UNAVAILABLE, transient=True)
    if status in (400, 413, 422):  # about what the request holds (context_length_exceeded)
        return RequestRejected(detail)
    if 400 <= status < 500:
        return JobError(detail, code=ErrorCode.AI_REJECTED, transient=False)
    return JobError(detail, code=ErrorCode.AI_UNAVAILABLE, transient=True)  # 5xx and oddities


def _retry_after(response: httpx2.Response) -> float | None:
    """The delay a 429 asks for: ``retry-after-ms`` (OpenAI's), else
    ``Retry-After`` (seconds or an HTTP date); None if neither says."""
    millis = response.headers.get("retry-after-ms")
    if millis is not None:
        try:
            return bounded_delay(float(millis) / 1000)
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    return bounded_delay(retry_after_header(value) if value is not None else None)


def _reported(completion: ChatCompletion) -> Usage | None:
    """The tokens the server reported (``usage``: ``prompt_tokens`` in,
    ``completion_tokens`` out), or None when it reported none (some
    OpenAI-compatible servers do not)."""
    usage = completion.usage
    if usage is None:
        return None
    return reported(usage.prompt_tokens, usage.completion_tokens)


def _parsed(completion: ChatCompletion) -> object:
    """The JSON in a completion's first choice; ``JobError(ai_blocked)`` for a
    content filter or a refusal, ``ContractError`` for no answer, a cut-off
    one or one that holds no JSON, ``JobError(ai_unavailable)`` when the
    response is not a completion at all (a proxy's page parsed as one)."""
    if not isinstance(completion, ChatCompletion) or completion.choices is None:
        raise JobError("the model's server sent something that is not a completion",
                       code=ErrorCode.AI_UNAVAILABLE, transient=True)
    if not completion.choices:
        raise ContractError("the model returned no answer")
    choice = completion.choices[0]
    if choice.finish_reason == "content_filter":
        raise JobError("the model's content filter stopped the answer", code=ErrorCode.AI_BLOCKED,
                       transient=False)
    message = choice.message
    refusal = getattr(message, "refusal", None) if message is not None else None
    if refusal:
        raise JobError(brief(f"the model refused: {refusal}"), code=ErrorCode.AI_BLOCKED,
                       transient=False)
    if choice.finish_reason == "length":
        raise ContractError("answer was cut off (finish_reason length)")
    content = message.content if message is not None else None
    if not isinstance(content, str) or not content.strip():
        raise ContractError("the model's answer is empty")
    return first_json(content)


def first_json(content: str) -> object:
    """The first JSON object or array in ``content`` (all of it, when it is
    JSON; else the first one in the text, as in a code fence or after a
    sentence of prose); ``ContractError`` when there is none."""
    text = content.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    starts = (i for i, char in enumerate(text) if char in "{[")
    for start in itertools.islice(starts, _MAX_JSON_STARTS):
        try:
            return decoder.raw_decode(text, start)[0]
        except ValueError:
            continue
    raise ContractError("the model's answer holds no JSON")
