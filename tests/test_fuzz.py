"""Hostile and random client input never gets a 5xx.

Request bodies, headers and URLs go over real HTTP (raw sockets, so nothing
is cleaned up on the way) to a live server. Every error under /api/ must be
JSON ``{"error": str, "code": str}``. The fuzz is seeded and bounded: the
same few hundred cases every run.
"""

from __future__ import annotations

import gzip
import json
import random
import socket
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPResponse
from typing import Any
from urllib.parse import quote

import pytest

from summaries.models import Job
from tests.helpers.processes import WebServer
from tests.helpers.texts import text_about

SEED = 7_2024
TOKEN = "s3cret"


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Server:
    host: str
    port: int

    def send(self, method: str, target: bytes | str, *, body: bytes = b"",
             headers: dict[str, bytes | str] | None = None,
             content_length: bytes | None = None) -> Answer:
        """One raw HTTP/1.1 request. Content-Length is the body's own unless
        given; the write side is closed after the body, so a server waiting
        for a longer body than was sent sees the end of it."""
        target = target.encode("latin-1") if isinstance(target, str) else target
        fields: dict[str, bytes | str] = {"Host": f"{self.host}:{self.port}",
                                          "Accept": "application/json",
                                          "Connection": "close"}
        if method not in {"GET", "HEAD"} or body:
            fields["Content-Length"] = content_length or str(len(body)).encode()
        fields |= headers or {}
        lines = [method.encode() + b" " + target + b" HTTP/1.1"]
        lines += [name.encode() + b": " + (value.encode("latin-1") if isinstance(value, str)
                                           else value) for name, value in fields.items()]
        with socket.create_connection((self.host, self.port), timeout=30) as sock:
            sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
            sock.shutdown(socket.SHUT_WR)
            response = HTTPResponse(sock, method=method)
            response.begin()
            return Answer(response.status, response.getheader("Content-Type") or "",
                          response.read())


def check(answer: Answer, what: str, *, api: bool = True) -> Answer:
    """No 5xx; under /api/ (and not for HEAD) every error is the JSON shape."""
    assert answer.status < 500, f"{what}: {answer.status} {answer.body[:300]!r}"
    if api and answer.status >= 400:
        assert answer.content_type.startswith("application/json"), (what, answer.content_type)
        body = answer.json()
        assert isinstance(body, dict), (what, body)
        assert isinstance(body.get("error"), str) and body["error"], (what, body)
        assert isinstance(body.get("code"), str) and body["code"], (what, body)
    return answer


@pytest.fixture
def server(live_server: Any, settings: Any, no_enqueue: None) -> Server:
    # Hundreds of requests from one address: no rate limit here (its own
    # tests are in test_operator_api.py). Inputs may look like URLs of random
    # hosts, which no worker should fetch: nothing is enqueued.
    settings.RATE_LIMIT = None
    host, port = live_server.url.removeprefix("http://").split(":")
    return Server(host, int(port))


def submit(server: Server, body: bytes, content_type: bytes | str = "application/json",
           **headers: bytes | str) -> Answer:
    return server.send("POST", "/api/submit", body=body,
                       headers={"Content-Type": content_type, **headers})


def as_json(value: Any) -> bytes:
    return json.dumps(value).encode()


# --- Known 500s from issue 7 (defect 11) --------------------------------------

