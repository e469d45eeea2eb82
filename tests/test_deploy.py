"""Production settings: `manage.py check --deploy` is clean, and DJANGO_HTTPS
really turns on what it promises (a TLS proxy's https, redirect, Secure
cookies, HSTS), each run in a fresh process with a production-like
environment, as an operator would."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a production process: no debug, its own strong key
    and host names; nothing inherited that could make it pass by accident."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DJANGO_", "SMARTCACHE_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "smartcache.settings",
        "DJANGO_DEBUG": "False",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "api.example.com,testserver",
        "SMARTCACHE_VAR_DIR": str(tmp_path / "var"),
        **extra,
    })
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("https", ["", "0", "1"])
def test_check_deploy_is_clean(tmp_path: Path, https: str) -> None:
    result = manage(production_env(tmp_path, DJANGO_HTTPS=https),
                    "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_still_catches_a_real_problem(tmp_path: Path) -> None:
    """The silenced TLS checks do not silence the rest: DEBUG on is reported."""
    result = manage(production_env(tmp_path, DJANGO_DEBUG="True"),
                    "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "security.W018" in result.stderr + result.stdout


PROBE = """
from django.conf import settings
from django.test import Client
c = Client()
plain = c.get("/api/")
tls = c.get("/api/", headers={"X-Forwarded-Proto": "https"})
health = c.get("/api/health")
print("redirect", plain.status_code, plain.headers.get("Location", ""))
print("hsts", tls.headers.get("Strict-Transport-Security", ""))
print("health", health.status_code)
print("cookies", settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE)
"""


def probe(tmp_path: Path, https: str) -> dict[str, str]:
    env = production_env(tmp_path, DJANGO_HTTPS=https, VALKEY_URL="redis://127.0.0.1:1/0",
                         VALKEY_SOCKET_TIMEOUT="0.2")
    result = manage(env, "shell", "-c", PROBE)
    assert result.returncode == 0, result.stderr
    return dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)


def test_https_redirects_marks_cookies_secure_and_sends_hsts(tmp_path: Path) -> None:
    seen = probe(tmp_path, "1")
    assert seen["redirect"] == "301 https://testserver/api/"
    assert seen["hsts"] == f"max-age={365 * 24 * 3600}"
    assert seen["cookies"] == "True True"
    # The healthcheck asks over plain http from inside the container: answered, not redirected.
    assert seen["health"] in {"200", "503"}


def test_plain_http_by_default_for_make_run(tmp_path: Path) -> None:
    seen = probe(tmp_path, "")
    assert seen["redirect"].split()[0] == "200"
    assert seen["hsts"] == ""
    assert seen["cookies"] == "False False"
