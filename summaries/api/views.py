"""HTTP endpoints: validate, call one service, render with an output serializer."""

from __future__ import annotations

import hmac
import json
import logging
import shlex
import uuid
from dataclasses import asdict
from typing import Any, ClassVar, NoReturn

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
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
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from summaries.api import schema  # also documents the operator token
from summaries.api import serializers as s
from summaries.api.batch import answer_items
from summaries.api.throttling import SubmitRateThrottle
from summaries.core import outcomes
from summaries.infra import cache
from summaries.models import Job, Watch
from summaries.representations import bodies
from summaries.selectors import analytics
from summaries.services import watches
from summaries.services.insights import failure_insights
from summaries.services.progress import with_progress
from summaries.services.submit import (
    Submission,
    job_list,
    job_retry,
    purge_input,
    purge_key,
    summary_request,
)

logger = logging.getLogger(__name__)

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
    X-Cache-Key gives the input's cache key."""

    serializer_class = s.SubmitRequest
    form_class = s.SubmitRequest
    example = schema.SUBMIT_BODY
    throttle_classes = [SubmitRateThrottle]

    @extend_schema(request=s.SubmitRequest, responses={
        200: OpenApiResponse(bodies.SubmitAnsweredResponse, "Answered at once: a cached summary "
                             "(X-Cache: HIT) or a URL that failed moments ago (FAILED).",
                             examples=[schema.SUBMIT_HIT, schema.SUBMIT_KNOWN_FAILURE]),
        202: OpenApiResponse(bodies.SubmitAcceptedResponse, "A job is queued (X-Cache: MISS) or "
                             "already running for this input (JOINED); poll Location.",
                             examples=[schema.SUBMIT_MISS, schema.SUBMIT_JOINED]),
        **schema.errors(400, 413, 415, 429, 503)}, parameters=CACHE_HEADERS,
        examples=schema.SUBMIT_REQUESTS,
        callbacks=[JOB_FINISHED])
    def post(self, request: Request) -> Response:
        submission = summary_request(**s.SubmitRequest.parse(request.data))
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
    """SmartCache turns a text or a web page into a 2-3 sentence summary and
    tags, and caches the answer. Start with submit: POST a text or URL, then
    GET the job's status URL until it is completed."""

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
        return Response(bodies.JobResponse.render(with_progress(_get_job(job_id))))


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


class OperatorAlways(OperatorOnly):
    """The operator token or a staff session, even where JOBS_API_TOKEN is
    unset (then only a staff login): for what names one client to another,
    such as a job's callback URLs and their tokens."""

    message = ("this endpoint names clients' callback URLs: it needs the operator token "
               "(Authorization: Bearer ...) or a staff login")

    def has_permission(self, request: Request, view: APIView) -> bool:
        if settings.JOBS_API_TOKEN and request.auth == OPERATOR:
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
        200: s.JobPage, **schema.errors(400, 403, 404)})
    def get(self, request: Request) -> Response:
        query = s.JobFilter(data=request.query_params)
        query.is_valid(raise_exception=True)
        paginator = _paginator()
        page = paginator.paginate_queryset(job_list(**query.validated_data), request, view=self)
        return paginator.get_paginated_response(
            [bodies.JobResponse.render(job) for job in page or []])


def _paginator() -> PageNumberPagination:
    """50 a page, ?page_size= up to 200: no list answer grows without bound."""
    paginator = PageNumberPagination()
    paginator.page_size = 50
    paginator.page_size_query_param = "page_size"
    paginator.max_page_size = 200
    return paginator


PAGE_PARAMETERS = [OpenApiParameter("page", int), OpenApiParameter("page_size", int)]


class JobCallbacksView(OperatorView):
    """A job's webhook deliveries (callback_url on a submit, a watch's
    callback), oldest first, paginated: each one's URL, status, attempts
    and last error. Operators only, always (OperatorAlways): the URLs are
    the clients' own, often with a token, and the job's public status is
    shared by every client that asked for its input."""

    permission_classes = [OperatorAlways]

    @extend_schema(parameters=[schema.JOB_ID_PARAMETER, *PAGE_PARAMETERS], responses={
        200: s.DeliveryPage, **schema.errors(403, 404)})
    def get(self, request: Request, job_id: str) -> Response:
        deliveries = _get_job(job_id).deliveries.order_by("created_at", "id")
        paginator = _paginator()
        page = paginator.paginate_queryset(deliveries, request, view=self)
        return paginator.get_paginated_response(
            [bodies.DeliveryResponse.render(delivery) for delivery in page or []])


