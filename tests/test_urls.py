"""Properties of the one URL validator, summaries.core.canonical_urls (pure, no services)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from summaries.core.canonical_urls import MAX_URL_CHARS, InvalidURL, canonical_url, parse_url
from summaries.models import Job

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


# --- international host names: IDNA 2008 with UTS 46, as browsers encode them -----------


@pytest.mark.parametrize(("url", "canonical"), [
    ("http://fa\u00df.de/", "http://xn--fa-hia.de/"),  # IDNA 2003 made it fass.de
    ("http://Stra\u00dfe.DE./x", "http://xn--strae-oqa.de/x"),
    ("http://fa\u00df\u3002de/", "http://xn--fa-hia.de/"),  # the ideographic full stop
    ("http://\uff45\uff58.com/", "http://ex.com/"),  # full-width letters fold
    ("http://B\u00fccher.example/", "http://xn--bcher-kva.example/"),
    ("http://my_host.fa\u00df.de/", "http://my_host.xn--fa-hia.de/"),  # an ASCII label is kept
    ("http://xn--fa-hia.de/", "http://xn--fa-hia.de/"),
])
def test_international_hosts_are_encoded_as_browsers_do(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical
    assert canonical_url("http://fa\u00df.de/") != canonical_url("http://fass.de/")


@pytest.mark.parametrize("host", [
    "xn--zz.de",  # not Punycode
    "\u0661\u0662\u0663.com",  # an Arabic-Indic digit may not start a right-to-left label
    "a\u200db.de",  # a joiner outside the context it is allowed in
    "\u00e9" * 70 + ".de",  # a label of more than 63 characters once encoded
    "a" * 64 + ".de",
])
def test_invalid_international_hosts_are_invalid_urls(host: str) -> None:
    with pytest.raises(InvalidURL) as caught:
        parse_url(f"http://{host}/")
    assert caught.value.code == "invalid_url"


def _post(client: Client, path: str, body: dict[str, Any]) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json")


@pytest.mark.django_db
def test_the_api_keys_and_stores_the_host_browsers_visit(client: Client) -> None:
    idn = _post(client, "/api/submit", {"input": "http://fa\u00df.de/page"})
    ascii_twin = _post(client, "/api/submit", {"input": "http://fass.de/page"})
    assert (idn.status_code, ascii_twin.status_code) == (202, 202), idn.content
    assert idn.json()["cache_key"] != ascii_twin.json()["cache_key"]
    assert Job.objects.get(id=idn.json()["job_id"]).url == "http://xn--fa-hia.de/page"


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "body", "code"), [
    ("/api/submit", {"input": "http://xn--zz.de/"}, "invalid_url"),
    ("/api/submit", {"input": "http://\u0661\u0662\u0663.com/"}, "invalid_url"),
    ("/api/submit", {"input": "http://example.com/", "callback_url": "https://xn--zz.de/hook"},
     "invalid_callback_url"),
    ("/api/watches", {"url": "http://xn--zz.de/", "every": 3600}, "invalid_url"),
])
def test_an_invalid_international_host_is_a_400(client: Client, path: str,
                                                body: dict[str, Any], code: str) -> None:
    response = _post(client, path, body)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
