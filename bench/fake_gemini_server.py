"""The loopback fake Gemini in a process of its own, for bench/throughput.py.

Usage: .venv/bin/python bench/fake_gemini_server.py [--delay SECONDS]

Runs ``tests.helpers.fakes.gemini.FakeGemini`` (the one the tests use, so the bench
speaks whatever request/answer shapes the tests do, batching included once the
fake learns it) plus a small control server, and prints one JSON line
``{"base_url": ..., "control_url": ...}`` once both listen. It runs until
stdin closes or it gets SIGINT/SIGTERM.

Why a separate process: its CPU cost (one thread per request, JSON, the
sentence splitter) shows up as its own process rather than inside the bench's
GIL, and it can never slow the bench's clients down.

Control endpoints (JSON):
  GET  /calls[?contains=S]  {"calls": all generateContent requests,
                             "matching": those whose user text contains S}
  POST /delay?s=SECONDS     set the answer delay (every mode)
  GET  /cpu                 {"cpu_s": this process's user+system CPU seconds}
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.fakes.gemini import FakeGemini  # noqa: E402  (needs ROOT on sys.path)

# Hundreds of worker threads may connect at once: the listen backlog must not
# reset connections before the accept loop reaches them (the committed fake
# used socketserver's default of 5; the kernel caps this at somaxconn).
LISTEN_BACKLOG = 2048


def control_server(fake: FakeGemini) -> ThreadingHTTPServer:
    """A loopback HTTP server that inspects and steers `fake` (see module doc)."""

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, payload: dict[str, object], status: int = 200) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if url.path == "/calls":
                needle = query.get("contains", [""])[0]
                received = fake.received
                matching = sum(1 for call in received if needle and needle in call.user_text)
                self._reply({"calls": len(received), "matching": matching})
            elif url.path == "/cpu":
                times = os.times()
                self._reply({"cpu_s": times.user + times.system})
            else:
                self._reply({"error": "no such endpoint"}, 404)

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/delay":
                fake.delay_s = float(parse_qs(url.query)["s"][0])
                self._reply({"delay_s": fake.delay_s})
            else:
                self._reply({"error": "no such endpoint"}, 404)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    return server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=1.0, help="answer delay, seconds")
    args = parser.parse_args()

    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())

    fake = FakeGemini().start()
    fake.delay_s = args.delay
    server = fake._server
    assert server is not None
    server.socket.listen(LISTEN_BACKLOG)  # listen() again only raises the backlog
    control = control_server(fake)
    threading.Thread(target=control.serve_forever, args=(0.05,), daemon=True).start()

    def watch_stdin() -> None:
        sys.stdin.read()  # returns at EOF: the bench went away
        done.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    print(json.dumps({"base_url": fake.base_url,
                      "control_url": f"http://127.0.0.1:{control.server_address[1]}"}),
          flush=True)
    while not done.wait(0.5):
        pass
    control.shutdown()
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
