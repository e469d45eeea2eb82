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
stream the text extraction will decode (images are skipped: text extraction
never decodes them) in 1 MiB steps, counting without keeping, so a stream
bomb fails as ``decompression_bomb`` before PDFium inflates it whole (256 MB
of stream took PDFium's process to 560 MiB); the page count; the deadline,
checked between pages. A call into PDFium itself cannot be interrupted from
Python: one page's work is bounded by the inflation budget, and a page that
still hangs is bounded by the worker's task deadline (a subprocess per
document would be the next step if one ever does).
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
_STREAM = re.compile(rb"stream\r?\n")
_IMAGE = re.compile(rb"/Subtype\s*/Image")
_OBJ = re.compile(rb"\d+\s+\d+\s+obj\b")
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
    for match in _STREAM.finditer(body):
        # The stream's dictionary lies between its "N 0 obj" and the keyword.
        window = body[max(0, match.start() - 4096) : match.start()]
        objects = list(_OBJ.finditer(window))
        dictionary = window[objects[-1].end() :] if objects else window
        if _IMAGE.search(dictionary):
            continue
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
    # Closed under the lock, and never left to a finalizer that could run in any thread.
    with _PDFIUM:
        pdf.close()


def read_pdf(
    body: bytes, *, max_pages: int, max_chars: int, max_inflated: int, deadline: float
) -> tuple[str | None, str, int]:
    """(metadata title, text, page count) of a PDF; raises a DocumentError subclass."""
    check_inflation(body, max_inflated=max_inflated, deadline=deadline)
    pdf = _open(body, deadline)
    try:
        with _PDFIUM:
            pages = len(pdf)
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
