"""summaries.documents: what a body is, its text, and a clear code for every hostile document.

Every document is built here (tests/helpers/documents.py): no network, nothing from outside.
"""
from __future__ import annotations

import ast
import codecs
import io
import threading
import time
import zipfile
from pathlib import Path

import docx
import pytest

from summaries import documents
from summaries.documents import Kind, sniff
from summaries.documents import pdf as pdf_module
from tests.helpers.documents import (
    encrypt_pdf,
    lie_about_size,
    make_docx,
    make_docx_bomb,
    make_pdf,
    make_scanned_pdf,
    make_stream_bomb_pdf,
    make_zip,
    prose,
)

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
PACKAGE = Path(documents.__file__).parent


def soon() -> float:
    return time.monotonic() + 60


def extract(body: bytes, kind: Kind, **limits: int) -> documents.Document:
    return documents.extract(body, kind, deadline=soon(), **limits)  # type: ignore[arg-type]


def failure(body: bytes, kind: Kind, **limits: int) -> str:
    with pytest.raises(documents.DocumentError) as raised:
        extract(body, kind, **limits)
    return raised.value.code


@pytest.fixture(scope="module")
def report() -> tuple[list[str], bytes]:
    pages = [prose(seed, 200) for seed in range(3)]
    return pages, make_pdf(pages, title="Annual Report 2026")


@pytest.fixture(scope="module")
def long_pdf() -> tuple[list[str], bytes]:
    pages = [prose(1000 + seed, 300) for seed in range(300)]
    return pages, make_pdf(pages)


# --- sniff -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", [None, "application/pdf", "application/octet-stream", "text/html; charset=x"]
)
def test_a_pdf_is_a_pdf_whatever_the_header_says(
    report: tuple[list[str], bytes], content_type: str | None
) -> None:
    assert sniff(report[1], content_type) is Kind.PDF
    assert sniff(b"\r\n\r\n" + report[1], content_type) is Kind.PDF  # junk before %PDF-


@pytest.mark.parametrize("content_type", [None, DOCX_TYPE, "application/octet-stream", "text/html"])
def test_a_docx_is_a_zip_with_word_document_xml(content_type: str | None) -> None:
    assert sniff(make_docx(["Hello."]), content_type) is Kind.DOCX


def test_a_zip_that_is_not_a_docx_is_unsupported_even_labelled_docx() -> None:
    body = make_zip({"word/other.xml": b"<x/>", "readme.txt": b"hello"})
    assert sniff(body, DOCX_TYPE) is Kind.UNSUPPORTED
    assert sniff(body, "application/zip") is Kind.UNSUPPORTED


def test_a_damaged_body_labelled_docx_or_pdf_is_read_as_such_and_reported_corrupt() -> None:
    body = make_docx(["Hello."])[:200]
    assert sniff(body, DOCX_TYPE) is Kind.DOCX
    assert failure(body, Kind.DOCX) == "corrupt"
    assert sniff(b"<html>Not found</html>", "application/pdf") is Kind.PDF
    assert failure(b"<html>Not found</html>", Kind.PDF) == "corrupt"


@pytest.mark.parametrize(
    ("body", "content_type", "kind"),
    [
        (b"<!DOCTYPE html><html><body>Hi</body></html>", "text/plain", Kind.HTML),
        (b"  <!-- generated -->\n<html lang=en><p>Hi", "text/plain", Kind.HTML),
        (b"Use <b>bold</b> or <html> in a sentence.", "text/plain", Kind.TEXT),
        (b"# Notes\n\nSome text.", "text/plain", Kind.TEXT),
        (b"# Notes\n\nSome text.", "text/markdown; charset=utf-8", Kind.MARKDOWN),
        (b"# Notes\n\nSome text.", "text/x-markdown", Kind.MARKDOWN),
        (b"<p>a fragment</p>", "text/html", Kind.HTML),
        (b"<!doctype html><title>x</title>", None, Kind.HTML),
        (b"<!doctype html><title>x</title>", "application/octet-stream", Kind.HTML),
        (b"just some words", "application/octet-stream", Kind.UNSUPPORTED),
        (b"just some words", None, Kind.UNSUPPORTED),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "application/pdf", Kind.UNSUPPORTED),
        (b"\x1f\x8b\x08\x00\x00", "text/plain", Kind.UNSUPPORTED),
        (b"text with a \x00 byte", "text/plain", Kind.UNSUPPORTED),
        ("héllo".encode("utf-16"), "text/plain", Kind.TEXT),
        (OLE2 + b"\x00" * 600, "application/msword", Kind.UNSUPPORTED),
    ],
)
def test_sniff_weighs_the_bytes_against_the_header(
    body: bytes, content_type: str | None, kind: Kind
) -> None:
    assert sniff(body, content_type) is kind


