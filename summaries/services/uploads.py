"""Uploaded documents' bytes: kept until their jobs end (the submit of a
file is services/document_submit.py; its parsing, the worker's, is
services/document_text.py).

The bytes are kept in the database (DocumentUpload, keyed by their SHA-256),
not only in Valkey, so they survive a killed worker until the job ends; the
job's input is that SHA-256, and its cache key a key over it (a new input
kind, ``document``): the same file uploaded twice is a HIT. The worker keys
the extracted text as a URL's article (the content key), so a file uploaded
after being linked, or linked after being uploaded, costs no second AI call.

A row is deleted when a job that read it ends and no job needs it any more
(pending, processing or scheduled), unless it was uploaded again after that
job started; ``sweep_uploads`` (retention) deletes rows no job needs that
were last uploaded over an hour ago (an upload answered from the cache, a
job deleted by an operator).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from summaries.models import DocumentUpload, Job

# Jobs that will read an upload's bytes.
NEEDING = (Job.Status.PENDING, Job.Status.PROCESSING, Job.Status.SCHEDULED)
# An upload no job needs is swept after this long (an upload that was a HIT).
ORPHAN_AFTER = timedelta(hours=1)


def upload_keep(*, sha256: str, body: bytes, content_type: str, filename: str) -> None:
    """Store the bytes (once per SHA-256), marking them uploaded now."""
    now = timezone.now()
    kept = DocumentUpload.objects.filter(sha256=sha256).update(touched_at=now)
    if not kept:
        DocumentUpload.objects.bulk_create([DocumentUpload(
            sha256=sha256, body=body, size=len(body), content_type=content_type[:255],
            filename=filename[:255], created_at=now, touched_at=now)], ignore_conflicts=True)


def upload_release(*, sha256: str, started: datetime | None) -> None:
    """A document job that started at ``started`` ended: delete its bytes
    unless a job still needs them or they were uploaded again since it
    started (a submit about to create its job)."""
    if Job.objects.filter(kind=Job.Kind.DOCUMENT, input_text=sha256,
                          status__in=NEEDING).exists():
        return
    DocumentUpload.objects.filter(sha256=sha256,
                                  touched_at__lt=started or timezone.now()).delete()


def sweep_uploads(*, now: datetime | None = None) -> int:
    """Delete uploads no job needs, last uploaded over ORPHAN_AFTER ago."""
    cutoff = (now or timezone.now()) - ORPHAN_AFTER
    needed = Job.objects.filter(kind=Job.Kind.DOCUMENT, status__in=NEEDING).values("input_text")
    return int(DocumentUpload.objects.filter(touched_at__lt=cutoff)
               .exclude(sha256__in=needed).delete()[0])
