"""Valkey addresses: one server, or a Sentinel-watched group, in one URL.

Two forms are accepted for VALKEY_URL and CACHE_VALKEY_URL:

- one server: ``redis://[[user]:password@]host[:port][/db]`` (``rediss://`` for
  TLS; ``valkey://`` and ``valkeys://`` are read as their redis:// twins,
  since kombu knows only those schemes);
- a Sentinel group: ``sentinel://[[user]:password@]h1[:26379],h2[:26379]/db?master=NAME``
  — every sentinel's host and port, comma-separated, then the database and
  the name the sentinels monitor (``master``, required). The credentials are
  the Valkey servers' (master and replicas); sentinels that need their own
  password take ``sentinel_password=...`` (and ``sentinel_username=...``).

``parse`` reads either into a ``ValkeyTarget``, which hands each consumer
what it needs: Celery's broker and result backend get kombu's own Sentinel
form (``sentinel://h1:26379/db;sentinel://h2:26379/db`` plus transport
options naming the master), and the app's redis-py clients go through
``redis.sentinel.Sentinel.master_for``, which asks the sentinels for the
current master and again after a connection to it fails (a failover).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import redis
from redis.sentinel import Sentinel

DEFAULT_SENTINEL_PORT = 26379
_DIRECT_SCHEMES = {"redis": "redis", "rediss": "rediss", "valkey": "redis", "valkeys": "rediss"}
_SENTINEL_OPTIONS = {"master", "sentinel_password", "sentinel_username"}


@dataclass(frozen=True)
class ValkeyTarget:
    """Where one Valkey (or one Sentinel-watched master) is."""

    url: str  # a direct server's redis:// URL; "" for a Sentinel group
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str = ""
    db: int = 0
    username: str = ""
    password: str = ""
    # Options for the connections to the sentinels themselves (password).
    sentinel_options: tuple[tuple[str, str], ...] = ()

    @property
    def is_sentinel(self) -> bool:
        return bool(self.sentinels)

    def celery_url(self) -> str:
        """The URL for CELERY_BROKER_URL and CELERY_RESULT_BACKEND."""
        if not self.is_sentinel:
            return self.url
        auth = ""
        if self.password or self.username:
            auth = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}@"
        return ";".join(f"sentinel://{auth}{host}:{port}/{self.db}"
                        for host, port in self.sentinels)

    def transport_options(self, *, timeout: float) -> dict[str, Any]:
        """What kombu's and Celery's Sentinel transports need beside the URL
        (merged into broker and result backend transport options). The
        sentinels get short timeouts too: kombu sets none on its own."""
        if not self.is_sentinel:
            return {}
        return {"master_name": self.master,
                "sentinel_kwargs": {"socket_timeout": timeout, "socket_connect_timeout": timeout,
                                    **dict(self.sentinel_options)}}

    def client(self, **kwargs: Any) -> redis.Redis:
        """A redis-py client on this server (or on the group's current master)."""
        if not self.is_sentinel:
            return redis.Redis.from_url(self.url, **kwargs)
        sentinel_kwargs: dict[str, Any] = {
            name: kwargs[name] for name in ("socket_timeout", "socket_connect_timeout")
            if name in kwargs}
        sentinel_kwargs.update(self.sentinel_options)
        # redis-py before 7 leaves Sentinel untyped; "unused-ignore" keeps
        # this line clean under both the older and the newer stubs.
        sentinel = Sentinel(  # type: ignore[no-untyped-call, unused-ignore]
            list(self.sentinels), sentinel_kwargs=sentinel_kwargs)
        client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call, unused-ignore]
            self.master, db=self.db, username=self.username or None,
            password=self.password or None, **kwargs)
        return client

    def shown(self) -> str:
        """The address without credentials, for logs and error messages."""
        if self.is_sentinel:
            hosts = ",".join(f"{host}:{port}" for host, port in self.sentinels)
            return f"sentinel://{hosts}/{self.db}?master={self.master}"
        parts = urlsplit(self.url)
        return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def parse(url: str) -> ValkeyTarget:
    """Read a VALKEY_URL-style address; ValueError says what is wrong with it."""
    url = url.strip()
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValueError(f"{url!r} is not a URL (expected redis://host:port/db or "
                         "sentinel://host:port,host:port/db?master=NAME)")
    if scheme in _DIRECT_SCHEMES:
        return ValkeyTarget(url=_DIRECT_SCHEMES[scheme] + url[len(scheme):])
    if scheme == "sentinel":
        return _parse_sentinel(url)
    raise ValueError(f"unknown scheme {scheme!r} in a Valkey URL: use redis://, rediss:// "
                     "or sentinel://")


def _parse_sentinel(url: str) -> ValkeyTarget:
    # urlsplit would choke on the comma-separated host list as a port, so
    # the network location is split by hand.
    rest = url.split("://", 1)[1]
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    options = {name: values[-1] for name, values in parse_qs(query).items()}
    unknown = set(options) - _SENTINEL_OPTIONS
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))} in a sentinel:// URL "
                         f"(known: {', '.join(sorted(_SENTINEL_OPTIONS))})")
    master = options.get("master", "")
    if not master:
        raise ValueError("a sentinel:// URL needs ?master=NAME (the name the sentinels monitor)")
    sentinels = tuple(_host_port(item) for item in hosts.split(",") if item.strip())
    if not sentinels:
        raise ValueError("a sentinel:// URL needs at least one sentinel host")
    db_text = path.strip("/") or "0"
    if not db_text.isdigit():
        raise ValueError(f"the database in a sentinel:// URL must be a number, not {db_text!r}")
    sentinel_options = tuple(sorted((name.removeprefix("sentinel_"), value)
                                    for name, value in options.items()
                                    if name.startswith("sentinel_")))
    return ValkeyTarget(url="", sentinels=sentinels, master=master, db=int(db_text),
                        username=unquote(username), password=unquote(password),
                        sentinel_options=sentinel_options)


def _host_port(item: str) -> tuple[str, int]:
    item = item.strip()
    if item.startswith("["):  # [::1]:26379
        host, _, port = item[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
    if not host:
        raise ValueError(f"a sentinel address needs a host, not {item!r}")
    if port and not port.isdigit():
        raise ValueError(f"a sentinel's port must be a number, not {port!r} (in {item!r})")
    return host, int(port) if port else DEFAULT_SENTINEL_PORT
