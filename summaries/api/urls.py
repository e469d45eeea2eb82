from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from summaries.api import views
from summaries.api.errors import error_response


@api_view(["GET"])
def api_root(request: Request) -> Response:
    """SmartCache: POST text or a URL to /api/submit, then poll /api/status/<job_id>."""
    return Response({
        name: reverse(name, request=request)
        for name in ("submit", "analytics", "health", "schema")
    })


@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
def not_found(request: Request, rest: str) -> Response:
    return error_response(f"no API endpoint at /api/{rest}", "not_found", 404)


# Paths are served with or without a trailing slash: clients use both.
urlpatterns = [
    path("", api_root, name="api-root"),
    re_path(r"^submit/?$", views.SubmitView.as_view(), name="submit"),
    re_path(r"^status/(?P<job_id>[^/]+)/?$", views.StatusView.as_view(), name="job-status"),
    re_path(r"^analytics/?$", views.AnalyticsView.as_view(), name="analytics"),
    re_path(r"^health/?$", views.HealthView.as_view(), name="health"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^(?P<rest>.*)$", not_found),
]
