"""Django itself: apps, middleware, templates, static files, the API's
framework (DRF, the OpenAPI schema), live updates, and logging."""

from __future__ import annotations

import logging

from django.core.exceptions import ImproperlyConfigured

from smartcache import commands as _commands
from smartcache.settings.env import VAR_DIR, env_bool, env_float, env_int, env_str
from smartcache.settings.valkey_celery import QUIET_TASKS

DEBUG = env_bool("DJANGO_DEBUG", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "summaries",
]

MIDDLEWARE = [
    # Outermost, so every error under /api/ is JSON: a bad Host header too.
    "summaries.api.errors.JsonErrorsMiddleware",
    # Counts every answer by view and status for /metrics, as the client got it.
    "summaries.api.monitoring.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Cache hits answered from memory, with the headers above and no more
    # work than a hit needs (summaries/bypasses/fastpath.py).
    "summaries.bypasses.fastpath.CachedSubmitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "smartcache.urls"
WSGI_APPLICATION = "smartcache.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# Serve the apps' static files (the web page's CSS and JS, the admin's) even
# where collectstatic has not run (tests, a plain checkout); collected files
# in STATIC_ROOT are served first.
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- API ------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["summaries.api.parsers.JSONParser"],
    # The API is public and anonymous (so no CSRF either); only the operator
    # endpoints authenticate, by token or staff session (summaries/api/views.py).
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "summaries.api.errors.exception_handler",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "summaries.api.negotiation.ApiFirstNegotiation",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Proxies in front of the API, for the client address used by the rate
    # limit: 0 → REMOTE_ADDR, X-Forwarded-For ignored; n → the n-th address
    # from the right of X-Forwarded-For. (None would make DRF trust the whole
    # client-supplied header.)
    "NUM_PROXIES": env_int("NUM_PROXIES", 0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SmartCache API",
    "DESCRIPTION": "Submit text or a URL; get a cached 2-3 sentence summary and tags.\n\n"
                   "Start here: open **POST /api/submit**, press *Try it out*, then *Execute* "
                   "(the body is an example that works). A 202 gives a `job_id`: paste it "
                   "into **GET /api/status/{job_id}** until `status` is `completed`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "PREPROCESSING_HOOKS": ["summaries.api.schema.public_endpoints"],
    "ENUM_NAME_OVERRIDES": {"JobStatusEnum": "summaries.models.Job.Status",
                            "ErrorCode": "summaries.representations.bodies.ERROR_CODES"},
    # Swagger UI lists the groups in this order: what a new user does first, first.
    "TAGS": [
        {"name": "submit", "description": "Start here: POST a text or a URL."},
        {"name": "status", "description": "Poll a job until it is completed."},
        {"name": "analytics", "description": "What the cache saved."},
        {"name": "health", "description": "Is the service up?"},
        {"name": "jobs", "description": "Operators: jobs and the dead-letter queue."},
        {"name": "insights", "description": "Operators: why jobs fail."},
        {"name": "cache", "description": "Operators: forget cached summaries."},
    ],
    # Swagger UI's files come from the drf-spectacular-sidecar wheel: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# Each API process keeps this many recent hits in memory, each at most this
# many seconds (summaries/infra/local_cache.py); 0 turns it off.
LOCAL_CACHE_SIZE = env_int("LOCAL_CACHE_SIZE", 10_000)
LOCAL_CACHE_SECONDS = env_float("LOCAL_CACHE_SECONDS", 30.0)
# A text or page nearly the same as one already summarised shares its summary
# (summaries/services/near_duplicates.py); off: only identical inputs do.
NEAR_DUPLICATES = env_bool("NEAR_DUPLICATES", True)
# Request counters are added up in each process and written to Valkey this often.
METRICS_FLUSH_SECONDS = env_float("METRICS_FLUSH_SECONDS", 0.5)
MAX_INPUT_CHARS = env_int("MAX_INPUT_CHARS", 100_000, minimum=100)

# Live job updates (GET /api/jobs/<id>/events, summaries/services/events.py).
# Each web process runs WEB_THREADS threads (smartcache/commands.py); an open
# stream holds one, so at most SSE_MAX_STREAMS streams per process (the rest
# of the threads stay for the API; a stream refused is a 503, the client
# polls). A comment (and a look at the row) every SSE_HEARTBEAT_SECONDS
# keeps proxies from closing idle streams; a stream ends after
# SSE_MAX_SECONDS (the browser reconnects and gets the current state).
WEB_THREADS = env_int("WEB_THREADS", _commands.WEB_THREADS, minimum=1)
SSE_MAX_STREAMS = env_int("SSE_MAX_STREAMS", max(1, WEB_THREADS - 32), minimum=1)
SSE_HEARTBEAT_SECONDS = env_float("SSE_HEARTBEAT_SECONDS", 15.0)
SSE_MAX_SECONDS = env_float("SSE_MAX_SECONDS", 300.0)


def _not_routine_housekeeping(record: logging.LogRecord) -> bool:
    if record.levelno > logging.INFO:
        return True
    message = record.getMessage()
    # A job that failed for good raises JobFailed (so Flower counts a failed
    # task); the job's own "job ... failed" warning already said why.
    if "raised expected: JobFailed(" in message:
        return False
    return not any(name in message for name in QUIET_TASKS)


# Filters on the loggers themselves: Celery replaces the root's handlers.
QUIET_LOGGERS = {name: {"filters": ["quiet_housekeeping"]} for name in (
    "celery.beat", "celery.worker.strategy", "celery.app.trace")}

# Where the admin links each job's Celery task (the task id is the job id);
# by default the Flower of `make run` on this machine.
FLOWER_URL = env_str("FLOWER_URL", f"http://127.0.0.1:{env_int('FLOWER_PORT', 5555)}")

# Structured logs (summaries/logcontext.py): key=value (logfmt) lines, or one
# JSON object per line with LOG_FORMAT=json; every line about a job carries
# its job_id, in the API, the workers and beat alike (smartcache/celery.py
# hands Celery's logging to this dict).
LOG_FORMAT = env_str("LOG_FORMAT", "keyvalue").lower()
if LOG_FORMAT not in ("keyvalue", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be keyvalue or json, not {LOG_FORMAT!r}")

LOGGING_CONFIG = "summaries.logcontext.configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"keyvalue": {"()": "summaries.logcontext.KeyValueFormatter"},
                   "json": {"()": "summaries.logcontext.JsonFormatter"}},
    "filters": {"quiet_housekeeping": {"()": lambda: _not_routine_housekeeping},
                "job_id": {"()": "summaries.logcontext.JobIdFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT,
                             "filters": ["job_id"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    # No per-call chatter from the AI SDK and its HTTP clients (a line per
    # request), and no second line for a client's 4xx (the access log has it;
    # 5xx are still logged, with their traceback).
    "loggers": {name: {"level": "WARNING"} for name in (
        "google_genai", "httpx", "httpx2", "httpcore", "httpcore2")}
    | {"django.request": {"level": "ERROR"}} | QUIET_LOGGERS,
}
