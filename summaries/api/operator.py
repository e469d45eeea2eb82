"""The operator endpoints (the OPERATOR_TOKEN bearer, or a staff session): jobs,
retries, webhook deliveries, cache purges, insights and watches. Like the
public ones (api/views.py): validate, call one service, render."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import asdict
from typing import NoReturn

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse
from drf_spectacular.utils import (
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

from summaries.api import schema  # also documents the operator token
from summaries.api import serializers as s
from summaries.api.views import BrowsableForm, get_job
from summaries.core.forms import Form
from summaries.models import Watch
from summaries.representations import bodies
from summaries.selectors.jobs import job_list
from summaries.services import watches
from summaries.services.insights import failure_insights
from summaries.services.purge import purge_input, purge_key
from summaries.services.retry import job_retry

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
        deliveries = get_job(job_id).deliveries.order_by("created_at", "id")
        paginator = _paginator()
        page = paginator.paginate_queryset(deliveries, request, view=self)
        return paginator.get_paginated_response(
            [bodies.DeliveryResponse.render(delivery) for delivery in page or []])


class JobRetryView(OperatorView):
    """Re-queue a failed job (202). Other states: 409."""

    @extend_schema(request=None, parameters=[schema.JOB_ID_PARAMETER], responses={
        202: bodies.JobResponse, **schema.errors(403, 404, 409)})
    def post(self, request: Request, job_id: str) -> Response:
        retried = job_retry(job=get_job(job_id))
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
                                     callback_url=values.get("callback_url", ""),
                                     form=Form(values["style"], values["length"]))
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