# --- PDF -----------------------------------------------------------------------------------


def test_a_pdf_gives_every_page_s_words_and_its_metadata_title(
    report: tuple[list[str], bytes],
) -> None:
    pages, body = report
    document = extract(body, Kind.PDF)
    assert document.kind is Kind.PDF
    assert document.pages == 3
    assert document.title == "Annual Report 2026"
    assert document.text.split() == " ".join(pages).split()


def test_a_pdf_without_a_title_takes_its_first_line() -> None:
    body = make_pdf(["Quarterly figures", prose(5, 100)])
    assert extract(body, Kind.PDF).title == "Quarterly figures"


def test_a_300_page_pdf_is_read_whole_within_the_page_limit(
    long_pdf: tuple[list[str], bytes],
) -> None:
    pages, body = long_pdf
    document = extract(body, Kind.PDF, max_pages=300)
    assert document.pages == 300
    assert document.text.split() == " ".join(pages).split()


def test_a_pdf_past_the_page_limit_is_too_many_pages(long_pdf: tuple[list[str], bytes]) -> None:
    assert failure(long_pdf[1], Kind.PDF, max_pages=299) == "too_many_pages"


@pytest.mark.parametrize("algorithm", ["AES-256", "AES-128", "RC4-128"])
def test_a_password_protected_pdf_is_encrypted(
    report: tuple[list[str], bytes], algorithm: str
) -> None:
    body = encrypt_pdf(report[1], "secret", algorithm=algorithm)
    assert sniff(body, "application/pdf") is Kind.PDF
    assert failure(body, Kind.PDF) == "encrypted"


def test_a_pdf_encrypted_without_a_user_password_is_read(
    report: tuple[list[str], bytes],
) -> None:
    # Only an owner password ("no copying"): any reader opens it, and so do we.
    pages, body = report
    encrypted = encrypt_pdf(body, "")
    assert b"/Encrypt" in encrypted
    document = extract(encrypted, Kind.PDF)
    assert document.text.split() == " ".join(pages).split()


def test_a_scanned_pdf_has_no_text_layer() -> None:
    with pytest.raises(documents.NoTextLayer) as raised:
        extract(make_scanned_pdf(pages=3), Kind.PDF)
    assert raised.value.code == "no_text_layer"
    assert "OCR" in str(raised.value)


