"""The job row's hot paths in plain SQL: read a row, change it conditionally.

Every submit that misses the cache and every job attempt goes through these
statements. Built by the ORM, each cost about 1 ms of CPU to compile (a
``filter().update()`` with a few conditions, a ``.get()``), more than the
database took to run it: the pipeline-overhead benchmark (bench/throughput.py,
figure 3) measured it. Here each statement is a fixed string, built once per
shape, and values are adapted by the model's own fields
(``get_db_prep_save``), so SQLite and PostgreSQL store exactly what the ORM
would. Rows come back as ordinary ``Job`` instances (through
``Job.objects.raw``, with the ORM's converters).

Only equality conditions and the few shapes below; anything rarer uses the
ORM (services/jobs.py, services/submit.py). SQL strings are built from the
model's own table and column names only; every value is a parameter.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import connection

from summaries.models import Job

_FIELDS = {field.name: field for field in Job._meta.concrete_fields}
_TABLE = Job._meta.db_table


def _quote(name: str) -> str:
    return str(connection.ops.quote_name(name))


def _column(name: str) -> str:
    return _quote(str(_FIELDS[name].column))


def _prep(name: str, value: Any) -> Any:
    """``value`` as the database stores it in field ``name`` (a UUID as hex
    on SQLite, JSON as text, a datetime in the backend's format ...)."""
    return _FIELDS[name].get_db_prep_save(value, connection)


@functools.cache
def _select_sql(vendor: str, where: tuple[str, ...]) -> str:
    conditions = " AND ".join(f"{_column(name)} = %s" for name in where)
    return f"SELECT * FROM {_quote(_TABLE)} WHERE {conditions}"  # noqa: S608 (model names)


def load(job_id: str) -> Job | None:
    """The job row ``job_id``, or None if there is none."""
    sql = _select_sql(connection.vendor, ("id",))
    return next(iter(Job.objects.raw(sql, [_prep("id", job_id)])), None)


@functools.cache
def _update_sql(vendor: str, names: tuple[str, ...], where: tuple[str, ...],
                lease_lapsed: bool) -> str:
    assignments = ", ".join(f"{_column(name)} = %s" for name in names)
    conditions = " AND ".join(f"{_column(name)} = %s" for name in where)
    if lease_lapsed:
        conditions += f" AND {_column('lease_expires_at')} < %s"
    return f"UPDATE {_quote(_TABLE)} SET {assignments} WHERE {conditions}"  # noqa: S608 (same)


def update(job_id: str, *, where: Mapping[str, Any], values: Mapping[str, Any],
           lease_lapsed_before: datetime | None = None) -> int:
    """Set ``values`` on row ``job_id`` if its fields still equal ``where``
    (and, with ``lease_lapsed_before``, its lease ended before that time);
    the number of rows changed, 0 or 1. Raises the ORM's DataError when the
    database refuses a value."""
    names, conditions = tuple(values), tuple(where)
    sql = _update_sql(connection.vendor, names, ("id", *conditions),
                      lease_lapsed_before is not None)
    params = [_prep(name, values[name]) for name in names]
    params += [_prep("id", job_id), *(_prep(name, where[name]) for name in conditions)]
    if lease_lapsed_before is not None:
        params.append(_prep("lease_expires_at", lease_lapsed_before))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


@functools.cache
def _current_sql(vendor: str) -> str:
    status, completed_at = _column("status"), _column("completed_at")
    active = ", ".join(["%s"] * len(Job.ACTIVE))
    # Active first (at most one: the one-active-job constraint), then the
    # newest reusable completion within the window.
    return (
        f"SELECT * FROM {_quote(_TABLE)} WHERE {_column('input_hash')} = %s AND "  # noqa: S608
        f"({status} IN ({active}) OR (%s AND {status} = %s AND {completed_at} > %s "
        f"AND {_column('store')} = %s AND {_column('purged_at')} IS NULL)) "
        f"ORDER BY CASE WHEN {status} IN ({active}) THEN 0 ELSE 1 END, {completed_at} DESC "
        f"LIMIT 1"
    )


def active_or_completed(key: str, *, completed_since: datetime | None) -> Job | None:
    """The active job for input ``key``, else (when ``completed_since`` is
    given) its newest completed job that may answer for it: completed after
    that time, not store:false, not purged. One statement."""
    active: Sequence[str] = [str(status) for status in Job.ACTIVE]
    params = [key, *active, completed_since is not None, str(Job.Status.COMPLETED),
              _prep("completed_at", completed_since), _prep("store", True), *active]
    return next(iter(Job.objects.raw(_current_sql(connection.vendor), params)), None)
