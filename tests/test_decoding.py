"""Charset decoding of fetched pages (pure functions, no services).

Only real text encodings are honoured: a page naming a codec such as
``punycode`` (quadratic to decode) or ``raw_unicode_escape`` (rewrites the
text) is decoded as UTF-8, as if it had named nothing.
"""

from __future__ import annotations

import codecs
import random

import pytest

from summaries.fetching import decode_html
from summaries.fetching.decoding import ALLOWED_DECODERS

SAMPLE = "<html><body>caf\u00e9 \\u0041 +AGE- \u4e2d</body></html>"
REFUSED = [
    "punycode", "idna", "raw_unicode_escape", "unicode_escape", "utf-7", "utf-32",
    "rot13", "base64", "uu", "zlib", "hex", "bz2", "quopri", "undefined", "mbcs",
    "palmos", "cp037", "no-such-charset", "../../etc", "",
]


@pytest.mark.parametrize("charset", REFUSED)
def test_non_text_or_exotic_codecs_fall_back_to_utf8(charset: str) -> None:
    body = SAMPLE.encode()
    assert decode_html(body, charset) == SAMPLE
    meta = f'<meta charset="{charset}">{SAMPLE}'
    assert decode_html(meta.encode()) == meta


def test_punycode_page_is_decoded_as_utf8() -> None:
    # Decoded as punycode, the part after the last "-" is inserted character by
    # character into a list: quadratic (this page took 1.5 s, twice as long 8 s).
    head = b"<html><head><meta charset=punycode></head><body>"
    page = head + b"a" * 100_000 + b"-" + b"a" * 100_000
    assert decode_html(page) == page.decode()
    assert decode_html(page, "punycode") == page.decode()


@pytest.mark.parametrize(("label", "codec", "text"), [
    ("windows-1251", "cp1251", "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440"),
    ("koi8-r", "koi8-r", "\u041f\u0440\u0438\u0432\u0435\u0442"),
    ("shift_jis", "shift_jis", "\u3053\u3093\u306b\u3061\u306f\u4e16\u754c"),
    ("Shift-JIS", "cp932", "\u2460 \u3053\u3093\u306b\u3061\u306f"),  # a Windows-only char
    ("euc-jp", "euc_jp", "\u65e5\u672c\u8a9e"),
    ("iso-2022-jp", "iso2022_jp", "\u65e5\u672c\u8a9e"),
    ("gb18030", "gb18030", "\u4e2d\u6587 \U00020000"),
    ("gb2312", "gb18030", "\u4e2d\u6587 \u20ac"),  # labelled gb2312, really GBK
    ("big5", "big5", "\u7e41\u9ad4\u4e2d\u6587"),
    ("euc-kr", "cp949", "\ud55c\uad6d\uc5b4 \uac02"),  # a cp949-only syllable
    ("iso-8859-2", "iso8859-2", "Za\u017c\u00f3\u0142\u0107"),
    ("iso-8859-15", "iso8859-15", "\u20ac uro"),
    ("ISO-8859-1", "cp1252", "caf\u00e9 \u2013 \u201cquoted\u201d"),  # browsers read cp1252
    ("us-ascii", "cp1252", "caf\u00e9 \u2019"),
    ("utf-16le", "utf-16-le", "\u4e2d\u6587 text"),
    ("UTF-16BE", "utf-16-be", "\u4e2d\u6587 text"),
    ("windows-874", "cp874", "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22"),
    ("x-mac-cyrillic", "mac-cyrillic", "\u041f\u0440\u0438"),
])
def test_real_encodings_are_decoded(label: str, codec: str, text: str) -> None:
    html = f"<html><body>{text}</body></html>"
    assert decode_html(html.encode(codec), label) == html
    if not codec.startswith("utf-16"):  # a <meta> is only readable in ASCII-compatible bytes
        meta = f'<html><head><meta http-equiv="Content-Type" content="text/html; charset={label}">'
        assert decode_html((meta + text).encode(codec)) == meta + text


def test_header_wins_over_meta_and_bom_wins_over_both() -> None:
    text = "<html><meta charset=windows-1251>\u00e9\u00e8</html>"
    assert decode_html(text.encode("iso8859-1"), "iso-8859-1") == text
    assert decode_html(codecs.BOM_UTF8 + text.encode(), "iso-8859-1") == text
    assert decode_html(codecs.BOM_UTF16_LE + text.encode("utf-16-le"), "koi8-r") == text
    assert decode_html(codecs.BOM_UTF16_BE + text.encode("utf-16-be")) == text


def test_meta_claiming_utf16_means_utf8() -> None:
    # If the <meta> could be read as ASCII the page is not UTF-16 (as browsers rule).
    page = '<meta charset="utf-16"><p>caf\u00e9</p>'
    assert decode_html(page.encode()) == page


def test_unknown_bytes_are_replaced_not_raised() -> None:
    assert decode_html(b"<html>ok \xff\xfe</html>") == "<html>ok \ufffd\ufffd</html>"


@pytest.mark.parametrize("decoder", sorted(set(ALLOWED_DECODERS.values())))
def test_decoded_text_is_never_longer_than_the_body(decoder: str) -> None:
    # This is what caps the decoded size: the body is capped at max_bytes,
    # and no allowed decoder makes more characters than it was given bytes.
    rng = random.Random(decoder)
    for size in (1, 2, 3, 7, 1000):
        body = rng.randbytes(size)
        assert len(body.decode(decoder, errors="replace")) <= size


def test_allowlist_names_are_python_codec_names() -> None:
    for name, decoder in ALLOWED_DECODERS.items():
        assert codecs.lookup(name).name == name
        assert codecs.lookup(decoder).name == decoder
