"""The baseline for the cache-hit figure: a bare DRF endpoint under gunicorn.

``gunicorn bench.bare_app:application`` serves one DRF ``APIView`` that answers
every GET or POST with the same small JSON body, under a minimal Django: no
middleware, no database, no authentication, JSON renderer only. It is what
"a bare DRF endpoint returning a constant JSON body" costs; bench/throughput.py
starts it with the very gunicorn flags the running stack's web server has.
"""

from __future__ import annotations

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-only-not-secret",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["rest_framework"],
    MIDDLEWARE=[],
    USE_TZ=True,
    REST_FRAMEWORK={
        "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
        "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
        "DEFAULT_AUTHENTICATION_CLASSES": [],
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
        "UNAUTHENTICATED_USER": None,
    },
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.urls import path  # noqa: E402
from rest_framework.request import Request  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

# About the size of a cache hit's answer (job id, status, summary, tags).
BODY = {
    "job_id": "00000000-0000-0000-0000-000000000000",
    "status": "completed",
    "cached": True,
    "summary": "A constant summary of two sentences. It never changes.",
    "tags": ["bench", "constant"],
}


class Constant(APIView):
    def get(self, request: Request) -> Response:
        return Response(BODY)

    def post(self, request: Request) -> Response:
        return Response(BODY)


urlpatterns = [path("", Constant.as_view()), path("<path:rest>", Constant.as_view())]
application = get_wsgi_application()
