"""`manage.py ensure_admin` (run by `make run`): creates the admin once, with a
password kept in var/, and never resets a password afterwards."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def ensure_admin(password_file: Path) -> str:
    out = io.StringIO()
    call_command("ensure_admin", "--username", "admin", "--password-file", str(password_file),
                 stdout=out)
    return out.getvalue()


def test_the_admin_is_created_once_with_a_stored_password(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    password_file = tmp_path / "var" / "admin-password"
    first = ensure_admin(password_file)
    admin = User.objects.get(username="admin")
    password = password_file.read_text().strip()
    assert len(password) >= 12
    assert password_file.stat().st_mode & 0o777 == 0o600
    assert admin.is_staff and admin.is_superuser and admin.check_password(password)
    assert str(password_file) in first and "changepassword" in first
    assert password not in first

    second = ensure_admin(password_file)
    admin.refresh_from_db()
    assert password_file.read_text().strip() == password
    assert admin.check_password(password)
    assert "exists" in second


def test_a_password_the_operator_changed_is_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `make run` used to pass the stored password in ADMIN_PASSWORD every time.
    monkeypatch.setenv("ADMIN_PASSWORD", "first-run-password")
    password_file = tmp_path / "admin-password"
    ensure_admin(password_file)
    admin = User.objects.get(username="admin")
    assert admin.check_password("first-run-password")
    assert not password_file.exists()  # the operator chose it; nothing to store

    admin.set_password("the-operator-chose-this")
    admin.save()
    ensure_admin(password_file)
    admin.refresh_from_db()
    assert admin.check_password("the-operator-chose-this")


def test_a_recreated_database_gets_the_same_stored_password(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    password_file = tmp_path / "admin-password"
    ensure_admin(password_file)
    password = password_file.read_text().strip()
    User.objects.all().delete()
    ensure_admin(password_file)
    assert User.objects.get(username="admin").check_password(password)
