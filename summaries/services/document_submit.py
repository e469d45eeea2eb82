"""The submit of an uploaded file (POST /api/submit, multipart).

At submit, only what is cheap is checked: the size (413 over
DOCUMENT_MAX_BYTES) and what the bytes are (415 when not a PDF, DOCX, text or
Markdown file; summaries/documents/sniff.py reads the first bytes and a
zip's directory, never the document). Parsing is the worker's, within the
attempt's deadline (services/document_text.py); the bytes wait for it in
the database (services/uploads.py).
"""

from __future__ import annotations

import hashlib

from django.conf import settings

from summaries import documents
from summaries.core.errors import InputTooLarge, UnsupportedDocument
from summaries.core.inputs import DOCUMENT, NormalizedInput
from summaries.services.config import cache_namespace
from summaries.services.submit import CheckedInput, Submission, summary_request
from summaries.services.submit_options import DEFAULTS, SubmitOptions
from summaries.services.uploads import upload_keep


def document_request(*, body: bytes, content_type: str = "", filename: str = "",
                     options: SubmitOptions = DEFAULTS) -> Submission:
    """Answer an uploaded file as summary_request answers a text or URL.
    Raises InputTooLarge (413), UnsupportedDocument (415), and what
    summary_request raises."""
    if len(body) > settings.DOCUMENT_MAX_BYTES:
        raise InputTooLarge(f"the file has {len(body)} bytes; the limit is "
                            f"{settings.DOCUMENT_MAX_BYTES}")
    kind = documents.sniff(body, content_type)
    if kind not in documents.DOCUMENT_KINDS:
        raise UnsupportedDocument("the file is not a PDF, DOCX, plain-text or Markdown "
                                  "document" + (" (HTML: submit its URL)"
                                                if kind is documents.Kind.HTML else ""))
    sha256 = hashlib.sha256(body).hexdigest()
    upload_keep(sha256=sha256, body=body, content_type=content_type, filename=filename)
    item = NormalizedInput(DOCUMENT, sha256)
    checked = CheckedInput(sha256, item, item.cache_key(cache_namespace()))
    return summary_request(raw=sha256, options=options, checked=checked)
