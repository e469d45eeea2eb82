"""The settings package: importing it writes nothing, a missing local secret
is a clear start-up error, and `python -m smartcache.secret_files` (run by
`make run` and the containers' commands) makes the secrets once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.processes import ROOT

PROBE = ("import django; django.setup(); from django.conf import settings; "
         "print(settings.SECRET_KEY == open(settings.VAR_DIR / 'secret-key').read().strip(), "
         "len(settings.WEBHOOK_SECRET) > 20)")


def run(args: list[str], var: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in {"DJANGO_SECRET_KEY", "WEBHOOK_SECRET"}}
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          env={**clean, "DJANGO_SETTINGS_MODULE": "smartcache.settings",
                               "SMARTCACHE_VAR_DIR": str(var), **env}, timeout=60)


def test_importing_the_settings_writes_no_file(tmp_path: Path) -> None:
    var = tmp_path / "var"
    given = run(["-c", "import django; django.setup(); print('ok')"], var,
                DJANGO_SECRET_KEY="k" * 50, WEBHOOK_SECRET="w" * 32)
    assert given.stdout.strip() == "ok", given.stderr
    missing = run(["-c", "import django; django.setup()"], var)
    assert missing.returncode != 0
    assert "python -m smartcache.secret_files" in missing.stderr
    assert not var.exists()  # neither run made var/ nor a secret in it


def test_the_secrets_command_makes_each_secret_once(tmp_path: Path) -> None:
    var = tmp_path / "var"
    first = run(["-m", "smartcache.secret_files"], var)
    assert first.returncode == 0, first.stderr
    key, hook = (var / "secret-key").read_text(), (var / "webhook-secret").read_text()
    assert (var / "secret-key").stat().st_mode & 0o077 == 0
    assert run(["-m", "smartcache.secret_files"], var).returncode == 0
    assert (var / "secret-key").read_text() == key  # kept, not rotated
    assert (var / "webhook-secret").read_text() == hook
    probe = run(["-c", PROBE], var)
    assert probe.stdout.split() == ["True", "True"], probe.stderr
    # A secret given in the environment is never written to a file.
    other = tmp_path / "other"
    assert run(["-m", "smartcache.secret_files"], other, WEBHOOK_SECRET="given").returncode == 0
    assert sorted(p.name for p in other.iterdir()) == ["secret-key"]
