"""Django settings for SmartCache, read from the environment, one module per
concern. Every setting has a default that runs on a laptop with nothing
installed (SQLite under var/, the offline summariser); production sets
DATABASE_URL, VALKEY_URL, DJANGO_SECRET_KEY and friends. The README lists
them all.

| module | holds |
|---|---|
| env | the typed readers of the environment, BASE_DIR and VAR_DIR |
| security | the secret key, hosts, HTTPS, CORS, rate limit, operators' token |
| database | SQLite by default, PostgreSQL pooled with DATABASE_URL |
| ai | the summariser (Gemini, OpenAI-compatible, offline), limits, batching |
| fetching | the URL fetch policy and bounds |
| webhooks | webhooks, watched URLs, scheduled jobs (run_at), the tick |
| valkey_celery | Valkey's two roles, the job lifecycle, Celery (lanes, beat) |
| core | Django's apps and middleware, the API framework, live updates, logs |

Each module reads the environment and imports by name what it needs from
the modules above it in this table (nothing appends to another module's
settings), and none writes a file: the local secrets are made
by `python -m smartcache.secret_files`, which `make run` and the containers
run first (importing the settings of a fresh clone without them fails with a
message that says so).
"""

from smartcache.settings.ai import *  # noqa: F403
from smartcache.settings.core import *  # noqa: F403
from smartcache.settings.database import *  # noqa: F403
from smartcache.settings.env import *  # noqa: F403
from smartcache.settings.fetching import *  # noqa: F403
from smartcache.settings.security import *  # noqa: F403
from smartcache.settings.valkey_celery import *  # noqa: F403
from smartcache.settings.webhooks import *  # noqa: F403
