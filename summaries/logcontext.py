"""Structured logs with the job id on every line of a job's life.

A job's id travels with the code that works on it in a context variable
(``job_context``, set by the task around each attempt); ``JobIdFilter``
copies it onto every log record as ``job_id``, and also recognises Celery's
own lines about a job's task (received, retry, succeeded, failed: the task id
is the job id). A line that names its job itself (``extra={"job_id": ...}``,
as the submit view does) keeps it.

Two formats (settings.LOG_FORMAT): ``keyvalue`` (logfmt, the default, for
people and grep) and ``json`` (one object per line, for log collectors).
Both carry time, level, logger, msg, job_id and any scalar ``extra`` fields.
gunicorn's lines, its access log included, go the same way (GunicornLogger).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from logging.config import dictConfig
from typing import Any

from gunicorn import glogging

_job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)

# Celery's tasks whose id is a job's id (summaries.tasks.process_job).
JOB_TASKS = frozenset({"summaries.process_job"})


def configure(config: dict[str, Any]) -> None:
    """Apply settings.LOGGING (Django's LOGGING_CONFIG, and Celery's and
    gunicorn's logging setup call it too). Python warnings become log lines,
    so that a JSON log holds nothing but JSON."""
    dictConfig(config)
    logging.captureWarnings(True)


@contextlib.contextmanager
def job_context(job_id: str) -> Iterator[None]:
    """Every line logged inside carries ``job_id`` (in this thread or task)."""
    token = _job_id.set(job_id)
    try:
        yield
    finally:
        _job_id.reset(token)


def current_job_id() -> str | None:
    return _job_id.get()


def _celery_job_id(record: logging.LogRecord) -> str | None:
    """The job of one of Celery's own lines about a job task (received,
    retry, succeeded, failed): their arguments name the task. (Lines the
    task itself logs are inside its job_context.)"""
    args = record.args
    if type(args) is dict and args.get("name") in JOB_TASKS and args.get("id"):
        return str(args["id"])
    return None


class JobIdFilter(logging.Filter):
    """Sets ``record.job_id`` (None when the line is about no job)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_id", None) is None:
            record.job_id = _job_id.get() or _celery_job_id(record)
        return True


# The attributes every LogRecord has (and job_id, placed first): anything
# else was passed in ``extra``.
_NOT_EXTRA = (frozenset(vars(logging.makeLogRecord({})))
              | {"message", "asctime", "taskName", "job_id"})
_SCALARS = (str, int, float, bool)
# A logfmt value is written bare unless it is empty or holds a space, a
# quote, "=", a backslash or anything but printable ASCII.
_NEEDS_QUOTES = re.compile(r'[^\x21-\x7e]|[="\\]|^$')


def _timestamp(created: float) -> str:
    """UTC, ISO 8601 with milliseconds (the whole seconds cached: a busy
    process logs many lines per second)."""
    global _last_second
    whole = int(created)
    if _last_second[0] != whole:
        _last_second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_last_second[1]}.{int((created - whole) * 1000):03d}Z"


_last_second: tuple[int, str] = (-1, "")


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """A record as ordered fields: time, level, logger, job_id (when it has
    one), msg, then its scalar extras (Celery's dict-valued ``data`` is left
    out: it repeats the task's arguments)."""
    out: dict[str, Any] = {"time": _timestamp(record.created),
                           "level": record.levelname.lower(), "logger": record.name}
    if (job_id := getattr(record, "job_id", None)) is not None:
        out["job_id"] = job_id
    out["msg"] = record.getMessage()
    for name, value in record.__dict__.items():  # in the order they were given
        if name not in _NOT_EXTRA and isinstance(value, _SCALARS):
            out[name] = value
    return out


def _logfmt_value(value: Any) -> str:
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is not str:
        return str(value)  # a number
    return json.dumps(value, ensure_ascii=False) if _NEEDS_QUOTES.search(value) else value


def _traceback(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    if record.exc_info:
        return formatter.formatException(record.exc_info)
    return record.exc_text or ""


class KeyValueFormatter(logging.Formatter):
    """``time=... level=info logger=... job_id=... msg="..."`` (logfmt); a
    traceback follows on its own lines, as a person reads it."""

    def format(self, record: logging.LogRecord) -> str:
        line = " ".join(f"{key}={_logfmt_value(value)}" for key, value in fields(record).items())
        if traceback := _traceback(self, record):
            line += "\n" + traceback
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line; a traceback is its ``exc`` field."""

    def format(self, record: logging.LogRecord) -> str:
        out = fields(record)
        if traceback := _traceback(self, record):
            out["exc"] = traceback
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


# --- gunicorn ---------------------------------------------------------------

STATIC_PREFIX = "/static/"
_JOB_IN_PATH = re.compile(r"/api/(?:status|jobs)/(?P<id>[0-9a-fA-F-]{36})(?:/|$)")


def _job_of(path: str, location: str) -> str | None:
    """The job an answer is about: in its path (a status poll, a retry) or
    in its Location (a submit that queued one)."""
    for text in (path, location):
        if match := _JOB_IN_PATH.search(text):
            return match["id"]
    return None


# For a gunicorn serving no SmartCache (bench/bare_app.py): the same lines.
PLAIN_LOGGING: dict[str, Any] = {
    "version": 1, "disable_existing_loggers": False,
    "formatters": {"keyvalue": {"()": "summaries.logcontext.KeyValueFormatter"}},
    "filters": {"job_id": {"()": "summaries.logcontext.JobIdFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "keyvalue",
                             "filters": ["job_id"]}},
    "root": {"handlers": ["console"], "level": "INFO"},
}


def _settings_logging() -> dict[str, Any]:
    """settings.LOGGING, read in gunicorn's master process (which loads no
    Django app: a HUP reload re-reads the application's code, not its
    settings; restart to change those, as compose and `make run` do)."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        return dict(settings.LOGGING)
    except ImproperlyConfigured:  # no DJANGO_SETTINGS_MODULE: not SmartCache's app
        return PLAIN_LOGGING


class GunicornLogger(glogging.Logger):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn's own lines and its access log through settings.LOGGING: the
    same format as every other line, and an access line names the job its
    request is about (``job_id``) and how a submit was answered (``cache``).
    Static files served without error are not logged."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        configure(_settings_logging())
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                if getattr(handler, "_gunicorn", False):
                    log.removeHandler(handler)
            log.propagate = True

    def access(self, resp: Any, req: Any, environ: dict[str, Any],
               request_time: timedelta) -> None:
        if not self.access_log_enabled:
            return
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        if path.startswith(STATIC_PREFIX) and resp.status_code < 400:
            return  # a page's scripts and styles: a dozen lines per page view, no news
        headers = {name.lower(): value for name, value in resp.headers}
        extra: dict[str, Any] = {
            "job_id": _job_of(path, headers.get("location", "")),
            "status": resp.status_code, "ms": round(request_time.total_seconds() * 1000, 1),
            "remote": environ.get("REMOTE_ADDR", "")}
        if query := environ.get("QUERY_STRING"):
            extra["query"] = query
        if cache_status := headers.get("x-cache"):
            extra["cache"] = cache_status
        self.access_log.info("%s %s", method, path, extra=extra)
