"""Properties of the one URL validator, summaries.urls (pure, no services)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from summaries.urls import MAX_URL_CHARS, InvalidURL, canonical_url, parse_url

# http.client refuses these in a request target; a canonical URL never has them.
_NOT_ON_THE_WIRE = re.compile(r"[\x00-\x20\x7f-\U0010ffff]")
# Anything a parameter may hold but the separator '&' (and '#', which ends the query).
_QUERY_CHARS = st.sampled_from([*"abcXYZ019=;%+/?:@!$'()*,-._~[]|^\\", "%FC", "%e4"])


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_any_string_is_refused_or_canonical(tail: str) -> None:
    for raw in (f"http://{tail}", f"https://example.com/{tail}", tail):
        try:
            url = canonical_url(raw)
        except InvalidURL as exc:
            refused: InvalidURL | None = exc
        else:
            refused = None
        if refused is not None:
            assert refused.code in {"invalid_url", "blocked_url"}
            continue
        assert len(url) <= MAX_URL_CHARS
        assert not _NOT_ON_THE_WIRE.search(url)
        assert canonical_url(url) == url
        assert parse_url(url).url == url


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_QUERY_CHARS, max_size=6).map("".join), min_size=1, max_size=6))
def test_query_keeps_every_parameter_but_tracking_ones(params: list[str]) -> None:
    query = "&".join(["utm_source=news", *params, "fbclid=xyz"])
    url = canonical_url(f"http://example.com/p?{query}")
    kept = "&".join(params)
    assert url == "http://example.com/p" + (f"?{kept}" if kept else "")


@pytest.mark.parametrize(("url", "target", "netloc"), [
    ("http://ex.com", "/", "ex.com"),
    ("https://ex.com:443/a?b", "/a?b", "ex.com"),
    ("http://ex.com:8080/a?b=%FC#frag", "/a?b=%FC", "ex.com:8080"),
    ("http://[::ffff:1.2.3.4]:80/", "/", "[::ffff:102:304]"),
    ("http://B\u00fccher.Example./x y", "/x%20y", "xn--bcher-kva.example"),
])
def test_parse_url_gives_what_the_connection_sends(url: str, target: str, netloc: str) -> None:
    parsed = parse_url(url)
    assert parsed.request_target == target
    assert parsed.netloc == netloc


@pytest.mark.parametrize(("url", "code"), [
    ("http://[fe80::1%25eth0]/", "blocked_url"),  # a zone only means something on this host
    ("http://[::1/", "invalid_url"),
    ("http://a..b/", "invalid_url"),
    ("http://" + "a" * 64 + ".com/", "invalid_url"),  # a DNS label is at most 63
    ("http://ex.com:0/", "invalid_url"),
    ("http://ex.com:port/", "invalid_url"),
    ("mailto:a@ex.com", "blocked_url"),
])
def test_parse_url_refuses(url: str, code: str) -> None:
    with pytest.raises(InvalidURL) as caught:
        parse_url(url)
    assert caught.value.code == code
