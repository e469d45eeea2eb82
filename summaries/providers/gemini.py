"""Gemini through the google-genai SDK, with its failures mapped to ``JobError``.

One ``summarize`` makes one ``generate_content`` call, or two when the first
answer breaks the output contract (unparseable, cut off, wrong shape or size):
the model is asked once more with a reminder. Nothing else repeats a call: the
SDK's own retries are off, because retrying (with backoff, and counting) is the
Celery task's job. The provider keeps no counters and has no side effects
beyond the HTTP calls themselves.

Error codes (``JobError.code``, transient or not):

=================  =========  ==============================================
ai_rate_limited    transient  HTTP 429 (``retry_after`` set when the answer says
                              when to come back: Retry-After, RetryInfo)
ai_timeout         transient  client timeout, HTTP 408
ai_unavailable     transient  HTTP 5xx, connection errors, garbled response, one
                              over ``max_response_bytes`` (deadline.py)
ai_rejected        permanent  other HTTP 4xx (bad request, key, model ...)
ai_blocked         permanent  prompt or answer blocked by safety filters
ai_bad_output      permanent  contract broken twice in a row
=================  =========  ==============================================
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import httpx2
from google import genai
from google.genai import errors, types

from summaries.core.errors import ErrorCode, JobError
from summaries.core.forms import DEFAULT_FORM, Form
from summaries.core.tokens import Usage, reported
from summaries.providers.common import (
    GARBLED,
    MAX_INPUT_CHARS,
    MAX_RETRY_AFTER_S,
    PROMPT_VERSION,
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
from summaries.providers.contract import (
    MAX_POINTS,
    MIN_POINTS,
    BatchItem,
    ContractError,
    RequestRejected,
    SummaryResult,
)
from summaries.providers.deadline import (
    MAX_RESPONSE_BYTES,
    ResponseTooLarge,
    deadline_client,
    within,
)

__all__ = ["MAX_INPUT_CHARS", "MAX_RETRY_AFTER_S", "PROMPT_VERSION", "GeminiProvider",
           "build_batch_prompt", "build_prompt"]

def _tags() -> types.Schema:
    return types.Schema(type=types.Type.ARRAY, items=types.Schema(type=types.Type.STRING),
                        min_items=2, max_items=4)


def _answer_schema(field: str, *, item_id: bool = False) -> types.Schema:
    """An answer object: ``field`` (``summary``: a string; ``points``: 3-6
    strings) and tags, after an ``id`` for a batch item."""
    value = (types.Schema(type=types.Type.ARRAY, items=types.Schema(type=types.Type.STRING),
                          min_items=MIN_POINTS, max_items=MAX_POINTS)
             if field == "points" else types.Schema(type=types.Type.STRING))
    names = ["id", field, "tags"] if item_id else [field, "tags"]
    properties = {"id": types.Schema(type=types.Type.STRING), field: value, "tags": _tags()}
    return types.Schema(type=types.Type.OBJECT,
                        properties={name: properties[name] for name in names},
                        required=names, property_ordering=names)


# Prose (every length) answers a "summary" string; bullets a "points" list.
_SCHEMA = _answer_schema("summary")
_POINTS_SCHEMA = _answer_schema("points")
_BATCH_SCHEMA = types.Schema(type=types.Type.ARRAY,
                             items=_answer_schema("summary", item_id=True))
_BATCH_POINTS_SCHEMA = types.Schema(type=types.Type.ARRAY,
                                    items=_answer_schema("points", item_id=True))

# Automatic continuation would turn one call into several behind our back
# (it exists only in newer SDKs, hence the check).
_NO_CONTINUATION: dict[str, Any] = (
    {"automatic_continuation": False}
    if "automatic_continuation" in types.GenerateContentConfig.model_fields
    else {}
)

# Finish reasons that mean "the model will not answer this": permanent. (Any
# prompt block_reason is too.) Others, such as OTHER or MALFORMED_RESPONSE,
# are treated as a bad answer and asked again once.
_BLOCKING = frozenset(
    {"SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY",
     "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR", "JAILBREAK"}
)


# 4xx statuses about what the request holds (too long for the context, too
# large, invalid): a smaller request may pass. Not 401/403/404: key, model.
_ABOUT_THE_REQUEST = frozenset({400, 413, 422})

R = TypeVar("R")

_DURATION = re.compile(r"^\s*(?P<seconds>\d+(?:\.\d*)?)s\s*$")  # protobuf Duration JSON
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


class GeminiProvider:
    """Summaries from a Gemini model (``summarize`` contract: see ``Provider``)."""

    name = "gemini"

    def __init__(self, api_key: str, model: str = "gemini-2.5-flash", base_url: str = "",
                 timeout_s: float = 30.0, max_response_bytes: int = MAX_RESPONSE_BYTES) -> None:
        if not api_key:
            raise ValueError("the gemini provider needs an API key")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.model = model
        self._api_key = api_key
        self._base_url = base_url
        self.timeout_s = timeout_s
        self._max_response_bytes = max_response_bytes
        self._client = ProcessClient(self._new_client)

    @property
    def cache_namespace(self) -> str:
        return ai_cache_namespace(self.name, self.model)

    @property
    def translates(self) -> bool:
        return True  # it writes in the language it is asked for

    def __repr__(self) -> str:  # never show the key
        return f"GeminiProvider(model={self.model!r}, base_url={self._base_url!r})"

    @property
    def supports_batches(self) -> bool:
        return True

    def resized(self, max_response_bytes: int) -> GeminiProvider:
        """The same provider with its own SDK client, bounded at
        ``max_response_bytes`` (a batch job's results are many answers)."""
        return GeminiProvider(self._api_key, self.model, self._base_url, self.timeout_s,
                              max_response_bytes)

    def client(self) -> genai.Client:
        """This process's SDK client (the batch API's calls share it: gemini_batches.py)."""
        return self._client.get()

    def summarize(self, text: str, *, language: str | None = None,
                  form: Form = DEFAULT_FORM) -> SummaryResult:
        system = instructions(text, language, form)
        schema = schema_for(form)
        return ask_twice(lambda prompt: self._ask(prompt, system, schema, form),
                         build_prompt(text), "Gemini", form)

    def _ask(self, prompt: str, system: str, schema: types.Schema, form: Form) -> SummaryResult:
        """One call, its answer read, carrying the tokens Gemini reported."""
        response = self._generate(prompt, system, schema)
        counted = _reported(response)
        return with_usage(lambda: _read_answer(response, form),
                          lambda result: call_usage(counted, system + prompt, result))

    def summarize_batch(self, items: Sequence[BatchItem]) -> dict[str, SummaryResult | JobError]:
        """Summaries of several inputs from ONE ``generate_content`` call.

        Returns, for every item id, its contract-checked result or the
        ``ContractError`` saying why its part of the answer is unusable
        (missing, given twice, mangled, breaking the contract): such an item
        is to be asked again alone (``summarize``), as is every item when the
        answer as a whole is unusable. No re-ask here. Raises ``JobError``
        for failures of the call itself: about every item (429, 5xx,
        timeouts), or about what the batch holds (``ai_blocked``,
        ``RequestRejected``: one item, or their sum, may be the cause).
        """
        form = batch_form(items)
        schema = _BATCH_POINTS_SCHEMA if form.bullets else _BATCH_SCHEMA

        def call() -> tuple[dict[str, SummaryResult | JobError], Usage]:
            prompt, system = build_batch_prompt(items), batch_instructions(form=form)
            response = self._generate(prompt, system, schema)
            return batch_call(_reported(response), system + prompt,
                              lambda: read_batch(_parsed_json(response), form))

        return batch_outcome(items, call)

    def _generate(self, prompt: str, system: str,
                  schema: types.Schema) -> types.GenerateContentResponse:
        """One ``generate_content`` call within the timeout, its failures mapped
        to ``JobError``; the response is not checked yet."""
        client = self._client.get()
        return self.call(lambda: client.models.generate_content(
            model=self.model, contents=prompt, config=generate_config(system, schema)))

    def call(self, request: Callable[[], R]) -> R:
        """``request()`` (an SDK call) within the timeout, its failures mapped
        to ``JobError`` (the module docstring's table)."""
        try:
            with within(self.timeout_s):
                response = request()
        except errors.APIError as exc:
            raise _api_error(exc) from exc
        except ResponseTooLarge as exc:  # a broken gateway, not a model's answer
            raise JobError(f"Gemini's response is larger than {exc.limit} bytes",
                           code=ErrorCode.AI_UNAVAILABLE, transient=True) from exc
        except httpx2.TimeoutException as exc:
            raise JobError(f"Gemini did not answer within {self.timeout_s:g}s",
                           code=ErrorCode.AI_TIMEOUT, transient=True) from exc
        except (httpx2.HTTPError, OSError) as exc:  # refused, reset, bad gzip, protocol ...
            raise JobError(f"Gemini unreachable or the connection broke: {type(exc).__name__}",
                           code=ErrorCode.AI_UNAVAILABLE, transient=True) from exc
        except GARBLED as exc:  # 200 with HTML (a proxy?), bad JSON, the wrong shape
            raise JobError(f"Gemini sent an unreadable response ({type(exc).__name__})",
                           code=ErrorCode.AI_UNAVAILABLE, transient=True) from exc
        return response

    def _new_client(self) -> genai.Client:
        return genai.Client(
            vertexai=False,  # ignore GOOGLE_GENAI_USE_VERTEXAI: this is the Gemini API
            api_key=self._api_key,
            http_options=types.HttpOptions(
                base_url=self._base_url or None,
                timeout=max(1, round(self.timeout_s * 1000)),  # ms; per read: within() bounds all
                retry_options=types.HttpRetryOptions(attempts=1),  # Celery retries
                # Ours (the SDK never closes it): bounded in time and in bytes.
                httpx_client=deadline_client(max_response_bytes=self._max_response_bytes),
            ),
        )


def generate_config(system: str, schema: types.Schema = _SCHEMA) -> types.GenerateContentConfig:
    """A summary request's configuration (a live call's, and each batch item's)."""
    return types.GenerateContentConfig(
        system_instruction=system,
        response_mime_type="application/json",
        response_schema=schema,
        candidate_count=1,
        **_NO_CONTINUATION,
    )


def _api_error(exc: errors.APIError) -> JobError:
    code = exc.code or 0
    detail = brief(f"Gemini answered HTTP {code}: {exc.status or ''} {exc.message or ''}")
    if code == 429:
        return JobError(detail, code=ErrorCode.AI_RATE_LIMITED, transient=True,
                        retry_after=_retry_after(exc))
    if code == 408:
        return JobError(detail, code=ErrorCode.AI_TIMEOUT, transient=True)
    if code in _ABOUT_THE_REQUEST:
        return RequestRejected(detail)
    if 400 <= code < 500:
        return JobError(detail, code=ErrorCode.AI_REJECTED, transient=False)
    return JobError(detail, code=ErrorCode.AI_UNAVAILABLE, transient=True)  # 5xx and oddities


def _retry_after(exc: errors.APIError) -> float | None:
    """The delay a 429 asks for, in seconds (at most ``MAX_RETRY_AFTER_S``):
    Gemini's ``google.rpc.RetryInfo`` detail (``"retryDelay": "46s"``), else
    the HTTP ``Retry-After`` header (seconds or an HTTP date); None if neither
    says, or says nonsense."""
    delay = _retry_info_delay(exc.details)
    if delay is None and exc.response is not None:
        headers = getattr(exc.response, "headers", None)
        value = headers.get("retry-after") if headers is not None else None
        delay = retry_after_header(value) if isinstance(value, str) else None
    return bounded_delay(delay)


def _retry_info_delay(details: object) -> float | None:
    error = details.get("error", details) if isinstance(details, dict) else None
    entries = error.get("details") if isinstance(error, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("@type") == _RETRY_INFO:
            value = entry.get("retryDelay")
            match = _DURATION.match(value) if isinstance(value, str) else None
            if match:
                return float(match.group("seconds"))
    return None


def _reported(response: types.GenerateContentResponse) -> Usage | None:
    """The tokens Gemini reported for a call (``usage_metadata``:
    ``prompt_token_count`` in, ``candidates_token_count`` out, thinking
    tokens billed as output too), or None when it reported none."""
    meta = response.usage_metadata
    if meta is None:
        return None
    out = (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)
    return reported(meta.prompt_token_count, out)
def schema_for(form: Form) -> types.Schema:
    """The answer's schema for a summary in ``form`` (bullets: a list of points)."""
    return _POINTS_SCHEMA if form.bullets else _SCHEMA


def read_batch_answer(response: types.GenerateContentResponse,
                      form: Form = DEFAULT_FORM) -> SummaryResult:
    """A batch job's answer to one item, contract-checked as a live answer is
    (``SummaryResult``, or raises ``JobError(ai_blocked)`` / ``ContractError``).
    The SDK parses no batch answer (``parsed`` stays None: it knows no schema
    there), so its JSON text is read here."""
    parsed = _parsed_json(response)
    if parsed is None:
        try:
            parsed = json.loads(response.text or "")
        except ValueError:
            raise ContractError("answer is not valid JSON") from None
    return checked(parsed, form)


def _read_answer(response: types.GenerateContentResponse, form: Form) -> SummaryResult:
    """Contract-checked result, ``JobError(ai_blocked)``, or ``ContractError``."""
    return checked(_parsed_json(response), form)


def _parsed_json(response: types.GenerateContentResponse) -> object:
    """The answer's parsed JSON, or ``JobError(ai_blocked)`` / ``ContractError``
    (also ``JobError(ai_unavailable)`` for a mangled envelope)."""
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        raise JobError(brief(f"Gemini blocked the prompt ({_name(feedback.block_reason)})"),
                       code=ErrorCode.AI_BLOCKED, transient=False)
    if not response.candidates:
        if response.usage_metadata is None and response.response_id is None:
            # Not even the envelope of an answer (e.g. a proxy's "[]" or "{}"):
            # the response was mangled on the way, not written by the model.
            raise JobError("Gemini's response is not an answer (no candidates, no metadata)",
                           code=ErrorCode.AI_UNAVAILABLE, transient=True)
        raise ContractError("Gemini returned no answer")
    reason = _name(response.candidates[0].finish_reason)
    if reason in _BLOCKING:
        raise JobError(brief(f"Gemini stopped its answer ({reason})"), code=ErrorCode.AI_BLOCKED,
                       transient=False)
    if reason == "MAX_TOKENS":
        raise ContractError("answer was cut off (MAX_TOKENS)")
    return response.parsed


def _name(reason: object) -> str:
    if reason is None:
        return ""
    return str(getattr(reason, "value", reason)).upper()
