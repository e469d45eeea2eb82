"""HTTP endpoints: validate, call one service, render with an output serializer."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import asdict
from typing import Any, NoReturn

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import status
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from summaries import cache, metrics
from summaries.api import schema  # noqa: F401  (documents the operator token)
from summaries.api import serializers as s
from summaries.api.batch import answer_items
from summaries.api.throttling import SubmitRateThrottle
from summaries.models import Job
from summaries.services.insights import failure_insights
from summaries.services.progress import with_progress
from summaries.services.submit import (
    job_list,
    job_retry,
    purge_input,
    purge_key,
    summary_request,
)

ERRORS = {code: OpenApiResponse(s.ErrorResponse) for code in (400, 413, 415, 429, 503)}


CACHE_HEADERS = [
    OpenApiParameter("X-Cache", str, OpenApiParameter.HEADER, response=[200, 202],
                     enum=["HIT", "MISS", "JOINED", "FAILED"],
                     description="HIT: a cached summary. MISS: this submit created the job. "
                                 "JOINED: it joined the job already running for this input. "
                                 "FAILED: the URL failed to fetch moments ago (no summary)."),
    OpenApiParameter("X-Cache-Key", str, OpenApiParameter.HEADER, response=[200, 202],
                     description="The input's cache key (also the body's cache_key)."),
    OpenApiParameter("Location", str, OpenApiParameter.HEADER, response=[202],
                     description="The job's status URL."),
]
EXAMPLE_KEY = "3f1c9a0e5b7d2c4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e"
SUBMIT_HIT = OpenApiExample("cache hit", response_only=True, status_codes=[200], value={
    "job_id": "5a0c2f4e-8b1d-4c3a-9e7f-0123456789ab", "status": "completed", "cached": True,
    "cache_key": EXAMPLE_KEY, "summary": "Valkey is an open source key-value store forked "
    "from Redis in 2024. Many cloud providers offer it as a managed service.",
    "tags": ["valkey", "redis", "databases"]})
ARTICLE = ("Valkey is an open source key-value store. It forked from Redis in 2024. "
           "Many cloud providers now offer it as a managed service.")
SUBMIT_TEXT = OpenApiExample("text", request_only=True, value={"input": ARTICLE})
SUBMIT_URL = OpenApiExample("URL, bypassing the cache", request_only=True,
                            value={"input": "https://example.com/some-article", "refresh": True})
SUBMIT_FRESH = OpenApiExample("URL, at most an hour old", request_only=True,
                              value={"input": "https://example.com/some-article", "max_age": 3600})
SUBMIT_NO_STORE = OpenApiExample("text, not stored", request_only=True,
                                 value={"input": ARTICLE, "store": False})
BATCH = OpenApiExample("two texts and a URL", request_only=True, value={"inputs": [
    ARTICLE, {"input": "https://example.com/some-article", "refresh": False},
    "The lighthouse was built in 1874. It still guides ships into the harbour."]})
SUBMIT_MISS = OpenApiExample("job queued", response_only=True, status_codes=[202], value={
    "job_id": "5a0c2f4e-8b1d-4c3a-9e7f-0123456789ab", "status": "pending", "cached": False,
    "cache_key": EXAMPLE_KEY})


class SubmitView(APIView):
    """Submit text or a URL. A cached answer comes back at once (200); otherwise
    a job is queued (202) and its status URL is in the Location header.
    X-Cache says how it was answered (HIT, MISS, JOINED or FAILED) and
    X-Cache-Key gives the input's cache key."""

    serializer_class = s.SubmitRequest
    throttle_classes = [SubmitRateThrottle]

    @extend_schema(request=s.SubmitRequest, responses={
        200: OpenApiResponse(s.SubmitResponse, "Answered at once: a cached summary "
                             "(X-Cache: HIT) or a URL that failed moments ago (FAILED).",
                             examples=[SUBMIT_HIT]),
        202: OpenApiResponse(s.SubmitResponse, "A job is queued (X-Cache: MISS) or already "
                             "running for this input (JOINED); poll Location.",
                             examples=[SUBMIT_MISS]),
        **ERRORS}, parameters=CACHE_HEADERS,
        examples=[SUBMIT_TEXT, SUBMIT_URL, SUBMIT_FRESH, SUBMIT_NO_STORE])
    def post(self, request: Request) -> Response:
        submission = summary_request(**s.SubmitRequest.parse(request.data))
        headers = {"X-Cache": s.CACHE_STATUS[submission.outcome],
                   "X-Cache-Key": submission.cache_key}
        if submission.cached:
            return Response(s.SubmitResponse.render(submission), status=status.HTTP_200_OK,
                            headers=headers)
        headers["Location"] = _status_url(request, submission.job_id)
        return Response(s.SubmitResponse.render(submission), status=status.HTTP_202_ACCEPTED,
                        headers=headers)


