# One image for web, worker, beat and Flower; the process comes from
# `python -m smartcache.commands NAME` (compose's command:).
# BASE: any Debian-like image with Python 3.11 and its venv module. The default
# is the official slim image; CI builds one from Debian's packages
# (scripts/container_check.sh) where no image registry is reachable.
ARG BASE=python:3.11-slim
FROM ${BASE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SMARTCACHE_VAR_DIR=/app/var \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
WORKDIR /app
# A venv of our own: the same paths whichever base (Debian's system Python
# refuses pip installs, and smartcache.commands runs celery/gunicorn from
# beside sys.executable).
# --upgrade-deps: an old pip (Debian's 23.0) skips extras spelled the new way
# (justext needs lxml[html_clean]).
RUN python3 -m venv --upgrade-deps /opt/venv
# Dependencies first: this layer stays cached while only the code changes.
# Exactly the lock's versions, checked by hash (requirements/runtime.lock,
# the same set `make run` installs).
COPY requirements/runtime.lock ./requirements/
RUN pip install --no-cache-dir --quiet --require-hashes --no-deps -r requirements/runtime.lock
COPY smartcache ./smartcache
COPY summaries ./summaries
COPY manage.py ./
COPY scripts/healthcheck.py ./scripts/
COPY pyproject.toml README.md ./
RUN pip install --no-cache-dir --quiet --no-deps --no-build-isolation . && mkdir -p var \
    && DJANGO_SECRET_KEY=build WEBHOOK_SECRET=build python manage.py collectstatic --noinput -v0 \
    && rm -rf build *.egg-info
# /app/secrets: compose mounts a volume there, which takes this owner.
RUN useradd --create-home app && mkdir -p /app/secrets && chown -R app /app/var /app/secrets
USER app
EXPOSE 8000
CMD ["python", "-m", "smartcache.commands", "web"]
