"""The product's pages. They only render templates: everything they show
comes from the public API (/api/submit, /api/jobs/<id>/events,
/api/status/<id>, /api/analytics, /api/analytics/timeline), so the page is
one more client of it."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


def _context(page: str) -> dict[str, object]:
    return {"page": page, "max_input_chars": settings.MAX_INPUT_CHARS}


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Submit text or a URL, watch it run, read the summary."""
    return render(request, "web/home.html", _context("home"))


@require_GET
def analytics(request: HttpRequest) -> HttpResponse:
    """Hits and misses over time, processing time, what the cache saved."""
    return render(request, "web/analytics.html", _context("analytics"))