class SubmitBatchView(APIView):
    """Submit up to 100 inputs at once, for the bulk lane. Each item is
    answered, in order, as a single submit of it would be (hits inline, jobs
    with their status URL, a refused item alone with its error and
    http_status); 202 if any item's job is queued or running, else 200.
    Each item counts against the rate limit."""

    throttle_classes = [SubmitRateThrottle]

    @extend_schema(request=s.BatchRequest, responses={
        200: OpenApiResponse(s.BatchResponse, "Every item answered at once (from the cache, "
                             "or refused)."),
        202: OpenApiResponse(s.BatchResponse, "At least one item's job is queued or running: "
                             "poll its status_url."),
        **ERRORS}, examples=[BATCH])
    def post(self, request: Request) -> Response:
        form = s.BatchRequest(data=request.data)
        form.is_valid(raise_exception=True)
        answers = answer_items(form.validated_data["inputs"],
                               lambda job_id: _status_url(request, job_id))
        running = any(answer.http_status == status.HTTP_202_ACCEPTED for answer in answers)
        return Response(s.BatchResponse({"results": answers}).data,
                        status=status.HTTP_202_ACCEPTED if running else status.HTTP_200_OK)

    def throttle_cost(self, request: Request) -> int:
        """One per item (a malformed batch costs one: it is refused whole)."""
        inputs = request.data.get("inputs") if isinstance(request.data, dict) else None
        return len(inputs) if isinstance(inputs, list) and inputs else 1


def _status_url(request: Request, job_id: str) -> str:
    return request.build_absolute_uri(reverse("job-status", kwargs={"job_id": job_id}))


class StatusView(APIView):
    """A job's status; with its summary and tags once completed."""

    @extend_schema(responses={200: s.JobResponse, 404: OpenApiResponse(s.ErrorResponse)})
    def get(self, request: Request, job_id: str) -> Response:
        return Response(s.JobResponse.render(with_progress(_get_job(job_id))))


def _get_job(job_id: str) -> Job:
    try:
        return Job.objects.get(id=uuid.UUID(job_id))
    except (ValueError, Job.DoesNotExist):
        raise NotFound(f"no job with id {job_id!r}") from None


OPERATOR = "operator-token"


def _bearer_token(request: Request) -> bytes | None:
    """The credentials of "Authorization: Bearer <token>", as bytes (a header
    may hold any character; compare_digest only takes ASCII str)."""
    header = str(request.META.get("HTTP_AUTHORIZATION", ""))
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return given.strip().encode("utf-8", "surrogatepass")


class OperatorTokenAuthentication(BaseAuthentication):
    """The operator token authenticates the request (request.auth = OPERATOR).
    A wrong or missing token authenticates nothing; OperatorOnly refuses then.
    Listed before SessionAuthentication, so a token request needs no CSRF token."""

    def authenticate(self, request: Request) -> tuple[AnonymousUser, str] | None:
        token = settings.JOBS_API_TOKEN
        given = _bearer_token(request)
        if not token or given is None or not hmac.compare_digest(given, token.encode()):
            return None
        return AnonymousUser(), OPERATOR


class OperatorOnly(BasePermission):
    """Open unless JOBS_API_TOKEN is set; then the bearer token or a staff
    session (the admin's login; its POSTs need Django's CSRF token)."""

    message = "this endpoint needs the operator token (Authorization: Bearer ...)"

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not settings.JOBS_API_TOKEN or request.auth == OPERATOR:
            return True
        return bool(request.user and request.user.is_staff)


class OperatorView(APIView):
    """Base of the dead-letter endpoints: token or staff session."""

    authentication_classes = [OperatorTokenAuthentication, SessionAuthentication]
    permission_classes = [OperatorOnly]

    def permission_denied(self, request: Request, message: str | None = None,
                          code: str | None = None) -> NoReturn:
        # 403 with our message, as documented, whether credentials were
        # missing or wrong (DRF would say "not authenticated" for both).
        raise PermissionDenied(message or OperatorOnly.message, code)


