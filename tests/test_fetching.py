"""SSRF and robustness tests for summaries.fetching, loopback only.

Allowed fixture pages are served on 127.0.0.2 (explicitly allowed by the
policy); a canary on 127.0.0.1 must never see a connection. An autouse guard
fails any test that tries to connect outside 127.0.0.0/8 or ::1, so blocked
private/public probes are proven refused before any traffic.
"""

from __future__ import annotations

import gzip
import ipaddress
import shutil
import signal
import socket
import ssl
import subprocess
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from summaries.core.errors import JobError
from summaries.core.inputs import canonical_url
from summaries.fetching import FetchPolicy, check_submit_url, fetch_page, transport
from tests.helpers.fakes.web import Canary, FakeWeb

FIXTURE_HOST = "127.0.0.2"
POLICY = FetchPolicy(
    allowed_networks=FetchPolicy.parse_networks(f"{FIXTURE_HOST}/32"),
    total_timeout=1.5,
    connect_timeout=1.0,
    max_bytes=1_000_000,
    max_redirects=3,
)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record every outgoing connect and refuse anything that is not loopback."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def guarded(sock: socket.socket, address: Any) -> None:
        attempts.append(address)
        if isinstance(address, tuple):
            ip = ipaddress.ip_address(address[0])
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
                ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
            if not (ip.is_loopback or ip.is_unspecified):  # Linux: 0.0.0.0 means this host
                pytest.fail(f"test tried to connect to non-loopback {address!r}")
        real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    return attempts


@pytest.fixture(scope="module")
def web() -> Iterator[FakeWeb]:
    with FakeWeb(FIXTURE_HOST) as server:
        yield server


def fetch_error(url: str, policy: FetchPolicy = POLICY) -> JobError:
    with pytest.raises(JobError) as info:
        fetch_page(url, policy)
    return info.value


# -- SSRF probes ------------------------------------------------------------

# {p} is the canary port. Teredo embeds the client IPv4 inverted: ~127.0.0.1.
LOOPBACK_PROBES = [
    "http://127.0.0.1:{p}/",
    "http://localhost:{p}/",
    "http://2130706433:{p}/",
    "http://0177.0.0.1:{p}/",
    "http://0x7f.1:{p}/",
    "http://0x7f000001:{p}/",
    "http://127.1:{p}/",
    "http://[::ffff:127.0.0.1]:{p}/",
    "http://[::ffff:7f00:1]:{p}/",
    "http://[::127.0.0.1]:{p}/",
    "http://[::1]:{p}/",
    "http://0.0.0.0:{p}/",
    "http://0:{p}/",
    "http://[::]:{p}/",
    "http://[2002:7f00:1::]:{p}/",  # 6to4
    "http://[64:ff9b::7f00:1]:{p}/",  # NAT64 well-known prefix
    "http://[64:ff9b:1::7f00:1]:{p}/",  # NAT64 local-use prefix
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:{p}/",  # Teredo
    "HTTP://127.0.0.1:{p}/",
]
PRIVATE_PROBES = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/",
    "http://10.0.0.1/",
    "http://192.168.1.1/",
    "http://172.16.0.1/",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://[fd00::1]/",
    "http://[fe80::1]/",
    "http://[ff02::1]/",
    "http://192.0.2.1/",
]


@pytest.mark.parametrize("template", LOOPBACK_PROBES)
def test_loopback_probe_refused_without_connecting(
    template: str, canary: Canary, loopback_only: list[Any]
) -> None:
    before = canary.connections
    url = template.format(p=canary.port)

    error = fetch_error(url)

    assert error.code in {"blocked_destination", "blocked_url"}, error
    assert not error.transient
    assert loopback_only == []
    assert canary.connections == before


@pytest.mark.parametrize("template", [t for t in LOOPBACK_PROBES if "[" not in t or "ffff" in t])
def test_probe_reaches_canary_when_allowed(template: str, canary: Canary) -> None:
    # Control for the test above: the probe URLs really do point at the canary,
    # so "zero connections" there means refused, not misaddressed.
    before = canary.connections
    allow_all = FetchPolicy(allowed_networks=FetchPolicy.parse_networks("0.0.0.0/0, ::/0"))
    error = fetch_error(template.format(p=canary.port), allow_all)
    assert error.code == "fetch_failed"  # the canary hangs up without answering
    assert canary.connections == before + 1


