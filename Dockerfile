FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SMARTCACHE_VAR_DIR=/app/var
WORKDIR /app
COPY pyproject.toml README.md ./
COPY smartcache ./smartcache
COPY summaries ./summaries
COPY manage.py ./
RUN pip install --no-cache-dir . && mkdir -p var \
    && DJANGO_SECRET_KEY=build python manage.py collectstatic --noinput -v0
RUN useradd --create-home app && chown -R app /app
USER app
EXPOSE 8000
CMD ["python", "-m", "smartcache.commands", "web"]
