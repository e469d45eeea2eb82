"""Read-only admin for inspecting jobs (and re-queueing failed ones)."""

from __future__ import annotations

import contextlib
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from redis.exceptions import RedisError

from summaries.errors import Busy, NotRetryable
from summaries.models import Job, Watch, WebhookDelivery
from summaries.services import insights
from summaries.services.submit import job_retry, purge_key

# The insights page: the admin's own layout, no template file of its own.
INSIGHTS_PAGE = engines["django"].from_string("""{% extends "admin/base_site.html" %}
{% block content %}
<p>Jobs that failed in the last {{ hours }} hours, by error code (the same as
<a href="/api/insights?hours={{ hours }}">/api/insights</a>).
{% for h in choices %}<a href="?hours={{ h }}">{{ h }} h</a>{% if not forloop.last %} · {% endif %}
{% endfor %}</p>
{% if groups %}
<table>
<thead><tr><th>Code</th><th>Jobs</th><th>Last failed</th><th>What to do</th><th>Example</th></tr>
</thead><tbody>
{% for g in groups %}<tr>
<td><a href="{{ changelist }}?status__exact=failed&amp;error_code={{ g.code }}">{{ g.code }}
</a></td>
<td>{{ g.count }}</td><td>{{ g.last_failed_at }}</td><td>{{ g.action }}</td>
<td><a href="{{ changelist }}{{ g.example_job_id }}/change/">{{ g.example_job_id }}</a><br>
{{ g.example_error|truncatechars:160 }}
{% if g.example_url %}<br>{{ g.example_url|truncatechars:100 }}{% endif %}</td></tr>
{% endfor %}</tbody></table>
{% else %}<p>No failures in that window.</p>{% endif %}
{% endblock %}""")


class WebhookDeliveryInline(admin.TabularInline[WebhookDelivery, Job]):
    """The job's webhook deliveries and their outcomes, read-only."""

    model = WebhookDelivery
    fk_name = "job"
    fields = ("id", "url", "status", "attempts", "last_status_code", "last_error",
              "next_attempt_at", "delivered_at", "watch")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin[Job]):
    list_display = ("id", "kind", "status", "stage", "cached", "attempts", "duration_ms",
                    "short_input", "created_at")
    list_filter = ("status", "kind", "cached", "error_code", "created_at")
    search_fields = ("=id", "=input_hash", "url", "final_url", "title")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    list_per_page = 50
    show_full_result_count = False
    fieldsets = (
        (None, {"fields": ("id", "kind", "status", "stage", "cached", "refresh", "store",
                           "purged_at", "attempts")}),
        ("Input", {"fields": ("input_text", "input_hash", "provider")}),
        ("Page", {"fields": ("url", "final_url", "title", "extracted_chars", "extracted_text")}),
        ("Result", {"fields": ("summary", "tags", "error_code", "error", "duration_ms")}),
        ("Timing", {"fields": ("created_at", "started_at", "completed_at", "updated_at",
                               "lease_expires_at")}),
    )
    actions = ("retry_failed", "purge_cached_summary")
    inlines = (WebhookDeliveryInline,)

    def get_urls(self) -> list[URLPattern]:
        insights_page = self.admin_site.admin_view(self.insights_view)
        return [path("insights/", insights_page, name="summaries_job_insights"),
                *super().get_urls()]

    def insights_view(self, request: HttpRequest) -> HttpResponse:
        """Recent failures grouped by code, with the suggested action."""
        try:
            hours = min(max(int(request.GET.get("hours", insights.DEFAULT_HOURS)), 1),
                        insights.MAX_HOURS)
        except ValueError:
            hours = insights.DEFAULT_HOURS
        context = {**self.admin_site.each_context(request), "title": "Failure insights",
                   "hours": hours, "choices": (1, 24, 24 * 7),
                   "groups": insights.failure_insights(hours=hours),
                   "changelist": reverse("admin:summaries_job_changelist")}
        return TemplateResponse(request, INSIGHTS_PAGE, context)

    def changelist_view(self, request: HttpRequest,
                        extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """The job list opens with the last day's failures by code, linked to
        the insights page."""
        groups = insights.failure_insights()
        if groups:
            summary = format_html_join(", ", "{} ({})", ((g.code, g.count) for g in groups[:5]))
            messages.warning(request, format_html(
                "Failures in the last {} h: {}. <a href=\"{}\">What to do</a>",
                insights.DEFAULT_HOURS, summary, reverse("admin:summaries_job_insights")))
        return super().changelist_view(request, extra_context)

    @admin.display(description="input")
    def short_input(self, job: Job) -> str:
        text = job.url or job.input_text
        return text if len(text) <= 80 else text[:77] + "..."

    def get_readonly_fields(self, request: HttpRequest, obj: Job | None = None) -> list[str]:
        return [field.name for field in Job._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    # Jobs change only through the pipeline: the admin shows them read-only
    # (view permission) and offers the retry action.
    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False

    @admin.action(description="Retry the selected failed jobs", permissions=["view"])
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        count = 0
        for job in queryset.filter(status=Job.Status.FAILED):
            with contextlib.suppress(NotRetryable, Busy):  # changed meanwhile
                job_retry(job=job)
                count += 1
        self.message_user(request, f"Re-queued {count} failed job(s).", messages.SUCCESS)

    @admin.action(description="Purge cached summary", permissions=["view"])
    def purge_cached_summary(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        """Purge the cached summary of each selected job's input, as
        DELETE /api/cache/<key> does (every process stops serving it)."""
        keys = set(queryset.values_list("input_hash", flat=True))
        try:
            deleted = sum(purge_key(key=key).deleted for key in keys)
        except RedisError as exc:
            self.message_user(request, f"Valkey unavailable ({type(exc).__name__}): "
                                       "nothing purged; try again.", messages.ERROR)
            return
        self.message_user(request, f"Purged {len(keys)} input(s); {deleted} had a cached "
                                   "summary.", messages.SUCCESS)


class WatchDeliveryInline(WebhookDeliveryInline):
    fk_name = "watch"


@admin.register(Watch)
class WatchAdmin(admin.ModelAdmin[Watch]):
    """Watched URLs, read-only (create and delete them with /api/watches),
    with the deliveries their changes made."""

    list_display = ("id", "url", "every_seconds", "next_run_at", "last_checked_at",
                    "last_changed_at", "checks", "changes", "last_error_code")
    search_fields = ("=id", "url")
    ordering = ("-created_at",)
    inlines = (WatchDeliveryInline,)

    def get_readonly_fields(self, request: HttpRequest, obj: Watch | None = None) -> list[str]:
        return [field.name for field in Watch._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Watch | None = None) -> bool:
        return False
