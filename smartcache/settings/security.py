"""Security: the secret key, the hosts served, HTTPS and its headers, CORS,
and who may use what (the per-client rate limit, the operators' token)."""

from __future__ import annotations

from smartcache.settings.env import env_bool, env_int, env_list, env_rate, env_secret, env_str

# A per-checkout key in var/secret-key (written by `python -m
# smartcache.secret_files`), so a fresh clone runs without setup. Production
# sets DJANGO_SECRET_KEY, or DJANGO_SECRET_KEY_FILE: a file every process
# shares (compose mounts one volume for it).
SECRET_KEY = env_secret("DJANGO_SECRET_KEY", file_variable="DJANGO_SECRET_KEY_FILE",
                        default_file="secret-key")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

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

# CORS: https://github.com/adamchainz/django-cors-headers#configuration
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_ALLOW_ALL_ORIGINS = env_bool("CORS_ALLOW_ALL_ORIGINS", False)

# Submissions per client (IP; see NUM_PROXIES) — "240/minute", or "off".
RATE_LIMIT = env_rate("RATE_LIMIT", "240/minute")
# Operators only: when set, /api/jobs needs "Authorization: Bearer <token>"
# (or a staff session); unset, the dead-letter endpoints are open.
JOBS_API_TOKEN = env_str("JOBS_API_TOKEN")
