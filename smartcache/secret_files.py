"""Secrets kept in files of this checkout (var/): the local Django secret key
and the first admin password. Used by settings and ensure_admin."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path


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
