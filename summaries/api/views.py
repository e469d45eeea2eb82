"""HTTP endpoints: validate, call one service, render with an output serializer."""

from __future__ import annotations

import json
import logging
import shlex
import uuid
from typing import Any, ClassVar

from django.db import connection
from django.urls import reverse
from django.utils.html import format_html
from drf_spectacular.utils import (
    OpenApiCallback,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from summaries.api import schema  # also documents the operator token
from summaries.api import serializers as s
from summaries.api.batch import answer_items
from summaries.api.parsers import JSONParser
from summaries.api.throttling import SubmitRateThrottle
from summaries.api.uploads import MultiPartParser
from summaries.core import outcomes
from summaries.core.errors import ErrorCode
from summaries.infra import cache
from summaries.models import Job
from summaries.representations import bodies
from summaries.selectors import analytics
from summaries.services.document_submit import document_request
from summaries.services.progress import with_progress
from summaries.services.submit import (
    Submission,
    summary_request,
)

logger = logging.getLogger(__name__)

CACHE_HEADERS = [
    OpenApiParameter("X-Cache", str, OpenApiParameter.HEADER, response=[200, 202],
                     enum=["HIT", "MISS", "JOINED", "NEAR", "FAILED"],
                     description="HIT: a cached summary. MISS: this submit created the job. "
                                 "JOINED: it joined the job already running for this input. "
                                 "NEAR: a text answered with the summary of a near-duplicate "
                                 "(near_duplicate_of names its job). "
                                 "FAILED: the URL failed to fetch moments ago (no summary)."),
    OpenApiParameter("X-Cache-Key", str, OpenApiParameter.HEADER, response=[200, 202],
                     description="The input's cache key (also the body's cache_key)."),
    OpenApiParameter("Location", str, OpenApiParameter.HEADER, response=[202],
                     description="The job's status URL."),
]


JOB_FINISHED = OpenApiCallback("jobFinished", "{$request.body#/callback_url}", extend_schema(
    summary="The job is completed or failed (at once for a cache hit)",
    description="The job's status body as GET /api/status/<job_id> renders it (without "
                "callbacks), signed as Standard Webhooks sign (standardwebhooks.com): "
                "webhook-id: the delivery id, the same on every retry (dedupe on it); "
                "webhook-timestamp; webhook-signature: v1,<base64 HMAC-SHA256 of "
                "\"<id>.<timestamp>.<raw body>\"> with the receiver's secret (manage.py "
                "webhook_secret <callback_url>; one signature per secret while one is "
                "rotated out). Until the next release also X-SmartCache-Signature: "
                "t=<unix>,v1=<hex HMAC-SHA256 with WEBHOOK_SECRET over \"<t>.<raw body>\"> "
                "and X-SmartCache-Delivery (deprecated). X-SmartCache-Event: "
                "job.completed or job.failed; X-SmartCache-Attempt; X-SmartCache-Watch for a "
                "watch's change. Answer 2xx: network errors, timeouts, 5xx, 408 and 429 are "
                "retried with backoff, other answers are final; redirects are not followed.",
    request=bodies.JobWebhookBody, responses={200: None}))


class BrowsableForm(APIView):
    """A POST-only endpoint a person may open in a browser.

    A GET that asked for HTML (the browsable API) answers 200: the view's
    description, how to call it with an example body and a curl line, and
    the POST form below filled with that example. Every other GET is still
    the JSON 405 an API client expects (Allow: POST, OPTIONS). Only POSTs
    are rate limited.
    """

    example: ClassVar[dict[str, Any]]
    form_class: ClassVar[type[Serializer[Any]]]

    def get_serializer(self, *args: Any, **kwargs: Any) -> Serializer[Any]:
        """What the browsable API fills its raw-data form from: the example."""
        if args or kwargs:
            return self.form_class(*args, **kwargs)
        return self.form_class(instance=self.example)

    def get_throttles(self) -> list[BaseThrottle]:
        return super().get_throttles() if self.request.method == "POST" else []

    # (DRF's stubs type this as both Django's View and APIView do: one must lose.)
    def http_method_not_allowed(  # type: ignore[override]
            self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if request.method == "GET" and isinstance(request.accepted_renderer, BrowsableAPIRenderer):
            return Response(self.usage(request))
        return super().http_method_not_allowed(request, *args, **kwargs)

    def usage(self, request: Request) -> dict[str, Any]:
        """The body of the browser's GET page (the curl line is in the description)."""
        return {"how": f"POST a JSON body to {request.build_absolute_uri(request.path)}: "
                       "the form below holds an example; press POST to send it.",
                "docs": request.build_absolute_uri(reverse("docs"))}

    def get_view_description(self, html: bool = False) -> str:
        """The browsable page's description, with the example as a curl line."""
        description = super().get_view_description(html)
        if not html:
            return description
        url = self.request.build_absolute_uri(self.request.path)
        body = json.dumps(self.example, ensure_ascii=False)
        curl = (f"curl -s -X POST {url} \\\n  -H 'Content-Type: application/json' \\\n"
                f"  -d {shlex.quote(body)}")
        return format_html("{}<p>From a terminal:</p><pre {}>{}</pre>", description, PRE_WRAP,
                           curl)


# A long curl line wraps instead of widening the browsable page.
PRE_WRAP = format_html('style="{}"', "white-space: pre-wrap; word-break: break-all")


class SubmitView(BrowsableForm):
    """Submit text or a URL. A cached answer comes back at once (200); otherwise
    a job is queued (202) and its status URL is in the Location header: GET it
    until its status is completed (or failed).
    X-Cache says how it was answered (HIT, MISS, JOINED or FAILED) and
    X-Cache-Key gives the input's cache key.
    A document (PDF, DOCX, text, Markdown) is uploaded as multipart/form-data:
    the file in "file", the options as form fields."""

    serializer_class = s.SubmitRequest
    form_class = s.SubmitRequest
    example = schema.SUBMIT_BODY
    throttle_classes = [SubmitRateThrottle]
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(request={"application/json": s.SubmitRequest,
                            "multipart/form-data": s.UploadRequest}, responses={
        200: OpenApiResponse(bodies.SubmitAnsweredResponse, "Answered at once: a cached summary "
                             "(X-Cache: HIT) or a URL that failed moments ago (FAILED).",
                             examples=[schema.SUBMIT_HIT, schema.SUBMIT_HIT_BULLETS,
                                       schema.SUBMIT_KNOWN_FAILURE]),
        202: OpenApiResponse(bodies.SubmitAcceptedResponse, "A job is queued (X-Cache: MISS) or "
                             "already running for this input (JOINED); poll Location.",
                             examples=[schema.SUBMIT_MISS, schema.SUBMIT_JOINED]),
        **schema.errors(400, 413, 415, 429, 503)}, parameters=CACHE_HEADERS,
        examples=schema.SUBMIT_REQUESTS,
        callbacks=[JOB_FINISHED])
    def post(self, request: Request) -> Response:
        if request.content_type.startswith("multipart/form-data"):
            upload, options = s.UploadRequest.parse(request.data, request.FILES)
            submission = document_request(body=upload.read(), content_type=upload.content_type,
                                          filename=upload.name or "", options=options)
        else:
            raw, options = s.SubmitRequest.parse(request.data)
            # The input the fast path (bypasses/fastpath.py) checked on its way
            # here, if it did: handed over with the request, not checked again.
            checked = getattr(request, "checked_input", None)
            submission = summary_request(raw=raw, options=options, checked=checked)
        headers = {"X-Cache": bodies.CACHE_STATUS[submission.outcome],
                   "X-Cache-Key": submission.cache_key}
        if submission.cached:
            return Response(bodies.SubmitResponse.render(submission), status=status.HTTP_200_OK,
                            headers=headers)
        _log_job(submission, lane="interactive")
        headers["Location"] = _status_url(request, submission.job_id)
        return Response(bodies.SubmitResponse.render(submission), status=status.HTTP_202_ACCEPTED,
                        headers=headers)


class SubmitBatchView(BrowsableForm):
    """Submit up to 100 inputs at once, for the bulk lane. Each item is
    answered, in order, as a single submit of it would be (hits inline, jobs
    with their status URL, a refused item alone with its error and
    http_status); 202 if any item's job is queued or running, else 200.
    Each item counts against the rate limit."""

    form_class = s.BatchRequest
    example = schema.BATCH_BODY
    throttle_classes = [SubmitRateThrottle]

    @extend_schema(request=s.BatchRequest, responses={
        200: OpenApiResponse(s.BatchResponse, "Every item answered at once (from the cache, "
                             "or refused).", examples=[schema.BATCH_ANSWERED]),
        202: OpenApiResponse(s.BatchResponse, "At least one item's job is queued or running: "
                             "poll its status_url.", examples=[schema.BATCH_ANSWER]),
        **schema.errors(400, 413, 415, 429, 503)}, examples=[schema.BATCH_REQUEST])
    def post(self, request: Request) -> Response:
        form = s.BatchRequest(data=request.data)
        form.is_valid(raise_exception=True)
        answers = answer_items(form.validated_data["inputs"],
                               lambda job_id: _status_url(request, job_id))
        for answer in answers:
            if answer.submission is not None and not answer.submission.cached:
                _log_job(answer.submission, lane="bulk")
        running = any(answer.http_status == status.HTTP_202_ACCEPTED for answer in answers)
        return Response(s.BatchResponse({"results": answers}).data,
                        status=status.HTTP_202_ACCEPTED if running else status.HTTP_200_OK)

    def throttle_cost(self, request: Request) -> int:
        """One per item (a malformed batch costs one: it is refused whole)."""
        inputs = request.data.get("inputs") if isinstance(request.data, dict) else None
        return len(inputs) if isinstance(inputs, list) and inputs else 1


# What the API root lists: URL name, method, what it does. Operator
# endpoints need the operator token when JOBS_API_TOKEN is set.
ENDPOINTS = (
    ("submit", "POST", "Summarise a text or an http(s) URL: 200 from the cache, or 202 with a "
                       "job to poll. Open it in a browser for a form with an example."),
    ("submit-batch", "POST", "Up to 100 inputs at once, answered item by item."),
    ("job-status", "GET", "A job's status, stage and, once completed, its summary and tags."),
    ("analytics", "GET", "Hits, misses, processing times, AI calls and cost saved."),
    ("analytics-timeline", "GET", "Per-minute hits, misses and processing time (the last "
                                  "day; ?minutes=60)."),
    ("job-events", "GET", "A job's status pushed live as Server-Sent Events, ending with "
                          "the result."),
    ("health", "GET", "200 when the database and Valkey answer, else 503."),
    ("jobs", "GET", "Operators: all jobs, newest first; ?status=failed is the dead-letter "
                    "queue."),
    ("job-retry", "POST", "Operators: re-queue a failed job."),
    ("job-callbacks", "GET", "Operators: a job's webhook deliveries (URL, status, attempts)."),
    ("insights", "GET", "Operators: recent failures by error code, with what to do."),
    ("cache-purge", "POST", "Operators: forget the cached summary of an input."),
    ("cache-key", "DELETE", "Operators: forget the cached summary under a cache key."),
    ("watches", "GET", "Operators: watched URLs (POST one to re-summarise a page when it "
                       "changes)."),
    ("watch-detail", "GET", "Operators: one watch, its last check and summary (DELETE stops it)."),
    ("docs", "GET", "Swagger UI: every endpoint, with examples to try."),
    ("schema", "GET", "The OpenAPI schema (YAML; ?format=json)."),
)
# Path parameters, shown in the root's URLs as {placeholders}.
PATH_PARAMETERS = {"job-status": "job_id", "job-retry": "job_id", "job-events": "job_id",
                   "job-callbacks": "job_id",
                   "cache-key": "key",
                   "watch-detail": "watch_id"}


class ApiRootView(APIView):
    """SmartCache turns a text or a web page into a 2-3 sentence summary (or
    key points, or a longer one: style and length on submit) and tags, and
    caches the answer. Start with submit: POST a text or URL, then GET the
    job's status URL until it is completed."""

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        return Response({"endpoints": {f"{method} {_root_url(request, name)}": does
                                       for name, method, does in ENDPOINTS}})

    def get_view_name(self) -> str:
        return "SmartCache API"

    def get_view_description(self, html: bool = False) -> str:
        description = super().get_view_description(html)
        if not html:
            return description
        body = shlex.quote(json.dumps(schema.SUBMIT_BODY, ensure_ascii=False))
        curl = (f"curl -s -X POST {_root_url(self.request, 'submit')} "
                f"-H 'Content-Type: application/json' -d {body}\n"
                f"curl -s {_root_url(self.request, 'job-status')}   "
                "# the job_id of the first answer")
        return format_html("{}<p>Try it from a terminal:</p><pre {}>{}</pre>", description,
                           PRE_WRAP, curl)


def _root_url(request: Request, name: str) -> str:
    """The endpoint's absolute URL, its path parameter as a {placeholder}."""
    if (parameter := PATH_PARAMETERS.get(name)) is None:
        return request.build_absolute_uri(reverse(name))
    marker = "PARAMETER"
    url = request.build_absolute_uri(reverse(name, kwargs={parameter: marker}))
    return url.replace(marker, f"{{{parameter}}}")


def _log_job(submission: Submission, *, lane: str) -> None:
    """The API's line about a job: this request created it or joined it (a
    hit logs nothing beyond the access log: it is the hot path)."""
    joined = submission.outcome == outcomes.JOINED
    logger.info("submit joined the job in flight" if joined else "submit created a job",
                extra={"job_id": submission.job_id,
                       "cache": bodies.CACHE_STATUS[submission.outcome], "lane": lane})


def _status_url(request: Request, job_id: str) -> str:
    return request.build_absolute_uri(reverse("job-status", kwargs={"job_id": job_id}))


class StatusView(APIView):
    """A job's status; with its summary and tags once completed."""

    @extend_schema(parameters=[schema.JOB_ID_PARAMETER], responses={
        200: OpenApiResponse(bodies.JobResponse, "The job.", examples=[
            schema.STATUS_COMPLETED, schema.STATUS_FAILED]),
        **schema.errors(404)})
    def get(self, request: Request, job_id: str) -> Response:
        return Response(bodies.JobResponse.render(with_progress(get_job(job_id))))


def get_job(job_id: str) -> Job:
    try:
        return Job.objects.get(id=uuid.UUID(job_id))
    except (ValueError, Job.DoesNotExist):
        raise NotFound(f"no job with id {job_id!r}") from None


class AnalyticsView(APIView):
    """Request, cache and job counters across all API and worker processes."""

    @extend_schema(responses={200: s.AnalyticsResponse, **schema.errors(503)})
    def get(self, request: Request) -> Response:
        queue_size = Job.objects.filter(status=Job.Status.PENDING).count()
        return Response({**analytics.snapshot(), "queue_size": queue_size})


class HealthView(APIView):
    """200 when the database and Valkey both answer, 503 otherwise."""

    @extend_schema(responses={200: s.HealthResponse, 503: s.HealthResponse})
    def get(self, request: Request) -> Response:
        checks = {"database": _check(_ping_database), "valkey": _check(cache.ping)}
        healthy = all(value == "ok" for value in checks.values())
        body: dict[str, Any] = {"status": "ok" if healthy else "unavailable", **checks}
        if not healthy:
            failing = ", ".join(name for name, value in checks.items() if value != "ok")
            body |= {"error": f"unavailable: {failing}", "code": ErrorCode.UNHEALTHY}
        return Response(body, status=200 if healthy else 503)


def _ping_database() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return True


def _check(probe: Any) -> str:
    try:
        probe()
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok"
