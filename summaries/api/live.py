"""Live views: a job's event stream (SSE) and the per-minute timeline the
web page's charts draw."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db import connection
from django.http import HttpResponseBase, JsonResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from summaries.api import schema
from summaries.core.errors import ErrorCode
from summaries.models import Job
from summaries.observability import counters, timeline
from summaries.representations import bodies
from summaries.services import events
from summaries.services.progress import with_progress

EVENTS_HELP = (
    "Server-Sent Events (text/event-stream). At once an `event: status` with the job's "
    "whole /api/status body; then one `event: status` per change of status or stage "
    "(job_id, status, stage, attempts; last_error while retrying), and the whole body again "
    "at a heartbeat when queue_position or eta_seconds moved; finally an "
    "`event: result` with the whole status body (completed: summary, tags; failed: error, "
    "code), and the stream ends. A comment every SSE_HEARTBEAT_SECONDS; the stream ends "
    "after SSE_MAX_SECONDS (reconnect: the current state comes at once). 503 when this "
    "process serves SSE_MAX_STREAMS streams already: poll /api/status instead.")


def status_body(job_id: str) -> tuple[dict[str, Any], datetime]:
    """The job's /api/status body and its updated_at, read now; the stream's
    thread gives its database connection back at once (a stream lives for
    minutes, a pooled connection must not)."""
    try:
        job = Job.objects.get(id=job_id)
        return bodies.JobResponse.render(with_progress(job)), job.updated_at
    finally:
        connection.close()


class JobEventsView(APIView):
    """A job's progress, pushed as it happens (Server-Sent Events)."""

    @extend_schema(
        responses={(200, "text/event-stream"): OpenApiResponse(OpenApiTypes.STR, EVENTS_HELP),
                   **schema.errors(400, 404, 503)},
        parameters=[schema.JOB_ID_PARAMETER,
                    OpenApiParameter("Last-Event-ID", str, OpenApiParameter.HEADER,
                                     required=False, pattern=r"^[0-9]{0,18}$",
                                     description="Sent by a reconnecting EventSource: the "
                                                 "id of the last event it got (digits); the "
                                                 "current state follows at once. Anything "
                                                 "else is a 400.")])
    def get(self, request: Request, job_id: str) -> HttpResponseBase:
        # Everything that can refuse the request comes before a slot is taken.
        try:
            last_event_id = events.parse_last_event_id(request.headers.get("Last-Event-ID"))
        except ValueError as exc:
            return JsonResponse({"error": str(exc), "code": ErrorCode.INVALID_LAST_EVENT_ID},
                                status=400)
        try:
            key = str(uuid.UUID(job_id))
        except ValueError:
            key = ""
        if not key or not Job.objects.filter(id=key).exists():
            return JsonResponse({"error": f"no job with id {job_id!r}",
                                 "code": ErrorCode.NOT_FOUND}, status=404)
        stream = events.JobEventStream.open(key, lambda: status_body(key),
                                            last_event_id=last_event_id)
        if stream is None:
            return JsonResponse({"error": "too many open event streams here; poll "
                                          f"/api/status/{key} instead", "code": ErrorCode.BUSY},
                                status=503, headers={"Retry-After": "5"})
        response = StreamingHttpResponse(stream, content_type="text/event-stream")
        # No caching, no buffering by a proxy (nginx honours X-Accel-Buffering).
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response


class TimelineFilter(serializers.Serializer):
    minutes = serializers.IntegerField(required=False, default=60, min_value=1,
                                       max_value=timeline.TIMELINE_MAX_MINUTES)


class TimelineMinute(serializers.Serializer):
    minute = serializers.IntegerField(help_text="The minute's start, epoch seconds (UTC).")
    hit = serializers.IntegerField(help_text="Submits answered from the cache.")
    miss = serializers.IntegerField(help_text="Submits that created a job.")
    joined = serializers.IntegerField(help_text="Submits that joined a job in flight.")
    near = serializers.IntegerField(help_text="Submits answered with a near-duplicate's "
                                              "summary.")
    known_failure = serializers.IntegerField(help_text="Submits of a URL that just failed.")
    completed = serializers.IntegerField(help_text="Jobs completed.")
    failed = serializers.IntegerField(help_text="Jobs failed.")
    ms = serializers.IntegerField(help_text="Processing milliseconds of the completed jobs, "
                                            "summed (ms / completed = the mean).")


class TimelineResponse(serializers.Serializer):
    minutes = TimelineMinute(many=True)


class TimelineView(APIView):
    """Submits by outcome and jobs finished, per minute, for the last
    ``minutes`` minutes (oldest first; at most a day is kept)."""

    @extend_schema(parameters=[TimelineFilter], responses={
        200: TimelineResponse, **schema.errors(400, 503)})
    def get(self, request: Request) -> Response:
        query = TimelineFilter(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response({"minutes": counters.recent_minutes(query.validated_data["minutes"])})
