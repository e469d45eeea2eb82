"""PDF text with pypdfium2 (PDFium, Chrome's PDF engine; BSD-3/Apache-2.0).

Chosen by measurement (bench/documents.py): same text as pypdf and
pdfminer.six on generated and real PDFs (word F1 0.995-1.000), 3x pypdf's
speed on generated PDFs and 15-20x on real ones, 25-200x pdfminer.six's,
at a similar peak memory per MB.

PDFium is not thread-safe, not even across documents (pypdfium2's docs,
"Incompatibility with Threading"), and the worker runs tasks in threads: every
PDFium call here holds ``_PDFIUM``, taken page by page so one long document
does not starve the other threads, and waited for no longer than the
deadline allows.

Bounds, in order: the byte size; a pre-scan that inflates every deflate
stream in 1 MiB steps, counting without keeping, so a stream bomb fails as
``decompression_bomb`` before PDFium inflates it whole (a 256 MB content
stream took PDFium's process to 560 MiB); the page count; the deadline,
checked between pages. Images are counted too, although text extraction
never decodes them: a stream's dictionary is the sender's to write, and a
content stream labelled /Image would otherwise pass unseen.

What is not bounded in-thread: one call into PDFium (opening the document,
loading one page's text) cannot be interrupted from Python. Its input is
bounded (bytes, inflation, one page at a time), and the deadline is checked
between calls; if a crafted page still made PDFium loop, that thread would
hold the lock, and every other PDF in the process would fail with
``timeout`` at its own deadline rather than wait (Celery enforces no time
limit under the threads pool). Running each document in a subprocess that
the worker kills at the deadline is the next step if that is ever seen.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import pypdfium2
import pypdfium2.raw as pdfium_c

from summaries.documents.errors import (
    Corrupt,
    Encrypted,
    NoTextLayer,
    Timeout,
    TooLarge,
    TooManyPages,
)
from summaries.documents.limits import Inflation, inflation_budget, time_left

_PDFIUM = threading.Lock()
# Documents opened but not yet closed for want of the lock (see _close).
_ORPHANS: list[pypdfium2.PdfDocument] = []
_CLOSE_WAIT = 1.0
_STREAM = re.compile(rb"stream\r?\n")
# A page of real text has hundreds of characters; a scan has none, or a stamp
# ("Scanned by ...", a page number). Fewer than this per page on average: no text layer.
MIN_CHARS_PER_PAGE = 16
_TITLE_MAX = 200


def _stream_chunks(body: bytes, start: int) -> Iterator[bytes]:
    for offset in range(start, len(body), 64 * 1024):
        yield body[offset : offset + 64 * 1024]


def check_inflation(body: bytes, *, max_inflated: int, deadline: float) -> None:
    """DecompressionBomb if the deflate streams PDFium would decode inflate past the budget."""
    inflation = Inflation(inflation_budget(len(body), max_inflated=max_inflated), deadline)
    # Every "stream" keyword starts a candidate: one that is not deflate data (a JPEG,
    # or a false match) fails zlib in its first bytes and counts nothing.
    for match in _STREAM.finditer(body):
        inflation.count_zlib(_stream_chunks(body, match.end()))


def _lock(deadline: float) -> None:
    if not _PDFIUM.acquire(timeout=time_left(deadline)):
        raise Timeout("the PDF parser was busy until the deadline")


def _open(body: bytes, deadline: float) -> pypdfium2.PdfDocument:
    _lock(deadline)
    try:
        return pypdfium2.PdfDocument(body)
    except pypdfium2.PdfiumError as error:
        if error.err_code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
            raise Encrypted("the PDF is password-protected") from error
        raise Corrupt(f"the PDF cannot be read ({error})") from error
    finally:
        _PDFIUM.release()


def _page_text(pdf: pypdfium2.PdfDocument, index: int, deadline: float) -> str:
    _lock(deadline)
    try:
        page = pdf[index]
        try:
            textpage = page.get_textpage()
            try:
                text: str = textpage.get_text_bounded()
            finally:
                textpage.close()
        finally:
            page.close()
    except pypdfium2.PdfiumError as error:
        raise Corrupt(f"page {index + 1} of the PDF cannot be read ({error})") from error
    finally:
        _PDFIUM.release()
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _title(pdf: pypdfium2.PdfDocument, deadline: float) -> str | None:
    _lock(deadline)
    try:
        title = str(pdf.get_metadata_value("Title") or "").strip()
    except pypdfium2.PdfiumError:
        title = ""
    finally:
        _PDFIUM.release()
    return title[:_TITLE_MAX] or None


def _close(pdf: pypdfium2.PdfDocument) -> None:
    """Closes ``pdf`` under the lock, never leaving it to a finalizer that could run
    in any thread. A document whose lock did not come in time (its parse timed out
    behind a stuck one) is kept, and closed by the next close that gets the lock."""
    _ORPHANS.append(pdf)
    if not _PDFIUM.acquire(timeout=_CLOSE_WAIT):
        return
    try:
        while _ORPHANS:
            _ORPHANS.pop().close()
    finally:
        _PDFIUM.release()


def read_pdf(
    body: bytes, *, max_pages: int, max_chars: int, max_inflated: int, deadline: float
) -> tuple[str | None, str, int]:
    """(metadata title, text, page count) of a PDF; raises a DocumentError subclass."""
    check_inflation(body, max_inflated=max_inflated, deadline=deadline)
    pdf = _open(body, deadline)
    try:
        _lock(deadline)
        try:
            pages = len(pdf)
        finally:
            _PDFIUM.release()
        if pages == 0:
            raise Corrupt("the PDF has no pages")
        if pages > max_pages:
            raise TooManyPages(f"the PDF has {pages} pages, more than {max_pages}")
        title = _title(pdf, deadline)
        texts: list[str] = []
        size = 0
        for index in range(pages):
            time_left(deadline)
            texts.append(_page_text(pdf, index, deadline))
            size += len(texts[-1])
            if size > max_chars:
                raise TooLarge(f"the PDF holds more than {max_chars} characters of text")
    finally:
        _close(pdf)
    text = "\n\n".join(t.strip() for t in texts if t.strip())
    if sum(not c.isspace() for c in text) < MIN_CHARS_PER_PAGE * pages:
        raise NoTextLayer(
            f"the PDF's {pages} page(s) have no text layer (a scan or images); OCR is not done"
        )
    return title, text, pages
