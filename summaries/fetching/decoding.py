"""From body bytes to text: Content-Encoding (gzip, deflate) and charset.

Both steps are bounded by the size of what they are given. Decompression
stops after ``max_bytes`` of output, so a gzip bomb costs about that much
memory. Charset decoding honours only real text encodings, the ones browsers
know (:data:`ALLOWED_DECODERS`): each is linear and never yields more
characters than it was given bytes, so the decoded text is capped by the
body cap too. Any other label falls back to UTF-8 with replacement: Python
has codecs that are not charsets at all (``punycode`` decodes in quadratic
time, ``raw_unicode_escape`` rewrites ``\\u0041`` to ``A``, ``utf-7`` hides
markup).
"""

from __future__ import annotations

import codecs
import re
import zlib
from typing import Final

from summaries.core.errors import ErrorCode, JobError

CONTENT_ENCODINGS: Final = frozenset({"identity", "gzip", "x-gzip", "deflate"})

# Python codec name (after codecs.lookup) -> the decoder browsers use for it
# (WHATWG Encoding Standard: ASCII and Latin-1 labels mean windows-1252,
# GB2312/GBK mean GB18030, EUC-KR means windows-949, Shift_JIS means
# windows-31J, Big5 includes HKSCS).
ALLOWED_DECODERS: Final[dict[str, str]] = {
    "utf-8": "utf-8",
    "utf-16": "utf-16-le",  # the label "utf-16" means little-endian without a BOM
    "utf-16-le": "utf-16-le",
    "utf-16-be": "utf-16-be",
    "ascii": "cp1252",
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    **{f"cp125{n}": f"cp125{n}" for n in range(9)},
    **{f"iso8859-{n}": f"iso8859-{n}" for n in (2, 3, 4, 5, 6, 7, 8, 10, 13, 14, 15, 16)},
    "cp874": "cp874",
    "cp866": "cp866",
    "koi8-r": "koi8-r",
    "koi8-u": "koi8-u",
    "mac-roman": "mac-roman",
    "mac-cyrillic": "mac-cyrillic",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "gb18030": "gb18030",
    "big5": "big5hkscs",
    "big5hkscs": "big5hkscs",
    "cp950": "big5hkscs",
    "shift_jis": "cp932",
    "cp932": "cp932",
    "euc_jp": "euc_jp",
    "iso2022_jp": "iso2022_jp",
    "euc_kr": "cp949",
    "cp949": "cp949",
}
# WHATWG labels Python does not know by these names.
_LABEL_ALIASES: Final = {
    "windows-874": "cp874",
    "windows-31j": "cp932",
    "x-sjis": "cp932",
    "x-mac-cyrillic": "mac-cyrillic",
    "x-mac-roman": "mac-roman",
    "iso-8859-8-i": "iso8859-8",
}
_LABEL: Final = re.compile(r"[A-Za-z0-9._:-]{1,40}")
_META_CHARSET: Final = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-z0-9_.:-]+)""", re.I)
_META_WINDOW: Final = 4096
_BOMS: Final = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_html(body: bytes, header_charset: str | None = None) -> str:
    """Decode with the BOM, else the header charset, else a ``<meta>`` charset,
    else UTF-8; invalid bytes become U+FFFD. Labels that are not real text
    encodings are ignored. ``len(result) <= len(body)``."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body.decode(name, errors="replace")
    decoder = _decoder_for(header_charset)
    if decoder is None and (match := _META_CHARSET.search(body[:_META_WINDOW])):
        decoder = _decoder_for(match.group(1).decode("ascii"))
        if decoder is not None and decoder.startswith("utf-16"):
            decoder = "utf-8"  # a <meta> readable as ASCII is not in UTF-16
    return body.decode(decoder or "utf-8", errors="replace")


def _decoder_for(label: str | None) -> str | None:
    """The decoder for a charset label, or None when it is not an allowed text encoding."""
    if not label or not _LABEL.fullmatch(label := label.strip().lower()):
        return None
    try:
        name = codecs.lookup(_LABEL_ALIASES.get(label, label)).name
    except LookupError:
        return None
    return ALLOWED_DECODERS.get(name)


def looks_like_html(body: bytes) -> bool:
    """Sniff a body sent without Content-Type."""
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(b"<!doctype html") or b"<html" in head


class Inflater:
    """Undo a Content-Encoding chunk by chunk, refusing more than ``max_bytes``.

    Output per step is bounded, so a gzip bomb is stopped after about
    ``max_bytes`` instead of being inflated in memory. The compressed input is
    capped too: data after the end of a deflate stream is never inflated and
    would otherwise be read forever.
    """

    def __init__(self, encoding: str, max_bytes: int) -> None:
        """Raise JobError(code=ErrorCode.UNSUPPORTED_CONTENT) for an encoding we cannot undo."""
        if encoding not in CONTENT_ENCODINGS:
            raise JobError(f"unsupported Content-Encoding {encoding!r}",
                           code=ErrorCode.UNSUPPORTED_CONTENT)
        self.encoding = encoding
        self.max_bytes = max_bytes
        self._out = bytearray()
        self._raw_total = 0
        self._decompressor: zlib._Decompress | None = None

    def too_large(self) -> JobError:
        return JobError(f"page is larger than {self.max_bytes} bytes", code=ErrorCode.TOO_LARGE)

    def feed(self, chunk: bytes) -> None:
        """Add a chunk of the body as received; raise too_large or zlib.error."""
        self._raw_total += len(chunk)
        if self._raw_total > self.max_bytes:
            raise self.too_large()
        if self.encoding == "identity":
            self._out += chunk
            return
        while chunk:
            done = self._decompressor is not None and self._decompressor.eof
            if done and (self.encoding == "deflate" or not chunk.startswith(b"\x1f\x8b")):
                return  # padding or junk after the last member: ignored, like browsers do
            if self._decompressor is None or done:
                self._decompressor = zlib.decompressobj(_wbits(self.encoding, chunk))
            self._out += self._decompressor.decompress(chunk, self.max_bytes + 1 - len(self._out))
            if len(self._out) > self.max_bytes:
                raise self.too_large()
            # Leftover input is either output we have not asked for yet
            # (unconsumed_tail) or the next gzip member (unused_data).
            chunk = self._decompressor.unconsumed_tail or self._decompressor.unused_data

    @property
    def output(self) -> bytes:
        return bytes(self._out)


def _wbits(encoding: str, head: bytes) -> int:
    if encoding != "deflate":
        return 16 + zlib.MAX_WBITS  # gzip
    # HTTP "deflate" means zlib-wrapped, but some servers send raw deflate.
    zlib_header = len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0
    return zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS
