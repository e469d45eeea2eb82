from typing import Any

from django.urls import URLPattern, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from summaries.api import live, operator, views
from summaries.api.errors import error_response
from summaries.core.errors import ErrorCode


@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
def not_found(request: Request, rest: str) -> Response:
    return error_response(f"no API endpoint at /api/{rest}", ErrorCode.NOT_FOUND, 404)


def both(route: str, view: Any, name: str) -> list[URLPattern]:
    """Serve a route with and without a trailing slash (clients use both);
    only the first is named, so only it appears in the OpenAPI schema."""
    return [path(route, view, name=name), path(f"{route}/", view)]


urlpatterns = [
    path("", views.ApiRootView.as_view(), name="api-root"),
    *both("submit", views.SubmitView.as_view(), "submit"),
    *both("submit/batch", views.SubmitBatchView.as_view(), "submit-batch"),
    *both("status/<str:job_id>", views.StatusView.as_view(), "job-status"),
    *both("jobs", operator.JobListView.as_view(), "jobs"),
    *both("jobs/<str:job_id>/retry", operator.JobRetryView.as_view(), "job-retry"),
    *both("jobs/<str:job_id>/callbacks", operator.JobCallbacksView.as_view(), "job-callbacks"),
    *both("jobs/<str:job_id>/events", live.JobEventsView.as_view(), "job-events"),
    *both("analytics/timeline", live.TimelineView.as_view(), "analytics-timeline"),
    *both("analytics", views.AnalyticsView.as_view(), "analytics"),
    *both("insights", operator.InsightsView.as_view(), "insights"),
    *both("cache/purge", operator.CachePurgeView.as_view(), "cache-purge"),
    *both("cache/<str:key>", operator.CacheKeyView.as_view(), "cache-key"),
    *both("watches", operator.WatchListView.as_view(), "watches"),
    *both("watches/<str:watch_id>", operator.WatchDetailView.as_view(), "watch-detail"),
    *both("health", views.HealthView.as_view(), "health"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    re_path(r"^(?P<rest>.*)$", not_found),
]
