"""Normalisation and cache keys (pure functions, no services)."""

from __future__ import annotations

import pytest

from summaries.inputs import TEXT, URL, InvalidInput, canonical_url, normalize_input


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
