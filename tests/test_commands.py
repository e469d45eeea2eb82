"""Process command lines come from one place (smartcache/commands.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from smartcache import commands
from tests.helpers.processes import ROOT


def test_commands_from_the_environment() -> None:
    env = {"HOST": "::1", "PORT": "8123", "WEB_CONCURRENCY": "5", "SMARTCACHE_VAR_DIR": "/v",
           "FLOWER_PORT": "5601", "FLOWER_BASIC_AUTH": "ops:secret", "WEB_THREADS": "64"}
    web = commands.from_environment("web", env)
    assert web[1:] == ["smartcache.wsgi:application", "--bind", "[::1]:8123", "--workers", "5",
                       "--worker-class", "gthread", "--threads", "64", "--timeout", "30",
                       "--graceful-timeout", "5", "--preload", "--access-logfile", "-",
                       "--logger-class", "summaries.logcontext.GunicornLogger",
                       "--control-socket", "/v/gunicorn.ctl"]
    assert Path(web[0]).name == "gunicorn"
    assert commands.from_environment("beat", env)[-2:] == ["--schedule", "/v/celerybeat-schedule"]
    flower = commands.from_environment("flower", env)
    assert "--port=5601" in flower and "--basic-auth=ops:secret" in flower
    # The worker's pool and concurrency are the settings', not the command line's.
    worker = commands.from_environment("worker", env)
    assert not any(arg.startswith(("--pool", "--concurrency", "-P", "-c")) for arg in worker)


def test_an_unknown_command_is_a_clear_error() -> None:
    result = subprocess.run([sys.executable, "-m", "smartcache.commands", "webb"], cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "unknown command 'webb'" in result.stderr and "Traceback" not in result.stderr