@pytest.mark.parametrize("which", ["report", "long_pdf"])
def test_a_truncated_pdf_is_corrupt(which: str, request: pytest.FixtureRequest) -> None:
    body: bytes = request.getfixturevalue(which)[1]
    assert failure(body[: len(body) // 2], Kind.PDF) == "corrupt"


@pytest.mark.parametrize("label", ["", "/Type /XObject /Subtype /Image "])
def test_a_pdf_stream_bomb_fails_before_the_parser_inflates_it(label: str) -> None:
    body = make_stream_bomb_pdf(inflated=256 * 1024 * 1024, label=label)
    assert len(body) < 1024 * 1024
    assert failure(body, Kind.PDF) == "decompression_bomb"
    # A normal compressed PDF passes the same bound.
    assert extract(make_pdf([prose(3, 200)]), Kind.PDF).pages == 1


def test_a_pdf_past_the_byte_or_text_limit_is_too_large(report: tuple[list[str], bytes]) -> None:
    body = report[1]
    assert failure(body, Kind.PDF, max_bytes=len(body) - 1) == "too_large"
    assert failure(body, Kind.PDF, max_chars=1000) == "too_large"
    assert extract(body, Kind.PDF, max_bytes=len(body)).pages == 3


def test_a_deadline_already_passed_parses_nothing(report: tuple[list[str], bytes]) -> None:
    with pytest.raises(documents.Timeout) as raised:
        documents.extract(report[1], Kind.PDF, deadline=time.monotonic() - 1)
    assert raised.value.code == "timeout"


def test_waiting_for_the_pdf_engine_ends_at_the_deadline(
    report: tuple[list[str], bytes],
) -> None:
    # PDFium is not thread-safe: one thread at a time holds it. A thread that
    # cannot have it before its deadline gives up instead of queueing for ever.
    with pdf_module._PDFIUM, pytest.raises(documents.Timeout):
        documents.extract(report[1], Kind.PDF, deadline=time.monotonic() + 0.2)
    assert extract(report[1], Kind.PDF).pages == 3


def test_threads_reading_pdfs_at_once_each_get_their_own_text() -> None:
    bodies = {seed: make_pdf([prose(seed, 300)] * 20) for seed in range(4)}
    results: dict[int, str] = {}

    def read(seed: int) -> None:
        for _ in range(5):
            results[seed] = extract(bodies[seed], Kind.PDF).text

    threads = [threading.Thread(target=read, args=(seed,)) for seed in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for seed in bodies:
        assert results[seed].split() == (" ".join([prose(seed, 300)] * 20)).split()


# --- DOCX ----------------------------------------------------------------------------------


def test_a_docx_gives_its_paragraphs_and_tables_in_order_titled_by_its_heading() -> None:
    document = docx.Document()
    document.add_heading("Budget review", level=1)
    document.add_paragraph("First paragraph.")
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "cell one"
    table.cell(0, 1).text = "cell two"
    document.add_paragraph("Last paragraph.")
    out = io.BytesIO()
    document.save(out)
    extracted = extract(out.getvalue(), Kind.DOCX)
    assert extracted.title == "Budget review"
    assert extracted.text.splitlines() == [
        "Budget review", "First paragraph.", "cell one", "cell two", "Last paragraph."
    ]


def test_a_docx_s_metadata_title_wins_over_its_heading_and_none_is_none() -> None:
    body = make_docx(["Body text."], heading="A heading", title="The real title")
    assert extract(body, Kind.DOCX).title == "The real title"
    assert extract(make_docx(["Just text."]), Kind.DOCX).title is None


def test_a_docx_s_parts_that_are_never_read_cost_nothing() -> None:
    # 160 MB of a picture-like part, past the inflation bound: only the text parts are read.
    out = io.BytesIO(make_docx(["Text beside a big picture."]))
    with zipfile.ZipFile(out, "a", zipfile.ZIP_DEFLATED) as archive, archive.open(
        "word/media/image1.bmp", "w", force_zip64=True
    ) as member:
        for _ in range(160):
            member.write(bytes(1024 * 1024))
    assert extract(out.getvalue(), Kind.DOCX).text == "Text beside a big picture."


def test_a_docx_lying_about_its_sizes_is_still_bounded() -> None:
    # Its headers say word/document.xml is 1000 bytes; its data inflates to 64 MB.
    body = lie_about_size(make_docx_bomb(64 * 1024 * 1024, zip64=False), "word/document.xml", 1000)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.getinfo("word/document.xml").file_size == 1000
    # zipfile inflates no more than the declared size, so the lie shows as a bad CRC.
    assert failure(body, Kind.DOCX, max_inflated=16 * 1024 * 1024) == "corrupt"


def test_a_docx_does_not_expand_entities() -> None:
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "lol lol lol lol lol lol lol lol">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
        '<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">]>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        "<w:body><w:p><w:r><w:t>Safe &e;</w:t></w:r></w:p></w:body></w:document>"
    )
    body = make_zip({"word/document.xml": laughs.encode()})
    assert extract(body, Kind.DOCX).text == "Safe"  # the entity is left out, not expanded


def test_a_docx_with_invalid_xml_is_corrupt() -> None:
    body = make_zip({"word/document.xml": b"<w:document><w:body><w:p>unclosed"})
    assert failure(body, Kind.DOCX) == "corrupt"


def test_a_docx_without_text_has_no_text_layer() -> None:
    assert failure(make_docx([]), Kind.DOCX) == "no_text_layer"


def test_a_password_protected_word_file_is_encrypted_and_a_legacy_doc_unsupported() -> None:
    # Office writes a DOCX with a password as an OLE2 compound file holding an
    # "EncryptedPackage" stream (its directory names are UTF-16).
    ole2 = OLE2 + b"\x00" * 504
    encrypted = ole2 + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 100
    assert sniff(encrypted, DOCX_TYPE) is Kind.DOCX
    assert failure(encrypted, Kind.DOCX) == "encrypted"
    assert failure(ole2 + "WordDocument".encode("utf-16-le"), Kind.DOCX) == "unsupported"


# --- text and Markdown ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bom", "encoding"),
    [
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
        (codecs.BOM_UTF32_LE, "utf-32-le"),
    ],
)
def test_a_bom_decides_the_encoding(bom: bytes, encoding: str) -> None:
    body = bom + "Café naïve — déjà vu\r\nline two".encode(encoding)
    document = documents.extract(body, Kind.TEXT, deadline=soon(), charset="iso-8859-1")
    assert document.text == "Café naïve — déjà vu\nline two"
    assert document.title is None


def test_text_without_a_bom_follows_its_charset_then_utf8_then_windows_1252() -> None:
    latin = "Größe €5".encode("cp1252")
    assert documents.extract(latin, Kind.TEXT, deadline=soon(), charset="windows-1252").text == (
        "Größe €5"
    )
    assert extract("Größe €5".encode(), Kind.TEXT).text == "Größe €5"
    assert extract(latin, Kind.TEXT).text == "Größe €5"  # not UTF-8: Windows-1252
    unknown = documents.extract(latin, Kind.TEXT, deadline=soon(), charset="no-such-charset")
    assert unknown.text == "Größe €5"


@pytest.mark.parametrize(
    ("source", "title"),
    [
        ("\ufeff# Release notes #\n\nWhat changed.", "Release notes"),
        ("Intro line\n\n## Second level\n\ntext", "Second level"),
        ("Setext title\n============\n\ntext\n\n# Later", "Setext title"),
        ("---\ntitle: 'From front matter'\ndate: 2026\n---\n# Heading\n", "From front matter"),
        ("No heading at all.\n#hashtag is not one", None),
    ],
)
def test_markdown_is_kept_as_text_titled_by_its_first_heading(
    source: str, title: str | None
) -> None:
    document = extract(source.encode(), Kind.MARKDOWN)
    assert document.title == title
    assert document.kind is Kind.MARKDOWN
    assert document.text == source.lstrip("\ufeff").strip()


def test_empty_or_oversized_text_is_refused() -> None:
    assert failure(b" \n\t ", Kind.TEXT) == "no_text_layer"
    assert failure(b"x" * 101, Kind.TEXT, max_chars=100) == "too_large"
    assert failure(b"x" * 101, Kind.MARKDOWN, max_bytes=100) == "too_large"


def test_html_and_unsupported_kinds_are_not_extracted_here() -> None:
    assert failure(b"<html></html>", Kind.HTML) == "unsupported"
    assert failure(b"\x89PNG", Kind.UNSUPPORTED) == "unsupported"


# --- the package's contract ----------------------------------------------------------------


def test_every_error_has_its_own_stable_code() -> None:
    codes = {error.__name__: error.code for error in documents.DocumentError.__subclasses__()}
    assert codes == {
        "Unsupported": "unsupported", "Encrypted": "encrypted", "NoTextLayer": "no_text_layer",
        "Corrupt": "corrupt", "TooLarge": "too_large", "TooManyPages": "too_many_pages",
        "DecompressionBomb": "decompression_bomb", "Timeout": "timeout",
    }


# The parsers, imported by extract() when first used: the web process sniffs
# uploads but must never load PDFium (tests/test_process_imports.py).
LAZY = {("__init__.py", "summaries.documents.pdf"), ("__init__.py", "summaries.documents.word")}


def test_the_package_imports_only_core_from_summaries_and_only_at_the_top() -> None:
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                lazy = isinstance(node, ast.ImportFrom) and (path.name, node.module) in LAZY
                # No other function-local import.
                assert node in tree.body or lazy, (path.name, node.lineno)
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )
            for name in modules:
                assert name.split(".")[0] != "summaries" or name.startswith(
                    ("summaries.documents", "summaries.core")
                ), (path.name, name)
