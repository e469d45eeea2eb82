"""A loopback fake of the Gemini API's ``generateContent``, for the real SDK.

Usage::

    with FakeGemini() as gemini:                   # 127.0.0.1, free port
        provider = GeminiProvider("key", "gemini-2.5-flash", gemini.base_url, 2.0)
        gemini.mode = "rate_limit"                 # switch behaviour at runtime
        gemini.script(["unavailable", "ok"])       # or one mode per coming call
        gemini.delay_s = 0.5                       # a slow AI
        assert gemini.calls == 1 and "Title: X" in gemini.prompts[0]

The SDK sends ``POST /v1beta/models/<model>:generateContent`` with the key in
the ``x-goog-api-key`` header. Modes:

``ok``           a valid answer built from the text in the prompt (its first two
                 sentences; tags from its most frequent words)
``rate_limit``   HTTP 429 RESOURCE_EXHAUSTED
``rate_limit_retry_after``  the same with an HTTP ``Retry-After: <retry_after_s>`` header
``rate_limit_retry_info``   the same with a ``google.rpc.RetryInfo`` detail in the body
                 (``"retryDelay": "<retry_after_s>s"``), as Gemini sends
``unavailable``  HTTP 503 UNAVAILABLE
``rejected``     HTTP 400 INVALID_ARGUMENT
``hang``         no answer for ``hang_s`` (longer than any sane client timeout)
``blocked``      200 with ``promptFeedback.blockReason = SAFETY`` and no candidate
``safety``       200 with a candidate that stopped with ``finishReason = SAFETY``
``truncated``    200, ``finishReason = MAX_TOKENS`` and JSON cut mid-string
``bad``          200 with an answer that breaks the contract (6 sentences, 1 tag)
``bad_then_ok``  ``bad`` for the first call after the mode is set, then ``ok``
``nul``          200 with a valid answer whose summary and tags hold control
                 characters (NUL, ESC, C1) and a lone surrogate (JSON-escaped)

Forms: the system instruction says which the answer is in (the provider's
prompts, summaries/providers/common.py), and the answer follows it as a model
would: bullets (a ``"points"`` field asked) are ``{"points": [...], "tags"}``,
the text's first 3 (short), 4 (medium) or 5 (long) sentences; prose medium
is 4 sentences, prose long two paragraphs of two (``form_of``).

Batches: a user turn that is a JSON array of ``{"id", "title", "text"}`` items
(the provider's batch prompt) is answered with a JSON array of ``{"id", "summary",
"tags"}``, one per item, each summarising its own text as ``ok`` does (the other
modes apply to the call as a whole). Modes for batches only (single prompts get
``ok``): ``batch_drop`` leaves the first item out, ``batch_mangle`` breaks the
contract in the first item's answer, ``batch_wrong_id`` answers the first item
under an id that was not asked, ``batch_unsupported`` answers the whole array
with one summary object (as a model that cannot do batches would).
``items_per_call`` counts the items of each call (1 for a single prompt).

Modes about what a prompt holds (batch or single): ``block_word`` blocks
(``promptFeedback.blockReason = SAFETY``) any prompt whose user text holds
``block_word``, as a safety filter blocks a whole batch for one item's text,
and answers the others ``ok``; ``context_limit`` answers HTTP 400
INVALID_ARGUMENT to a prompt of more than ``context_tokens`` tokens (4
characters each), ``ok`` to the others.

Answers from a broken gateway or network rather than from Gemini:

``html``         200 with an HTML page (a proxy's error page or login wall)
``not_object``   200 with JSON that is not an object (a list)
``wrong_shape``  200 with a JSON object whose fields have the wrong types
``bad_gzip``     200 claiming ``Content-Encoding: gzip`` over a body that is not
``html_error``   502 with an HTML page and no JSON error
``drip``         200 and headers at once, then the body's first ``drip_bytes``
                 bytes one every ``drip_s`` seconds, then the rest (a valid answer)
``drip_headers`` the same, but dripping the status line and headers themselves
``huge``         200 with a valid answer padded with whitespace to ``huge_bytes``
                 (Content-Length says so); ``huge_sent`` counts the bytes the
                 client took before it hung up
``huge_unsized`` the same without Content-Length (the body ends when the
                 connection closes)

Every answer reports its tokens (``usageMetadata``: ``promptTokenCount``,
the system instruction and user text at 4 characters a token, and
``candidatesTokenCount``, the answer's), as Gemini does; ``report_usage =
False`` leaves them out (as a gateway that strips them would).
The Batch API (``client.batches``, inline requests): ``POST
/v1beta/models/<model>:batchGenerateContent`` creates a job, ``GET
/v1beta/batches/<id>`` polls it (done: ``metadata.output.inlinedResponses``,
each answered as ``ok`` answers a live call, with its ``metadata``), ``GET
/v1beta/batches`` lists them, ``POST .../batches/<id>:cancel`` cancels one.
Its calls are not in ``calls``/``received`` (those are live calls); the
knobs and counters are ``batches`` (tests/helpers/fakes/batch_jobs.py).

Counters live in this (the test's) process; worker processes reach it over HTTP.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from summaries.providers.contract import split_sentences
from tests.helpers.fakes.batch_jobs import BatchJobs, FakeBatchJob
from tests.helpers.fakes.loopback import LoopbackServer, send, send_raw

MODES = frozenset({"ok", "rate_limit", "rate_limit_retry_after", "rate_limit_retry_info",
                   "batch_drop", "batch_mangle", "batch_wrong_id", "batch_unsupported",
                   "unavailable", "rejected",
                   "hang", "blocked", "safety",
                   "truncated", "bad", "bad_then_ok", "nul", "html", "not_object", "wrong_shape",
                   "bad_gzip", "html_error", "drip", "drip_headers", "huge", "huge_unsized",
                   "block_word", "context_limit"})
_PATH = re.compile(r"^/(?P<version>v1\w*)/models/(?P<model>[^/:?]+):generateContent$")
_BATCH_CREATE = re.compile(r"^/v1\w*/models/(?P<model>[^/:?]+):batchGenerateContent$")
_BATCH = re.compile(r"^/v1\w*/batches(?:/(?P<id>[^/:?]+)(?P<cancel>:cancel)?)?(?:\?.*)?$")
_BATCH_STATES = {"running": "BATCH_STATE_RUNNING", "succeeded": "BATCH_STATE_SUCCEEDED",
                 "failed": "BATCH_STATE_FAILED", "expired": "BATCH_STATE_EXPIRED",
                 "cancelled": "BATCH_STATE_CANCELLED"}
_TEXT = re.compile(r"<text>\n?(?P<text>.*)\n?</text>", re.S)
_ERRORS = {
    "rate_limit": (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    "unavailable": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    "rejected": (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
}


@dataclass(frozen=True)
class Call:
    """One generateContent request as received."""

    model: str
    api_key: str
    prompt: str  # system instruction + all user text parts, joined by blank lines
    user_text: str  # the user text parts only
    body: dict[str, Any]
    path: str
    items: list[dict[str, Any]] | None = None  # a batch prompt's items; None: a single prompt
    form: tuple[str, str] = ("prose", "short")  # (style, length) the instruction asks for


class FakeGemini(LoopbackServer[Call]):
    """Threaded HTTP server speaking enough of the Gemini REST API for the SDK."""

    modes = MODES
    thread_name = "fake-gemini"
    answers_get = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.batches = BatchJobs("fakebatch")
        super().__init__(host, port)
        self.drip_s = 1.0  # "drip" modes: seconds between bytes
        self.drip_bytes = 12  # "drip" modes: how many bytes are dripped
        self.retry_after_s = 3  # the delay the "rate_limit_retry_*" modes ask for
        self.huge_bytes = 100 * 1024 * 1024  # "huge" modes: the body's size
        self.huge_sent = 0  # "huge" modes: bytes of the body the client took
        self.block_word = "forbiddenword"  # "block_word": prompts holding it are blocked
        self.context_tokens = 2048  # "context_limit": the longest prompt taken
        self.report_usage = True  # usageMetadata in every answer

    def reset(self) -> None:
        """Back to a fresh "ok" server: no calls, no script, no delay; ends hangs."""
        super().reset()
        self.batches.reset()
        self.drip_s, self.drip_bytes = 1.0, 12
        self.retry_after_s = 3
        self.huge_bytes, self.huge_sent = 100 * 1024 * 1024, 0
        self.block_word, self.context_tokens = "forbiddenword", 2048
        self.report_usage = True

    @property
    def items_per_call(self) -> list[int]:
        """How many inputs each call carried (1 for a single prompt)."""
        return [len(call.items) if call.items is not None else 1 for call in self.received]

    @property
    def prompts(self) -> list[str]:
        return [call.prompt for call in self.received]

    @property
    def base_url(self) -> str:
        return self.root_url

    # -- request handling ------------------------------------------------------

    def handle(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        if self._handle_batches(handler, raw):
            return
        match = _PATH.match(handler.path)
        if match is None:
            send(handler, 404, _error(404, "NOT_FOUND", f"no route for {handler.path}"))
            return
        body = json.loads(raw or b"{}")
        system, user = _texts_of(body)
        call = Call(model=match.group("model"), api_key=handler.headers.get("x-goog-api-key", ""),
                    prompt="\n\n".join(system + user), user_text="\n\n".join(user), body=body,
                    path=handler.path, items=_batch_items("\n\n".join(user)),
                    form=form_of("\n\n".join(system)))
        mode, number, release = self.record(call)
        if self.delay_s > 0 and self.wait(release, self.delay_s):
            return
        if mode == "hang":
            self.wait(release, self.hang_s)
            return  # closing without an answer; the client has long given up
        if mode in _ERRORS:
            status, name, message = _ERRORS[mode]
            send(handler, status, _error(status, name, message))
            return
        if mode == "rate_limit_retry_after":
            status, name, message = _ERRORS["rate_limit"]
            send(handler, status, _error(status, name, message),
                  {"Retry-After": str(self.retry_after_s)})
            return
        if mode == "rate_limit_retry_info":
            status, name, message = _ERRORS["rate_limit"]
            payload = _error(status, name, message)
            payload["error"]["details"] = [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                 "violations": [{"quotaMetric": "generativelanguage.googleapis.com/"
                                                "generate_content_free_tier_requests"}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                 "retryDelay": f"{self.retry_after_s}s"},
            ]
            send(handler, status, payload)
            return
        if mode == "context_limit" and (tokens := prompt_tokens(call.prompt)) > self.context_tokens:
            send(handler, 400, _error(400, "INVALID_ARGUMENT",
                                      f"The input token count ({tokens}) exceeds the maximum "
                                      f"number of tokens allowed ({self.context_tokens})."))
            return
        if mode == "block_word" and self.block_word in call.user_text:
            mode = "blocked"
        if mode in _BROKEN:
            status, content_type, data, extra = _BROKEN[mode]
            send_raw(handler, status, content_type, data, extra)
            return
        if mode in ("huge", "huge_unsized"):
            data = json.dumps(_answer("ok", call, number)).encode()
            self.huge_sent = send_huge(handler, data, self.huge_bytes, mode == "huge")
            return
        if mode in ("drip", "drip_headers"):
            self._drip(handler, release, _answer("ok", call, number), mode == "drip_headers")
            return
        answer = _answer(mode, call, number)
        if not self.report_usage:
            answer.pop("usageMetadata", None)
        send(handler, 200, answer)

    # -- the Batch API ------------------------------------------------------------

    def _handle_batches(self, handler: BaseHTTPRequestHandler, raw: bytes) -> bool:
        """Answer a Batch API request; False for any other."""
        if (created := _BATCH_CREATE.match(handler.path)) and handler.command == "POST":
            batch = json.loads(raw or b"{}").get("batch", {})
            requests = batch.get("inputConfig", {}).get("requests", {}).get("requests", [])
            items = [(str((r.get("metadata") or {}).get("key", "")), r) for r in requests]
            job = self.batches.create(str(batch.get("displayName", "")), items,
                                      {"model": created.group("model")})
            send(handler, 200, self._operation(job))
            return True
        match = _BATCH.match(handler.path)
        if match is None:
            return False
        job_id = match.group("id")
        if job_id is None:
            jobs = self.batches.listed()
            send(handler, 200, {"operations": [self._operation(job) for job in jobs]})
            return True
        if match.group("cancel"):
            found = self.batches.cancel(job_id)
        else:
            if self.batches.get_delay_s > 0:
                self.wait(self._release, self.batches.get_delay_s)
            found = self.batches.get(job_id)
        if found is None:
            send(handler, 404, _error(404, "NOT_FOUND", f"no batch {job_id}"))
        else:
            send(handler, 200, self._operation(found))
        return True

    def _operation(self, job: FakeBatchJob) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta."
                     "GenerateContentBatch",
            "model": f"models/{job.metadata.get('model', '')}",
            "displayName": job.display_name, "state": _BATCH_STATES[job.state],
            "name": f"batches/{job.id}",
        }
        if job.state == "succeeded":
            answers = []
            for index, key, request in self.batches.answered(job):
                if self.batches.errs(job, index):
                    answers.append({"error": {"code": 13, "message": "internal error"},
                                    "metadata": {"key": key}})
                    continue
                body = request.get("request", {})
                system, user = _texts_of(body)
                call = Call(model=str(job.metadata.get("model", "")), api_key="",
                            prompt="\n\n".join(system + user), user_text="\n\n".join(user),
                            body=body, path="batch", form=form_of("\n\n".join(system)))
                mode = "bad" if job.mode == "bad" else "ok"
                answers.append({"response": _answer(mode, call, index),
                                "metadata": {"key": key}})
            metadata["output"] = {"inlinedResponses": {"inlinedResponses": answers}}
        return {"name": f"batches/{job.id}", "metadata": metadata,
                "done": job.state != "running"}

    def _drip(self, handler: BaseHTTPRequestHandler, release: threading.Event,
              payload: dict[str, Any], headers_too: bool) -> None:
        """Send a valid answer, its first ``drip_bytes`` bytes (of the whole
        response, or of the body only) one every ``drip_s`` seconds."""
        # Leading whitespace is valid JSON: the dripped body bytes are padding.
        data = b" " * (0 if headers_too else self.drip_bytes) + json.dumps(payload).encode()
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=UTF-8\r\n"
                f"Content-Length: {len(data)}\r\n\r\n").encode()
        raw = head + data
        dripped = self.drip_bytes + (0 if headers_too else len(head))
        handler.wfile.write(raw[: dripped - self.drip_bytes])
        for i in range(dripped - self.drip_bytes, dripped):
            handler.wfile.write(raw[i : i + 1])
            handler.wfile.flush()
            if self.wait(release, self.drip_s):
                return
        handler.wfile.write(raw[dripped:])
        handler.close_connection = True


def prompt_tokens(prompt: str) -> int:
    """A prompt's tokens as the fakes count them: 4 characters each."""
    return len(prompt) // 4 + 1


