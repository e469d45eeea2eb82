"""OpenAPI generation hooks (drf-spectacular), and the examples the schema,
the browsable API and the API root show."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

from summaries.api.serializers import ErrorResponse
from summaries.core.errors import ErrorCode
from summaries.models import Job

HIDDEN = {"/api/", "/api/{rest}"}


def public_endpoints(endpoints: list[tuple[str, str, str, Any]],
                     **kwargs: Any) -> list[tuple[str, str, str, Any]]:
    """Document each endpoint once: without its trailing-slash twin, and
    without the API root and the JSON 404 catch-all."""
    return [(path, regex, method, view) for path, regex, method, view in endpoints
            if path not in HIDDEN and (path == "/api/" or not path.endswith("/"))]


class OperatorTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """Documents the operator token of the dead-letter endpoints."""

    target_class = "summaries.api.operator.OperatorTokenAuthentication"
    name = "operatorToken"

    def get_security_requirement(self, auto_schema: AutoSchema) -> list[dict[str, list[Any]]]:
        # The token, or nothing at all when JOBS_API_TOKEN is unset.
        return [{self.name: []}, {}]

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer",
                "description": "JOBS_API_TOKEN (needed only when it is set); "
                               "or a staff session (the admin's login)"}


# --- Examples -----------------------------------------------------------------
# What Swagger's "Try it out" starts from (the first example of each body),
# what the browsable API's form is filled with, and what the API root shows.
# Each request example is accepted for real (tests/test_schema.py POSTs them).

ARTICLE = ("Valkey is an open source key-value store. It forked from Redis in 2024, when "
           "Redis changed its licence. Many cloud providers now offer Valkey as a managed "
           "service, and most Redis clients work with it unchanged.")
ARTICLE_URL = "https://en.wikipedia.org/wiki/Redis"
EXAMPLE_JOB_ID = "5a0c2f4e-8b1d-4c3a-9e7f-0123456789ab"
EXAMPLE_KEY = "3f1c9a0e5b7d2c4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e"
EXAMPLE_SUMMARY = ("Valkey is an open source key-value store forked from Redis in 2024. Many "
                   "cloud providers offer it as a managed service.")
EXAMPLE_TAGS = ["valkey", "redis", "databases"]

SUBMIT_BODY = {"input": ARTICLE}
SUBMIT_REQUESTS = [
    OpenApiExample("text", request_only=True, value=SUBMIT_BODY,
                   description="Two sentences or more (a shorter text is refused: "
                               "input_too_short)."),
    OpenApiExample("URL", request_only=True, value={"input": ARTICLE_URL},
                   description="An http(s) page: the worker fetches it and summarises "
                               "its article text."),
    OpenApiExample("URL, at most an hour old", request_only=True,
                   value={"input": ARTICLE_URL, "max_age": 3600}),
    OpenApiExample("text, bypassing the cache", request_only=True,
                   value={"input": ARTICLE, "refresh": True}),
    OpenApiExample("text, not stored", request_only=True, value={"input": ARTICLE,
                                                                 "store": False}),
    OpenApiExample("URL, with a webhook", request_only=True,
                   value={"input": ARTICLE_URL,
                          "callback_url": "https://hooks.example.com/smartcache"},
                   description="The job's status is POSTed to callback_url once it is "
                               "finished, signed with WEBHOOK_SECRET (see the README)."),
    OpenApiExample("text, as bullet points", request_only=True,
                   value={"input": ARTICLE, "style": "bullets"},
                   description="3-6 key points, answered in summary as one \"- \" line "
                               "each (three sentences or more: input_too_short otherwise). "
                               "Cached apart from the prose summary."),
    OpenApiExample("URL, a long summary", request_only=True,
                   value={"input": ARTICLE_URL, "length": "long"},
                   description="Up to a paragraph per major section, paragraphs separated "
                               "by a blank line; \"medium\" is 4-6 sentences. Cached apart."),
]
SUBMIT_HIT = OpenApiExample("cache hit (X-Cache: HIT)", response_only=True, value={
    "job_id": EXAMPLE_JOB_ID, "status": "completed", "cached": True, "cache_key": EXAMPLE_KEY,
    "summary": EXAMPLE_SUMMARY, "tags": EXAMPLE_TAGS})
EXAMPLE_POINTS = ("- Valkey is an open source key-value store.\n"
                  "- It forked from Redis in 2024, when Redis changed its licence.\n"
                  "- Many cloud providers offer it as a managed service, and most Redis "
                  "clients work with it unchanged.")
SUBMIT_HIT_BULLETS = OpenApiExample(
    "cache hit, bullets (X-Cache: HIT)", response_only=True, value={
        "job_id": EXAMPLE_JOB_ID, "status": "completed", "cached": True,
        "cache_key": "9b2e" + EXAMPLE_KEY[4:], "summary": EXAMPLE_POINTS, "tags": EXAMPLE_TAGS},
    description='"style": "bullets": one "- " line per key point in summary.')
SUBMIT_KNOWN_FAILURE = OpenApiExample(
    "URL that failed moments ago (X-Cache: FAILED)", response_only=True, value={
        "job_id": EXAMPLE_JOB_ID, "status": "failed", "cached": True, "cache_key": EXAMPLE_KEY,
        "error": "site answered HTTP 404", "code": ErrorCode.HTTP_ERROR.value})
SUBMIT_MISS = OpenApiExample("job queued (X-Cache: MISS)", response_only=True, value={
    "job_id": EXAMPLE_JOB_ID, "status": "pending", "cached": False, "cache_key": EXAMPLE_KEY})
SUBMIT_JOINED = OpenApiExample("joined the job running (X-Cache: JOINED)", response_only=True,
                               value={"job_id": EXAMPLE_JOB_ID, "status": "processing",
                                      "cached": False, "cache_key": EXAMPLE_KEY})

BATCH_BODY = {"inputs": [
    ARTICLE, {"input": ARTICLE_URL, "refresh": False},
    "The lighthouse was built in 1874. It still guides ships into the harbour."]}
BATCH_REQUEST = OpenApiExample("two texts and a URL", request_only=True, value=BATCH_BODY)
BATCH_ANSWER = OpenApiExample("a hit, a job queued, a refused item", response_only=True,
                              value={"results": [
    {"job_id": EXAMPLE_JOB_ID, "status": "completed", "cached": True, "cache_key": EXAMPLE_KEY,
     "cache": "HIT", "summary": EXAMPLE_SUMMARY, "tags": EXAMPLE_TAGS, "http_status": 200},
    {"job_id": "7e1d3b52-64a0-4f6e-8c1b-9a2d5e7f0c34", "status": "pending", "cached": False,
     "cache_key": "c04a" + EXAMPLE_KEY[4:], "cache": "MISS",
     "status_url": "http://127.0.0.1:8000/api/status/7e1d3b52-64a0-4f6e-8c1b-9a2d5e7f0c34",
     "http_status": 202},
    {"error": "input is too short to summarise: give at least two sentences",
     "code": ErrorCode.INPUT_TOO_SHORT.value, "http_status": 400}]})

BATCH_ANSWERED = OpenApiExample("a hit and a refused item", response_only=True, value={
    "results": [BATCH_ANSWER.value["results"][0], BATCH_ANSWER.value["results"][2]]})

PURGE_REQUEST = OpenApiExample("an input", request_only=True, value=SUBMIT_BODY)
PURGE_ANSWER = OpenApiExample("purged", response_only=True, value={
    "cache_key": EXAMPLE_KEY, "deleted": True, "jobs_purged": 1})

STATUS_COMPLETED = OpenApiExample("completed", response_only=True, value={
    "job_id": EXAMPLE_JOB_ID, "status": "completed", "kind": "text", "stage": Job.Stage.DONE.value,
    "cached": False, "attempts": 1, "created_at": "2026-01-05T09:30:00.120000Z",
    "summary": EXAMPLE_SUMMARY, "tags": EXAMPLE_TAGS, "duration_ms": 41,
    "completed_at": "2026-01-05T09:30:00.180000Z"})
STATUS_FAILED = OpenApiExample("failed", response_only=True, value={
    "job_id": EXAMPLE_JOB_ID, "status": "failed", "kind": "url", "stage": Job.Stage.FAILED.value,
    "cached": False, "attempts": 1, "created_at": "2026-01-05T09:30:00.120000Z",
    "error": "site answered HTTP 404", "code": ErrorCode.HTTP_ERROR.value, "url": ARTICLE_URL})

JOB_ID_PARAMETER = OpenApiParameter(
    "job_id", OpenApiTypes.UUID, OpenApiParameter.PATH, examples=[
        OpenApiExample("a job id", value=EXAMPLE_JOB_ID)],
    description="The job_id of a submit's answer (also the end of its Location header). "
                "An id that is no job answers 404 not_found.")
WATCH_ID_PARAMETER = OpenApiParameter(
    "watch_id", OpenApiTypes.UUID, OpenApiParameter.PATH, examples=[
        OpenApiExample("a watch id", value="c1e2a3b4-5d6e-4f70-8a9b-0c1d2e3f4a5b")],
    description="The watch_id of a POST /api/watches answer. An id that is no watch "
                "answers 404 not_found.")
WATCH_REQUEST = OpenApiExample("hourly, with a webhook", request_only=True, value={
    "url": ARTICLE_URL, "every": "1h", "callback_url": "https://hooks.example.com/smartcache"})
CACHE_KEY_PARAMETER = OpenApiParameter(
    "key", str, OpenApiParameter.PATH, pattern="^[0-9a-f]{64}$",
    examples=[OpenApiExample("a cache key", value=EXAMPLE_KEY)],
    description="The input's cache key (a submit's X-Cache-Key, or its cache_key).")

# One documented answer per error status, with the code a client most
# likely meets there.
_ERROR_EXAMPLES: dict[int, tuple[str, ErrorCode, str]] = {
    400: ("Refused input or malformed body.", ErrorCode.INPUT_TOO_SHORT,
          "input is too short to summarise: give at least two sentences"),
    403: ("The operator token (or a staff session) is needed.", ErrorCode.PERMISSION_DENIED,
          "this endpoint needs the operator token (Authorization: Bearer ...)"),
    404: ("No such job (or endpoint).", ErrorCode.NOT_FOUND, f"no job with id '{EXAMPLE_JOB_ID}'"),
    409: ("The job is not failed, or its input was not stored.", ErrorCode.NOT_FAILED,
          "job is completed; only failed jobs can be retried"),
    413: ("The input (or the body) is over the size limit.", ErrorCode.INPUT_TOO_LARGE,
          "input is 150000 characters; the limit is 100000"),
    415: ("The body is not JSON.", ErrorCode.UNSUPPORTED_MEDIA_TYPE,
          "Unsupported media type \"text/plain\" in request."),
    429: ("Over the rate limit: wait Retry-After seconds.", ErrorCode.THROTTLED,
          "Request was throttled. Expected available in 12 seconds."),
    503: ("Valkey or the database is unavailable: retry after Retry-After seconds.",
          ErrorCode.VALKEY_UNAVAILABLE,
          "the cache and queue (Valkey) are unavailable; try again shortly"),
}


def error(status_code: int) -> OpenApiResponse:
    """The documented error answer for ``status_code``: {"error", "code"}."""
    description, code, message = _ERROR_EXAMPLES[status_code]
    return OpenApiResponse(ErrorResponse, description, examples=[
        OpenApiExample(code.value, value={"error": message, "code": code.value},
                       response_only=True, status_codes=[status_code])])


def errors(*status_codes: int) -> dict[int, OpenApiResponse]:
    return {code: error(code) for code in status_codes}
