"""A Server-Sent Events client over real HTTP, for /api/jobs/<id>/events."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests


@dataclass
class Event:
    name: str
    data: dict[str, Any]
    id: str = ""


@dataclass
class Stream:
    """What one connection received, until the server ended it or ``until`` held."""

    status: int
    content_type: str
    events: list[Event] = field(default_factory=list)
    comments: int = 0
    retry_ms: int | None = None
    ended_by_server: bool = False

    @property
    def stages(self) -> list[str]:
        return [str(e.data.get("stage")) for e in self.events]


def read_events(url: str, *, timeout: float = 30, headers: dict[str, str] | None = None,
                max_events: int = 100,
                on_event: Callable[[Stream], None] = lambda stream: None) -> Stream:
    """Connect to ``url`` and read events until the server closes the stream,
    ``max_events`` arrived, or ``timeout`` seconds passed (AssertionError).
    ``on_event`` is called after each event (in the reading thread)."""
    response = requests.get(url, stream=True, timeout=timeout,
                            headers={"Accept": "text/event-stream", **(headers or {})})
    stream = Stream(response.status_code, response.headers.get("Content-Type", ""))
    if response.status_code != 200:
        stream.events.append(Event("error", dict(response.json())))
        return stream
    deadline = time.monotonic() + timeout
    name, data, event_id = "message", "", ""
    try:
        for raw in response.iter_lines(decode_unicode=True):
            line = raw.decode() if isinstance(raw, bytes) else (raw or "")
            if time.monotonic() > deadline:
                raise AssertionError(f"stream still open after {timeout}s: {stream}")
            if line.startswith(":"):
                stream.comments += 1
            elif line.startswith("retry:"):
                stream.retry_ms = int(line.split(":", 1)[1])
            elif line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data += line.split(":", 1)[1].strip()
            elif line.startswith("id:"):
                event_id = line.split(":", 1)[1].strip()
            elif line == "" and data:
                stream.events.append(Event(name, json.loads(data), event_id))
                name, data, event_id = "message", "", ""
                on_event(stream)
                if len(stream.events) >= max_events:
                    return stream
        stream.ended_by_server = True
        return stream
    finally:
        response.close()


class Reader:
    """``read_events`` in a thread: the test acts while the stream is open."""

    def __init__(self, url: str, *, timeout: float = 30,
                 headers: dict[str, str] | None = None) -> None:
        self.stream: Stream | None = None
        self.error: BaseException | None = None
        self._seen: list[Event] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, args=(url, timeout, headers),
                                        daemon=True)
        self._thread.start()

    def _run(self, url: str, timeout: float, headers: dict[str, str] | None) -> None:
        try:
            self.stream = read_events(url, timeout=timeout, headers=headers,
                                      on_event=self._note)
        except BaseException as exc:
            self.error = exc
        with self._changed:
            self._changed.notify_all()

    def _note(self, stream: Stream) -> None:
        with self._changed:
            self._seen = list(stream.events)
            self._changed.notify_all()

    def wait_events(self, count: int, timeout: float = 15) -> list[Event]:
        """The first ``count`` events, once they arrived."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._seen) < count and self._thread.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self._seen)} events after {timeout}s: "
                                         f"{self._seen}")
                self._changed.wait(left)
        if len(self._seen) < count:
            raise AssertionError(f"stream ended after {self._seen} ({self.error!r})")
        return self._seen[:count]

    def join(self, timeout: float = 30) -> Stream:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"stream still open after {timeout}s: {self._seen}")
        if self.error is not None:
            raise self.error
        assert self.stream is not None
        return self.stream