def send_huge(handler: BaseHTTPRequestHandler, data: bytes, size: int, sized: bool) -> int:
    """Send ``data`` (JSON) padded with whitespace to ``size`` bytes, with or
    without Content-Length; returns how many body bytes the client took."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json; charset=UTF-8")
    if sized:
        handler.send_header("Content-Length", str(size))
    handler.end_headers()
    sent, chunk = 0, b" " * (64 * 1024)
    try:
        handler.wfile.write(data)
        sent = len(data)
        while sent < size:
            piece = chunk[: size - sent]
            handler.wfile.write(piece)
            sent += len(piece)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client stopped reading: as it should
    handler.close_connection = True
    return sent


def _texts_of(body: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(system instruction texts, user turn texts) of a request body."""

    def texts(content: dict[str, Any]) -> list[str]:
        return [str(p["text"]) for p in content.get("parts", []) if "text" in p]

    system = texts(body.get("systemInstruction") or body.get("system_instruction") or {})
    user = [t for c in body.get("contents", []) if c.get("role", "user") == "user"
            for t in texts(c)]
    return system, user


def _batch_items(user_text: str) -> list[dict[str, Any]] | None:
    """The items of a batch prompt (a JSON array of objects with a string id
    and text), or None for any other prompt."""
    try:
        items = json.loads(user_text)
    except ValueError:
        return None
    if not isinstance(items, list) or not all(
            isinstance(i, dict) and isinstance(i.get("id"), str) and isinstance(i.get("text"), str)
            for i in items):
        return None
    return items