class JobListView(OperatorView):
    """All jobs, newest first, paginated; ?status=failed is the dead-letter view."""

    @extend_schema(parameters=[s.JobFilter], responses={
        200: s.JobPage, 400: OpenApiResponse(s.ErrorResponse),
        403: OpenApiResponse(s.ErrorResponse), 404: OpenApiResponse(s.ErrorResponse)})
    def get(self, request: Request) -> Response:
        query = s.JobFilter(data=request.query_params)
        query.is_valid(raise_exception=True)
        paginator = PageNumberPagination()
        paginator.page_size = 50
        paginator.page_size_query_param = "page_size"
        paginator.max_page_size = 200
        page = paginator.paginate_queryset(job_list(**query.validated_data), request, view=self)
        return paginator.get_paginated_response([s.JobResponse.render(job) for job in page or []])


class JobRetryView(OperatorView):
    """Re-queue a failed job (202). Other states: 409."""

    @extend_schema(request=None, responses={
        202: s.JobResponse, 403: OpenApiResponse(s.ErrorResponse),
        404: OpenApiResponse(s.ErrorResponse), 409: OpenApiResponse(s.ErrorResponse)})
    def post(self, request: Request, job_id: str) -> Response:
        retried = job_retry(job=_get_job(job_id))
        return Response(s.JobResponse.render(retried), status=status.HTTP_202_ACCEPTED)


PURGE_RESPONSES = {200: s.PurgeResponse, 400: OpenApiResponse(s.ErrorResponse),
                   403: OpenApiResponse(s.ErrorResponse), 503: OpenApiResponse(s.ErrorResponse)}


class CacheKeyView(OperatorView):
    """Purge the cached summary under a cache key (X-Cache-Key of a submit):
    no process serves it any more, and the next submit of its input is a
    miss with a new job. Idempotent: an unknown key answers 200 with
    "deleted": false."""

    @extend_schema(responses=PURGE_RESPONSES, parameters=[OpenApiParameter(
        "key", str, OpenApiParameter.PATH, pattern="^[0-9a-f]{64}$",
        description="The input's cache key (a submit's X-Cache-Key).")])
    def delete(self, request: Request, key: str) -> Response:
        return Response(s.PurgeResponse(purge_key(key=key)).data)


class CachePurgeView(OperatorView):
    """Purge the cached summary of an input (text or URL), normalised and
    keyed as a submit of it is; as DELETE /api/cache/<key> otherwise."""

    @extend_schema(request=s.PurgeRequest, responses={
        **PURGE_RESPONSES, 413: OpenApiResponse(s.ErrorResponse),
        415: OpenApiResponse(s.ErrorResponse)})
    def post(self, request: Request) -> Response:
        form = s.PurgeRequest(data=request.data)
        form.is_valid(raise_exception=True)
        return Response(s.PurgeResponse(purge_input(raw=form.validated_data["input"])).data)


class InsightsView(OperatorView):
    """Recent failures grouped by error code: how many, the newest example,
    and the suggested action (retry later, fix the input, raise the provider
    quota, the site blocks fetching ...)."""

    @extend_schema(parameters=[s.InsightsFilter], responses={
        200: s.InsightsResponse, 400: OpenApiResponse(s.ErrorResponse),
        403: OpenApiResponse(s.ErrorResponse)})
    def get(self, request: Request) -> Response:
        query = s.InsightsFilter(data=request.query_params)
        query.is_valid(raise_exception=True)
        hours = query.validated_data["hours"]
        groups = [asdict(group) for group in failure_insights(hours=hours)]
        return Response({"hours": hours, "total_failures": sum(g["count"] for g in groups),
                         "groups": groups})


class AnalyticsView(APIView):
    """Request, cache and job counters across all API and worker processes."""

    @extend_schema(responses={200: s.AnalyticsResponse, 503: OpenApiResponse(s.ErrorResponse)})
    def get(self, request: Request) -> Response:
        queue_size = Job.objects.filter(status=Job.Status.PENDING).count()
        return Response({**metrics.snapshot(), "queue_size": queue_size})


class HealthView(APIView):
    """200 when the database and Valkey both answer, 503 otherwise."""

    @extend_schema(responses={200: s.HealthResponse, 503: s.HealthResponse})
    def get(self, request: Request) -> Response:
        checks = {"database": _check(_ping_database), "valkey": _check(cache.ping)}
        healthy = all(value == "ok" for value in checks.values())
        body: dict[str, Any] = {"status": "ok" if healthy else "unavailable", **checks}
        if not healthy:
            failing = ", ".join(name for name, value in checks.items() if value != "ok")
            body |= {"error": f"unavailable: {failing}", "code": "unhealthy"}
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
