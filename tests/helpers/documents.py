"""Documents built in memory for the tests and bench/documents.py: PDFs, DOCX, zips.

The PDFs are written by hand (a catalog, a page tree, one content stream per
page, Helvetica, an xref table), so the text of every page is known exactly
and a test can check what a parser read back against what was written.
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from collections.abc import Sequence

import docx
import pypdf

# A vocabulary of plain words, so generated text looks like prose to a parser
# (spaces between words, lines of about 80 characters) and can be compared word by word.
_VOCABULARY = (
    "report summary cache worker queue document section figure table result method data "
    "analysis value market policy energy growth network service customer system model "
    "evidence review budget quarter revenue research climate health water school city "
    "transport library science history language software security privacy hardware"
)
WORDS = _VOCABULARY.split()


def prose(seed: int, words: int) -> str:
    """``words`` words of deterministic pseudo-prose, in sentences."""
    rng = random.Random(seed)
    out: list[str] = []
    for i in range(words):
        word = rng.choice(WORDS)
        out.append(word.capitalize() if i % 12 == 0 else word)
        if i % 12 == 11:
            out[-1] += "."
    return " ".join(out)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _lines(text: str, width: int = 80) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        lines.append(current)
    return lines


def _stream(content: bytes, compress: bool, extra: str = "") -> bytes:
    if compress:
        content = zlib.compress(content)
        extra += " /Filter /FlateDecode"
    return b"<< /Length %d%s >>\nstream\n" % (len(content), extra.encode()) + content + (
        b"\nendstream"
    )


def _assemble(objects: Sequence[bytes]) -> bytes:
    """A PDF file from its numbered objects (object 1 is the catalog)."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    info = len(objects)  # the last object is the Info dictionary
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\n" % (len(objects) + 1, info)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def make_pdf(
    pages: Sequence[str], *, title: str | None = None, compress: bool = True
) -> bytes:
    """A PDF whose page i shows ``pages[i]`` as lines of Helvetica (ASCII text)."""
    count = len(pages)
    # 1 catalog, 2 page tree, 3 font, then per page: the page and its content stream.
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(count))
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, text in enumerate(pages):
        lines = _lines(text)[:50]
        ops = ["BT", "/F1 10 Tf", "12 TL", "56 760 Td"]
        ops += [f"({_escape(line)}) Tj T*" for line in lines]
        ops.append("ET")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(_stream("\n".join(ops).encode("latin-1"), compress))
    objects.append(f"<< /Title ({_escape(title)}) >>".encode() if title else b"<< >>")
    return _assemble(objects)


def make_scanned_pdf(pages: int = 2) -> bytes:
    """A PDF whose pages are each one grey image and no text: what a scanner makes."""
    kids = " ".join(f"{3 + 3 * i} 0 R" for i in range(pages))
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
    ]
    rng = random.Random(7)
    for i in range(pages):
        pixels = bytes(rng.randrange(256) for _ in range(64 * 64))
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /XObject << /Im1 {4 + 3 * i} 0 R >> >> "
            f"/Contents {5 + 3 * i} 0 R >>".encode()
        )
        objects.append(
            _stream(
                pixels,
                True,
                " /Type /XObject /Subtype /Image /Width 64 /Height 64"
                " /ColorSpace /DeviceGray /BitsPerComponent 8",
            )
        )
        objects.append(_stream(b"q 500 0 0 700 56 46 cm /Im1 Do Q", False))
    objects.append(b"<< >>")
    return _assemble(objects)


def make_stream_bomb_pdf(inflated: int = 256 * 1024 * 1024, *, label: str = "") -> bytes:
    """A one-page PDF whose content stream is a few hundred kB that inflate to ``inflated``.

    ``label`` goes into the stream's dictionary (e.g. ``/Subtype /Image``, a lie).
    """
    squeezer = zlib.compressobj(9)
    chunk = b" " * (1024 * 1024)
    packed = b"".join(squeezer.compress(chunk) for _ in range(inflated // len(chunk)))
    packed += squeezer.flush()
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode %s>>\nstream\n" % (len(packed), label.encode())
        + packed
        + b"\nendstream",
        b"<< >>",
    ]
    return _assemble(objects)


def encrypt_pdf(
    body: bytes, user_password: str = "secret", *, algorithm: str = "AES-256"
) -> bytes:
    """``body`` encrypted with pypdf; an empty ``user_password`` opens without one."""
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(body))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx(
    paragraphs: Sequence[str], *, heading: str | None = None, title: str | None = None
) -> bytes:
    """A DOCX written by python-docx: an optional Heading 1, then the paragraphs."""
    document = docx.Document()
    if title is not None:
        document.core_properties.title = title
    if heading is not None:
        document.add_heading(heading, level=1)
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_docx_bomb(inflated: int = 1024 * 1024 * 1024, *, zip64: bool = True) -> bytes:
    """A zip laid out as a DOCX whose word/document.xml inflates to ``inflated`` bytes.

    Compressed chunk by chunk in memory: a 1 GB member becomes about 1 MB of
    zip and the inflated bytes never exist anywhere at once (nor on disk).
    """
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        with archive.open("word/document.xml", "w", force_zip64=zip64) as member:
            chunk = b" " * (1024 * 1024)
            for _ in range(inflated // len(chunk)):
                member.write(chunk)
    return out.getvalue()


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Override PartName="/word/document.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)


def lie_about_size(body: bytes, name: str, size: int) -> bytes:
    """``body`` (a zip, no zip64) with headers saying member ``name`` inflates to ``size``."""
    out = bytearray(body)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        info = archive.getinfo(name)
        central = archive.start_dir
    new = struct.pack("<I", size)
    out[info.header_offset + 22 : info.header_offset + 26] = new  # local header
    while out[central : central + 4] == b"PK\x01\x02":
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", out, central + 28)
        if out[central + 46 : central + 46 + name_length] == name.encode():
            out[central + 24 : central + 28] = new  # central directory entry
        central += 46 + name_length + extra_length + comment_length
    return bytes(out)


def make_zip(members: dict[str, bytes]) -> bytes:
    """A plain zip (not a DOCX unless its members say so)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()