def form_of(system: str) -> tuple[str, str]:
    """(style, length) a system instruction asks for, read as a model would
    read the providers' prompts."""
    if '"points"' in system:
        lengths = {"200 characters": "short", "400 characters": "medium",
                   "800 characters": "long"}
        return "bullets", next((n for w, n in lengths.items() if w in system), "short")
    if "4-6 sentences" in system:
        return "prose", "medium"
    if "each major section" in system:
        return "prose", "long"
    return "prose", "short"


def _batch_answer_text(mode: str, items: list[dict[str, Any]],
                       form: tuple[str, str] = ("prose", "short")) -> str:
    answers = [{"id": item["id"], **_summary_of(item["text"], form)} for item in items]
    if answers and mode == "batch_drop":
        answers.pop(0)
    elif answers and mode == "batch_mangle":
        answers[0] = {"id": answers[0]["id"], "summary": "Just one sentence here.", "tags": 7}
    elif answers and mode == "batch_wrong_id":
        answers[0]["id"] = "not-" + answers[0]["id"]
    return json.dumps(answers)


def _answer(mode: str, call: Call, number: int) -> dict[str, Any]:
    if mode == "blocked":
        return {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": _usage(call, "")}
    if mode == "safety":
        return {"candidates": [{"finishReason": "SAFETY", "index": 0}],
                "usageMetadata": _usage(call, "")}
    finish = "STOP"
    if mode == "nul":
        # json.dumps escapes these (\u0000, \ud800): valid JSON, hostile text.
        text = json.dumps({"summary": "The windmill\x00 project started\x07. Volunteers met\x9b"
                                      " weekly\x85and delivered\ud800 results.",
                           "tags": ["wind\x00mill", "\x1bvolunteers", "proj\udfffect"]})
    elif mode == "bad":
        text = json.dumps({"summary": " ".join(["This is one sentence."] * 6), "tags": ["x"]})
    elif call.items is not None and mode == "batch_unsupported":
        text = json.dumps(_summary_of(call.user_text))  # one answer for the whole array
    elif call.items is not None:
        text = _batch_answer_text(mode, call.items, call.form)
        if mode == "truncated":
            text, finish = text[: len(text) // 2], "MAX_TOKENS"
    else:
        text = json.dumps(_summary_of(call.user_text, call.form))
        if mode == "truncated":
            text, finish = text[: len(text) // 2], "MAX_TOKENS"
    return {
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                        "finishReason": finish, "index": 0}],
        "usageMetadata": _usage(call, text),
        "modelVersion": call.model,
        "responseId": f"fake-{number}",
    }


_FILLERS = ("There is little else to say.", "Nothing more is known.",
            "The text ends there.", "No other detail is given.", "That is all it says.")
_SENTENCES = {("prose", "short"): 2, ("prose", "medium"): 4, ("prose", "long"): 4,
              ("bullets", "short"): 3, ("bullets", "medium"): 4, ("bullets", "long"): 5}


def _clipped(sentence: str, most: int = 25) -> str:
    """The sentence's first ``most`` words, ending in a period. A clip that
    would end on a one-letter word or an initialism ("... in a.", "... former
    U.S.") drops it: a model never ends a sentence so, and the contract's
    splitter reads "a." as an initial and "U.S." as inside a sentence."""
    words = sentence.split()[:most]
    while len(words) > 1 and (len(bare := words[-1].rstrip(".!?,;:")) <= 1 or "." in bare):
        words.pop()
    return " ".join(words).rstrip(".!?,;:") + "."


def _summary_of(user_text: str, form: tuple[str, str] = ("prose", "short")) -> dict[str, Any]:
    """First two sentences (clipped; more for other forms: ``_SENTENCES``)
    and the most frequent longer words of the text between <text> markers
    (or of all the user text, if there are none)."""
    found = _TEXT.search(user_text)
    text = found.group("text") if found else user_text
    want = _SENTENCES[form]
    sentences = [_clipped(s) for s in split_sentences(text)]
    sentences = [s[0].upper() + s[1:] for s in sentences if len(s) > 1][:want]
    for filler in _FILLERS:
        if len(sentences) < want:
            sentences.append(filler)
    words = Counter(w for w in re.findall(r"[a-z]{4,}", text.lower()) if w not in _COMMON)
    tags = [w for w, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))][:3]
    for filler in ("summary", "text"):
        if len(tags) < 2 and filler not in tags:
            tags.append(filler)
    if form[0] == "bullets":
        return {"points": sentences, "tags": tags}
    if form[1] == "long":
        return {"summary": " ".join(sentences[:2]) + "\n\n" + " ".join(sentences[2:]),
                "tags": tags}
    return {"summary": " ".join(sentences), "tags": tags}


