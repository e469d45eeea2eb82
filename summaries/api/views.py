"""HTTP endpoints: validate, call one service, shape the response."""

from __future__ import annotations

import hmac
import uuid
from typing import Any, NoReturn

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
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
from summaries.api.throttling import SubmitRateThrottle
from summaries.models import Job
from summaries.services.submit import Submission, job_list, job_retry, summary_request

ERRORS = {code: OpenApiResponse(s.ErrorResponse) for code in (400, 413, 415, 429, 503)}


class SubmitView(APIView):
    """Submit text or a URL. A cached answer comes back at once (200); otherwise
    a job is queued (202) and its status URL is in the Location header."""

    serializer_class = s.SubmitRequest
    throttle_classes = [SubmitRateThrottle]

    @extend_schema(request=s.SubmitRequest,
                   responses={200: s.SubmitResponse, 202: s.SubmitResponse, **ERRORS})
    def post(self, request: Request) -> Response:
        form = s.SubmitRequest(data=request.data)
        form.is_valid(raise_exception=True)
        submission = summary_request(raw=form.validated_data["input"],
                                     refresh=form.validated_data["refresh"])
        body = _submission_body(submission)
        if submission.cached:
            return Response(body, status=status.HTTP_200_OK)
        status_path = reverse("job-status", kwargs={"job_id": submission.job_id})
        location = request.build_absolute_uri(status_path)
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})


class StatusView(APIView):
    """A job's status; with its summary and tags once completed."""

    @extend_schema(responses={200: s.JobResponse, 404: OpenApiResponse(s.ErrorResponse)})
    def get(self, request: Request, job_id: str) -> Response:
        return Response(_job_body(_get_job(job_id)))


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
        return paginator.get_paginated_response([_job_body(job) for job in page or []])


class JobRetryView(OperatorView):
    """Re-queue a failed job (202). Other states: 409."""

    @extend_schema(request=None, responses={
        202: s.JobResponse, 403: OpenApiResponse(s.ErrorResponse),
        404: OpenApiResponse(s.ErrorResponse), 409: OpenApiResponse(s.ErrorResponse)})
    def post(self, request: Request, job_id: str) -> Response:
        retried = job_retry(job=_get_job(job_id))
        return Response(_job_body(retried), status=status.HTTP_202_ACCEPTED)


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


def _submission_body(sub: Submission) -> dict[str, Any]:
    body: dict[str, Any] = {"job_id": sub.job_id, "status": sub.status, "cached": sub.cached}
    if sub.status == Job.Status.COMPLETED:
        body |= {"summary": sub.summary, "tags": sub.tags}
    if sub.error:
        body |= {"error": sub.error, "code": sub.code}
    return body


def _job_body(job: Job) -> dict[str, Any]:
    body: dict[str, Any] = {
        "job_id": str(job.id),
        "status": job.status,
        "kind": job.kind,
        "stage": job.stage,
        "cached": job.cached,
        "attempts": job.attempts,
        "created_at": job.created_at,
    }
    if job.status == Job.Status.COMPLETED:
        body |= {"summary": job.summary, "tags": job.tags}
    if job.status == Job.Status.FAILED:
        body |= {"error": job.error, "code": job.error_code}
    elif job.error:
        body["last_error"] = job.error
    if job.completed_at:
        body["completed_at"] = job.completed_at
    if job.duration_ms is not None:
        body["duration_ms"] = job.duration_ms
    if job.kind == Job.Kind.URL:
        body["url"] = job.url
        if job.final_url:
            body |= {"final_url": job.final_url, "title": job.title,
                     "extracted_chars": job.extracted_chars}
    return body