@pytest.mark.parametrize("url", PRIVATE_PROBES)
def test_private_destination_refused(url: str, loopback_only: list[Any]) -> None:
    error = fetch_error(url)
    assert error.code in {"blocked_destination", "blocked_url"}
    assert loopback_only == []


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("file:///etc/passwd", "blocked_url"),
        ("ftp://{h}/file", "blocked_url"),
        ("gopher://{h}:70/_", "blocked_url"),
        ("javascript:alert(1)", "blocked_url"),
        ("http://user:pass@{h}/", "blocked_url"),
        ("http://user@{h}/", "blocked_url"),
        ("//{h}/", "blocked_url"),  # no scheme
        # Malformed is invalid_url everywhere (one validator, one set of codes).
        ("http:///path", "invalid_url"),
        ("http://exa mple.com/", "invalid_url"),
        ("http://127.0.0.1%2f@{h}/", "blocked_url"),  # credentials
        ("http://{h}%2f/", "invalid_url"),
        ("http://{h}:99999/", "invalid_url"),
        ("http://{h}:0/", "invalid_url"),
        ("http://{h}/a\x00b", "invalid_url"),
        ("http://{h}/\ud800", "invalid_url"),
    ],
)
def test_bad_url_refused(url: str, code: str, loopback_only: list[Any]) -> None:
    url = url.format(h=FIXTURE_HOST)
    error = fetch_error(url)
    assert error.code == code, error
    with pytest.raises(JobError) as info:
        check_submit_url(url, POLICY)
    assert info.value.code == code
    assert loopback_only == []


def test_name_with_any_blocked_address_is_refused(
    web: FakeWeb, monkeypatch: pytest.MonkeyPatch
) -> None:
    web.add_page("/mixed", "<html>hi</html>")
    answer = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", (FIXTURE_HOST, web.port)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", web.port)),
    ]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: answer)
    error = fetch_error(f"http://mixed.example:{web.port}/mixed")
    assert error.code == "blocked_destination"
    assert "10.1.2.3" in error.message