class JobRetryView(OperatorView):
    """Re-queue a failed job (202). Other states: 409."""

    @extend_schema(request=None, parameters=[schema.JOB_ID_PARAMETER], responses={
        202: bodies.JobResponse, **schema.errors(403, 404, 409)})
    def post(self, request: Request, job_id: str) -> Response:
        retried = job_retry(job=_get_job(job_id))
        return Response(bodies.JobResponse.render(retried), status=status.HTTP_202_ACCEPTED)


PURGE_RESPONSES = {200: OpenApiResponse(s.PurgeResponse, "Purged (or nothing was cached).",
                                         examples=[schema.PURGE_ANSWER]),
                   **schema.errors(400, 403, 503)}


class CacheKeyView(OperatorView):
    """Purge the cached summary under a cache key (X-Cache-Key of a submit):
    no process serves it any more, and the next submit of its input is a
    miss with a new job. Idempotent: an unknown key answers 200 with
    "deleted": false."""

    @extend_schema(responses=PURGE_RESPONSES, parameters=[schema.CACHE_KEY_PARAMETER])
    def delete(self, request: Request, key: str) -> Response:
        return Response(s.PurgeResponse(purge_key(key=key)).data)


class CachePurgeView(BrowsableForm, OperatorView):
    """Purge the cached summary of an input (text or URL), normalised and
    keyed as a submit of it is; as DELETE /api/cache/<key> otherwise."""

    form_class = s.PurgeRequest
    example = schema.SUBMIT_BODY

    @extend_schema(request=s.PurgeRequest, responses={
        **PURGE_RESPONSES, **schema.errors(413, 415)}, examples=[schema.PURGE_REQUEST])
    def post(self, request: Request) -> Response:
        form = s.PurgeRequest(data=request.data)
        form.is_valid(raise_exception=True)
        return Response(s.PurgeResponse(purge_input(raw=form.validated_data["input"])).data)


class InsightsView(OperatorView):
    """Recent failures grouped by error code: how many, the newest example,
    and the suggested action (retry later, fix the input, raise the provider
    quota, the site blocks fetching ...)."""

    @extend_schema(parameters=[s.InsightsFilter], responses={
        200: s.InsightsResponse, **schema.errors(400, 403)})
    def get(self, request: Request) -> Response:
        query = s.InsightsFilter(data=request.query_params)
        query.is_valid(raise_exception=True)
        hours = query.validated_data["hours"]
        groups = [asdict(group) for group in failure_insights(hours=hours)]
        return Response({"hours": hours, "total_failures": sum(g["count"] for g in groups),
                         "groups": groups})


def _get_watch(watch_id: str) -> Watch:
    try:
        return Watch.objects.select_related("last_job").get(id=uuid.UUID(watch_id))
    except (ValueError, Watch.DoesNotExist):
        raise NotFound(f"no watch with id {watch_id!r}") from None


class WatchListView(OperatorView):
    """Watched URLs (operators: each makes the server fetch a page again and
    again). POST creates one: the page is checked at once, then every
    ``every``; when its article text changed it is summarised again (one AI
    call per change, none when unchanged) and ``callback_url`` is called with
    the new job's status. GET lists them, newest first, paginated."""

    @extend_schema(operation_id="watches_list", parameters=PAGE_PARAMETERS, responses={
        200: s.WatchPage, **schema.errors(403, 404)})
    def get(self, request: Request) -> Response:
        paginator = _paginator()
        page = paginator.paginate_queryset(watches.watch_list(), request, view=self)
        return paginator.get_paginated_response([s.WatchResponse.render(w) for w in page or []])

    @extend_schema(request=s.WatchRequest, examples=[schema.WATCH_REQUEST], responses={
        201: s.WatchResponse, **schema.errors(400, 403, 413, 415)})
    def post(self, request: Request) -> Response:
        form = s.WatchRequest(data=request.data)
        form.is_valid(raise_exception=True)
        values = form.validated_data
        watch = watches.watch_create(url=values["url"], every=watches.parse_every(values["every"]),
                                     callback_url=values.get("callback_url", ""))
        location = request.build_absolute_uri(
            reverse("watch-detail", kwargs={"watch_id": str(watch.id)}))
        return Response(s.WatchResponse.render(watch), status=status.HTTP_201_CREATED,
                        headers={"Location": location})


class WatchDetailView(OperatorView):
    """One watch: last checked, last changed, the last change's job and
    summary, the last error. DELETE stops watching (204)."""

    @extend_schema(parameters=[schema.WATCH_ID_PARAMETER], responses={
        200: s.WatchResponse, **schema.errors(403, 404)})
    def get(self, request: Request, watch_id: str) -> Response:
        return Response(s.WatchResponse.render(_get_watch(watch_id)))

    @extend_schema(parameters=[schema.WATCH_ID_PARAMETER], responses={
        204: None, **schema.errors(403, 404)})
    def delete(self, request: Request, watch_id: str) -> Response:
        watches.watch_delete(watch=_get_watch(watch_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


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
