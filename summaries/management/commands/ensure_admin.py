"""Create the admin user once; used by `make run` at every start.

The first run creates a superuser whose password is $ADMIN_PASSWORD, or else
one generated into <SMARTCACHE_VAR_DIR>/admin-password (readable by its owner
only, and reused if the database is recreated). Once the user exists it is
left alone: a password the operator changed stays changed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError, transaction

from smartcache.secret_files import read_or_create


def stored_password(path: Path) -> str:
    """The password kept in `path`, generated there on first use."""
    try:
        return read_or_create(path, nbytes=16)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


class Command(BaseCommand):
    help = ("Create the admin user if it does not exist (password from $ADMIN_PASSWORD or "
            "generated into var/admin-password); never change an existing user.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password-file", type=Path, default=None,
                            help="where a generated password is kept "
                                 "(default: <SMARTCACHE_VAR_DIR>/admin-password)")

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"]
        path: Path = options["password_file"] or Path(settings.VAR_DIR) / "admin-password"
        change = f"change it with: python manage.py changepassword {username}"
        users = get_user_model()._default_manager
        if users.filter(username=username).exists():
            self.stdout.write(f"Admin user {username!r} exists; its password is unchanged "
                              f"({change}).")
            return
        supplied = os.environ.get("ADMIN_PASSWORD", "")
        password = supplied or stored_password(path)
        try:
            with transaction.atomic():
                user = users.create(username=username, is_staff=True, is_superuser=True)
                user.set_password(password)
                user.save()
        except IntegrityError:  # another run created it meanwhile: leave it alone
            self.stdout.write(f"Admin user {username!r} exists; its password is unchanged.")
            return
        where = "is $ADMIN_PASSWORD" if supplied else f"is in {path}"
        self.stdout.write(f"Created admin user {username!r}; its password {where} ({change}).")