def test_a_non_ascii_bearer_token_is_refused_not_a_crash(server: Server, settings: Any) -> None:
    settings.JOBS_API_TOKEN = TOKEN
    for given in (b"Bearer caf\xe9", b"Bearer " + TOKEN.encode() + b"\xe9", b"Bearer \xff\x00"):
        answer = check(server.send("GET", "/api/jobs", headers={"Authorization": given}),
                       repr(given))
        assert answer.status == 403
        assert answer.json()["code"] == "permission_denied"
    right = server.send("GET", "/api/jobs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status == 200


@pytest.mark.parametrize("body", [b"[" * 50_000, b'{"input":' * 50_000,
                                  b"[" * 50_000 + b"]" * 50_000])
def test_json_nested_too_deeply_is_malformed_json(server: Server, body: bytes) -> None:
    answer = check(submit(server, body), "deep")
    assert (answer.status, answer.json()["code"]) == (400, "malformed_json")


@pytest.mark.parametrize("size", [150_000, 3_000_000])
def test_an_oversized_body_is_413_json(server: Server, size: int) -> None:
    answer = check(submit(server, as_json({"input": "Words here. " * (size // 12)})), "big")
    assert (answer.status, answer.json()["code"]) == (413, "input_too_large")


@pytest.mark.parametrize("charset", ["zlib", "punycode", "rot13", "base64", "idna", "utf-7"])
def test_json_in_a_non_unicode_charset_is_415(server: Server, charset: str) -> None:
    # "zlib" would inflate a bomb, "punycode" decodes in quadratic time.
    body = as_json({"input": text_about(charset)})
    answer = check(submit(server, zlib.compress(body) if charset == "zlib" else body,
                          f"application/json; charset={charset}"), charset)
    assert (answer.status, answer.json()["code"]) == (415, "unsupported_media_type")


@pytest.mark.parametrize("charset", ["utf-8", "UTF8", "utf-16", "utf-16-le"])
def test_json_in_a_unicode_charset_is_read(server: Server, charset: str) -> None:
    body = json.dumps({"input": text_about(f"charset {charset}")}).encode(charset)
    answer = check(submit(server, body, f"application/json; charset={charset}"), charset)
    assert answer.status == 202


@pytest.mark.parametrize("text", [
    text_about("nul") + "\x00",
    "\x00" + text_about("nul start"),
    text_about("surrogate") + "\ud800",
    "\udfff" + text_about("low surrogate"),
    "https://example.com/a\x00b",
    "https://example.com/\ud800",
    "https://exa\x00mple.com/",
])
def test_nul_and_lone_surrogates_in_inputs_are_400(server: Server, text: str) -> None:
    # json.dumps writes them as \u0000 and \ud800 escapes: valid JSON whose
    # strings the database cannot store.
    answer = check(submit(server, as_json({"input": text})), repr(text))
    assert answer.status == 400, answer.body
    assert Job.objects.count() == 0


# --- The fuzz ---------------------------------------------------------------

def random_text(rng: random.Random, size: int) -> str:
    """Characters from everywhere: ASCII, controls, other scripts, emoji,
    and now and then a lone surrogate."""
    pools = [(0x20, 0x7E), (0x00, 0x1F), (0x80, 0x2FF), (0x400, 0x4FF), (0x4E00, 0x4FFF),
             (0x1F600, 0x1F64F), (0xD800, 0xDFFF), (0xFFF0, 0xFFFF)]
    weights = [60, 4, 8, 8, 8, 6, 1, 1]
    return "".join(chr(rng.randint(*rng.choices(pools, weights)[0])) for _ in range(size))


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return rng.choice([None, True, False, 0, -1, 2**64, -(2**70), 1e308, -0.0, 1.5e-300])
    if kind == 1:
        return random_text(rng, rng.randrange(40))
    if kind == 2:
        return text_about(random_text(rng, 6))
    if kind == 3:
        return rng.choice(["http://", "https://", "ftp://", "//", "javascript:"]) + \
            random_text(rng, rng.randrange(30))
    if kind == 4:
        return rng.randint(-(10**30), 10**30)
    if kind == 5:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {random_text(rng, rng.randrange(1, 8)) if rng.random() < 0.3
            else rng.choice(["input", "refresh"]): random_json(rng, depth + 1)
            for _ in range(rng.randrange(4))}


def random_bodies(rng: random.Random) -> Iterator[bytes]:
    for _ in range(40):  # random bytes
        yield rng.randbytes(rng.randrange(0, 3000))
    for _ in range(60):  # random JSON values of every type, in any shape
        yield json.dumps(random_json(rng)).encode("utf-8", "surrogatepass")
    for _ in range(40):  # input and refresh of the right and wrong types
        yield json.dumps({"input": random_json(rng), "refresh": random_json(rng)},
                         ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
    for depth in (10, 500, 999, 1000, 1001, 5000, 100_000):  # deep nesting
        yield b"[" * depth + b"]" * depth
        yield b'{"input":' * depth + b'"x"' + b"}" * depth
        yield b'{"input": ' + b"[" * depth + b"]" * depth + b"}"
    yield from (b'{"input": ' + number + b"}" for number in (
        b"1" * 5000, b"1e99999", b"-1e99999", b"NaN", b"Infinity", b"-Infinity",
        b"0." + b"0" * 5000 + b"1", b"1" * 4300))
    yield from (b'{"refresh": ' + number + b', "input": "a. b. c."}' for number in (
        b"1" * 5000, b"NaN", b"1e400"))
    text = text_about("encodings")
    yield from (  # not UTF-8, or broken UTF-8
        as_json({"input": text}).replace(b"The", b"Th\xe9"),
        json.dumps({"input": text + "é"}, ensure_ascii=False).encode("latin-1"),
        json.dumps({"input": text}).encode("utf-16"),
        b'{"input": "\xc0\xaf\xed\xa0\x80 ' + text.encode() + b'"}',
        b'{"input": "' + text.encode() + b'\xe2\x82"}',
        b"\xef\xbb\xbf" + as_json({"input": text}),
        b"\xff\xfe" + as_json({"input": text}),
    )
    yield from (  # NUL bytes, raw and escaped
        b"\x00" * 100,
        as_json({"input": text}) + b"\x00",
        b'{"input": "' + text.encode() + b'\x00"}',
        b'{"input\x00": "' + text.encode() + b'"}',
    )
    yield from (  # lone surrogates in JSON strings
        b'{"input": "\\ud800"}', b'{"input": "' + text.encode() + b'\\udc00"}',
        b'{"\\ud800": 1}', b'{"input": "\\ud83d\\ude00 ' + text.encode() + b'"}',
    )


def test_fuzzed_bodies_never_get_a_5xx(server: Server) -> None:
    rng = random.Random(SEED)
    content_types = ["application/json", "application/json; charset=utf-8",
                     "application/json; charset=latin-1", "application/json; charset=bogus",
                     "text/plain", "application/x-www-form-urlencoded",
                     "multipart/form-data; boundary=xyz", "multipart/form-data",
                     "application/json-patch+json", "*/*", "", "appl\xe9cation/json",
                     "application/json; boundary=\x01"]
    statuses: dict[int, int] = {}
    for number, body in enumerate(random_bodies(rng)):
        content_type = "application/json" if number % 3 else rng.choice(content_types)
        answer = check(submit(server, body, content_type), f"#{number} {content_type} "
                                                            f"{body[:200]!r}")
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
    # The fuzz reached both the parser's refusals and the service itself.
    assert statuses.get(400, 0) > 50 and statuses.get(202, 0) + statuses.get(200, 0) > 0


def test_compressed_and_truncated_bodies_never_get_a_5xx(server: Server) -> None:
    body = as_json({"input": text_about("gzip")})
    check(submit(server, gzip.compress(body), **{"Content-Encoding": "gzip"}), "gzip")
    check(submit(server, gzip.compress(body), "application/gzip"), "application/gzip")
    check(submit(server, zlib.compress(body), **{"Content-Encoding": "deflate"}), "deflate")
    for declared in (b"5", b"0", str(len(body) + 100).encode(), b"-1", b"abc",
                     b"99999999999999999999", b" 12 ", b"1e3", b"0x10"):
        check(server.send("POST", "/api/submit", body=body, content_length=declared,
                          headers={"Content-Type": "application/json"}), f"length {declared!r}")
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    check(server.send("POST", "/api/submit", body=chunked,
                      headers={"Content-Type": "application/json",
                               "Transfer-Encoding": "chunked"}), "chunked")


def junk_header(rng: random.Random) -> bytes:
    """A header value: printable, Latin-1, control characters (no CR/LF)."""
    alphabet = bytes(b for b in range(256) if b not in b"\r\n")
    return bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 200))).strip()


def test_fuzzed_headers_never_get_a_5xx(server: Server, settings: Any) -> None:
    rng = random.Random(SEED + 1)
    settings.JOBS_API_TOKEN = TOKEN
    authorizations = [b"Bearer", b"Bearer ", b"bearer " + TOKEN.encode(), b"Basic dXNlcjpwdw==",
                      b"Bearer " + TOKEN.encode() * 1000, b"Bearer \x00", b"Token " + b"\xff" * 50,
                      b"Bearer caf\xe9", b"Bearer " + "café".encode()]
    authorizations += [junk_header(rng) for _ in range(30)]
    authorizations += [b"Bearer " + junk_header(rng) for _ in range(30)]
    for given in authorizations:
        answer = check(server.send("GET", "/api/jobs", headers={"Authorization": given}),
                       f"Authorization {given!r}")
        assert answer.status in (200, 403)
        job = str(uuid.uuid4())
        check(server.send("POST", f"/api/jobs/{job}/retry", headers={"Authorization": given}),
              f"retry Authorization {given!r}")

    cookies = [b"sessionid=" + junk_header(rng) for _ in range(10)]
    cookies += [b"csrftoken=" + junk_header(rng) + b"; sessionid=x" for _ in range(5)]
    cookies += [junk_header(rng) for _ in range(10)]
    for cookie in cookies:
        check(server.send("GET", "/api/jobs", headers={"Cookie": cookie}), f"Cookie {cookie!r}")
        check(server.send("POST", f"/api/jobs/{uuid.uuid4()}/retry", headers={"Cookie": cookie}),
              f"retry Cookie {cookie!r}")

    forwarded = [junk_header(rng) for _ in range(20)]
    forwarded += [b",,,", b"unknown", b"::1, ::1", b"1.2.3.4, " * 500, b"\xff" * 300, b"[::1]:80"]
    body = as_json({"input": ""})
    for proxies in (0, 2):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": proxies}
        settings.RATE_LIMIT = (1000, 60)
        for value in forwarded:
            answer = check(submit(server, body, **{"X-Forwarded-For": value,
                                                   "X-Forwarded-Proto": junk_header(rng)}),
                           f"X-Forwarded-For {value!r}")
            assert answer.json()["code"] == "empty_input"

    for _ in range(20):  # Accept, Origin and friends: any answer but a 5xx
        headers = {rng.choice(["Accept", "Origin", "Accept-Language", "Accept-Encoding",
                               "If-None-Match", "Range", "Expect", "X-CSRFToken",
                               "Access-Control-Request-Method"]): junk_header(rng)}
        method = rng.choice(["GET", "POST", "OPTIONS"])
        path = rng.choice(["/api/submit", "/api/jobs", "/api/analytics", "/api/status/1"])
        answer = server.send(method, path, body=body if method == "POST" else b"",
                             headers={"Content-Type": "application/json", **headers})
        check(answer, f"{method} {path} {headers!r}", api=False)

    for host in [b"evil.example", b"", b"localhost:99999", b"\xff\xfe", b"a" * 300,
                 b"[::1", b"localhost\x00", b"127.0.0.1:80:80", junk_header(rng)]:
        # ALLOWED_HOSTS answers Django's 400 page: fine, as long as it is not a 5xx.
        check(server.send("GET", "/api/health", headers={"Host": host}), f"Host {host!r}",
              api=False)


@pytest.fixture(scope="module")
def production(worker_env: dict[str, str]) -> Iterator[Server]:
    """The API under gunicorn, as deployed. URLs are fuzzed here rather than
    on Django's live server, whose test harness looks every path up as a
    media file first (and answers 500 to a NUL or a 300-character name)."""
    web = WebServer({**worker_env, "RATE_LIMIT": "off", "JOBS_API_TOKEN": ""}, workers=1)
    web.start()
    yield Server("127.0.0.1", web.port)
    web.stop()


def junk_segment(rng: random.Random) -> str:
    """A path segment: percent-encoded bytes, raw Latin-1, Unicode, dots."""
    kind = rng.randrange(5)
    if kind == 0:
        return "".join(f"%{rng.randrange(256):02X}" for _ in range(rng.randrange(1, 20)))
    if kind == 1:  # raw bytes outside ASCII: see test_long_and_raw_urls
        return bytes(rng.randrange(0x21, 0x7F) for _ in range(rng.randrange(1, 30))).decode(
            "ascii").replace("?", "").replace("#", "")
    if kind == 2:
        return "".join(f"%{b:02X}" for b in random_text(rng, 8).encode("utf-8", "surrogatepass"))
    if kind == 3:
        return rng.choice(["..", ".", "%2e%2e", "%2F", "%00", "%ED%A0%80", "%C0%AF", "~", ";x=1"])
    return rng.choice("abcxyz0123456789-_") * rng.randrange(1, 2000)


def job_ids(rng: random.Random, known: list[Job]) -> list[str]:
    real = str(known[0].id)
    shapes = [real, real.upper(), real.replace("-", ""), "{" + real + "}", "urn:uuid:" + real,
              real + "0", real[:-1], "%20" + real, "0", "-1", "1" * 40, "00000000-0000-0000-0000-"
              "000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff", "%00", "%ff", "%ED%A0%80",
              "x" * 3000, str(uuid.uuid4()), "null", "undefined", "NaN", "%20", "%0A", "%0D%0A"]
    return shapes + [junk_segment(rng) for _ in range(40)]


def test_fuzzed_urls_never_get_a_5xx(production: Server, transactional_db: None) -> None:
    server = production
    rng = random.Random(SEED + 2)
    known = [Job.objects.create(kind="text", input_hash=f"{n}" * 64, input_text="t",
                                status=status, error_code="x")
             for n, status in enumerate(["failed", "completed", "pending", "failed"])]
    for job_id in job_ids(rng, known):
        status = check(server.send("GET", f"/api/status/{job_id}"), f"status {job_id!r}").status
        assert status in (200, 404), job_id
        retried = check(server.send("POST", f"/api/jobs/{job_id}/retry"), f"retry {job_id!r}")
        assert retried.status in (202, 404, 409), job_id
    for _ in range(60):
        path = "/api/" + "/".join(junk_segment(rng) for _ in range(rng.randrange(1, 4)))
        query = "&".join(f"{junk_segment(rng)[:50]}={junk_segment(rng)[:50]}"
                         for _ in range(rng.randrange(0, 3)))
        target = (path[:4000] + ("?" + query if query else "")).encode("latin-1")
        method = rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE",
                             "PROPFIND"])
        check(server.send(method, target), f"{method} {target[:300]!r}")
        check(server.send("GET", target.replace(b"/api/", b"/", 1)),
              f"GET {target[:300]!r}", api=False)
    for _ in range(40):
        values = [junk_segment(rng)[:40], str(rng.randint(-(10**20), 10**20))]
        query = "&".join(f"{rng.choice(['page', 'page_size', 'status', 'kind', 'x'])}="
                         f"{rng.choice(values)}" for _ in range(rng.randrange(1, 4)))
        answer = check(server.send("GET", f"/api/jobs?{query}"), f"jobs?{query}")
        assert answer.status in (200, 400, 404), query
    for path in ("/api/статус", "/api/😀", "/api/status/😀", "/api/jobs/😀/retry"):
        check(server.send("GET", quote(path)), path)
        check(server.send("GET", path.encode("utf-8")), path, api=False)  # raw: gunicorn's 400


def test_long_and_raw_urls_never_get_a_5xx(production: Server) -> None:
    """Long ids and paths are 404 JSON; a request line over gunicorn's limit,
    or with raw bytes it refuses, is gunicorn's own 400: never a 5xx."""
    server = production
    for path in ("/api/status/" + "x" * 3000, "/api/jobs/" + "7" * 3000 + "/retry",
                 "/api/" + "a/" * 1500, "/api/" + "%ff" * 1300, "/api/status/" + "%00" * 1000,
                 "/api/" + "b" * 3900):
        method = "POST" if path.endswith("/retry") else "GET"
        answer = check(server.send(method, path), path[:60])
        assert answer.status == 404, path[:60]
    check(server.send("GET", "/api/" + "c" * 10_000), "over the limit", api=False)
    rng = random.Random(SEED + 3)
    for _ in range(30):
        raw = bytes(rng.randrange(0x21, 0x100) for _ in range(rng.randrange(1, 40)))
        raw = raw.replace(b"?", b"").replace(b"#", b"")
        check(server.send("GET", b"/api/status/" + raw), repr(raw), api=False)
        check(server.send("GET", b"/api/" + raw), repr(raw), api=False)
