#!/usr/bin/env bash
# The container path, proven: where a container engine can start here, build
# a Debian bookworm base with Python 3.11 from Debian's packages (debootstrap:
# no image registry is needed), build the project image on it (Dockerfile's
# BASE), and run migrate, web, a worker, beat and Flower as containers on the host network
# against this machine's PostgreSQL and Redis, in a database and a Redis
# database number of their own, submitting a job to completion. Then clean up.
#
# Where no engine can start (not root, no dockerd, no mirror), it says why and
# validates docker-compose.yml statically (scripts/compose_check.py) instead:
# an unavailable engine never fails it; an engine that started and containers
# that did not work do (exit 1).
#
# Environment: CONTAINER_CHECK=0 skips the engine run; CONTAINER_CHECK_INSTALL=0
# never apt-get installs docker.io/debootstrap; DEBIAN_MIRROR (default: the
# first Debian mirror in apt's sources); CONTAINER_CACHE (default
# /var/cache/smartcache-ci, else var/ci-cache) keeps the base tarball.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
say() { echo "== container check: $*"; }

static_check() {
  say "validating docker-compose.yml statically"
  "$PY" scripts/compose_check.py docker-compose.yml
}

# Where the engine cannot be had: say why and pass on the static check.
# (It runs first, so it has passed by then.)
no_engine() {
  say "$1: no container run here (the static check above stands)"
  exit 0
}

static_check || exit 1
[ "${CONTAINER_CHECK:-1}" = 0 ] && { say "CONTAINER_CHECK=0: engine run skipped"; exit 0; }
[ "$(id -u)" = 0 ] || no_engine "not root (dockerd and debootstrap need root)"

# --- Tools -------------------------------------------------------------------
if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
  [ "${CONTAINER_CHECK_INSTALL:-1}" = 0 ] && no_engine "dockerd or debootstrap not installed"
  say "installing docker.io and debootstrap from Debian's packages"
  if ! { timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 600 \
         apt-get install -y -qq docker.io debootstrap; } >/tmp/container-check-apt.log 2>&1; then
    tail -5 /tmp/container-check-apt.log
    no_engine "could not install docker.io/debootstrap"
  fi
fi
DOCKER=$(command -v /usr/bin/docker || command -v docker)

# --- The engine ----------------------------------------------------------------
DOCKERD_PID=""
if ! "$DOCKER" info >/dev/null 2>&1; then
  say "starting dockerd (no iptables, no bridge: containers use the host network)"
  dockerd --iptables=false --bridge=none >/tmp/container-check-dockerd.log 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 60); do "$DOCKER" info >/dev/null 2>&1 && break; sleep 1; done
  if ! "$DOCKER" info >/dev/null 2>&1; then
    tail -5 /tmp/container-check-dockerd.log
    kill "$DOCKERD_PID" 2>/dev/null; wait "$DOCKERD_PID" 2>/dev/null
    no_engine "dockerd did not start"
  fi
fi