_COMMON = frozenset({"that", "this", "with", "from", "have", "were", "they", "their", "there",
                     "which", "about", "would", "into", "been", "than", "then", "them", "when",
                     "what", "will", "your", "also", "more", "some", "such", "only", "over"})


_HTML = (b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
         b"<body><h1>Bad Gateway</h1><p>The upstream server is unavailable.</p></body></html>")

# mode: (status, content type, body, extra headers)
_BROKEN: dict[str, tuple[int, str, bytes, dict[str, str]]] = {
    "html": (200, "text/html; charset=utf-8", _HTML, {}),
    "not_object": (200, "application/json", b'[{"candidates": []}]', {}),
    "wrong_shape": (200, "application/json",
                    b'{"candidates": "none", "usageMetadata": [1, 2], "promptFeedback": 7}', {}),
    "bad_gzip": (200, "application/json", b"this is not gzip data at all",
                 {"Content-Encoding": "gzip"}),
    "html_error": (502, "text/html", _HTML, {}),
}


def _usage(call: Call, text: str) -> dict[str, int]:
    prompt_tokens, answer_tokens = len(call.prompt) // 4 + 1, len(text) // 4
    return {"promptTokenCount": prompt_tokens, "candidatesTokenCount": answer_tokens,
            "totalTokenCount": prompt_tokens + answer_tokens}


def _error(status: int, name: str, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": name}}
