"""What a body is, from its first bytes and its Content-Type: servers mislabel.

The bytes win over the header when they are unambiguous (a PDF's ``%PDF-``,
a zip's ``PK``): a report served as application/octet-stream or text/html is
still a PDF. The header decides between the text kinds, which have no magic,
and a text/plain body is taken for HTML only when it clearly is HTML.
"""

from __future__ import annotations

import enum
import io
import re
import zipfile

PDF_TYPES = frozenset({"application/pdf", "application/x-pdf"})
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MARKDOWN_TYPES = frozenset({"text/markdown", "text/x-markdown"})
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})

# The PDF header may follow some junk; readers (pdfium too) look in the first kilobyte.
_PDF_MAGIC = b"%PDF-"
_ZIP_MAGIC = b"PK\x03\x04"
# An OLE2 compound file: legacy .doc/.xls, or an encrypted OOXML (a DOCX with a password).
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
# Images, archives, executables: never a document we read, whatever the header says.
_BINARY_MAGIC = (
    b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"7z\xbc\xaf",
    b"Rar!", b"\x7fELF", b"MZ", b"RIFF", b"OggS", b"fLaC", b"ID3", b"\x00\x00\x01\x00",
)
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_HTML_START = re.compile(
    rb"\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>]|head[\s>]|body[\s>])",
    re.IGNORECASE | re.DOTALL,
)


class Kind(enum.StrEnum):
    PDF = "pdf"
    DOCX = "docx"
    TEXT = "text"
    MARKDOWN = "markdown"
    HTML = "html"
    UNSUPPORTED = "unsupported"


# What ``extract`` reads (HTML is the article extractor's).
DOCUMENT_KINDS = frozenset({Kind.PDF, Kind.DOCX, Kind.TEXT, Kind.MARKDOWN})


def media_type(content_type: str | None) -> str:
    """``text/plain; charset=utf-8`` -> ``text/plain``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_docx(body: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            return "word/document.xml" in archive.namelist()
    except (zipfile.BadZipFile, ValueError):
        return False


def _is_zip(body: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(body)):
            return True
    except (zipfile.BadZipFile, ValueError):
        return False


def _looks_binary(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False  # UTF-16 text has NULs in every other byte
    return b"\x00" in head


def sniff(body: bytes, content_type: str | None) -> Kind:
    """The kind of ``body``; UNSUPPORTED for what no parser here reads."""
    declared = media_type(content_type)
    head = body[:1024]
    if _PDF_MAGIC in head:
        return Kind.PDF
    if body.startswith(_ZIP_MAGIC):
        if _is_docx(body):
            return Kind.DOCX
        # A damaged zip that says it is a DOCX is read as one and reported corrupt.
        return Kind.DOCX if declared == DOCX_TYPE and not _is_zip(body) else Kind.UNSUPPORTED
    if body.startswith(OLE2_MAGIC):
        # Encrypted OOXML is an OLE2 file with an EncryptedPackage stream: report "encrypted".
        return Kind.DOCX if ENCRYPTED_PACKAGE in body else Kind.UNSUPPORTED
    if body.startswith(_BINARY_MAGIC) or _looks_binary(head):
        return Kind.UNSUPPORTED
    # Text without magic: the header decides, checked against the bytes.
    text_head = head.removeprefix(next((b for b in _BOMS if head.startswith(b)), b""))
    looks_html = _HTML_START.match(text_head) is not None
    if declared in PDF_TYPES:
        return Kind.PDF  # no magic: extract() reports it corrupt
    if declared == DOCX_TYPE:
        return Kind.DOCX
    if declared in HTML_TYPES:
        return Kind.HTML
    if declared in MARKDOWN_TYPES:
        return Kind.MARKDOWN
    if declared == "text/plain":
        return Kind.HTML if looks_html else Kind.TEXT
    # No header, octet-stream or anything else: only unmistakable HTML is taken.
    return Kind.HTML if looks_html else Kind.UNSUPPORTED

