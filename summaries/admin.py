"""Read-only admin for inspecting jobs, with actions: retry a failed job,
re-summarise an input, purge its cached summary; each job links to Flower."""

from __future__ import annotations

import contextlib
import re
import uuid
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from redis.exceptions import RedisError

from summaries.core.errors import Busy, InputTooLarge, InvalidInput, NotRetryable
from summaries.models import Job, ProviderBatch, Watch, WebhookDelivery
from summaries.services import insights
from summaries.services.purge import purge_key
from summaries.services.retry import job_retry
from summaries.services.submit import summary_request
from summaries.services.submit_options import SubmitOptions

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


# Status colours of the job list (the admin's own palette: readable in its
# light and dark themes).
STATUS_COLOURS: dict[str, str] = {Job.Status.PENDING: "#7a7a7a", Job.Status.PROCESSING: "#2b6cb0",
                  Job.Status.COMPLETED: "#2f855a", Job.Status.FAILED: "#c53030"}
# The input column: one line, cut with an ellipsis; the whole input is its title.
INPUT_STYLE = ("display:inline-block;max-width:19em;overflow:hidden;text-overflow:ellipsis;"
               "white-space:nowrap;vertical-align:bottom")
CACHED_HELP = "Completed from the cache, without an AI call."
HEX_PREFIX = re.compile(r"[0-9a-f]{4,32}")