def test_connects_to_checked_address_with_hostname_in_host_header(
    web: FakeWeb, monkeypatch: pytest.MonkeyPatch
) -> None:
    web.add_page("/named", "<html>named</html>")
    lookups: list[str] = []

    def fake_getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (FIXTURE_HOST, port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    page = fetch_page(f"http://News.Example:{web.port}/named#frag", POLICY)

    assert page.html == "<html>named</html>"
    assert lookups == ["news.example"]  # one lookup: no rebinding window
    request = next(r for r in reversed(web.requests) if r.path == "/named")
    assert request.headers["Host"] == f"news.example:{web.port}"
    assert request.headers["User-Agent"] == POLICY.user_agent


def test_redirect_to_canary_refused(web: FakeWeb, canary: Canary) -> None:
    before = canary.connections
    web.add_redirect("/to-canary", f"http://127.0.0.1:{canary.port}/")
    web.add_redirect("/to-localhost", f"http://localhost:{canary.port}/", status=307)
    web.add_redirect("/to-metadata", "http://169.254.169.254/latest/meta-data/", status=301)
    web.add_redirect("/to-file", "file:///etc/passwd")

    assert fetch_error(web.url("/to-canary")).code == "blocked_destination"
    assert fetch_error(web.url("/to-localhost")).code == "blocked_destination"
    assert fetch_error(web.url("/to-metadata")).code == "blocked_destination"
    assert fetch_error(web.url("/to-file")).code == "blocked_destination"
    assert canary.connections == before


def test_redirect_chain_longer_than_limit(web: FakeWeb, canary: Canary) -> None:
    for i in range(10):
        web.add_redirect(f"/hop/{i}", f"/hop/{i + 1}")
    web.add_page("/hop/10", "<html>end</html>")
    web.add_page("/hop-end", "<html>end</html>")
    for i in range(3):
        web.add_redirect(f"/short/{i}", f"/short/{i + 1}" if i < 2 else "/hop-end")

    error = fetch_error(web.url("/hop/0"))
    assert error.code == "too_many_redirects"
    assert not error.transient
    # Exactly max_redirects hops is fine.
    assert fetch_page(web.url("/short/0"), POLICY).final_url == web.url("/hop-end")


# -- normal pages ---------------------------------------------------------


def test_allowed_page_after_redirect(web: FakeWeb) -> None:
    web.add_page("/article", "<html><title>Hello</title></html>")
    web.add_redirect("/old", "/article", status=301)

    page = fetch_page(web.url("/old?x=1"), POLICY)

    assert page.url == web.url("/old?x=1")
    assert page.final_url == web.url("/article")
    assert page.status == 200
    assert page.content_type == "text/html"
    assert page.html == "<html><title>Hello</title></html>"


def test_latin1_charset_from_header(web: FakeWeb) -> None:
    web.add_page("/latin1", "<html>Café déjà vu</html>", charset="iso-8859-1")
    assert fetch_page(web.url("/latin1"), POLICY).html == "<html>Café déjà vu</html>"


def test_charset_from_meta_and_utf8_fallback(web: FakeWeb) -> None:
    meta = '<html><head><meta charset="windows-1252"></head>Caf\u00e9 \u2013</html>'
    web.add_response("/meta", meta.encode("cp1252"), content_type="text/html")
    web.add_response("/broken", b"<html>ok \xff\xfe</html>", content_type="text/html")
    web.add_response(
        "/bogus", b"<html>ok</html>", content_type="text/html; charset=no-such-charset"
    )

    assert fetch_page(web.url("/meta"), POLICY).html == meta
    assert fetch_page(web.url("/broken"), POLICY).html == "<html>ok \ufffd\ufffd</html>"
    assert fetch_page(web.url("/bogus"), POLICY).html == "<html>ok</html>"


def test_request_target_on_the_wire_is_the_canonical_one(web: FakeWeb) -> None:
    web.add_page("/wire", "<html>wire</html>")
    web.add_page("/caf%C3%A9", "<html>cafe</html>")
    cases = {
        "/wire?name=M%FCller": "/wire?name=M%FCller",
        "/wire?name=M%E4ller&utm_source=x": "/wire?name=M%E4ller",
        "/wire?a=1;b=2&amp&q=a+b%20c&x=[1]|2": "/wire?a=1;b=2&amp&q=a+b%20c&x=[1]|2",
        "/caf\u00e9": "/caf%C3%A9",
        "/caf%C3%A9?q=%2F%zz": "/caf%C3%A9?q=%2F%zz",
    }
    for submitted, on_the_wire in cases.items():
        url = canonical_url(web.url(submitted))
        assert url == web.url(on_the_wire)
        page = fetch_page(url, POLICY)
        assert web.requests[-1].path == on_the_wire
        assert page.final_url == url


def test_redirect_location_is_sent_as_given(web: FakeWeb) -> None:
    web.add_page("/landing", "<html>landing</html>")
    web.add_redirect("/go", "/landing?name=M%FCller&a=1;b=2&flag")
    page = fetch_page(web.url("/go"), POLICY)
    assert web.requests[-1].path == "/landing?name=M%FCller&a=1;b=2&flag"
    assert page.final_url == web.url("/landing?name=M%FCller&a=1;b=2&flag")


def test_page_declaring_punycode_is_read_as_utf8(web: FakeWeb) -> None:
    # Like the report's page (4,956 bytes of gzip, 34.9 s to decode): punycode
    # inserts each character of the part after the last "-" into a list, which
    # is quadratic. Here ~1 KB on the wire; as punycode, half a minute of CPU
    # after the fetch deadline stopped counting. Refused, it is plain UTF-8.
    html = "<html><head><meta charset=punycode></head><body>" + "a" * 400_000 + "-" + "a" * 400_000
    web.add_response("/puny", gzip.compress(html.encode()),
                     content_type="text/html; charset=punycode",
                     headers={"Content-Encoding": "gzip"})
    web.add_response("/puny-meta", gzip.compress(html.encode()), content_type="text/html",
                     headers={"Content-Encoding": "gzip"})
    assert fetch_page(web.url("/puny-meta"), POLICY).html == html
    assert fetch_page(web.url("/puny"), POLICY).html == html


def test_soft_time_limit_inside_a_fetch_is_not_swallowed(web: FakeWeb) -> None:
    """Celery's soft limit (an Exception subclass) must reach the task as itself,
    not as fetch_failed: the job is then retried as job_timeout, not failed for good."""
    web.add_drip("/drip-soft", interval=0.05)

    def soft_limit(signum: int, frame: object) -> None:
        raise SoftTimeLimitExceeded()

    previous = signal.signal(signal.SIGALRM, soft_limit)
    signal.setitimer(signal.ITIMER_REAL, 0.3)  # well inside POLICY.total_timeout
    try:
        with pytest.raises(SoftTimeLimitExceeded):
            fetch_page(web.url("/drip-soft"), POLICY)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_gzip_page_is_decoded(web: FakeWeb) -> None:
    web.add_gzip_page("/gz", "<html>compressed</html>")
    assert fetch_page(web.url("/gz"), POLICY).html == "<html>compressed</html>"


@pytest.mark.parametrize(
    ("encoding", "wbits", "trailer"),
    [
        ("deflate", zlib.MAX_WBITS, b""),  # zlib-wrapped, as HTTP specifies
        ("deflate", -zlib.MAX_WBITS, b""),  # raw deflate, as some servers send
        ("gzip", 16 + zlib.MAX_WBITS, b"\0\0\0\0"),  # trailing padding is ignored
    ],
)
def test_compressed_variants(web: FakeWeb, encoding: str, wbits: int, trailer: bytes) -> None:
    compressor = zlib.compressobj(wbits=wbits)
    body = compressor.compress(b"<html>squeezed</html>") + compressor.flush() + trailer
    path = f"/enc-{encoding}-{wbits}"
    web.add_response(path, body, headers={"Content-Encoding": encoding})
    assert fetch_page(web.url(path), POLICY).html == "<html>squeezed</html>"


def test_corrupt_gzip(web: FakeWeb) -> None:
    web.add_response("/corrupt", b"\x1f\x8bnot really gzip", headers={"Content-Encoding": "gzip"})
    assert fetch_error(web.url("/corrupt")).code == "fetch_failed"


def test_missing_content_type_is_sniffed(web: FakeWeb) -> None:
    web.add_response("/untyped", b"  <!DOCTYPE html><html>x</html>", content_type=None)
    web.add_response("/untyped-bin", b"%PDF-1.7 ...", content_type=None)

    assert fetch_page(web.url("/untyped"), POLICY).content_type == "text/html"
    assert fetch_error(web.url("/untyped-bin")).code == "unsupported_content"


@pytest.fixture(scope="module")
def tls_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeWeb, str]]:
    """An https FakeWeb with a self-signed certificate for news.example; yields (web, cert)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=news.example",
         "-addext", "subjectAltName=DNS:news.example",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    with FakeWeb(FIXTURE_HOST, tls=server_context) as server:
        server.add_page("/secure", "<html>secure</html>")
        yield server, str(cert)


@pytest.fixture
def resolve_to_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every name resolve to the fixture host."""

    def fake_getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (FIXTURE_HOST, port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)


