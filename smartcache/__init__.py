"""The project: settings, URLs, the Celery apps (smartcache/celery.py), WSGI/ASGI.

Importing the package loads nothing else: `make run`'s launcher uses its
command lines (smartcache/commands.py) without Django or Celery. The Celery
app is loaded wherever Django starts (summaries/apps.py), and `celery -A
smartcache` finds it in smartcache/celery.py.
"""
