"""Secrets kept in files of this checkout (var/): the local Django secret key,
the webhook signing secret and the first admin password.

The settings only read the first two (importing them writes nothing);
``python -m smartcache.secret_files`` makes whichever is missing, and `make
run` (scripts/run_stack.py), the containers' commands
(smartcache/commands.py) and the benchmarks run it before anything imports
the settings. A secret given in the environment (DJANGO_SECRET_KEY,
WEBHOOK_SECRET) is never written to a file.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (the secret's variable, the variable naming its file, the file's default
# name under SMARTCACHE_VAR_DIR, its random bytes)
LOCAL_SECRETS = (
    ("DJANGO_SECRET_KEY", "DJANGO_SECRET_KEY_FILE", "secret-key", 50),
    ("WEBHOOK_SECRET", "WEBHOOK_SECRET_FILE", "webhook-secret", 32),
)


def read_or_create(path: Path, *, nbytes: int) -> str:
    """The secret in ``path``, generated there on first use.

    Created with O_EXCL and mode 0600, so it is never readable by others (not
    even between creation and a chmod) and two processes starting at once
    cannot both write one; a reader that finds it still empty waits for the
    writer. Raises ValueError if it stays empty.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(nbytes) + "\n")
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    for _ in range(50):  # another process may be writing it this instant
        if value := path.read_text().strip():
            return value
        time.sleep(0.02)
    raise ValueError(f"{path} is empty: delete it to have a new one generated")


def var_dir(env: Mapping[str, str]) -> Path:
    """SMARTCACHE_VAR_DIR, as the settings read it (var/ beside the code)."""
    return Path(env.get("SMARTCACHE_VAR_DIR") or ROOT / "var")


def ensure_local(env: Mapping[str, str]) -> list[Path]:
    """Make the var/ directory and every local secret ``env`` does not give
    (LOCAL_SECRETS); return the files it read or made."""
    var = var_dir(env)
    var.mkdir(parents=True, exist_ok=True)
    made = []
    for name, file_variable, default_file, nbytes in LOCAL_SECRETS:
        if (env.get(name) or "").strip():
            continue
        path = Path(env.get(file_variable) or var / default_file)
        read_or_create(path, nbytes=nbytes)
        made.append(path)
    return made


if __name__ == "__main__":
    for secret in ensure_local(os.environ):
        print(f"secret: {secret}")