# One model: the navigation sidebar would only repeat the home page, and its
# 300 px are what the job list needs at 1280 px.
admin.site.enable_nav_sidebar = False


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
    # At 1280 px everything fits on one line per job: a short id (the full
    # one is its title and the detail page's), the input cut to one line. The
    # Flower link is on the job's page.
    list_display = ("short_id", "short_input", "coloured_status", "stage", "error_code",
                    "tries", "duration", "created")
    list_display_links = ("short_id",)
    list_filter = ("status", "stage", "error_code", "kind", "cached", "via_batch", "created_at")
    search_fields = ("=id", "=input_hash", "url", "final_url", "title")
    search_help_text = ("A job id (or its first 8 characters), a cache key, a URL or a page "
                        "title.")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    list_per_page = 50
    show_full_result_count = False
    fieldsets = (
        (None, {"fields": ("id", "flower", "kind", "status", "stage", "cached", "refresh",
                           "store", "purged_at", "attempts")}),
        ("Input", {"fields": ("input_text", "input_hash", "provider", "language", "style",
                              "length")}),
        ("Page", {"fields": ("url", "final_url", "title", "extracted_chars", "extracted_text")}),
        ("Result", {"fields": ("summary", "tags", "near_duplicate_of", "error_code", "error",
                               "duration_ms")}),
        ("Batch lane", {"fields": ("via_batch", "provider_batch", "deadline")}),
        ("Cost", {"fields": ("input_tokens", "output_tokens", "tokens_estimated", "cost")}),
        ("Timing", {"fields": ("created_at", "started_at", "completed_at", "updated_at",
                               "lease_expires_at")}),
    )
    actions = ("retry_failed", "resummarise", "purge_cached_summary")
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

    @admin.display(description="job", ordering="id")
    def short_id(self, job: Job) -> str:
        return format_html('<code title="{}">{}</code>', job.id, str(job.id)[:8])

    @admin.display(description="input")
    def short_input(self, job: Job) -> str:
        text = job.url or job.input_text or "(not stored)"
        return format_html('<span title="{}" style="{}">{}</span>', text[:2000], INPUT_STYLE,
                           text[:300])

    @admin.display(description="status", ordering="status")
    def coloured_status(self, job: Job) -> str:
        return format_html('<b style="color:{};white-space:nowrap">{}</b>{}',
                           STATUS_COLOURS.get(job.status, ""), job.status,
                           format_html(' <small title="{}">cached</small>', CACHED_HELP)
                           if job.cached else "")

    @admin.display(description="tries", ordering="attempts")
    def tries(self, job: Job) -> int:
        return job.attempts

    @admin.display(description="created", ordering="created_at")
    def created(self, job: Job) -> str:
        """Compact (month-day time); the full date and time in the title."""
        local = timezone.localtime(job.created_at)
        return format_html('<span title="{}" style="white-space:nowrap">{}</span>',
                           local.isoformat(sep=" ", timespec="seconds"),
                           local.strftime("%m-%d %H:%M"))

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, job: Job) -> str:
        if job.duration_ms is None:
            return "-"
        if job.duration_ms < 10_000:
            return f"{job.duration_ms} ms"
        return f"{job.duration_ms / 1000:.0f} s"

    @admin.display(description="see also")
    def flower(self, job: Job) -> str:
        """The job's Celery task in Flower (the task id is the job id), and
        its status as the API answers it."""
        return format_html(
            '<a href="{}/task/{}" target="_blank" rel="noopener">its Celery task in Flower</a>'
            ' · <a href="{}">its status in the API</a>', settings.FLOWER_URL.rstrip("/"),
            job.id, reverse("job-status", kwargs={"job_id": str(job.id)}))

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Job],
                           search_term: str) -> tuple[QuerySet[Job], bool]:
        """Also find a job by the start of its id (the list's short id): the
        ids between that prefix padded with 0s and with fs, which works on
        SQLite's hex text and PostgreSQL's uuid alike."""
        found, duplicates = super().get_search_results(request, queryset, search_term)
        prefix = search_term.strip().lower().replace("-", "")
        if HEX_PREFIX.fullmatch(prefix) and len(prefix) < 32:
            low, high = uuid.UUID(prefix.ljust(32, "0")), uuid.UUID(prefix.ljust(32, "f"))
            found |= queryset.filter(id__gte=low, id__lte=high)
        return found, duplicates

    def get_readonly_fields(self, request: HttpRequest, obj: Job | None = None) -> list[str]:
        return [*(field.name for field in Job._meta.fields), "flower"]

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

    @admin.action(description="Re-summarise with the current provider and model",
                  permissions=["view"])
    def resummarise(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        """Submit each selected job's input again with refresh (as a client's
        "refresh": true would): a new job, summarised by the summariser
        configured now, whose result replaces the cached one. A job whose
        input was not stored (store:false) cannot be, nor an upload (its
        bytes are kept only until its job ends)."""
        started, skipped = [], 0
        for job in queryset:
            raw = job.url or job.input_text
            if not raw or job.kind == Job.Kind.DOCUMENT:
                skipped += 1
                continue
            try:
                started.append(summary_request(
                    raw=raw, options=SubmitOptions(refresh=True, store=job.store)).job_id)
            except (InvalidInput, InputTooLarge, Busy):
                skipped += 1
            except RedisError as exc:
                self.message_user(request, f"Valkey unavailable ({type(exc).__name__}): "
                                           "try again.", messages.ERROR)
                return
        links = format_html_join(", ", '<a href="{}">{}</a>', (
            (reverse("admin:summaries_job_change", args=[job_id]), job_id[:8])
            for job_id in started))
        self.message_user(request, format_html(
            "Re-summarising {} input(s): {}.{}", len(started), links,
            f" {skipped} skipped (input not stored, or refused)." if skipped else ""),
            messages.SUCCESS)

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


@admin.register(ProviderBatch)
class ProviderBatchAdmin(admin.ModelAdmin[ProviderBatch]):
    """The provider batch jobs of the batch lane (services/batch_lane.py),
    read-only: what was sent, the provider's id and state, how many of its
    jobs it completed and how many went to live calls instead."""

    list_display = ("display_name", "api", "remote_id", "state", "remote_state", "items",
                    "completed_items", "fallback_items", "unused_cost", "created_at",
                    "finished_at")
    list_filter = ("state", "api", "created_at")
    search_fields = ("=id", "display_name", "remote_id")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)

    def get_readonly_fields(self, request: HttpRequest,
                            obj: ProviderBatch | None = None) -> list[str]:
        return [field.name for field in ProviderBatch._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest,
                              obj: ProviderBatch | None = None) -> bool:
        return False
