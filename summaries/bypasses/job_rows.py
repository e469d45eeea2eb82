"""The job row's hot paths in plain SQL: read a row, insert one, change one
conditionally.

Every submit that misses the cache and every job attempt goes through these
statements. Built by the ORM, each cost about 1 ms of CPU to compile (a
``filter().update()`` with a few conditions, a ``.get()``, a ``create()``),
more than the database took to run it: the pipeline-overhead benchmark
(bench/throughput.py, figure 3) measured it. Here each statement is a fixed
string, built once per shape; values go to the database through the model's
own fields (``pre_save``, ``get_db_prep_save``) and come back through the
ORM's converters, so SQLite and PostgreSQL store and return exactly what the
ORM would, and rows are ordinary ``Job`` instances.

Only equality conditions and the few shapes below; anything rarer uses the
ORM (services/jobs.py, services/submit.py). SQL strings are built from the
model's own table and column names only; every value is a parameter.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from summaries.models import Job

_CONCRETE = tuple(Job._meta.concrete_fields)
_FIELDS = {field.name: field for field in _CONCRETE}
_ATTNAMES = [field.attname for field in _CONCRETE]
_TABLE = Job._meta.db_table

Converter = Callable[[Any, Any, BaseDatabaseWrapper], Any]
# Per connection (one per thread), the ORM's converters of each column that has any.
_converters: weakref.WeakKeyDictionary[
    BaseDatabaseWrapper, list[tuple[int, Any, list[Converter]]]] = weakref.WeakKeyDictionary()


def _db() -> BaseDatabaseWrapper:
    return connections[DEFAULT_DB_ALIAS]


def _quote(name: str) -> str:
    return str(_db().ops.quote_name(name))


def _column(name: str) -> str:
    return _quote(str(_FIELDS[name].column))


def _prep(name: str, value: Any) -> Any:
    """``value`` as the database stores it in field ``name`` (a UUID as hex
    on SQLite, JSON as text, a datetime in the backend's format ...)."""
    return _FIELDS[name].get_db_prep_save(value, _db())


def _columns() -> str:
    return ", ".join(_quote(str(field.column)) for field in _CONCRETE)


def _job(db: BaseDatabaseWrapper, row: Sequence[Any]) -> Job:
    """A ``Job`` from a row of ``_columns()``, converted as the ORM converts."""
    converters = _converters.get(db)
    if converters is None:
        converters = []
        for index, field in enumerate(_CONCRETE):
            column = field.get_col(_TABLE)
            found = db.ops.get_db_converters(column) + column.get_db_converters(db)
            if found:
                converters.append((index, column, found))
        _converters[db] = converters
    values = list(row)
    for index, column, functions in converters:
        for convert in functions:
            values[index] = convert(values[index], column, db)
    return Job.from_db(db.alias, _ATTNAMES, values)


def _one(sql: str, params: Sequence[Any]) -> Job | None:
    db = _db()
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else _job(db, row)


@functools.cache
def _load_sql(vendor: str) -> str:
    return f"SELECT {_columns()} FROM {_quote(_TABLE)} WHERE {_column('id')} = %s"  # noqa: S608


def load(job_id: str) -> Job | None:
    """The job row ``job_id``, or None if there is none."""
    return _one(_load_sql(_db().vendor), [_prep("id", job_id)])


@functools.cache
def _insert_sql(vendor: str) -> str:
    marks = ", ".join(["%s"] * len(_CONCRETE))
    return f"INSERT INTO {_quote(_TABLE)} ({_columns()}) VALUES ({marks})"  # noqa: S608


def insert(job: Job) -> Job:
    """INSERT ``job`` (built with ``Job(...)``, its id set), as ``save()``
    would: every field's ``pre_save`` (auto_now ...) and its default. Raises
    the ORM's IntegrityError when a constraint refuses it."""
    db = _db()
    values = [field.get_db_prep_save(field.pre_save(job, True), db) for field in _CONCRETE]
    with db.cursor() as cursor:
        cursor.execute(_insert_sql(db.vendor), values)
    job._state.adding, job._state.db = False, db.alias
    return job


@functools.cache
def _update_sql(vendor: str, names: tuple[str, ...], where: tuple[str, ...],
                lease_lapsed: bool) -> str:
    assignments = ", ".join(f"{_column(name)} = %s" for name in names)
    conditions = " AND ".join(f"{_column(name)} = %s" for name in where)
    if lease_lapsed:
        conditions += f" AND {_column('lease_expires_at')} < %s"
    return f"UPDATE {_quote(_TABLE)} SET {assignments} WHERE {conditions}"  # noqa: S608


def update(job_id: str, *, where: Mapping[str, Any], values: Mapping[str, Any],
           lease_lapsed_before: datetime | None = None) -> int:
    """Set ``values`` on row ``job_id`` if its fields still equal ``where``
    (and, with ``lease_lapsed_before``, its lease ended before that time);
    the number of rows changed, 0 or 1. Raises the ORM's DataError when the
    database refuses a value."""
    db = _db()
    names, conditions = tuple(values), tuple(where)
    sql = _update_sql(db.vendor, names, ("id", *conditions), lease_lapsed_before is not None)
    params = [_prep(name, values[name]) for name in names]
    params += [_prep("id", job_id), *(_prep(name, where[name]) for name in conditions)]
    if lease_lapsed_before is not None:
        params.append(_prep("lease_expires_at", lease_lapsed_before))
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


@functools.cache
def _current_sql(vendor: str) -> str:
    status, completed_at = _column("status"), _column("completed_at")
    active = ", ".join(["%s"] * len(Job.ACTIVE))
    # Active first (at most one: the one-active-job constraint), then the
    # newest reusable completion within the window.
    return (
        f"SELECT {_columns()} FROM {_quote(_TABLE)} WHERE {_column('input_hash')} = %s "  # noqa: S608
        f"AND ({status} IN ({active}) OR (%s AND {status} = %s AND {completed_at} > %s "
        f"AND {_column('store')} = %s AND {_column('purged_at')} IS NULL)) "
        f"ORDER BY CASE WHEN {status} IN ({active}) THEN 0 ELSE 1 END, {completed_at} DESC "
        f"LIMIT 1"
    )


def active_or_completed(key: str, *, completed_since: datetime | None) -> Job | None:
    """The active job for input ``key``, else (when ``completed_since`` is
    given) its newest completed job that may answer for it: completed after
    that time, not store:false, not purged. One statement."""
    active = [str(status) for status in Job.ACTIVE]
    params = [key, *active, completed_since is not None, str(Job.Status.COMPLETED),
              _prep("completed_at", completed_since), _prep("store", True), *active]
    return _one(_current_sql(_db().vendor), params)
