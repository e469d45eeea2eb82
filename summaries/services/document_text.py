"""A document's text for the pipeline: a fetched body or an uploaded file,
read by summaries.documents in the worker (never in the web process), within
the attempt's deadline.

Every DocumentError becomes a permanent JobError with the document's own
code (encrypted, no_text_layer, corrupt, too_large, too_many_pages,
decompression_bomb, timeout, unsupported): trying again cannot read it, so
the job fails at once, caching nothing and calling no AI.
"""

from __future__ import annotations

import time

from django.conf import settings

from summaries import documents
from summaries.core.errors import ErrorCode, JobError
from summaries.documents import Kind
from summaries.extraction import Article
from summaries.fetching import FetchedPage, decode_html
from summaries.models import DocumentUpload


def attempt_deadline() -> float:
    """A time.monotonic() deadline for parsing: the attempt's budget from now."""
    return time.monotonic() + float(settings.TASK_TIME_LIMIT)


def read(body: bytes, kind: Kind, *, deadline: float, charset: str | None = None) -> Article:
    """The text and title of ``body`` read as ``kind``; raises a permanent JobError."""
    try:
        document = documents.extract(
            body, kind, deadline=deadline, charset=charset,
            max_bytes=settings.DOCUMENT_MAX_BYTES, max_pages=settings.DOCUMENT_MAX_PAGES)
    except documents.DocumentError as error:
        raise JobError(f"the {kind} document cannot be summarised: {error}",
                       code=error.code) from None
    return Article(title=document.title, text=document.text)


def fetched(page: FetchedPage, *, deadline: float) -> tuple[FetchedPage, Article | None]:
    """A fetched answer as a document's text (the Article), or None when it is
    HTML, for the article extractor (``page`` then holds the decoded HTML).
    The bytes decide with the declared type, since servers mislabel: a body
    declared (or taken for) HTML stays HTML unless its bytes are plainly a
    PDF or a DOCX; a body declared a document is HTML only if it plainly is."""
    if not page.body:
        return page, None  # HTML only (a policy without documents)
    kind = documents.sniff(page.body, page.content_type)
    if page.html and kind not in (Kind.PDF, Kind.DOCX):
        return page, None  # declared HTML (UTF-16 without a BOM included) is HTML
    if kind is Kind.HTML:  # declared as a document, but it is markup
        if len(page.body) > settings.FETCH_MAX_BYTES:  # read under the documents' cap
            raise JobError(f"page is larger than {settings.FETCH_MAX_BYTES} bytes",
                           code=ErrorCode.TOO_LARGE)
        return FetchedPage(url=page.url, final_url=page.final_url, status=page.status,
                           content_type=page.content_type,
                           html=decode_html(page.body, page.charset)), None
    if kind not in documents.DOCUMENT_KINDS:
        declared = page.content_type or "no Content-Type"
        raise JobError(f"not an HTML page or a document we read ({declared})",
                       code=ErrorCode.UNSUPPORTED_CONTENT)
    return page, read(page.body, kind, deadline=deadline, charset=page.charset)


def uploaded(sha256: str, *, deadline: float) -> Article:
    """The text of the uploaded document with this SHA-256 (its bytes' row);
    ``document_gone`` when the row is no longer kept."""
    row = DocumentUpload.objects.filter(sha256=sha256).only(
        "body", "content_type").first()
    if row is None:
        raise JobError("the uploaded document is no longer kept: upload it again",
                       code=ErrorCode.DOCUMENT_GONE)
    body = bytes(row.body)
    return read(body, documents.sniff(body, row.content_type), deadline=deadline)
