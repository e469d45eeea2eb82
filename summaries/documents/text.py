"""Plain text and Markdown: decoded (BOM, then the declared charset, then UTF-8, then
Windows-1252, which decodes any byte), kept as they are. Markdown stays Markdown: the
summariser reads it fine, and its first heading (or front-matter title) is the title.
"""

from __future__ import annotations

import codecs
import re

from summaries.documents.errors import NoTextLayer, TooLarge

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_ATX = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)
_SETEXT = re.compile(r"^ {0,3}(\S[^\n]*)\n {0,3}(?:=+|-+)[ \t]*$", re.MULTILINE)
_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n(?:---|\.\.\.)\n", re.DOTALL)
_FRONT_TITLE = re.compile(r"^title:[ \t]*['\"]?(.+?)['\"]?[ \t]*$", re.MULTILINE)
_TITLE_MAX = 200


def _charset(charset: str | None) -> str | None:
    if not charset:
        return None
    try:
        return codecs.lookup(charset).name
    except LookupError:
        return None  # an unknown label is ignored, as a browser would


def decode(body: bytes, charset: str | None = None) -> str:
    """``body`` as text: a BOM wins, then ``charset``, then UTF-8, then Windows-1252."""
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(encoding, errors="replace")
    declared = _charset(charset)
    for encoding in filter(None, (declared, "utf-8")):
        try:
            return body.decode(encoding)
        except UnicodeDecodeError:
            continue
    return body.decode("cp1252", errors="replace")


def markdown_title(text: str) -> str | None:
    """The front matter's title, else the first heading (ATX ``# T`` or setext ``T\\n===``)."""
    front = _FRONT_MATTER.match(text)
    if front and (title := _FRONT_TITLE.search(front.group(1))):
        return title.group(1).strip()[:_TITLE_MAX]
    head = text[: 64 * 1024]
    found = [m for m in (_ATX.search(head), _SETEXT.search(head)) if m]
    if not found:
        return None
    first = min(found, key=lambda m: m.start())
    return first.group(1).strip()[:_TITLE_MAX] or None


def read_text(
    body: bytes, *, markdown: bool, charset: str | None, max_chars: int
) -> tuple[str | None, str]:
    """(title, text) of a text or Markdown body; raises a DocumentError subclass."""
    text = decode(body, charset).replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    if len(text) > max_chars:
        raise TooLarge(f"the text holds more than {max_chars} characters")
    if not text.strip():
        raise NoTextLayer("the document is empty")
    return (markdown_title(text) if markdown else None), text.strip()