# Everything below that we created is removed on the way out, however we leave.
RUN_ID=$$_$RANDOM
CONTAINERS=()
DB=""
REDIS_DB=""
ROOTFS=""
cleanup() {
  for c in "${CONTAINERS[@]}"; do "$DOCKER" rm -f "$c" >/dev/null 2>&1; done
  # Earlier builds' layers, untagged by this one: the disk does not fill up run by run.
  "$DOCKER" image prune -f >/dev/null 2>&1
  [ -n "$ROOTFS" ] && rm -rf "$ROOTFS"
  [ -n "$DB" ] && psql -q -h 127.0.0.1 -U postgres -d postgres \
      -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
  [ -n "$REDIS_DB" ] && redis-cli -h 127.0.0.1 -n "$REDIS_DB" FLUSHDB >/dev/null 2>&1
  if [ -n "$DOCKERD_PID" ]; then
    kill "$DOCKERD_PID" 2>/dev/null
    wait "$DOCKERD_PID" 2>/dev/null
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() { say "FAILED: $*"; exit 1; }

# --- The base image: Debian bookworm + Python 3.11, from Debian's packages ------
CACHE=${CONTAINER_CACHE:-/var/cache/smartcache-ci}
mkdir -p "$CACHE" 2>/dev/null && [ -w "$CACHE" ] || CACHE=var/ci-cache
mkdir -p "$CACHE"
BASE_TAR=$CACHE/bookworm-python3.11.tar
BASE_IMAGE=smartcache-ci-base:bookworm-py3.11
if ! "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  if [ ! -s "$BASE_TAR" ]; then
    MIRROR=${DEBIAN_MIRROR:-$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' \
        /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
        | grep -oE 'https?://[^ ]+' | head -1)}
    [ -n "$MIRROR" ] || no_engine "no Debian mirror in apt's sources (set DEBIAN_MIRROR)"
    ROOTFS=$(mktemp -d /tmp/smartcache-rootfs.XXXXXX)
    say "debootstrap bookworm (minbase + python3-venv) from $MIRROR"
    if ! timeout 900 debootstrap --variant=minbase --include=python3-venv,ca-certificates \
         bookworm "$ROOTFS" "$MIRROR" >/tmp/container-check-debootstrap.log 2>&1; then
      tail -5 /tmp/container-check-debootstrap.log
      no_engine "debootstrap could not build the base (Debian's mirror unreachable?)"
    fi
    rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/archives/*.deb
    tar -C "$ROOTFS" -cf "$BASE_TAR.tmp" . && mv "$BASE_TAR.tmp" "$BASE_TAR"
    rm -rf "$ROOTFS"; ROOTFS=""
  fi
  say "importing the base image from $BASE_TAR"
  "$DOCKER" import "$BASE_TAR" smartcache-ci-debian:bookworm >/dev/null || fail "docker import"
  # This machine's own trust: where HTTPS to the package registries goes
  # through a proxy with its own CA, the image's pip must trust it too.
  CONTEXT=$(mktemp -d /tmp/smartcache-base.XXXXXX)
  mkdir "$CONTEXT/ca"
  cp /usr/local/share/ca-certificates/*.crt "$CONTEXT/ca/" 2>/dev/null
  cat >"$CONTEXT/Dockerfile" <<'DOCKERFILE'
FROM smartcache-ci-debian:bookworm
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null \
    && printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >/etc/pip.conf
DOCKERFILE
  DOCKER_BUILDKIT=0 "$DOCKER" build -q --network host -t "$BASE_IMAGE" "$CONTEXT" >/dev/null
  status=$?
  rm -rf "$CONTEXT"
  [ $status = 0 ] || fail "building $BASE_IMAGE"
fi

# --- The project image -----------------------------------------------------------
IMAGE=smartcache-ci:latest
say "building the image on $BASE_IMAGE"
# The host network: the engine has no bridge, and pip reaches PyPI from there.
DOCKER_BUILDKIT=0 "$DOCKER" build -q --network host --build-arg "BASE=$BASE_IMAGE" \
    -t "$IMAGE" . || fail "docker build"

# --- Its own database and Redis database number ----------------------------------
DB=smartcache_ci_$RUN_ID
psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $DB" \
  || { DB=""; fail "could not create PostgreSQL database (is it running on 127.0.0.1:5432?)"; }
for n in 14 13 12 11 10; do
  if [ "$(redis-cli -h 127.0.0.1 -n "$n" DBSIZE 2>/dev/null)" = 0 ]; then REDIS_DB=$n; break; fi
done
[ -n "$REDIS_DB" ] || fail "no empty Redis database (10-14) on 127.0.0.1:6379"
free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
FLOWER_PORT=$(free_port)
ENV=(-e "DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB"
     -e "VALKEY_URL=redis://127.0.0.1:6379/$REDIS_DB"
     -e "DJANGO_SECRET_KEY=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(50))')"
     -e "WEBHOOK_SECRET=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(32))')"
     -e "DJANGO_ALLOWED_HOSTS=127.0.0.1" -e HOST=127.0.0.1 -e "PORT=$PORT" -e "FLOWER_PORT=$FLOWER_PORT"
     -e SUMMARIZER=local -e WEB_CONCURRENCY=2 -e WORKER_CONCURRENCY=4)
say "database $DB, Redis db $REDIS_DB, web on 127.0.0.1:$PORT"

run_detached() {  # name, command...
  local name=smartcache-ci-$1-$RUN_ID
  shift
  CONTAINERS+=("$name")
  "$DOCKER" run -d --name "$name" --network host "${ENV[@]}" "$IMAGE" "$@" >/dev/null \
    || fail "could not start $name"
}
show_logs() {
  for c in "${CONTAINERS[@]}"; do
    echo "--- $c (last lines)"; "$DOCKER" logs --tail 30 "$c" 2>&1
  done
}

# --- migrate, web, worker, beat, Flower, one job ---------------------------------------------
say "migrate"
"$DOCKER" run --rm --network host "${ENV[@]}" "$IMAGE" python manage.py migrate --noinput -v0 \
  || fail "migrate"
run_detached web python -m smartcache.commands web
run_detached worker python -m smartcache.commands worker
run_detached beat python -m smartcache.commands beat
run_detached flower python -m smartcache.commands flower

"$PY" - "$PORT" <<'PY' || { show_logs; fail "the job did not complete through the containers"; }
"""Wait for health, submit a text, wait for its job to complete."""
import json
import sys
import time
import urllib.error
import urllib.request

base = f"http://127.0.0.1:{sys.argv[1]}/api"


def call(path: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


deadline = time.monotonic() + 180
while True:
    try:
        status, body = call("/health")
        if status == 200:
            break
    except OSError as error:
        status, body = 0, {"error": str(error)}
    if time.monotonic() > deadline:
        sys.exit(f"web never healthy: {status} {body}")
    time.sleep(1)
print("== container check: web healthy:", body)
text = ("Containers were built from Debian's own packages for this check. "
        f"The web container accepted this text at {time.time()}. "
        "A worker container summarised it and stored the result in PostgreSQL.")
status, body = call("/submit", {"input": text})
if status not in (200, 202):
    sys.exit(f"submit answered {status}: {body}")
job = body["job_id"]
deadline = time.monotonic() + 180
while body.get("status") not in ("completed", "failed"):
    if time.monotonic() > deadline:
        sys.exit(f"job {job} not done after 180 s: {body}")
    time.sleep(0.5)
    status, body = call(f"/status/{job}")
if body["status"] != "completed":
    sys.exit(f"job {job} failed: {body}")
print(f"== container check: job {job} completed: {body.get('summary', '')[:80]!r}")
PY

say "healthchecks inside the containers"
for name in web worker beat flower; do
  "$DOCKER" exec "smartcache-ci-$name-$RUN_ID" python scripts/healthcheck.py "$name" \
    || { show_logs; fail "$name's healthcheck failed"; }
done
say "passed"