@pytest.mark.usefixtures("resolve_to_fixture")
def test_https_uses_hostname_for_sni_and_certificate(
    tls_site: tuple[FakeWeb, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    web, cert = tls_site
    monkeypatch.setattr(transport, "tls_context", lambda: ssl.create_default_context(cafile=cert))

    page = fetch_page(f"https://news.example:{web.port}/secure", POLICY)
    assert page.html == "<html>secure</html>"

    error = fetch_error(f"https://other.example:{web.port}/secure")  # same address, wrong name
    assert (error.code, error.transient) == ("fetch_failed", False)
    assert "certificate" in error.message.lower()


@pytest.mark.usefixtures("resolve_to_fixture")
def test_https_untrusted_certificate_refused(tls_site: tuple[FakeWeb, str]) -> None:
    web, _ = tls_site
    error = fetch_error(f"https://news.example:{web.port}/secure")
    assert (error.code, error.transient) == ("fetch_failed", False)


# -- hostile servers ------------------------------------------------------


@pytest.mark.parametrize("drip_headers", [False, True])
def test_slow_drip_times_out(web: FakeWeb, drip_headers: bool) -> None:
    path = f"/drip-{drip_headers}"
    web.add_drip(path, interval=0.05, drip_headers=drip_headers)

    started = time.monotonic()
    error = fetch_error(web.url(path))
    elapsed = time.monotonic() - started

    assert error.code == "fetch_timeout"
    assert error.transient
    assert POLICY.total_timeout - 0.1 <= elapsed < POLICY.total_timeout + 0.5


def test_gzip_bomb_stops_at_limit_with_bounded_memory(web: FakeWeb) -> None:
    web.add_gzip_bomb("/bomb", size=1 << 30)  # 1 GiB of zeros

    tracemalloc.start()
    try:
        error = fetch_error(web.url("/bomb"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert error.code == "too_large"
    assert not error.transient
    assert peak < 20 * POLICY.max_bytes  # nowhere near 1 GiB (server thread included)


@pytest.mark.parametrize("declare_length", [True, False])
def test_huge_body_too_large(web: FakeWeb, declare_length: bool) -> None:
    path = f"/huge-{declare_length}"
    web.add_huge(path, size=50_000_000, declare_length=declare_length)
    error = fetch_error(web.url(path))
    assert error.code == "too_large"


@pytest.mark.parametrize(
    "content_type", ["application/pdf", "image/png", "text/plain", "application/json"]
)
def test_non_html_refused(web: FakeWeb, content_type: str) -> None:
    path = f"/file-{content_type.replace('/', '-')}"
    web.add_response(path, b"<html>pretending</html>", content_type=content_type)
    error = fetch_error(web.url(path))
    assert error.code == "unsupported_content"
    assert content_type in error.message


def test_unsupported_content_encoding(web: FakeWeb) -> None:
    web.add_response("/br", b"\x00\x01", headers={"Content-Encoding": "br"})
    assert fetch_error(web.url("/br")).code == "unsupported_content"


@pytest.mark.parametrize(
    ("status", "transient"), [(404, False), (403, False), (410, False), (429, True), (503, True)]
)
def test_http_error_status(web: FakeWeb, status: int, transient: bool) -> None:
    web.add_status(f"/status/{status}", status)
    error = fetch_error(web.url(f"/status/{status}"))
    assert error.code == "http_error"
    assert error.transient is transient
    assert f"HTTP {status}" in error.message


def test_redirect_without_location(web: FakeWeb) -> None:
    web.add_response("/no-location", b"", status=302)
    assert fetch_error(web.url("/no-location")).code == "http_error"


def test_connection_closed_without_response_is_transient(web: FakeWeb) -> None:
    web.add_route("/hangup", lambda h: h.connection.shutdown(socket.SHUT_RDWR))
    error = fetch_error(web.url("/hangup"))
    assert error.code == "fetch_failed"
    assert error.transient


def test_unknown_host_is_permanent(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_host(*args: Any, **kwargs: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    error = fetch_error("http://no-such-host.example/")
    assert (error.code, error.transient) == ("fetch_failed", False)


# -- submit-time checks ---------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        *(t.format(p=8080) for t in LOOPBACK_PROBES if "localhost" not in t),
        *PRIVATE_PROBES,
        "http://127.0.0.1./",
        "http://0x7F.0.0.1/",
        "http://017700000001/",
    ],
)
def test_submit_refuses_blocked_literal_ips(url: str) -> None:
    with pytest.raises(JobError) as info:
        check_submit_url(url, POLICY)
    assert info.value.code == "blocked_url"


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/article?id=1",
        "http://news.example.org:8080/a/b",
        "https://bücher.example/",
        "http://localhost/",  # names are left to fetch_page, which resolves them
        "http://8.8.8.8/",
        "http://[2606:4700:4700::1111]/",
        "http://[64:ff9b::808:808]/",  # NAT64 of a public address
        f"http://{FIXTURE_HOST}:8000/",  # in allowed_networks
        "http://134744072/",  # 8.8.8.8 as one number
    ],
)
def test_submit_accepts_without_dns(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dns(*args: Any, **kwargs: Any) -> list[Any]:
        raise AssertionError("check_submit_url must not resolve names")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(socket, "gethostbyname", no_dns)
    check_submit_url(url, POLICY)


def test_parse_networks() -> None:
    assert FetchPolicy.parse_networks(" 10.0.0.0/8, 127.0.0.2/32 ,, ::1/128") == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("127.0.0.2/32"),
        ipaddress.ip_network("::1/128"),
    )
    assert FetchPolicy.parse_networks("") == ()
    for bad in ("10.0.0.0/33", "not-a-network", "10.0.0.1/8"):
        with pytest.raises(ValueError, match="invalid network"):
            FetchPolicy.parse_networks(bad)


def test_a_refused_connection_fails_at_once_without_retries() -> None:
    with socket.socket() as sock:  # a port on the fixture host with nothing listening
        sock.bind((FIXTURE_HOST, 0))
        port = sock.getsockname()[1]
    error = fetch_error(f"http://{FIXTURE_HOST}:{port}/")
    assert (error.code, error.transient) == ("fetch_failed", False)


def test_an_unknown_host_fails_at_once_without_retries() -> None:
    error = fetch_error("http://no-such-host.invalid/")
    assert (error.code, error.transient) == ("fetch_failed", False)
