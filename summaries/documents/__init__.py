"""Documents people send (PDF, DOCX, plain text, Markdown) as text to summarise.

The bottom layer of document support, pure adapter code: it imports nothing
from the rest of ``summaries`` but core (its codes are ``ErrorCode``
members). ``sniff`` says what a body is; ``extract`` turns it into a
``Document`` or raises a ``DocumentError`` whose ``code`` says why not
(errors.py lists them). HTML is not extracted here (the article extractor
does it): ``sniff`` only recognises it.

Every limit is a parameter with a default (limits.py); the caller passes the
settings' values. ``deadline`` is a time.monotonic() value: parsing stops with
``Timeout`` once it has passed (checked between pages, between 1 MiB steps of
inflation, and while waiting for the PDF engine's lock).
"""

from __future__ import annotations

from dataclasses import dataclass

from summaries.documents.errors import (
    Corrupt,
    DecompressionBomb,
    DocumentError,
    Encrypted,
    NoTextLayer,
    Timeout,
    TooLarge,
    TooManyPages,
    Unsupported,
)
from summaries.documents.limits import MAX_BYTES, MAX_CHARS, MAX_INFLATED, MAX_PAGES, time_left
from summaries.documents.sniff import DOCUMENT_KINDS, Kind, media_type, sniff
from summaries.documents.text import read_text

__all__ = [
    "DOCUMENT_KINDS",
    "MAX_BYTES",
    "MAX_CHARS",
    "MAX_INFLATED",
    "MAX_PAGES",
    "Corrupt",
    "DecompressionBomb",
    "Document",
    "DocumentError",
    "Encrypted",
    "Kind",
    "NoTextLayer",
    "Timeout",
    "TooLarge",
    "TooManyPages",
    "Unsupported",
    "extract",
    "media_type",
    "sniff",
]

_TITLE_MAX = 200


@dataclass(frozen=True, slots=True)
class Document:
    title: str | None
    text: str
    pages: int  # 1 for the kinds without pages
    kind: Kind


def _first_line(text: str) -> str | None:
    """A PDF has no headings: its first line stands in for a missing Title, if short."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if 0 < len(line) <= _TITLE_MAX else None


def extract(
    body: bytes,
    kind: Kind,
    *,
    deadline: float,
    max_bytes: int = MAX_BYTES,
    max_pages: int = MAX_PAGES,
    max_chars: int = MAX_CHARS,
    max_inflated: int = MAX_INFLATED,
    charset: str | None = None,
) -> Document:
    """The text of ``body`` read as ``kind`` (from ``sniff``); raises a DocumentError.

    ``charset`` is the Content-Type's, used for text when no BOM says otherwise.
    """
    if len(body) > max_bytes:
        raise TooLarge(f"the document has {len(body)} bytes, more than {max_bytes}")
    time_left(deadline)
    # The parsers are imported when first used: the web process sniffs uploads
    # (sniff.py) but never parses them, so it never loads PDFium or lxml
    # (tests/test_process_imports.py), as it never loads an AI SDK.
    if kind is Kind.PDF:
        from summaries.documents.pdf import read_pdf  # deferred: loads PDFium (heavy)

        title, text, pages = read_pdf(
            body,
            max_pages=max_pages,
            max_chars=max_chars,
            max_inflated=max_inflated,
            deadline=deadline,
        )
        return Document(title or _first_line(text), text, pages, kind)
    if kind is Kind.DOCX:
        from summaries.documents.word import read_docx  # deferred: loads lxml (heavy)

        title, text = read_docx(
            body, max_chars=max_chars, max_inflated=max_inflated, deadline=deadline
        )
        return Document(title, text, 1, kind)
    if kind in (Kind.TEXT, Kind.MARKDOWN):
        title, text = read_text(
            body, markdown=kind is Kind.MARKDOWN, charset=charset, max_chars=max_chars
        )
        return Document(title, text, 1, kind)
    if kind is Kind.HTML:
        raise Unsupported("HTML is read by the article extractor, not as a document")
    raise Unsupported("not a PDF, DOCX, plain-text or Markdown document")
