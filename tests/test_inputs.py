"""Normalisation and cache keys (pure functions, no services)."""

from __future__ import annotations

import pytest

from summaries.core.canonical_urls import MAX_URL_CHARS
from summaries.core.inputs import (
    TEXT,
    URL,
    InvalidInput,
    canonical_url,
    normalize_input,
    normalize_text,
    reject_unstorable,
)


def test_text_is_nfc_trimmed_and_collapsed_but_keeps_case() -> None:
    decomposed = "  Cafe\u0301   au\tlait\n\nIs   Good.  "
    item = normalize_input(decomposed)
    assert item == normalize_input("Café au lait Is Good.")
    assert item.kind == TEXT
    assert item.value == "Café au lait Is Good."
    assert normalize_input("is good.").value != normalize_input("Is good.").value


@pytest.mark.parametrize(("raw", "expected"), [
    ("HTTP://Example.COM:80/a/b?x=1#frag", "http://example.com/a/b?x=1"),
    ("https://example.com:443", "https://example.com/"),
    ("https://example.com:8443/p", "https://example.com:8443/p"),
    ("https://ex.com/p?utm_source=x&id=7&UTM_medium=y", "https://ex.com/p?id=7"),
    ("https://bücher.de/", "https://xn--bcher-kva.de/"),
    ("http://[::1]:80/", "http://[::1]/"),
])
def test_urls_take_a_canonical_form(raw: str, expected: str) -> None:
    assert canonical_url(raw) == expected
    assert normalize_input(f"  {raw} ").kind == URL


