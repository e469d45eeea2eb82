"""Django settings for SmartCache, read from the environment.

Every setting has a default that runs on a laptop with nothing installed
(SQLite under var/, the offline summariser); production sets DATABASE_URL,
VALKEY_URL, DJANGO_SECRET_KEY and friends. The README lists them all.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from smartcache import commands as _commands
from smartcache import valkey_urls
from smartcache.secret_files import read_or_create

# Lets admin.ModelAdmin[Job] and friends be subscripted at run time (typing).
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SMARTCACHE_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    value = env_str(name).lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    value = env_str(name)
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}")
    return number


def env_float(name: str, default: float) -> float:
    value = env_str(name)
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_rate(name: str, default: str) -> tuple[int, int] | None:
    """"40/minute" → (40, 60); "off" → None."""
    value = env_str(name, default).lower()
    if value in {"off", "none", "0", ""}:
        return None
    periods = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
    count, _, unit = value.partition("/")
    unit = unit.rstrip("s") if unit.endswith("s") and unit[:-1] in periods else unit
    if not count.isdigit() or unit not in periods:
        raise ImproperlyConfigured(f"{name} must look like 40/minute or off, not {value!r}")
    return int(count), periods[unit]


def _local_secret_key() -> str:
    """A per-checkout key kept in var/, so a fresh clone runs without setup.

    Production sets DJANGO_SECRET_KEY, or DJANGO_SECRET_KEY_FILE: a file every
    process shares (compose mounts one volume for it), generated on first use.
    """
    path = Path(env_str("DJANGO_SECRET_KEY_FILE") or VAR_DIR / "secret-key")
    try:
        return read_or_create(path, nbytes=50)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{exc}, or set DJANGO_SECRET_KEY") from None


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or _local_secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

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
    # work than a hit needs (summaries/api/fastpath.py).
    "summaries.api.fastpath.CachedSubmitMiddleware",
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

# --- Database -------------------------------------------------------------
# SQLite under var/ by default; DATABASE_URL (postgres://...) in production.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'smartcache.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The API, workers and beat write at once: WAL lets readers run beside the
    # writer, IMMEDIATE takes the write lock up front instead of failing with
    # "database is locked" halfway through a transaction.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Connections are kept (DATABASE_CONN_MAX_AGE, per thread): opening one
    # per request or job cost more CPU than the job's queries, and closing
    # the last one checkpoints the WAL (bench/throughput.py, figure 3).
    # Tests run real worker processes, which need a file they can open too
    # (one per test session: tests/valkey_plugin.py sets SMARTCACHE_TEST_DB).
    DATABASES["default"]["TEST"] = {
        "NAME": env_str("SMARTCACHE_TEST_DB") or str(VAR_DIR / "test.sqlite3")
    }
    VAR_DIR.mkdir(parents=True, exist_ok=True)
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A worker runs WORKER_CONCURRENCY threads: one connection each would
    # exhaust PostgreSQL's max_connections. A pool per process bounds them
    # (https://docs.djangoproject.com/en/5.2/ref/databases/#connection-pool).
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env_int("DATABASE_POOL_SIZE", 16, minimum=1),
        "timeout": env_float("DATABASE_POOL_TIMEOUT", 10.0),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips a
# client's own), let Django see https so absolute URLs (Location) say https.
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# DJANGO_HTTPS=1: the site is served over HTTPS by a TLS-terminating proxy that
# sets X-Forwarded-Proto (overwriting a client's own). Then Django trusts that
# header, redirects plain http to https, marks its cookies Secure and sends
# HSTS. Off (the default: `make run`, compose on 127.0.0.1), the site is
# declared plain HTTP: Secure cookies would break the admin's login there, so
# the deploy checks that ask for TLS are silenced, not left to nag.
HTTPS = env_bool("DJANGO_HTTPS", False)
SILENCED_SYSTEM_CHECKS: list[str] = []
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    # Container healthchecks ask over plain http from inside the host.
    SECURE_REDIRECT_EXEMPT = [r"^api/health/?$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 365 * 24 * 3600, minimum=1)
    # Whether every subdomain is HTTPS too, and whether to ask browsers to
    # preload the rule, only the domain's owner can say: off unless set.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
    if not SECURE_HSTS_INCLUDE_SUBDOMAINS:
        SILENCED_SYSTEM_CHECKS.append("security.W005")
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS.append("security.W021")
else:
    # HSTS, https redirect, Secure session and CSRF cookies: all need TLS.
    SILENCED_SYSTEM_CHECKS += ["security.W004", "security.W008", "security.W012",
                               "security.W016"]
SPECTACULAR_SETTINGS = {
    "TITLE": "SmartCache API",
    "DESCRIPTION": "Submit text or a URL; get a cached 2-3 sentence summary and tags.\n\n"
                   "Start here: open **POST /api/submit**, press *Try it out*, then *Execute* "
                   "(the body is an example that works). A 202 gives a `job_id`: paste it "
                   "into **GET /api/status/{job_id}** until `status` is `completed`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "PREPROCESSING_HOOKS": ["summaries.api.schema.public_endpoints"],
    "ENUM_NAME_OVERRIDES": {"JobStatusEnum": "summaries.models.Job.Status"},
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

# CORS: https://github.com/adamchainz/django-cors-headers#configuration
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_ALLOW_ALL_ORIGINS = env_bool("CORS_ALLOW_ALL_ORIGINS", False)

# --- SmartCache -----------------------------------------------------------


def _running_valkey_url() -> str:
    """Where VALKEY_URL is unset: the Valkey of the `make run` using this var/
    directory (scripts/run_stack.py writes its URL to var/valkey-url while it
    runs), so `manage.py summarize` and friends use that instance and not
    whatever answers on 6379; else the usual local server."""
    try:
        url = (VAR_DIR / "valkey-url").read_text().strip()
    except OSError:
        url = ""
    return url or "redis://127.0.0.1:6379/0"


def _valkey_target(name: str, url: str) -> valkey_urls.ValkeyTarget:
    try:
        return valkey_urls.parse(url)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from None


# Two roles (README, "Valkey: broker and cache"): VALKEY_URL holds what must
# never be evicted (the broker's queues, results, in-flight markers, quotas,
# rate limits, counters: run it with noeviction); CACHE_VALKEY_URL holds the
# summaries and their invalidation channel, which an allkeys-lru server may
# evict. Unset, the cache shares VALKEY_URL's server. Either may be a
# sentinel://h1:26379,h2:26379/0?master=NAME group (smartcache/valkey_urls.py).
_VALKEY_URL_GIVEN = env_str("VALKEY_URL") or _running_valkey_url()
VALKEY = _valkey_target("VALKEY_URL", _VALKEY_URL_GIVEN)
# The redis:// form (valkey:// is read as redis://: kombu knows no other), or
# the sentinel:// URL as given.
VALKEY_URL = VALKEY.url or _VALKEY_URL_GIVEN
# Empty: the cache uses VALKEY_URL (summaries/cache.py resolves it at use, so
# an override of VALKEY_URL alone moves both).
CACHE_VALKEY_URL = env_str("CACHE_VALKEY_URL")
if CACHE_VALKEY_URL:
    CACHE_VALKEY_URL = _valkey_target("CACHE_VALKEY_URL", CACHE_VALKEY_URL).url or CACHE_VALKEY_URL
VALKEY_SOCKET_TIMEOUT = env_float("VALKEY_SOCKET_TIMEOUT", 2.0)

# Submissions per client (IP; see NUM_PROXIES) — "240/minute", or "off".
RATE_LIMIT = env_rate("RATE_LIMIT", "240/minute")
# Operators only: when set, /api/jobs needs "Authorization: Bearer <token>"
# (or a staff session); unset, the dead-letter endpoints are open.
JOBS_API_TOKEN = env_str("JOBS_API_TOKEN")
CACHE_TTL = env_int("CACHE_TTL", 7 * 24 * 3600, minimum=1)
# Each API process keeps this many recent hits in memory, each at most this
# many seconds (summaries/local_cache.py); 0 turns it off.
LOCAL_CACHE_SIZE = env_int("LOCAL_CACHE_SIZE", 10_000)
LOCAL_CACHE_SECONDS = env_float("LOCAL_CACHE_SECONDS", 30.0)
# Request counters are added up in each process and written to Valkey this often.
METRICS_FLUSH_SECONDS = env_float("METRICS_FLUSH_SECONDS", 0.5)
# What the AI provider charges per 1000 tokens, for the estimated cost the
# cache saved (/metrics, /api/analytics); 0 = not priced.
AI_PRICE_PER_1K_INPUT = env_float("AI_PRICE_PER_1K_INPUT", 0.0)
AI_PRICE_PER_1K_OUTPUT = env_float("AI_PRICE_PER_1K_OUTPUT", 0.0)
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

SUMMARIZER = env_str("SUMMARIZER", "auto").lower()
if SUMMARIZER not in {"auto", "gemini", "openai", "local"}:
    raise ImproperlyConfigured(
        f"SUMMARIZER must be auto, gemini, openai or local, not {SUMMARIZER!r}")
GEMINI_API_KEY = env_str("GEMINI_API_KEY")
GEMINI_MODEL = env_str("GEMINI_MODEL", "gemini-2.5-flash")
GEMINI_BASE_URL = env_str("GEMINI_BASE_URL")
GEMINI_TIMEOUT = env_float("GEMINI_TIMEOUT", 30.0)
if SUMMARIZER == "auto":
    SUMMARIZER = "gemini" if GEMINI_API_KEY else "local"
if SUMMARIZER == "gemini" and not GEMINI_API_KEY:
    raise ImproperlyConfigured("SUMMARIZER=gemini needs GEMINI_API_KEY")
# SUMMARIZER=openai: any OpenAI-compatible Chat Completions server
# (summaries/providers/openai.py). The base URL ends in /v1 (OpenAI's own when
# empty; Ollama: http://localhost:11434/v1); the key may stay empty for
# servers that need none. Never chosen by "auto": set SUMMARIZER=openai.
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL")
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_MODEL = env_str("OPENAI_MODEL", "gpt-4o-mini")
OPENAI_TIMEOUT = env_float("OPENAI_TIMEOUT", 30.0)
if SUMMARIZER == "openai" and not (OPENAI_API_KEY or OPENAI_BASE_URL):
    raise ImproperlyConfigured("SUMMARIZER=openai needs OPENAI_API_KEY (OpenAI) or "
                               "OPENAI_BASE_URL (a server of your own)")

# The provider's limits, shared by every worker (summaries/services/ai_quota.py):
# requests and estimated tokens per minute; 0 = no limit.
AI_MAX_RPM = env_int("AI_MAX_RPM", 0)
AI_MAX_TPM = env_int("AI_MAX_TPM", 0)
# The most bytes of an AI server's answer a worker reads (a summary, or a
# batch of ten, is a few kB): past it the call fails as ai_unavailable.
AI_MAX_RESPONSE_BYTES = env_int("AI_MAX_RESPONSE_BYTES", 1024 * 1024, minimum=1024)
# Batching (summaries/services/batching.py): short texts (at most
# AI_BATCH_MAX_CHARS) waiting together in one worker process go to the AI in
# one request of up to AI_BATCH_SIZE items (1 = off), after waiting at most
# AI_BATCH_WAIT_MS for company. 10 measured ~9x fewer AI calls for the same
# jobs (bench/throughput.py). The wait is 200 ms, beside a ~1 s AI call: under
# load a worker process's job threads reach the batcher at about 60-70 a
# second (each claims its row first, on a shared CPU), so 100 ms gathered ~6
# texts a call (1,000 texts: 114 calls in bulk, 143 single) and 200 ms ~10
# (104 and 106; bench/throughput.py figure 6, 2026-12-02).
AI_BATCH_SIZE = env_int("AI_BATCH_SIZE", 10, minimum=1)
AI_BATCH_WAIT_MS = env_int("AI_BATCH_WAIT_MS", 200)
AI_BATCH_MAX_CHARS = env_int("AI_BATCH_MAX_CHARS", 4000, minimum=1)
# The most characters of text one AI call carries, all of a batch's items
# together: the model's context (in tokens, about 4 characters each) less
# room for the instructions and the answer. A batch over what the server
# takes is split anyway (HTTP 400), at the cost of a wasted call.
AI_MAX_INPUT_CHARS = env_int("AI_MAX_INPUT_CHARS", 30_000, minimum=100)

FETCH_ALLOWED_NETWORKS = env_str("FETCH_ALLOWED_NETWORKS")
FETCH_TIMEOUT = env_float("FETCH_TIMEOUT", 15.0)
FETCH_MAX_BYTES = env_int("FETCH_MAX_BYTES", 5_000_000, minimum=1024)
FETCH_MAX_REDIRECTS = env_int("FETCH_MAX_REDIRECTS", 5)

# A job is retried this many times in all (crashes and transient errors).
JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 5, minimum=1)
# ... but a page that timed out gets only this many: a dead site should not
# cost its submitter minutes of retries.
FETCH_TIMEOUT_MAX_ATTEMPTS = env_int("FETCH_TIMEOUT_MAX_ATTEMPTS", 2, minimum=1)
# How long a worker owns a job it claimed; a crashed worker's job is
# re-enqueued by the reconciler once its lease is over. Above the task's
# hard time limit, so a live worker never loses its job.
JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", 70, minimum=10)
TASK_TIME_LIMIT = env_int("TASK_TIME_LIMIT", 60, minimum=5)
if JOB_LEASE_SECONDS <= TASK_TIME_LIMIT:
    raise ImproperlyConfigured("JOB_LEASE_SECONDS must be above TASK_TIME_LIMIT, or a live "
                               "worker's job would be handed to another")
# Transient failures are retried after base * 2^(attempt-1) seconds (jittered,
# capped): always far below the broker's visibility timeout.
RETRY_BACKOFF_BASE = env_float("RETRY_BACKOFF_BASE", 2.0)
RETRY_BACKOFF_MAX = env_float("RETRY_BACKOFF_MAX", 30.0)
# A pending job untouched this long lost its message (broker restart): requeue.
RECONCILE_PENDING_AFTER = env_int("RECONCILE_PENDING_AFTER", 300, minimum=1)
# A URL that failed to fetch is answered from memory this long (refresh skips it).
FETCH_FAILURE_TTL = env_int("FETCH_FAILURE_TTL", 300, minimum=0)
# The in-flight marker outlives the job's retries; renewed at every claim.
INFLIGHT_TTL = env_int("INFLIGHT_TTL", 1800, minimum=60)
# Retention (summaries/services/retention.py, hourly from beat): finished
# jobs are deleted this many days after their last change, and a completed
# job's extracted page text is cleared after EXTRACTED_TEXT_DAYS; 0 keeps them.
JOB_RETENTION_DAYS = env_int("JOB_RETENTION_DAYS", 30)
EXTRACTED_TEXT_DAYS = env_int("EXTRACTED_TEXT_DAYS", 7)

# --- Celery ---------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
# Valkey is broker and result backend. Settings follow the project's notes in
# ../shared/notes/reliability.md (at-least-once delivery on the Redis transport).
VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 900, minimum=60)
# A sentinel:// VALKEY_URL becomes kombu's own form (one sentinel://host:port/db
# per sentinel, ";"-separated) with the master's name in the transport options
# of both: https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html
CELERY_BROKER_URL = VALKEY.celery_url()
CELERY_RESULT_BACKEND = VALKEY.celery_url()
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Unacked messages come back after this; longer than any task + retry delay.
    "visibility_timeout": VISIBILITY_TIMEOUT,
    "socket_timeout": 5,
    "socket_connect_timeout": 2,
    **VALKEY.transport_options(timeout=2),
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": VISIBILITY_TIMEOUT,
                                           **VALKEY.transport_options(timeout=2)}
CELERY_VISIBILITY_TIMEOUT = VISIBILITY_TIMEOUT
CELERY_REDIS_SOCKET_TIMEOUT = 5
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# Publishing gives up quickly so a request never hangs on a dead broker; the
# job row stays pending and the reconciler enqueues it later.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
# The worker overlaps I/O-bound work (AI calls, page fetches) in threads: one
# process, WORKER_CONCURRENCY threads (bench/throughput.py measured this
# against prefork). Celery enforces no time limit under the threads pool
# (celery#9203), so every attempt is bounded by its own deadlines instead: the
# fetch deadline, the AI call's whole-call timeout, and an attempt budget
# (TASK_TIME_LIMIT) checked at every stage, where the lease is renewed too.
CELERY_WORKER_POOL = env_str("WORKER_POOL", "threads")
CELERY_WORKER_CONCURRENCY = env_int("WORKER_CONCURRENCY", 100, minimum=1)
# Two lanes (summaries/queues.py): interactive submits ("celery") and bulk
# submits ("bulk"). Every worker consumes both, taking from each in turn, so
# a single submit never waits behind a bulk backlog.
CELERY_TASK_QUEUES = [Queue("celery"), Queue("bulk")]
CELERY_TASK_DEFAULT_QUEUE = "celery"
# Redeliver a task whose worker died mid-way (at-least-once), one at a time.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# Time limits travel in the task message from whoever sends it: give the API
# and the workers the same settings (make run and compose do).
CELERY_TASK_TIME_LIMIT = TASK_TIME_LIMIT
CELERY_TASK_SOFT_TIME_LIMIT = max(TASK_TIME_LIMIT - 10, int(TASK_TIME_LIMIT * 0.8))
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_RESULT_BACKEND_THREAD_SAFE = True
# Events for Flower.
CELERY_WORKER_SEND_TASK_EVENTS = True
# No "task-sent" event: it is a second publish on every submit; Flower still
# sees each task from the worker's events (received, started, succeeded).
CELERY_TASK_SEND_SENT_EVENT = False
CELERY_TASK_TRACK_STARTED = True
# Celery's Django fixup closes every database connection before and after
# each task unless this is set; then only once per this many tasks. Django's
# own rule (CONN_MAX_AGE, broken connections) applies after every task
# instead (summaries/tasks.py): with SQLite, reopening the database twice per
# job cost more CPU than the job's queries (bench/throughput.py, figure 3).
CELERY_DB_REUSE_MAX = 10_000
RECONCILE_INTERVAL = env_int("RECONCILE_INTERVAL", 15, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "reconcile-stale-jobs": {
        "task": "summaries.reconcile_jobs",
        "schedule": float(RECONCILE_INTERVAL),
    },
    "purge-old-jobs": {"task": "summaries.purge_old_jobs", "schedule": 3600.0},
}

# Housekeeping runs every few seconds: each run would log three lines (beat's
# "Sending due task", the worker's "received" and "succeeded") and bury
# everything else. Their routine lines are dropped; what they change is logged
# by the tasks themselves, and their failures (ERROR) still show.
QUIET_TASKS: tuple[str, ...] = ("summaries.reconcile_jobs", "summaries.purge_old_jobs")

# --- Webhooks, watched URLs, scheduled jobs (issue 12) -----------------------
# summaries/services/webhooks.py, watches.py, scheduling.py. Deliveries run on
# a lane of their own, which every worker consumes (CELERY_TASK_QUEUES), and
# at most WEBHOOK_CONCURRENCY of a worker's threads deliver at once, so slow
# receivers never take the threads that summarise.


def _webhook_secret() -> str:
    """Like the Django key: WEBHOOK_SECRET, else a file generated on first use
    (var/webhook-secret; compose: the shared secrets volume). Receivers need
    it to verify signatures: on several machines, set WEBHOOK_SECRET."""
    path = Path(env_str("WEBHOOK_SECRET_FILE") or VAR_DIR / "webhook-secret")
    try:
        return read_or_create(path, nbytes=32)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{exc}, or set WEBHOOK_SECRET") from None


WEBHOOK_SECRET = env_str("WEBHOOK_SECRET") or _webhook_secret()
WEBHOOK_QUEUE = "webhooks"
WEBHOOK_TIMEOUT = env_float("WEBHOOK_TIMEOUT", 10.0)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
WEBHOOK_BACKOFF_BASE = env_float("WEBHOOK_BACKOFF_BASE", 5.0)
WEBHOOK_BACKOFF_MAX = env_float("WEBHOOK_BACKOFF_MAX", 300.0)
WEBHOOK_CONCURRENCY = env_int("WEBHOOK_CONCURRENCY", 10, minimum=1)
# A retry's countdown waits unacknowledged in the worker: past the visibility
# timeout the broker would hand it out again meanwhile.
if WEBHOOK_BACKOFF_MAX + WEBHOOK_TIMEOUT >= VISIBILITY_TIMEOUT:
    raise ImproperlyConfigured("WEBHOOK_BACKOFF_MAX + WEBHOOK_TIMEOUT must stay below "
                               "CELERY_VISIBILITY_TIMEOUT")
# The tick (beat): claims due watches, starts due scheduled jobs, sends
# deliveries whose job finished or whose message was lost.
SCHEDULE_TICK_SECONDS = env_float("SCHEDULE_TICK_SECONDS", 5.0)
# run_at: at most this far ahead; within RUN_AT_COUNTDOWN_MAX seconds a job is
# sent with a countdown (kept below the visibility timeout), later ones are
# started by the tick.
RUN_AT_MAX_DAYS = env_int("RUN_AT_MAX_DAYS", 30, minimum=1)
RUN_AT_COUNTDOWN_MAX = VISIBILITY_TIMEOUT // 2
CELERY_TASK_QUEUES.append(Queue(WEBHOOK_QUEUE))
# A tick stuck behind a backlog is dropped when the next one is due.
CELERY_BEAT_SCHEDULE["integrations-tick"] = {"task": "summaries.integrations_tick",
                                              "schedule": SCHEDULE_TICK_SECONDS,
                                              "options": {"expires": SCHEDULE_TICK_SECONDS}}
QUIET_TASKS += ("summaries.integrations_tick",)


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
