"""The one owner of per-process state (summaries/infra/runtime.py): every
slot is listed where a reader looks for it, and a forked child starts with
none of its parent's state."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil

import summaries
from summaries.infra import local_cache, runtime
from summaries.observability import counters
from summaries.services import config


def test_every_slot_is_listed_in_the_runtime_docstring() -> None:
    for module in pkgutil.walk_packages(summaries.__path__, "summaries."):
        if ".migrations" not in module.name and ".management" not in module.name:
            importlib.import_module(module.name)
    names = runtime.RUNTIME.names()
    assert {"local-cache", "counters", "provider", "batcher", "sse-slots"} <= set(names)
    assert [name for name in names if f"``{name}``" not in (runtime.__doc__ or "")] == []


def test_a_forked_child_starts_with_none_of_its_parents_state() -> None:
    local_cache._ensure_listener()  # its start empties the copies: before ours
    local_cache.keep("runtime-test", {"summary": "x"}, ttl_ms=60_000,
                     read=local_cache.reading())
    config.summarizer()
    counters.record_rejected()
    parent = (local_cache.peek("runtime-test") is not None,
              config._SUMMARIZER._value is not runtime._UNSET)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it holds, and leave at once
        try:
            seen = {"held": local_cache.peek("runtime-test") is not None,
                    "provider": config._SUMMARIZER._value is not runtime._UNSET,
                    "pending": bool(counters._PENDING.get().fields)}
            os.write(write, json.dumps(seen).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = json.loads(pipe.read())
    os.waitpid(pid, 0)
    local_cache.clear()
    counters.discard_local()

    assert parent == (True, True)
    assert child == {"held": False, "provider": False, "pending": False}