@pytest.mark.parametrize(("raw", "code"), [
    ("", "empty_input"),
    (" \n\t ", "empty_input"),
    ("ftp://example.com/file", "blocked_url"),
    ("file:///etc/passwd", "blocked_url"),
    ("http://user:secret@example.com/", "blocked_url"),
    ("http://:80/", "invalid_url"),
    ("http://example.com:99999/", "invalid_url"),
])
def test_bad_inputs_are_refused_with_a_code(raw: str, code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_input(raw)
    assert caught.value.code == code


def test_text_that_mentions_a_url_is_text() -> None:
    assert normalize_input("Read https://example.com today. It is good.").kind == TEXT


def test_cache_key_depends_on_input_and_namespace() -> None:
    item = normalize_input("Some text. More text.")
    same = normalize_input("Some   text.\nMore text.")
    assert item.cache_key("gemini:m1:p1") == same.cache_key("gemini:m1:p1")
    assert item.cache_key("gemini:m1:p1") != item.cache_key("gemini:m1:p2")
    assert item.cache_key("gemini:m1:p1") != item.cache_key("local:textrank:v1")
    assert len(item.cache_key("x")) == 64


# -- the query and path survive canonicalisation byte for byte ---------------


@pytest.mark.parametrize(("raw", "expected"), [
    # Latin-1 escapes are not UTF-8: they must not become U+FFFD (%EF%BF%BD).
    ("http://ex.com/p?name=M%FCller", "http://ex.com/p?name=M%FCller"),
    ("http://ex.com/p?name=M%E4ller", "http://ex.com/p?name=M%E4ller"),
    ("http://ex.com/p?a=1;b=2", "http://ex.com/p?a=1;b=2"),  # ';' is not re-encoded
    ("http://ex.com/p?amp", "http://ex.com/p?amp"),  # no '=' is invented
    ("http://ex.com/p?amp=", "http://ex.com/p?amp="),
    ("http://ex.com/p?b=2&a=1", "http://ex.com/p?b=2&a=1"),  # order kept
    ("http://ex.com/p?a=1&&b=2&", "http://ex.com/p?a=1&&b=2&"),
    ("http://ex.com/p?q=a+b%20c%2B", "http://ex.com/p?q=a+b%20c%2B"),  # '+' and %20 differ
    ("http://ex.com/p?next=%2Fhome%3Fx%3D1", "http://ex.com/p?next=%2Fhome%3Fx%3D1"),
    ("http://ex.com/p?x=%zz&y=100%", "http://ex.com/p?x=%zz&y=100%"),  # stray '%' kept
    ("http://ex.com/p?q=a[]|b^c'd", "http://ex.com/p?q=a[]|b^c'd"),
    ("http://ex.com/p?Q=%fc", "http://ex.com/p?Q=%fc"),  # case of escapes kept
    ("http://ex.com/a%2Fb", "http://ex.com/a%2Fb"),  # %2F is not a path separator
    ("http://ex.com/%7Euser/caf%C3%A9", "http://ex.com/%7Euser/caf%C3%A9"),
    ("http://ex.com/a/../b/./c", "http://ex.com/a/../b/./c"),
    # What must be encoded to travel is encoded as a browser does (UTF-8).
    ("http://ex.com/caf\u00e9?q=\u00fc", "http://ex.com/caf%C3%A9?q=%C3%BC"),
    ("http://ex.com/x?", "http://ex.com/x"),
    # Only tracking parameters are dropped; the rest keep their bytes and order.
    ("http://ex.com/p?utm_source=x&name=M%FCller&fbclid=1&a=1;b=2&gclid=2",
     "http://ex.com/p?name=M%FCller&a=1;b=2"),
    ("http://ex.com/p?utm_source=x&UTM_Campaign=y", "http://ex.com/p"),
    ("http://ex.com/p?utm_source=x;id=7", "http://ex.com/p?utm_source=x;id=7"),
    ("http://ex.com/p?xutm_source=1&utm=2", "http://ex.com/p?xutm_source=1&utm=2"),
    # Safe normalisations only: scheme and host case, default port, trailing dot, fragment.
    ("HTTPS://WWW.Ex.COM.:443/Path?Q=1#Frag", "https://www.ex.com/Path?Q=1"),
    ("http://ex.com:/", "http://ex.com/"),
    ("http://[0:0:0:0:0:0:0:1]:8080", "http://[::1]:8080/"),
])
def test_canonical_url_keeps_the_bytes_that_are_fetched(raw: str, expected: str) -> None:
    assert canonical_url(raw) == expected
    assert canonical_url(expected) == expected  # idempotent


def test_different_pages_keep_different_cache_keys() -> None:
    a = normalize_input("http://ex.com/p?name=M%FCller")
    b = normalize_input("http://ex.com/p?name=M%E4ller")
    assert a.cache_key("ns") != b.cache_key("ns")


def test_url_is_not_unicode_normalised() -> None:
    # A browser sends the bytes of what was typed: NFD and NFC are two paths.
    assert normalize_input("http://ex.com/cafe\u0301").value == "http://ex.com/cafe%CC%81"


# -- what the database cannot store is refused at validation -----------------


def test_url_length_limit() -> None:
    base = "http://ex.com/"
    at_limit = base + "a" * (MAX_URL_CHARS - len(base))
    assert canonical_url(at_limit) == at_limit
    with pytest.raises(InvalidInput) as caught:
        normalize_input(at_limit + "a")
    assert caught.value.code == "invalid_url"
    assert str(MAX_URL_CHARS) in caught.value.message
    # The limit applies to what is stored: encoding can push a URL over it.
    with pytest.raises(InvalidInput):
        canonical_url(base + "\u00e9" * (MAX_URL_CHARS // 4))
    # ... and dropping the fragment or tracking parameters can bring it under.
    assert canonical_url(at_limit + "#" + "f" * 5000) == at_limit


@pytest.mark.parametrize("raw", [
    "http://ex.com/a\x00b",
    "http://ex.com/?q=\x00",
    "http://ex.com/\ud800",
    "http://ex.com/?q=\udfff",
    "http://ex\ud800.com/",
    "http://ex.com/a\x7fb",
    "http://ex.com/a\x1bb",
])
def test_url_with_unstorable_characters_is_invalid(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_input(raw)
    assert caught.value.code == "invalid_url"


@pytest.mark.parametrize("raw", [
    "Some text.\x00 More text.",
    "Some text \ud800. More text.",
    "\udc00Some text. More text.",
])
def test_text_with_unstorable_characters_is_invalid(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_input(raw)
    assert caught.value.code == "invalid_input"


def test_reject_unstorable() -> None:
    reject_unstorable("Plain text, \u00e9, \U0001f600, tabs\tand\nnewlines.")
    for bad in ("a\x00b", "a\ud800b", "\udfff"):
        with pytest.raises(InvalidInput) as caught:
            reject_unstorable(bad)
        assert caught.value.code == "invalid_input"


def test_normalize_text_output_is_always_storable() -> None:
    # Used on extracted page text too, where refusing is not an option.
    assert normalize_text("a\x00b \ud800 c") == "ab \ufffd c"
    assert normalize_text("\U0001f600") == "\U0001f600"  # a valid pair is kept
