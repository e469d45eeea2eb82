"""Read-only admin for inspecting jobs (and re-queueing failed ones)."""

from __future__ import annotations

import contextlib

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from summaries.errors import Busy, NotRetryable
from summaries.models import Job
from summaries.services.submit import job_retry


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
        (None, {"fields": ("id", "kind", "status", "stage", "cached", "refresh", "attempts")}),
        ("Input", {"fields": ("input_text", "input_hash", "provider")}),
        ("Page", {"fields": ("url", "final_url", "title", "extracted_chars", "extracted_text")}),
        ("Result", {"fields": ("summary", "tags", "error_code", "error", "duration_ms")}),
        ("Timing", {"fields": ("created_at", "started_at", "completed_at", "updated_at",
                               "lease_expires_at")}),
    )
    actions = ("retry_failed",)

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
